"""Funding on perps: a paper position held across a funding time pays (long, positive rate) or receives
(short) qty x mark x rate once, journaled, in its realized PnL and quote sub-ledger, and in the report."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path

import orjson

from tests.backtest.test_backtest import wispctl
from tests.helpers import base_config
from wispd.config import load_config
from wispd.data.generate import generate

T_0750 = 1_764_575_400_000_000  # 2025-12-01T07:50:00Z: ten minutes before the 08:00 funding
MIN = 60_000_000

BODY = """
[exchanges.simp]
driver = "sim"
market = "perp"
pairs = ["BTC-USDT"]
[exchanges.simp.sim]
seed = 3
update_hz = 2.0
prices = { BTC-USDT = 60000.0 }
[executors.paper]
exchanges = ["simp"]
[executors.paper.paper]
balances = { USDT = "100000" }
[strategies.long]
module = "tests.backtest.strategies"
class = "Holder"
allocation = { USDT = "40000" }
[strategies.short]
module = "tests.backtest.strategies"
class = "Holder"
params = { short = true }
allocation = { USDT = "40000" }
"""


def test_a_position_held_across_a_funding_time_pays_or_receives_it_once(short_tmp: Path, mark: str):
    cfg = short_tmp / "wispd.toml"
    cfg.write_text(base_config(short_tmp, BODY))
    item = load_config(cfg).sections["exchanges"]["simp"]
    data = short_tmp / "data"
    generate(data, "simp", item["sim"], [("perp", "BTC-USDT")], T_0750, T_0750 + 20 * MIN)
    out = short_tmp / "run"
    done = wispctl(mark, "backtest", "--config", str(cfg), "--data", str(data), "--out", str(out), "--json")
    assert done.returncode == 0, done.stderr + done.stdout[-2000:]
    db = sqlite3.connect(out / "journal-paper.sqlite")
    rows = db.execute("SELECT strategy, funding_ts, rate, mark, qty, amount FROM funding ORDER BY strategy").fetchall()
    assert [(r[0], r[1]) for r in rows] == [("long", 1_764_576_000_000), ("short", 1_764_576_000_000)]
    for _, _, rate, mark_px, qty, amount in rows:
        assert Decimal(amount) == Decimal(qty) * Decimal(mark_px) * Decimal(rate)
    long_paid, short_paid = Decimal(rows[0][5]), Decimal(rows[1][5])
    assert long_paid > 0 and short_paid < 0  # the sim's rate is positive: longs pay shorts
    report = orjson.loads((out / "report.json").read_bytes())
    assert abs(report["strategies"]["long"]["pnl"]["funding"] + float(long_paid)) < 1e-9
    assert abs(report["strategies"]["short"]["pnl"]["funding"] + float(short_paid)) < 1e-9
    positions = {r[0]: Decimal(r[1]) for r in db.execute("SELECT strategy, realized FROM positions")}
    assert positions["long"] == -long_paid and positions["short"] == -short_paid  # nothing else realized
