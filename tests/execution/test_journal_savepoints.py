"""A signal that fails half-way (an internal error at any of its writes) leaves nothing of itself in the
journal, neither in the file nor in the journal's caches, and loses nothing of the signals journaled before
it in the same transaction: what ``guarded_signal``'s savepoint promises, whether the journal commits every
pass (live) or holds its commits (a backtest)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.execution.core_harness import Harness, order
from wispd.execution.journal import Journal


def _signal(n: int, h: Harness) -> dict[str, Any]:
    return {"v": 1, "id": f"s{n:04d}", "strategy": "a", "ts": h.now, "ttl_ms": 60_000,
            "actions": [order("buy" if n % 2 == 0 else "sell", "0.001")]}


@settings(max_examples=40, deadline=None, derandomize=True)
@given(steps=st.lists(st.tuples(st.booleans(), st.integers(0, 3), st.booleans()), min_size=1, max_size=10),
       hold=st.booleans())
def test_a_signal_failing_at_any_write_leaves_nothing_and_loses_nothing(steps, hold):
    with tempfile.TemporaryDirectory(prefix="wt-sp-") as tmp:
        h = Harness(Path(tmp) / "journal.sqlite", capital={"USDT": "1000000", "BTC": "10"})
        h.book("60000", "60001", size="100")
        if hold:
            h.journal.hold_commits = 10_000
        journal, ok, failed = h.journal, [], []
        for n, (fail, at, settle_after) in enumerate(steps):
            msg = _signal(n, h)
            fired = []
            if fail:
                real, count = journal._write, [0]

                def broken(sql: str, params: tuple[Any, ...], real=real, count=count, fired=fired, at=at) -> None:
                    if count[0] == at and not fired:
                        fired.append(sql)
                        raise RuntimeError("injected")
                    count[0] += 1
                    real(sql, params)

                journal._write = broken  # type: ignore[method-assign]
            exc = h.core.guarded_signal(msg)
            journal.__dict__.pop("_write", None)
            if fired:
                assert isinstance(exc, RuntimeError), exc
                failed.append(msg["id"])
            else:
                assert exc is None, exc
                ok.append(msg["id"])
            if settle_after:
                h.settle()
        h.settle()
        db = journal.db
        signals = {sid: status for sid, status in db.execute("SELECT signal_id, status FROM signals")}
        orders = {r["signal_id"]: (r["client_id"], r["status"]) for r in journal.orders()}  # (flushes held updates)
        assert set(signals) == set(ok), (signals, ok, failed)  # nothing of a failed one, all of the others
        assert all(signals[s] == "accepted" for s in ok)
        assert set(orders) == set(ok) and all(orders[s][1] == "filled" for s in ok)
        for sid in failed:  # the caches agree with the file: no row of a failed signal is remembered
            assert not any(r.get("signal_id") == sid for r in journal._rows.values())
            assert [b["code"] for b in h.sink.of(sid)] == ["internal_error"]
        positions = journal.positions()
        for cid, status in orders.values():
            assert (journal.order(cid) or {}).get("status") == status
        fills = db.execute("SELECT COUNT(*) FROM fills").fetchone()[0]
        assert fills == len(ok)
        h.close()
        again = Journal(Path(tmp) / "journal.sqlite")  # what was held (rows and deferred updates) is in the file
        try:
            assert {r["signal_id"]: (r["client_id"], r["status"]) for r in again.orders()} == orders
            assert again.positions() == positions
        finally:
            again.close()
