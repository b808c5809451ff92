"""Imported (preloaded) only inside multiprocess's forkserver process.

The forkserver shares wispd's process group. A group-wide SIGTERM (``kill -TERM -<pgid>``, coreutils
``timeout``, a terminal's hangup) would kill it, and through PR_SET_PDEATHSIG every child at once, which
bypasses the ordered drain. It ignores SIGTERM and SIGHUP instead: it still exits when wispd does (its
``alive`` pipe closes), and children reset both signals in ``bootstrap.child_entry``.
"""

import signal

signal.signal(signal.SIGTERM, signal.SIG_IGN)
signal.signal(signal.SIGHUP, signal.SIG_IGN)
