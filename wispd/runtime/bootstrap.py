"""The first code a child runs after the forkserver forks it.

It makes the child safe to supervise before any user code runs:
- its own session and process group (so a stop can SIGKILL the whole tree, grandchildren included);
- the daemon's death is its death, outside systemd too. Its parent is the forkserver, not wispd, so three
  things together make sure of it: PR_SET_PDEATHSIG=SIGTERM (the forkserver dies -> we are told); the
  copies of the forkserver's "alive" pipe and the resource tracker's fd that multiprocess hands every
  child are closed (so those helpers see wispd's death at once and exit instead of waiting for us); and
  a watch thread holds a pidfd of wispd itself: when wispd is gone, the child gets SIGTERM and, half a
  second later, its whole process group SIGKILL (a hung child cannot drain);
- its own JSON log file; an unhandled exception is logged with its traceback before the exit, and the
  exit code says what happened (0 clean, 78 config error, 70 crash).
"""

from __future__ import annotations

import ctypes
import importlib
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from wispd.fdwait import readable

EX_SOFTWARE = 70
EX_CONFIG = 78
_PR_SET_PDEATHSIG = 1
ORPHAN_GRACE_S = 0.5  # after wispd's death: SIGTERM, then this long before SIGKILL of the group


def process_start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks (/proc/<pid>/stat field 22): with the pid, it names one
    process for good (a pid alone can be reused)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return int(fh.read().rsplit(b")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def _set_pdeathsig(sig: int) -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)
    except OSError:  # not Linux: the cgroup / supervisor stop still applies
        pass


def _release_helper_fds() -> None:
    """multiprocess gives each forked child the write end of the forkserver's "alive" pipe and the resource
    tracker's pipe; while any child holds them, neither helper notices that wispd died. We use neither."""
    try:
        from multiprocess import forkserver, resource_tracker
    except ImportError:  # pragma: no cover - multiprocess is a dependency
        return
    for holder, attr in ((forkserver._forkserver, "_forkserver_alive_fd"), (resource_tracker._resource_tracker, "_fd")):
        fd = getattr(holder, attr, None)
        if isinstance(fd, int):
            try:
                os.close(fd)
            except OSError:
                pass
            setattr(holder, attr, None)


def _orphaned() -> None:
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(ORPHAN_GRACE_S)
    finally:
        try:
            os.killpg(os.getpgid(0), signal.SIGKILL)
        finally:
            os._exit(EX_SOFTWARE)


def watch_supervisor(pid: int | None, start_ticks: int | None) -> None:
    """End this process (and its group) when the supervisor process ``pid`` ends."""
    if not pid:
        return
    try:
        fd = os.pidfd_open(pid)
    except OSError:
        os._exit(EX_SOFTWARE)  # it is gone already
    if start_ticks is not None and process_start_ticks(pid) != start_ticks:
        os._exit(EX_SOFTWARE)  # the pid was reused: our supervisor is gone

    def wait() -> None:
        readable(fd, None)
        _orphaned()

    threading.Thread(target=wait, name="wispd-supervisor-watch", daemon=True).start()


def resolve_entry(entry: str) -> Any:
    module_name, _, func_name = entry.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, func_name)


def child_entry(boot: dict[str, Any]) -> None:
    """multiprocess target: run one child and exit with a code that tells the supervisor what happened."""
    os.setsid()
    _set_pdeathsig(signal.SIGTERM)
    if os.getppid() == 1:  # parent already gone between fork and prctl
        os._exit(EX_SOFTWARE)
    _release_helper_fds()
    watch_supervisor(boot.get("supervisor_pid"), boot.get("supervisor_start"))
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C belongs to wispd, which stops us in order
    for path in reversed(boot.get("python_path") or []):
        if path not in sys.path:
            sys.path.insert(0, path)

    from wispd.logs import setup_logging
    from wispd.runtime.context import ChildContext

    log_dir = Path(boot["log_dir"]) if boot.get("log_dir") else None
    log = setup_logging(boot["name"], log_dir, boot.get("log_level", "info"),
                        boot.get("log_max_bytes", 10 * 1024 * 1024), boot.get("log_backups", 5),
                        stderr=boot.get("log_stderr", True))
    if boot.get("run_dir"):
        from wispd.runtime import stacks

        try:
            stacks.install(Path(boot["run_dir"]), boot["name"])  # wispctl stack, and hang reports
        except OSError as exc:
            log.warning("stack_dumps_unavailable", error=str(exc))
    code = 0
    ctx = None
    try:
        log.info("child_start", kind=boot["kind"], generation=boot["gen"], entry=boot["entry"])
        ctx = ChildContext(boot, log)
        result = resolve_entry(boot["entry"])(ctx)
        code = int(result or 0)
        log.info("child_exit", code=code, stop_reason=ctx.stop_reason)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        log.info("child_exit", code=code, via="SystemExit")
    except BaseException as exc:  # noqa: BLE001 - everything must be logged before the process dies
        code = EX_SOFTWARE
        log.exception("child_crash", error=f"{type(exc).__name__}: {exc}")
        if ctx is not None:
            ctx.exiting(f"{type(exc).__name__}: {exc}")
    finally:
        if ctx is not None:
            ctx.close()
        import logging

        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)
