"""Imported (preloaded) only inside multiprocess's forkserver process.

The forkserver shares wispd's process group. A group-wide SIGTERM (``kill -TERM -<pgid>``, coreutils
``timeout``, a terminal's hangup) would kill it, and through PR_SET_PDEATHSIG every child at once, which
bypasses the ordered drain. It ignores SIGTERM and SIGHUP instead: it still exits when wispd does (its
``alive`` pipe closes), and children reset both signals in ``bootstrap.child_entry``.

It is wispd's own child (spawned, not forked), so PR_SET_PDEATHSIG=SIGKILL ends it the moment wispd dies,
SIGKILL of wispd included; children close their copy of its "alive" pipe (``bootstrap``), so it would
also see EOF there.
"""

import ctypes
import signal

signal.signal(signal.SIGTERM, signal.SIG_IGN)
signal.signal(signal.SIGHUP, signal.SIG_IGN)
try:
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
except OSError:  # pragma: no cover - not Linux
    pass
