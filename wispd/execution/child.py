"""Entry point of the executor child kind: open the journal, reconcile, report ready, execute."""

from __future__ import annotations

from wispd.execution.executor import Executor
from wispd.execution.journal import JournalLocked
from wispd.runtime.context import ChildContext

EX_TEMPFAIL = 75  # the journal is held by another process: retry later (backoff), not a config error


def main(ctx: ChildContext) -> int:
    try:
        executor = Executor(ctx, ctx.args)
    except JournalLocked as exc:
        ctx.log.error("journal_locked", error=str(exc))
        return EX_TEMPFAIL
    try:
        return executor.run()
    finally:
        executor.close()
