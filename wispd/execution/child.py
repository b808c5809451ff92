"""Entry point of the executor child kind: open the journal, reconcile, report ready, execute."""

from __future__ import annotations

import sqlite3

from wispd.execution.executor import Executor
from wispd.execution.journal import Journal, JournalLocked
from wispd.runtime.context import ChildContext

EX_TEMPFAIL = 75  # the journal is held by another process: retry later (backoff), not a config error


def open_journal(ctx: ChildContext) -> Journal | None:
    """The account's journal; while it cannot be opened (read-only or full state directory), the process
    stays up, says so in its status (``halted: journal``) and tries again, instead of crash-looping to
    FATAL. No signal is taken meanwhile: its sockets are not bound until the journal is open."""
    path = ctx.state_dir / f"journal-{ctx.args['account']}.sqlite"
    delay, said = 1.0, ""
    while not ctx.stopping:
        try:
            journal = Journal(path)
            if said:
                ctx.log.warning("journal_recovered", path=str(path))
            return journal
        except JournalLocked:
            raise
        except (OSError, sqlite3.Error) as exc:
            error = f"{type(exc).__name__}: {exc}"
            if error != said:
                ctx.log.error("journal_unavailable", path=str(path), error=error,
                              effect="no orders on this account until the journal can be opened")
                if not said:
                    ctx.ready(journal=False)
                said = error
            ctx.status("halted: journal", f"the journal cannot be opened ({error}); retrying in {delay:.0f} s")
            ctx.wait(delay)
            delay = min(delay * 2, 10.0)
    return None


def main(ctx: ChildContext) -> int:
    try:
        journal = open_journal(ctx)
    except JournalLocked as exc:
        ctx.log.error("journal_locked", error=str(exc))
        ctx.exiting(str(exc))
        return EX_TEMPFAIL
    if journal is None:
        return 0
    executor = Executor(ctx, ctx.args, journal)
    try:
        return executor.run()
    finally:
        executor.close()
