"""Starting and signalling child processes.

Children are started with ``multiprocess``'s forkserver context and an explicit preload. Why not plain
fork: the supervisor holds a ZeroMQ context (with I/O threads), and forking a process with threads is
unsafe. Why not spawn/subprocess: 90-155 ms and 9-17 MB per start. The forkserver is a clean,
single-threaded interpreter started once (it never sees our ZeroMQ context) that forks each child in
~25 ms; see docs/supervisor.md.

Exit detection is event-driven: the forkserver reaps each child from its SIGCHLD handler and writes the
exit status to a per-child pipe (the ``sentinel``), which sits in the supervisor's zmq.Poller. Signals go
through a pidfd (no PID-reuse race) and to the child's process group (grandchildren too).
"""

from __future__ import annotations

import errno
import importlib.machinery
import os
import signal
import sys
from typing import Any

import multiprocess
import multiprocess.process

from wispd.runtime.bootstrap import child_entry

# What the forkserver imports once, so each child starts with it in (shared, copy-on-write) memory: the
# runtime, and the whole strategy side (its child entry, the SDK, asyncio), which is most children. Never
# ccxt (strategy processes must not have it) and nothing that starts a thread at import.
PRELOAD = ["wispd.runtime.forkserver_init", "wispd.runtime.bootstrap", "wispd.runtime.context", "wispd.logs",
           "wispd.protocol", "zmq", "orjson", "asyncio", "wispd.strategy.child", "wispd.sdk"]


class ChildProcess:
    """One running OS process of a child, owned by the supervisor until it has been reaped."""

    def __init__(self, proc: Any) -> None:
        self._proc = proc
        self.pid: int = proc.pid
        self.sentinel: int = proc.sentinel
        self.returncode: int | None = None
        try:
            self._pidfd: int | None = os.pidfd_open(self.pid)
        except (OSError, AttributeError):
            self._pidfd = None  # already gone (its exit is in the sentinel), or no pidfd support

    def poll(self) -> int | None:
        """Non-blocking: the exit code once the forkserver has reported it (negative = signal)."""
        if self.returncode is None:
            rc = self._proc.exitcode
            if rc is not None:
                self.returncode = rc
        return self.returncode

    def signal(self, sig: int) -> None:
        """Signal the main process (through its pidfd when we have one)."""
        if self.returncode is not None:
            return
        try:
            if self._pidfd is not None:
                signal.pidfd_send_signal(self._pidfd, sig)
            else:
                os.kill(self.pid, sig)
        except ProcessLookupError:
            pass
        except OSError as exc:
            if exc.errno != errno.ESRCH:
                raise

    def signal_group(self, sig: int) -> None:
        """Signal the child's whole process group (it is the group leader after setsid), then the child."""
        try:
            os.killpg(self.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
        self.signal(sig)

    def close(self) -> None:
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None
        try:
            self._proc.close()
        except ValueError:
            pass


class Launcher:
    """Starts children through one forkserver, created lazily on the first start."""

    def __init__(self, preload: list[str] | None = None) -> None:
        self._ctx = multiprocess.get_context("forkserver")
        self._ctx.set_forkserver_preload(preload or PRELOAD)
        main = sys.modules.get("__main__")
        if main is not None and getattr(main, "__spec__", None) is None:
            # Otherwise every child re-runs wispd's console script as __mp_main__ before its target (~30 ms
            # of imports per start); a main module named "__main__" is one multiprocess does not re-import.
            main.__spec__ = importlib.machinery.ModuleSpec("__main__", None)

    def start(self, boot: dict[str, Any]) -> ChildProcess:
        proc = self._ctx.Process(target=child_entry, args=(boot,), name=boot["name"], daemon=False)
        proc.start()
        # The supervisor owns its children's lives (ChildProcess: exit codes, signals, reaping through the
        # forkserver), so multiprocess need not track them too: left in its set, every start polls every
        # child started before it (1 ms per start with 100 children on the bench VM, in the supervisor's
        # loop: O(n^2) to start n), and at exit it would wait for each of them.
        multiprocess.process._children.discard(proc)
        return ChildProcess(proc)

    def close(self) -> None:
        """Stop the forkserver and multiprocess's resource tracker and reap both, so wispd leaves no zombie
        in its process group (call once every child has exited)."""
        from multiprocess import forkserver, resource_tracker

        for helper in (forkserver._forkserver, resource_tracker._resource_tracker):
            try:
                helper._stop()
            except (OSError, ChildProcessError):
                pass
