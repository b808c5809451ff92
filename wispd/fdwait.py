"""Waiting for a file descriptor to become readable, for any descriptor number.

``select.select`` cannot take a descriptor numbered 1024 or above (``ValueError: filedescriptor out of
range``), and a process that holds many sockets, journals and pidfds gets such numbers: a backtest's
replayer with many strategy links, a test worker, a supervisor with hundreds of children. ``poll`` has no
such limit, so every wait on one descriptor goes through here.
"""

from __future__ import annotations

import select
from typing import Any


def readable(fd: Any, timeout_s: float | None) -> bool:
    """Whether ``fd`` (a number or an object with ``fileno()``) is readable within ``timeout_s`` seconds
    (None: wait as long as it takes). A hang-up or error counts as readable: the next read says which."""
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLPRI)
    timeout_ms = None if timeout_s is None else max(0, int(timeout_s * 1000 + 0.999))
    return bool(poller.poll(timeout_ms))
