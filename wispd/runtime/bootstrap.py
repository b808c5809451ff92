"""The first code a child runs after the forkserver forks it.

It makes the child safe to supervise before any user code runs:
- its own session and process group (so a stop can SIGKILL the whole tree, grandchildren included);
- PR_SET_PDEATHSIG=SIGTERM: if the forkserver (and so wispd) dies, the child is told to stop instead of
  running on unsupervised (under systemd, KillMode=mixed sweeps the cgroup as the final backstop);
- its own JSON log file; an unhandled exception is logged with its traceback before the exit, and the
  exit code says what happened (0 clean, 78 config error, 70 crash).
"""

from __future__ import annotations

import ctypes
import importlib
import os
import signal
import sys
from pathlib import Path
from typing import Any

EX_SOFTWARE = 70
EX_CONFIG = 78
_PR_SET_PDEATHSIG = 1


def _set_pdeathsig(sig: int) -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)
    except OSError:  # not Linux: the cgroup / supervisor stop still applies
        pass


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
                        boot.get("log_max_bytes", 10 * 1024 * 1024), boot.get("log_backups", 5))
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
    finally:
        if ctx is not None:
            ctx.close()
        import logging

        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)
