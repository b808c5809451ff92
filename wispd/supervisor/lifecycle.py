"""What happens to one child over time: start, ready, exit, backoff, health kills, the stop sequence.

Every state change goes through ``Child.transition`` (the table in ``states.py``); this module decides
which change to make. It never blocks: signals are sent and deadlines set, and the main loop comes back
when the process exits or the deadline passes.
"""

from __future__ import annotations

import os
import secrets
import signal
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import psutil

from wispd.config.model import DaemonConfig
from wispd.logs import EventLogger, append_record
from wispd.runtime.bootstrap import process_start_ticks
from wispd.supervisor.child import Child
from wispd.supervisor.launcher import ChildProcess, Launcher
from wispd.supervisor.policy import ExitInfo
from wispd.supervisor.states import State

USS_PER_SECOND = 10  # USS reads per second across all children, at most
USS_EVERY = 60.0  # seconds between USS reads of one child (a gauge for people; RSS drives the limit)
UNLIMITED_EVERY = 5.0  # seconds between CPU/RSS reads of a child with no memory limit (for people only)
KILL_WAIT = 5.0  # after SIGKILL, how long before we log that the process is stuck (D state)
MAX_DRAIN_EXTENSION = 120.0  # a child may ask for at most this much extra drain time in total


_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def proc_stat(pid: int) -> tuple[float, int] | None:
    """(CPU seconds, RSS bytes) of a process from one read of /proc/<pid>/stat: a tenth of what psutil's
    cpu_times + memory_info cost, which matters at 100 children sampled every second."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rfind(b")") + 2:].split()  # after "pid (comm) ": the comm may hold spaces
    try:
        return (int(fields[11]) + int(fields[12])) / _TICKS, int(fields[21]) * _PAGE
    except (IndexError, ValueError):
        return None


class Lifecycle:
    def __init__(
        self,
        daemon: DaemonConfig,
        launcher: Launcher,
        log: EventLogger,
        watch_fd: Callable[[int, Child | None], None],
        on_change: Callable[[Child, State, State, str], None],
        send_drain: Callable[[Child], bool],
        boot_extra: Callable[[Child], dict[str, Any]] | None = None,
        ask_stacks: Callable[[Child, float, Callable[[str], None]], bool] | None = None,
    ) -> None:
        self.daemon = daemon
        self.launcher = launcher
        self.log = log
        self._watch_fd = watch_fd  # register (child) or unregister (None) an exit sentinel in the poller
        self._on_change = on_change
        self._send_drain = send_drain  # False when the request could not be delivered
        self._boot_extra = boot_extra  # per child: credentials and secrets (memory only, never logged)
        self._ask_stacks = ask_stacks  # a dump of the child's thread stacks, handed back a moment later
        self._psutil: dict[int, psutil.Process] = {}
        self.halting = False  # wispd is shutting down: nothing restarts any more
        self._uss_reads = [0, 0]  # [the second, USS reads made in it]

    # ------------------------------------------------------------------ transitions
    def _move(self, child: Child, new: State, reason: str = "") -> None:
        old = child.state
        child.transition(new, reason)
        self.log.info("child_state", name=child.name, old=old.value, new=new.value, reason=reason,
                      child_pid=child.pid)
        self._on_change(child, old, new, reason)

    # ------------------------------------------------------------------ start
    def boot_args(self, child: Child) -> dict[str, Any]:
        d = self.daemon
        return {
            "name": child.name,
            "kind": child.kind,
            "gen": child.generation,
            "nonce": child.nonce,
            "supervisor_pid": os.getpid(),
            "supervisor_start": process_start_ticks(os.getpid()),
            "entry": child.spec.entry,
            "args": child.spec.args,
            "link_endpoint": d.link_endpoint,
            "config_path": str(d.config_path),
            "run_dir": str(d.run_dir),
            "state_dir": str(d.state_dir),
            "log_dir": str(d.log_dir),
            "log_level": d.log_level,
            "log_max_bytes": d.log_max_bytes,
            "log_backups": d.log_backups,
            "heartbeat_interval": d.heartbeat_interval,
            "python_path": list(d.python_path),
            **(self._boot_extra(child) if self._boot_extra else {}),
        }

    def start(self, child: Child, now: float) -> None:
        """Start a new process for ``child`` (from STOPPED, EXITED, FATAL or BACKOFF)."""
        child.generation += 1
        child.nonce = secrets.token_hex(8)  # this spawn's link identity cannot be guessed or reused
        child.stop_cause, child.stop_stage = None, ""
        child.hang_reported = False
        child.status = {}
        child.exit_reason = ""
        try:
            proc = self.launcher.start(self.boot_args(child))
        except Exception as exc:  # noqa: BLE001 - a failed spawn is a failed start, never a dead supervisor
            self.log.exception("spawn_failed", name=child.name, error=str(exc))
            self._move(child, State.STARTING, "spawn")
            self._after_exit(child, ExitInfo(code=1, signal=None), "spawn_error", now)
            return
        child.proc = proc
        child.started_at, child.ready_at, child.last_seen, child.linked = now, None, now, False
        child.deadline = now + child.spec.limits.start_timeout
        child.usage.mem_over_since = None
        self._watch_fd(proc.sentinel, child)
        self._move(child, State.STARTING, f"pid {proc.pid}")

    def ready(self, child: Child, now: float) -> None:
        if child.state == State.STARTING:
            child.ready_at, child.deadline = now, None
            self._move(child, State.RUNNING, "ready")

    # ------------------------------------------------------------------ stop
    def stop(self, child: Child, now: float, cause: str | None = None) -> None:
        """Begin the stop sequence. cause None/"restart" = operator or shutdown; else a failure cause.

        Operator stops drain first (drain request -> drain_timeout -> SIGTERM -> stop_timeout -> SIGKILL of
        the group). A hung child (heartbeat, start timeout) is SIGKILLed at once: it cannot drain. A child
        over its memory limit gets SIGTERM then SIGKILL.
        """
        if child.state in (State.BACKOFF, State.EXITED, State.FATAL):
            child.deadline = None
            who = "wispd shutting down" if self.halting else "stopped by operator"
            was = child.state.value
            what = "its pending restart cancelled" if child.state == State.BACKOFF else f"it was {was}"
            self._move(child, State.STOPPED, f"{who}: no process was running ({what}; last exit: "
                                             f"{child.last_exit or 'none'})")
            return
        if child.state not in (State.STARTING, State.RUNNING):
            return  # already STOPPED or STOPPING
        child.stop_cause = cause
        limits = child.spec.limits
        self._move(child, State.STOPPING, cause or "stop requested")
        if cause in ("heartbeat", "start_timeout"):
            self._signal(child, signal.SIGKILL, "kill", now + KILL_WAIT)
        elif cause == "memory":
            self._signal(child, signal.SIGTERM, "term", now + limits.stop_timeout)
        elif limits.drain_timeout > 0 and child.linked and self._send_drain(child):
            child.stop_stage, child.deadline = "drain", now + limits.drain_timeout
            child.drain_budget = MAX_DRAIN_EXTENSION
        else:
            self._signal(child, signal.SIGTERM, "term", now + limits.stop_timeout)

    def _signal(self, child: Child, sig: int, stage: str, deadline: float) -> None:
        child.stop_stage, child.deadline = stage, deadline
        if child.proc is not None:
            self.log.info("child_signal", name=child.name, child_pid=child.pid, signal=signal.Signals(sig).name,
                          group=True)
            child.proc.signal_group(sig)

    def extend_drain(self, child: Child, seconds: float, now: float) -> float:
        """A draining child asked for more time; returns the seconds granted."""
        if child.state != State.STOPPING or child.stop_stage != "drain" or child.deadline is None:
            return 0.0
        granted = max(0.0, min(seconds, child.drain_budget))
        child.drain_budget -= granted
        child.deadline = max(child.deadline, now + granted)
        return granted

    # ------------------------------------------------------------------ deadlines and health
    def on_deadline(self, child: Child, now: float) -> None:
        if child.deadline is None or now < child.deadline:
            return
        if child.state == State.STARTING:
            self.log.warning("start_timeout", name=child.name, timeout_s=child.spec.limits.start_timeout)
            self.stop(child, now, "start_timeout")
        elif child.state == State.BACKOFF:
            child.deadline = None
            self.start(child, now)
        elif child.state == State.STOPPING:
            if child.stop_stage == "drain":
                self._signal(child, signal.SIGTERM, "term", now + child.spec.limits.stop_timeout)
            elif child.stop_stage == "term":
                self.log.warning("stop_timeout", name=child.name, child_pid=child.pid,
                                 timeout_s=child.spec.limits.stop_timeout)
                self._signal(child, signal.SIGKILL, "kill", now + KILL_WAIT)
            else:
                self.log.error("unkillable", name=child.name, child_pid=child.pid)
                self._signal(child, signal.SIGKILL, "kill", now + KILL_WAIT)

    def check_health(self, child: Child, now: float) -> None:
        """Heartbeat age, memory limit, and the backoff reset after a stable period."""
        if child.state != State.RUNNING:
            return
        if now - child.last_seen > child.spec.limits.heartbeat_timeout:
            if child.hang_reported:
                return  # its stacks are on their way; it is stopped when they arrive
            silent = round(now - child.last_seen, 3)
            self.log.warning("heartbeat_lost", name=child.name, child_pid=child.pid, silent_s=silent)
            child.hang_reported = True
            if self._ask_stacks is None or not self._ask_stacks(child, now, partial(self._hung, child,
                                                                                    child.generation, silent)):
                self.stop(child, now, "heartbeat")
            return
        limit = child.spec.limits.memory_mb * 1024 * 1024
        if limit and child.usage.rss_bytes > limit:
            if child.usage.mem_over_since is None:
                child.usage.mem_over_since = now
            elif now - child.usage.mem_over_since >= child.spec.limits.memory_grace:
                self.log.warning("memory_limit", name=child.name, child_pid=child.pid, rss_bytes=child.usage.rss_bytes,
                                 limit_bytes=int(limit))
                self.stop(child, now, "memory")
                return
        else:
            child.usage.mem_over_since = None
        if child.ready_at is not None and child.tracker.consecutive and \
                now - child.ready_at >= child.spec.restart.stable_after:
            child.tracker.reset_backoff()

    def _hung(self, child: Child, generation: int, silent: float, stacks: str) -> None:
        """A child that stopped heartbeating: its stacks into wispd's log and its own (so ``wispctl logs
        NAME`` shows where it was stuck), then the stop the heartbeat rule asks for."""
        self.log.warning("child_hung", name=child.name, child_pid=child.pid, silent_s=silent, traceback=stacks)
        append_record(self.daemon.log_dir, child.name, child.pid, "warning", "child_hung", silent_s=silent,
                      reason="no heartbeat: stopped and restarted by its restart policy", traceback=stacks)
        if child.generation == generation and child.state == State.RUNNING:
            self.stop(child, time.monotonic(), "heartbeat")

    def sample(self, child: Child) -> None:
        """CPU seconds and memory of the child's main process (psutil, reads /proc; never blocks on it)."""
        pid = child.pid
        if pid is None or not child.state.alive:
            return
        now = time.monotonic()
        # Nothing enforces the RSS of a child without a memory limit: status and metrics can wait a few
        # seconds for it (100 children: 100 reads a second otherwise).
        if child.spec.limits.memory_mb or not child.usage.rss_bytes or now - child.usage.read_at >= UNLIMITED_EVERY:
            stat = proc_stat(pid)
            if stat is not None:
                child.usage.read_at = now
                child.usage.cpu_s, child.usage.rss_bytes = stat  # RSS is what the memory limit checks
        if now - child.usage.uss_at < USS_EVERY and child.usage.uss_bytes:
            return
        second = int(now)
        if self._uss_reads[0] != second:
            self._uss_reads = [second, 0]
        if self._uss_reads[1] >= USS_PER_SECOND:  # spread: 100 children started together are not read together
            return
        self._uss_reads[1] += 1
        child.usage.uss_at = now  # USS reads smaps (~1 ms a process): 100 children, 100 ms a pass
        proc = self._psutil.get(pid)
        try:
            if proc is None:
                proc = self._psutil[pid] = psutil.Process(pid)
            child.usage.uss_bytes = self._uss(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            pass

    @staticmethod
    def _uss(proc: psutil.Process) -> int:
        try:
            return int(proc.memory_full_info().uss)
        except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess):
            return 0

    # ------------------------------------------------------------------ exit
    def on_exit(self, child: Child, proc: ChildProcess, now: float) -> None:
        """The forkserver reported the exit of ``proc``: sweep its group, record, decide what is next."""
        rc = proc.poll()
        if rc is None:
            return
        proc.signal_group(signal.SIGKILL)  # grandchildren left in the group die with their parent
        self._watch_fd(proc.sentinel, None)
        self._psutil.pop(proc.pid, None)
        proc.close()
        if child.proc is not proc:
            return
        child.proc = None
        child.series.fold()  # its counters carry on from here when the next process reports
        child.metrics = {}
        child.cpu_s_total += child.usage.cpu_s
        child.usage.cpu_s = child.usage.rss_bytes = child.usage.uss_bytes = 0
        info = ExitInfo.from_returncode(rc)
        child.last_exit, child.last_exit_code = info.describe(), info.code
        if child.exit_reason:
            child.last_exit += f": {child.exit_reason}"
        self.log.info("child_exited", name=child.name, child_pid=proc.pid, exit=info.describe(),
                      cause=child.stop_cause, uptime_s=round(now - (child.started_at or now), 3))
        if child.state == State.STOPPING and child.stop_cause in (None, "restart"):
            child.deadline = None
            self._move(child, State.STOPPED, f"stopped ({info.describe()})")
            return
        cause = child.stop_cause if child.state == State.STOPPING else None
        self._after_exit(child, info, cause, now)

    def _after_exit(self, child: Child, info: ExitInfo, cause: str | None, now: float) -> None:
        decision = child.tracker.decide(info, cause, now)
        child.deadline = None
        if decision.action == "restart" and child.wanted and not self.halting:
            child.restarts += 1
            child.restarts_by_reason[decision.reason] += 1
            child.deadline = now + decision.delay
            self._move(child, State.BACKOFF, f"{decision.reason}: {info.describe()}; retry in {decision.delay:.2f}s")
        elif decision.action == "fatal":
            self._move(child, State.FATAL, decision.reason)
        elif decision.action == "exited":
            self._move(child, State.EXITED, decision.reason)
        else:
            self._move(child, State.STOPPED, "not wanted")

    def now(self) -> float:
        return time.monotonic()
