"""Operator operations on children, queued per child: start, stop, restart, remove.

Each child has its own queue; an operation begins when the child is free (not mid-stop) and its gate
opens (within one submission, lower start ranks settle first, lower stop ranks stop first), and
completes when the child reaches the state it asked for. Commands on different children proceed in
parallel; there is no global lock.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from wispd.supervisor.child import Child, Operation
from wispd.supervisor.states import State

if TYPE_CHECKING:
    from wispd.supervisor.supervisor import Supervisor


class Operations:
    def __init__(self, sup: Supervisor) -> None:
        self.sup = sup
        self.queued = False  # some child has an operation waiting (advance has work)

    @staticmethod
    def _start_gate(child: Child, batch: list[Child]) -> Callable[[], bool]:
        """Within one submission, a rank starts once every lower rank of that submission is settled."""
        rank = child.spec.start_rank
        return lambda: all(c.settled() for c in batch if c.spec.start_rank < rank)

    @staticmethod
    def _stop_gate(child: Child, batch: list[Child]) -> Callable[[], bool]:
        """Within one submission, a rank stops once every lower rank of that submission has stopped."""
        rank = child.spec.stop_rank
        return lambda: all(not c.state.alive and not any(op.verb in ("stop", "remove") for op in c.ops)
                           for c in batch if c.spec.stop_rank < rank)

    def submit(self, children: Iterable[Child], verb: str, done: Callable[[dict[str, tuple[bool, str]]], None],
               persist: bool = True) -> None:
        """Queue ``verb`` on each child (ordered by rank) and call ``done`` once all have finished."""
        targets = list(children)
        results: dict[str, tuple[bool, str]] = {}
        if not targets:
            done(results)
            return

        def finished(name: str) -> Callable[[bool, str], None]:
            def cb(ok: bool, message: str) -> None:
                results[name] = (ok, message)
                if len(results) == len(targets):
                    done(results)
            return cb

        for child in targets:
            gate = self._stop_gate(child, targets) if verb in ("stop", "remove") else self._start_gate(child, targets)
            child.ops.append(Operation(verb, finished(child.name), gate, persist))
        self.queued = True
        self.advance()

    def advance(self) -> None:
        """Move every queued operation as far as it can go (called every pass: with nothing queued, at once)."""
        if not self.queued:
            return
        progress = True
        while progress:
            progress = False
            for child in list(self.sup.children.values()):
                if child.ops and self._step(child):
                    progress = True
        self.queued = any(child.ops for child in self.sup.children.values())

    def _step(self, child: Child) -> bool:
        op, now = child.ops[0], time.monotonic()
        if not op.begun:
            if child.state == State.STOPPING or (op.gate is not None and not op.gate()):
                return False
            if self.sup.halting and op.verb in ("start", "restart"):
                child.ops.popleft()
                op.finish(False, "wispd is shutting down")
                return True
            op.begun = True
            self._begin(child, op, now)
            return True
        outcome = self._outcome(child, op, now)
        if outcome is None:
            return False
        child.ops.popleft()
        if op.verb == "remove":
            del self.sup.children[child.name]
        op.finish(*outcome)
        return True

    def _set_wanted(self, child: Child, wanted: bool, persist: bool) -> None:
        child.wanted = wanted
        if persist:
            unsaved = self.sup.desired.set_wanted(child.name, wanted)
            if unsaved:
                self.sup.log.error("desired_state_unsaved", name=child.name, wanted=wanted, error=unsaved,
                                   effect="holds until wispd restarts")

    def _begin(self, child: Child, op: Operation, now: float) -> None:
        if op.verb in ("start", "restart"):
            self._set_wanted(child, True, op.persist)
        if op.verb == "start":
            self._start_now(child, op, now)
        elif op.verb == "restart":
            op.phase = "stopping"
            if child.state.alive:
                self.sup.lifecycle.stop(child, now, "restart")
        else:  # stop / remove
            if op.persist and op.verb == "stop":
                self._set_wanted(child, False, True)
            elif op.verb == "remove":
                child.wanted = False
                self.sup.desired.set_wanted(child.name, True)  # forget it
            self.sup.lifecycle.stop(child, now, None)

    def _start_now(self, child: Child, op: Operation, now: float) -> None:
        op.phase = "starting"
        op.gen0 = child.generation
        if child.state in (State.STOPPED, State.EXITED, State.FATAL, State.BACKOFF):
            if child.state in (State.FATAL, State.EXITED, State.STOPPED):
                child.tracker.recent.clear()  # an operator start is a fresh start, not another crash
                child.tracker.reset_backoff()
            child.deadline = None
            self.sup.lifecycle.start(child, now)

    def _outcome(self, child: Child, op: Operation, now: float) -> tuple[bool, str] | None:
        state = child.state
        if op.verb in ("stop", "remove"):
            return (True, "stopped") if not state.alive and state != State.BACKOFF else None
        if op.phase == "stopping":
            if state.alive:
                return None
            self._start_now(child, op, now)
            return self._outcome(child, op, now)
        if state == State.RUNNING:
            return True, f"running (pid {child.pid})"
        if state in (State.FATAL, State.EXITED):
            return False, f"{state.value}: {child.state_reason}"
        if state == State.STOPPED:
            return False, "stopped before it became ready"
        if state == State.BACKOFF and child.generation > op.gen0:
            return False, f"start failed ({child.state_reason})"
        return None

