"""Restart decisions: exit classification, exponential backoff with jitter, the crash-loop window.

Pure logic with an injectable clock and random source, so the policy is tested without processes.

- Exit 0 is clean; 78 (EX_CONFIG) is a configuration error and goes FATAL at once (restarting cannot fix
  a bad config); any other code or a signal is a failure. A child the supervisor killed for a cause
  (heartbeat, memory, start timeout) failed, whatever its exit status.
- permanent restarts always; transient only after a failure; temporary never.
- delay_n = min(backoff_max, backoff_initial * factor^(n-1)) * (1 +/- jitter); n resets once the child has
  been RUNNING for ``stable_after`` seconds.
- ``max_restarts`` restarts within ``window`` seconds -> FATAL (OTP intensity/period, sliding).
- An operator's stop or restart never reaches this module: it is not a crash.
"""

from __future__ import annotations

import random
import signal
from collections import deque
from dataclasses import dataclass

from wispd.config.model import RestartPolicy

EX_CONFIG = 78


@dataclass(frozen=True)
class ExitInfo:
    code: int | None  # exit status when the process exited by itself
    signal: int | None  # signal number when it was killed

    @classmethod
    def from_returncode(cls, rc: int) -> ExitInfo:
        """multiprocess/forkserver report a signal death as a negative return code."""
        return cls(code=None, signal=-rc) if rc < 0 else cls(code=rc, signal=None)

    def describe(self) -> str:
        if self.signal is not None:
            try:
                return f"signal {signal.Signals(self.signal).name}"
            except ValueError:
                return f"signal {self.signal}"
        if self.code == EX_CONFIG:
            return "exit 78 (configuration error)"
        return f"exit {self.code}"

    @property
    def clean(self) -> bool:
        return self.signal is None and self.code == 0

    @property
    def config_error(self) -> bool:
        return self.signal is None and self.code == EX_CONFIG


@dataclass(frozen=True)
class Decision:
    action: str  # "restart" | "exited" | "fatal"
    delay: float
    reason: str  # restart reason (crash, signal, exit, heartbeat, memory, start_timeout) or why not


def restart_reason(exit_info: ExitInfo, cause: str | None) -> str:
    if cause:
        return cause
    if exit_info.signal is not None:
        return "signal"
    return "exit" if exit_info.clean else "crash"


class RestartTracker:
    """Backoff and crash-loop window bookkeeping for one child."""

    def __init__(self, policy: RestartPolicy, rng: random.Random | None = None) -> None:
        self.policy = policy
        self.rng = rng or random.Random()
        self.consecutive = 0
        self.recent: deque[float] = deque()

    def reset_backoff(self) -> None:
        """Called once the child has been RUNNING for ``stable_after`` seconds."""
        self.consecutive = 0

    def next_delay(self) -> float:
        p = self.policy
        base = min(p.backoff_max, p.backoff_initial * p.backoff_factor ** max(0, self.consecutive - 1))
        return max(0.0, base * (1.0 + self.rng.uniform(-p.jitter, p.jitter)))

    def decide(self, exit_info: ExitInfo, cause: str | None, now: float) -> Decision:
        if exit_info.config_error and cause is None:
            return Decision("fatal", 0.0, "not restarted: restarting cannot fix a configuration error; fix it, then "
                            "wispctl reload (or start)")
        failed = cause is not None or not exit_info.clean
        policy = self.policy.policy
        if policy == "temporary" or (policy == "transient" and not failed):
            return Decision("exited", 0.0, f"{policy} child: {exit_info.describe()}")
        while self.recent and now - self.recent[0] > self.policy.window:
            self.recent.popleft()
        if len(self.recent) >= self.policy.max_restarts:
            return Decision(
                "fatal", 0.0,
                f"crash loop: {len(self.recent)} restarts within {self.policy.window:g}s, the last for "
                f"{restart_reason(exit_info, cause)}",
            )
        self.recent.append(now)
        self.consecutive += 1
        return Decision("restart", self.next_delay(), restart_reason(exit_info, cause))
