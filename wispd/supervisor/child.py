"""The supervisor's record of one child: spec, state, process, counters, and queued operator operations.

Operations on a child (start, stop, restart; from ``wispctl``, reload, boot or shutdown) queue here and run
one at a time, so commands on one child are serialised while commands on others proceed in parallel: no
global lock. An operation completes when the child reaches the state it asked for; its callback then
answers the waiting ``wispctl``.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from wispd.config.model import ChildSpec
from wispd.metrics.aggregate import ChildSeries
from wispd.supervisor.launcher import ChildProcess
from wispd.supervisor.policy import RestartTracker
from wispd.supervisor.states import State, StateHolder

Done = Callable[[bool, str], None]


@dataclass
class Operation:
    verb: str  # start | stop | restart | remove
    done: Done | None = None
    gate: Callable[[], bool] | None = None  # may begin only once this is true (start/stop ordering)
    persist: bool = True  # operator intent: recorded in the desired-state file
    begun: bool = False
    phase: str = ""  # restart: "stopping" then "starting"
    gen0: int = 0  # the child's generation when the start began (a later failure is this start's failure)

    def finish(self, ok: bool, message: str) -> None:
        if self.done is not None:
            callback, self.done = self.done, None
            callback(ok, message)


@dataclass
class Usage:
    cpu_s: float = 0.0
    rss_bytes: int = 0
    uss_bytes: int = 0
    uss_at: float = 0.0  # when USS was last read (it costs a walk of /proc/<pid>/smaps)
    read_at: float = 0.0  # when CPU and RSS were last read (/proc/<pid>/stat)
    mem_over_since: float | None = None


class Child(StateHolder):
    def __init__(self, spec: ChildSpec, wanted: bool) -> None:
        super().__init__(spec.name)
        self.spec = spec
        self.tracker = RestartTracker(spec.restart)
        self.wanted = wanted
        self.proc: ChildProcess | None = None
        self.generation = 0
        self.nonce = ""  # per spawn, part of the link identity (see protocol.link_identity)
        self.restarts = 0
        self.restarts_by_reason: Counter[str] = Counter()
        self.last_exit = ""
        self.exit_reason = ""  # what the child said before exiting (exception type and message), if anything
        self.last_exit_code: int | None = None
        self.started_at: float | None = None  # monotonic, of the current process
        self.ready_at: float | None = None
        self.last_seen = 0.0
        self.linked = False  # the current process said hello over the link (so it can be asked to drain)
        self.hang_reported = False  # heartbeat lost: its stacks were asked for, the stop follows them
        self.drain_budget = 0.0
        self.deadline: float | None = None  # end of the current phase (start timeout, backoff, stop stage)
        self.stop_stage = ""  # drain | term | kill
        self.stop_cause: str | None = None  # None: operator/shutdown; else a failure cause
        self.ops: deque[Operation] = deque()
        self.status: dict[str, Any] = {}
        self.status_history: deque[dict[str, Any]] = deque(maxlen=20)
        self.metrics: dict[str, Any] = {}
        self.series = ChildSeries()  # Prometheus series, folded across this child's restarts
        self.usage = Usage()
        self.cpu_s_total = 0.0  # CPU of earlier incarnations, so the counter never goes backwards

    @property
    def kind(self) -> str:
        return self.spec.kind

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def replace_spec(self, spec: ChildSpec) -> None:
        self.spec = spec
        self.tracker.policy = spec.restart

    def settled(self) -> bool:
        """No longer in flux: a lower start rank being settled lets the next rank begin."""
        if not self.wanted:
            return True
        return self.state in (State.RUNNING, State.FATAL, State.EXITED, State.STOPPED) and not self.ops

    def healthy(self) -> bool:
        """What ``wispctl status`` exit codes and READY=1 count as fine."""
        if not self.wanted:
            return True
        if self.state == State.EXITED:
            return self.last_exit_code == 0
        return self.state == State.RUNNING

    def snapshot(self, now: float | None = None, history: bool = True) -> dict[str, Any]:
        now = time.monotonic() if now is None else now
        alive = self.state.alive and self.started_at is not None
        return {
            "name": self.name,
            "kind": self.kind,
            "state": self.state.value,
            "pid": self.pid if self.state.alive else None,
            "wanted": self.wanted,
            "restarts": self.restarts,
            "restarts_by_reason": dict(self.restarts_by_reason),
            "uptime_s": round(now - self.started_at, 3) if alive and self.started_at is not None else 0.0,
            "state_for_s": round(now - self.state_since, 3),
            "reason": self.state_reason,
            "last_exit": self.last_exit,
            "backoff_s": round(max(0.0, self.deadline - now), 3)
            if self.state == State.BACKOFF and self.deadline else 0.0,
            "heartbeat_age_s": round(now - self.last_seen, 3) if self.state.alive and self.last_seen else None,
            "cpu_s": round(self.cpu_s_total + self.usage.cpu_s, 3),
            "rss_bytes": self.usage.rss_bytes if self.state.alive else 0,
            "uss_bytes": self.usage.uss_bytes if self.state.alive else 0,
            "memory_limit_bytes": int(self.spec.limits.memory_mb * 1024 * 1024),
            "generation": self.generation,
            "healthy": self.healthy(),
            "status": self.status,
            **({"status_history": list(self.status_history)} if history else {}),
        }
