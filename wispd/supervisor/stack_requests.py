"""Asking a running child for the stacks of all its threads, without blocking the supervisor.

The child dumps them itself (``runtime/stacks.py``: faulthandler on ``STACK_SIGNAL``); this side
remembers where the child's stack file ended, sends the signal, and ``WAIT`` seconds later hands what was
appended to the caller: ``wispctl stack NAME``, or the hang report written before a child that stopped
heartbeating is killed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from wispd.runtime.stacks import STACK_SIGNAL, read_after, size, stack_path
from wispd.supervisor.child import Child

WAIT = 0.3  # faulthandler writes from its signal handler at once; this covers a loaded machine
NO_ANSWER = ("(no stacks: the process did not answer within {wait:.1f} s: it is stopped, in the kernel, or "
             "blocks the signal)")


@dataclass
class _Pending:
    due: float
    path: Path
    offset: int
    done: Callable[[str], None]


class StackRequests:
    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.pending: list[_Pending] = []

    def ask(self, child: Child, now: float, done: Callable[[str], None]) -> bool:
        """Signal the child for a dump; ``done(text)`` is called from ``collect`` once it had time to
        write. False (and ``done`` never called) when there is no process to ask."""
        if child.proc is None or child.proc.returncode is not None:
            return False
        path = stack_path(self.run_dir, child.name)
        offset = size(path)
        child.proc.signal(STACK_SIGNAL)
        self.pending.append(_Pending(now + WAIT, path, offset, done))
        return True

    def next_due(self) -> float | None:
        return min((p.due for p in self.pending), default=None)

    def collect(self, now: float) -> None:
        """Hand over every dump whose wait is over (called each supervisor pass)."""
        due = [p for p in self.pending if p.due <= now]
        if not due:
            return
        self.pending = [p for p in self.pending if p.due > now]
        for p in due:
            text = read_after(p.path, p.offset).strip("\n")
            p.done(text or NO_ANSWER.format(wait=WAIT))
