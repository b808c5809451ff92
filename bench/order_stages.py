"""Where a signal's time goes inside the executor: the order path decomposed per stage.

The executor's own code (``ExecutionCore`` with a real SQLite journal, fsync as live, and the paper
engine) takes market-order signals the way its loop does (decode, check and plan under a savepoint, commit
the intents durably, send, apply the fill, commit, reports), with each stage timed in place. Two shapes:
one signal per pass (what latency sees) and 50 signals per pass (a burst: the commits are shared). The
floor beside it, measured in the same run on the same file system: a bare SQLite WAL insert + commit with
and without an fsync (what the money-safety rule makes unavoidable).

``--resting N`` first rests N limit buys far below the book (they never fill), to show what a signal costs
when many orders are working: every lookup the executor makes by market, strategy or bracket sees them.

    python bench/order_stages.py [--signals 2000] [--resting 0] [--write docs/BENCHMARKS.md]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import orjson  # noqa: E402

from bench.report import replace_section  # noqa: E402
from tests.execution.core_harness import Harness, order  # noqa: E402
from wispd.execution import core as core_module  # noqa: E402
from wispd.execution import journal as journal_module  # noqa: E402

STAGES = ("decode the frame", "validate (parse_signal)", "dedupe row (signal journaled)", "plan (checks, risk, funds)",
          "carry out (intent rows, reservations)", "commit intents + fsync", "send: paper fill",
          "apply the fill (ledger, positions, journal)", "commit fills (WAL)", "reports", "WAL checkpoint (after the reports)",
          "the rest")


class Timers:
    def __init__(self) -> None:
        self.total: dict[str, float] = defaultdict(float)

    def wrap(self, owner: Any, attr: str, stage: str | Callable[[], str]) -> None:
        inner = getattr(owner, attr)

        def timed(*args: Any, **kwargs: Any) -> Any:
            name = stage() if callable(stage) else stage
            t0 = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                self.total[name] += time.perf_counter() - t0

        setattr(owner, attr, timed)


def run(n: int, per_pass: int, resting: int = 0) -> dict[str, float]:
    """Microseconds per signal, per stage, and the whole."""
    with tempfile.TemporaryDirectory(prefix="wb-", dir=os.environ.get("BENCH_DIR")) as tmp:
        h = Harness(Path(tmp) / "journal.sqlite", capital={"USDT": "100000000", "BTC": "1000"})
        h.book("60000", "60001", size="100000")
        core, journal = h.core, h.journal
        for i in range(0, resting, 20):
            exc = core.guarded_signal({"v": 1, "id": uuid.uuid4().hex, "strategy": "a", "ts": h.now, "ttl_ms": 60_000,
                                       "actions": [order("buy", "0.001", str(59000 - j % 1000))
                                                   for j in range(i, min(resting, i + 20))]})
            assert exc is None, exc
            h.settle()
        assert len(core.orders) == resting, len(core.orders)
        t = Timers()
        t.wrap(core_module, "parse_signal", "validate (parse_signal)")
        t.wrap(journal, "record_signal", "dedupe row (signal journaled)")
        t.wrap(core.planner, "plan", "plan (checks, risk, funds)")
        t.wrap(core, "_carry_out", "carry out (intent rows, reservations)")
        t.wrap(core, "commit", lambda: "commit intents + fsync" if core.outbox else "commit fills (WAL)")
        t.wrap(core, "send", "send: paper fill")
        t.wrap(core, "apply_events", "apply the fill (ledger, positions, journal)")
        t.wrap(core, "flush_reports", "reports")
        frames = []
        for i in range(n):
            msg = {"v": 1, "id": uuid.uuid4().hex, "strategy": "a", "ts": h.now, "ttl_ms": 60_000,
                   "actions": [order("buy" if i % 2 == 0 else "sell", "0.001")]}
            frames.append(orjson.dumps(msg))
        statements = [0]

        def count(sql: str) -> None:
            statements[0] += not sql.startswith(("SAVEPOINT", "RELEASE"))

        journal.db.set_trace_callback(count)  # what the clock cannot say on a noisy machine: the work done
        pages = [0, journal_module.wal_frames(journal.path)]  # pages written to the WAL, across its rewinds
        checkpoint = journal.checkpoint_if_due

        def counted_checkpoint() -> bool:
            frames = journal_module.wal_frames(journal.path)
            done = checkpoint()
            if done:  # rewound at the next write: what was in the WAL until now is counted here
                pages[0] += frames - pages[1]
                pages[1] = 0
            return done

        journal.checkpoint_if_due = counted_checkpoint  # type: ignore[method-assign]
        t.wrap(journal, "checkpoint_if_due", "WAL checkpoint (after the reports)")
        t0 = time.perf_counter()
        for start in range(0, n, per_pass):
            for frame in frames[start:start + per_pass]:
                d0 = time.perf_counter()
                msg = orjson.loads(frame)
                t.total["decode the frame"] += time.perf_counter() - d0
                exc = core.guarded_signal(msg)
                assert exc is None, exc
            h.settle()
        whole = time.perf_counter() - t0
        journal.db.set_trace_callback(None)
        pages[0] += journal_module.wal_frames(journal.path) - pages[1]
        refused = [b for _, b in h.sink.reports if b["status"] == "rejected"]
        assert not refused, refused[0]  # timing refusals would flatter every figure
        h.close()
    out = {stage: t.total.get(stage, 0.0) / n * 1e6 for stage in STAGES if stage != "the rest"}
    out["the rest"] = whole / n * 1e6 - sum(out.values())
    out["whole"] = whole / n * 1e6
    out["statements"] = statements[0] / n
    out["pages"] = pages[0] / n
    return out


def floor(n: int) -> dict[str, float]:
    """A bare WAL insert + commit, with and without fsync (us per commit), as the journal's settings."""
    with tempfile.TemporaryDirectory(prefix="wb-", dir=os.environ.get("BENCH_DIR")) as tmp:
        path = Path(tmp) / "bare.sqlite"
        db = sqlite3.connect(path, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("CREATE TABLE t (k TEXT PRIMARY KEY, v BLOB)")
        wal = os.open(f"{path}-wal", os.O_RDONLY | os.O_CREAT, 0o600)
        plain, synced = [], []
        for i in range(n):
            for out, sync in ((plain, False), (synced, True)):
                t0 = time.perf_counter()
                db.execute("BEGIN IMMEDIATE")
                db.execute("INSERT INTO t VALUES (?, ?)", (f"{i}-{sync}", b"x" * 200))
                db.execute("COMMIT")
                if sync:
                    os.fdatasync(wal)  # as the journal syncs
                out.append((time.perf_counter() - t0) * 1e6)
        os.close(wal)
        db.close()
    return {"commit": statistics.median(plain), "commit + fsync": statistics.median(synced)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--signals", type=int, default=2000)
    ap.add_argument("--resting", type=int, default=0, help="limit orders resting on the book while it runs (below the default max_open_orders of 1000)")
    ap.add_argument("--write")
    ns = ap.parse_args()
    one = run(ns.signals, 1, ns.resting)
    burst = run(ns.signals, 50, ns.resting)
    bare = floor(min(ns.signals, 1000))
    rows = ["| stage | one signal per pass: us | 50 per pass (burst): us per signal |", "| --- | --- | --- |"]
    for stage in (*STAGES, "whole"):
        rows.append(f"| {stage if stage != 'whole' else '**whole**'} | {one[stage]:.0f} | {burst[stage]:.0f} |")
    rows.append(f"| SQL statements per signal (BEGIN and COMMIT included) | {one['statements']:.2f} | "
                f"{burst['statements']:.2f} |")
    rows.append(f"| WAL pages per signal (4 KB each: written, fsynced, checkpointed) | {one['pages']:.2f} | "
                f"{burst['pages']:.2f} |")
    text = "\n".join(rows) + (
        f"\n\nFloor in the same run, same file system: a bare WAL insert + commit {bare['commit']:.0f} us, "
        f"with the fsync {bare['commit + fsync']:.0f} us (median of {min(ns.signals, 1000)}). {ns.signals} "
        "market-order signals through `ExecutionCore` with a real journal (fsync as live) and the paper engine "
        "(`tests/execution/core_harness.py`), each stage timed in place; \"the rest\" is the savepoint, "
        "signal bookkeeping and the loop. A burst shares the two commits across the batch: what is left is "
        "the per-signal Python.")
    for line in rows:
        print(line)
    print(f"floor: commit {bare['commit']:.0f} us, commit + fsync {bare['commit + fsync']:.0f} us")
    if ns.write:
        replace_section(Path(ns.write), "order-stages", text,
                        f"python bench/order_stages.py --signals {ns.signals} --write {ns.write}")


if __name__ == "__main__":
    main()
