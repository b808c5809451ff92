"""The one clock everything that decides reads: wall time live, virtual time in a backtest.

Strategy code, the SDK, signals, the executor core, the journal and the sim read time only through
``now()`` (epoch seconds), ``now_ms()`` and ``monotonic()``. Live, these are ``time.time`` and
``time.monotonic``. A backtest process installs a ``VirtualClock`` before anything runs: time then moves
only when the replayer says so, which is what makes a backtest deterministic (the same data, config and
code give the same fills) and lets it run a day in seconds.

Liveness (heartbeats to the supervisor, link polling, lock timeouts) stays on real time on purpose: a
backtest whose strategy hangs must still be seen to hang.
"""

from __future__ import annotations

import math
import time


class VirtualClock:
    """Time that only moves forward when told (``advance_to``); its monotonic is its epoch time."""

    def __init__(self, start_s: float) -> None:
        self.t = float(start_s)

    def time(self) -> float:
        return self.t

    def monotonic(self) -> float:
        return self.t

    def advance_to(self, t_s: float) -> None:
        if t_s > self.t:
            self.t = t_s


_virtual: VirtualClock | None = None


def now() -> float:
    """Epoch seconds: wall time, or the backtest's virtual time."""
    return _virtual.t if _virtual is not None else time.time()


def now_ms() -> float:
    return (_virtual.t if _virtual is not None else time.time()) * 1000.0


def monotonic() -> float:
    """For intervals and deadlines of strategy and executor logic (virtual in a backtest)."""
    return _virtual.t if _virtual is not None else time.monotonic()


def us_not_before(t_ms: float) -> int:
    """The first whole microsecond at or after ``t_ms``: when a backtest wakes for an instant given in float
    milliseconds (a paper order going live), never a hair early."""
    return math.ceil(t_ms * 1000)


def install(clock: VirtualClock | None) -> None:
    """Make ``clock`` this process's time (None: back to wall time)."""
    global _virtual
    _virtual = clock


def virtual() -> VirtualClock | None:
    """The installed virtual clock, or None when this process runs on wall time."""
    return _virtual
