"""Entry point of the executor child kind: open the journal, reconcile, report ready, execute."""

from __future__ import annotations

from wispd.execution.executor import Executor
from wispd.runtime.context import ChildContext


def main(ctx: ChildContext) -> int:
    executor = Executor(ctx, ctx.args)
    try:
        return executor.run()
    finally:
        executor.close()
