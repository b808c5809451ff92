"""The default config (config/wispd.toml) run as a user first runs it, checked the whole time.

Every second: the maker holds at most its two quotes, no spot balance or sub-ledger is below zero, and
every child is RUNNING without a restart. At the end, from the journal: no signal was refused for naming
an order that is gone (``unknown_order``), no order row is left non-final that nothing works on, and each
strategy's positions equal the sum of its fills.

CI runs ``SOAK_SECONDS`` (75 s); ``pytest -m slow`` runs the 30-minute form the issue asks for.
"""

from __future__ import annotations

import os
import sqlite3
import time
from decimal import Decimal

import orjson
import pytest

from tests.strategy.test_strategies_e2e import shipped_body

SHORT_S = float(os.environ.get("SOAK_SECONDS", "75"))
CHILDREN = ("ingestor.sim", "ingestor.simx", "executor.paper", "rsi", "spread", "maker")


def _journal(d) -> sqlite3.Connection:
    db = sqlite3.connect(f"file:{d.tmp / 'state' / 'journal-paper.sqlite'}?mode=ro", uri=True)
    db.row_factory = sqlite3.Row
    return db


def _check_now(d) -> dict[str, int]:
    """The invariants that must hold at every instant; returns what was seen (for the summary)."""
    status = d.status()
    children = {c["name"]: c for c in status["children"]}
    for name in CHILDREN:
        c = children[name]
        assert c["state"] == "RUNNING" and c["restarts"] == 0, (name, c["state"], c["restarts"], c.get("last_exit"))
    orders = orjson.loads(d.ctl("orders", "--json").stdout)["orders"]
    maker = [o for o in orders if o["strategy"] == "maker"]
    assert len(maker) <= 2 and len({o["side"] for o in maker}) == len(maker), maker  # one bid, one ask at most
    db = _journal(d)
    try:
        for row in db.execute("SELECT asset, amount FROM balances"):
            assert Decimal(row["amount"]) >= 0, dict(row)
        for row in db.execute("SELECT strategy, asset, held FROM subledgers"):
            assert Decimal(row["held"]) >= 0, dict(row)
    finally:
        db.close()
    return {"maker_quotes": len(maker)}


def _check_end(d) -> dict[str, int]:
    db = _journal(d)
    try:
        refused = {r["reason"]: r["n"] for r in db.execute(
            "SELECT reason, COUNT(*) AS n FROM signals WHERE status = 'rejected' GROUP BY reason")}
        assert "unknown_order" not in refused, refused
        fills: dict[tuple[str, str], Decimal] = {}
        for r in db.execute("SELECT o.strategy, o.symbol, o.side, f.qty FROM fills f JOIN orders o USING (client_id)"):
            key = (r["strategy"], r["symbol"])
            fills[key] = fills.get(key, Decimal(0)) + (Decimal(r["qty"]) if r["side"] == "buy" else -Decimal(r["qty"]))
        positions = {(r["strategy"], r["symbol"]): Decimal(r["qty"]) for r in db.execute("SELECT * FROM positions")}
        for key in set(fills) | set(positions):
            assert fills.get(key, Decimal(0)) == positions.get(key, Decimal(0)), key
        # wispctl shows the executor's last published state (once a second): an order younger than that may
        # not be in it yet; one that was already working 2.5 s ago and still is must be
        working = {r["client_id"] for r in db.execute(
            "SELECT client_id FROM orders WHERE status IN ('intent', 'accepted', 'open', 'partially_filled', 'armed') "
            "AND created_ms < ?", (time.time() * 1000 - 2500,))}
        shown = {o["client_id"] for o in orjson.loads(d.ctl("orders", "--json").stdout)["orders"]}
        assert working <= shown, working - shown  # every non-final row is a working order the executor knows
        n_fills = sum(1 for _ in db.execute("SELECT id FROM fills"))
        n_orders = sum(1 for _ in db.execute("SELECT client_id FROM orders"))
    finally:
        db.close()
    return {"fills": n_fills, "orders": n_orders, **{f"refused_{k}": v for k, v in refused.items()}}


def soak(daemon, seconds: float) -> dict[str, int]:
    d = daemon(shipped_body())
    for name in CHILDREN:
        d.wait_state(name, "RUNNING", timeout=30)
    deadline = time.monotonic() + seconds
    seen_quotes = 0
    while time.monotonic() < deadline:
        seen_quotes = max(seen_quotes, _check_now(d)["maker_quotes"])
        time.sleep(1.0)
    assert seen_quotes >= 1  # the maker did quote: the check above was not vacuous
    summary = _check_end(d)
    assert summary["fills"] > 0, summary  # and things traded
    return summary


@pytest.mark.timeout(SHORT_S + 120)
def test_default_config_holds_its_invariants(daemon):
    soak(daemon, SHORT_S)


@pytest.mark.slow
@pytest.mark.timeout(1800 + 300)
def test_default_config_holds_its_invariants_for_30_minutes(daemon):
    soak(daemon, 1800)
