"""The whole child state set in one table, after supervisord's ``states.py``.

Every change of a child's state goes through ``transition`` below, which refuses any move the table does
not list. Reading this table is reading the supervisor's lifecycle:

    STOPPED  --start-->  STARTING  --ready-->  RUNNING
    STARTING/RUNNING  --exit (policy says restart)-->  BACKOFF  --delay elapsed-->  STARTING
    STARTING/RUNNING  --exit (policy says stop)-->  EXITED | FATAL
    STARTING/RUNNING  --stop, unhealthy, start timeout-->  STOPPING  --exit-->  STOPPED | BACKOFF | FATAL
    BACKOFF  --crash-loop window exceeded / config error-->  FATAL
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass


class State(enum.Enum):
    STOPPED = "STOPPED"  # not running, and nobody wants it running (operator stop, or never started)
    STARTING = "STARTING"  # process started, waiting for its ready report
    RUNNING = "RUNNING"  # reported ready and heartbeating
    BACKOFF = "BACKOFF"  # exited abnormally, waiting out the backoff delay before the next start
    STOPPING = "STOPPING"  # drain requested / signals sent, waiting for the exit
    EXITED = "EXITED"  # exited and the restart policy says not to restart (e.g. transient exit 0)
    FATAL = "FATAL"  # gave up: crash-loop window exceeded or configuration error; needs an operator

    @property
    def alive(self) -> bool:
        """A process exists for the child in this state."""
        return self in (State.STARTING, State.RUNNING, State.STOPPING)


S = State

TRANSITIONS: dict[State, frozenset[State]] = {
    S.STOPPED: frozenset({S.STARTING}),
    S.STARTING: frozenset({S.RUNNING, S.BACKOFF, S.STOPPING, S.EXITED, S.FATAL}),
    S.RUNNING: frozenset({S.BACKOFF, S.STOPPING, S.EXITED, S.FATAL}),
    S.BACKOFF: frozenset({S.STARTING, S.STOPPED, S.FATAL}),
    S.STOPPING: frozenset({S.STOPPED, S.BACKOFF, S.EXITED, S.FATAL}),
    S.EXITED: frozenset({S.STARTING, S.STOPPED}),
    S.FATAL: frozenset({S.STARTING, S.STOPPED}),
}

# Numeric codes (supervisord's where they exist) for the Prometheus state gauge.
STATE_CODES: dict[State, int] = {
    S.STOPPED: 0, S.STARTING: 10, S.RUNNING: 20, S.BACKOFF: 30, S.STOPPING: 40, S.EXITED: 100, S.FATAL: 200,
}


class InvalidTransition(RuntimeError):
    pass


@dataclass
class StateChange:
    name: str
    old: State
    new: State
    reason: str
    at: float


def check_transition(old: State, new: State) -> None:
    if new not in TRANSITIONS[old]:
        raise InvalidTransition(f"{old.value} -> {new.value} is not a valid child transition")


class StateHolder:
    """Mixin-free holder: the one place a child's state is changed and its history kept."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.state = State.STOPPED
        self.state_since = time.monotonic()
        self.state_reason = ""
        self.history: list[StateChange] = []

    def transition(self, new: State, reason: str = "") -> StateChange:
        """Move to ``new`` if the table allows it; record why. Raises InvalidTransition otherwise."""
        check_transition(self.state, new)
        change = StateChange(self.name, self.state, new, reason, time.monotonic())
        self.state, self.state_since, self.state_reason = new, change.at, reason
        self.history.append(change)
        del self.history[:-50]
        return change
