"""Entry point of the ingestor child kind: builds the exchange source and runs the ingestor loop.

Ingestors use public data only and hold no keys. ccxt is imported here, in the ingestor process alone
(never in strategies: it costs ~1.1 s and ~110 MB per process).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from wispd.ingest.ingestor import Ingestor
from wispd.runtime.context import ChildContext


def make_source(args: dict, state_dir: Path):  # type: ignore[no-untyped-def, type-arg]
    if args["driver"] == "sim":
        from wispd.ingest.sim import SimSource

        return SimSource(args["exchange"], args.get("sim") or {}, int(args.get("book_depth", 10)), state_dir,
                         pairs=[(m, s) for m, s in args.get("pairs") or []])
    from wispd.ingest.ccxt_source import CcxtSource

    return CcxtSource(args)


def main(ctx: ChildContext) -> int:
    source = make_source(ctx.args, ctx.state_dir)
    return asyncio.run(Ingestor(ctx, ctx.args, source).run())
