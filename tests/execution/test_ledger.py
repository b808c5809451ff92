"""Positions and PnL by hand: average cost, partial closes, flips, shorts, fees, balances."""

from __future__ import annotations

from decimal import Decimal as D

from wispd.execution.funds import Allocation, Funds
from wispd.execution.ledger import Ledger, PositionState


def test_average_cost_and_realized_pnl():
    p = PositionState()
    p.apply("buy", D("1"), D("100"), D("0.1"))
    p.apply("buy", D("1"), D("110"), D("0.1"))
    assert p.qty == 2 and p.avg == 105
    assert p.apply("sell", D("0.5"), D("120"), D("0.05")) == D("7.5")
    assert p.qty == D("1.5") and p.avg == 105 and p.fees == D("0.25")
    assert p.unrealized(D("100")) == D("-7.5")


def test_flip_through_zero_and_short_pnl():
    p = PositionState()
    p.apply("buy", D("1"), D("100"), D(0))
    assert p.apply("sell", D("3"), D("90"), D(0)) == D("-10")
    assert p.qty == -2 and p.avg == 90
    assert p.apply("buy", D("2"), D("80"), D(0)) == D("20")
    assert p.qty == 0 and p.avg == 0 and p.realized == 10


def test_spot_balances_and_strategy_pnl():
    ledger = Ledger(Funds({"USDT": D("1000")}))
    key = ("s1", "sim", "spot", "BTC-USDT")
    ledger.apply_fill(key, "buy", D("2"), D("100"), D("0.4"))
    assert ledger.balances == {"USDT": D("799.6"), "BTC": D("2")}
    ledger.apply_fill(key, "sell", D("1"), D("110"), D("0.22"))
    assert ledger.balances["USDT"] == D("909.38") and ledger.balances["BTC"] == 1
    pnl = ledger.strategy_pnl("s1", {("sim", "spot", "BTC-USDT"): D("120")})
    assert pnl == {"realized": D("10"), "unrealized": D("20"), "fees": D("0.62"), "total": D("29.38")}
    assert ledger.exposure("s1", {("sim", "spot", "BTC-USDT"): D("120")}) == 120
    assert ledger.funds.held["s1"] == {"BTC": D("1"), "USDT": D("-90.62")}  # its own sub-ledger moved
    unknown = ledger.strategy_pnl("s1", {})  # without a mark the unrealised PnL is unknown, never 0
    assert unknown["unrealized"] is None and unknown["total"] is None and unknown["realized"] == 10


def test_allocations_fixed_share_and_equal_split():
    funds = Funds({"USDT": D("1000"), "BTC": D("1")})
    allocations = {"fixed": Allocation({"USDT": D("100")}), "half": Allocation(share=D("0.5")),
                   "a": Allocation(), "b": Allocation()}
    funds.fund(sorted(allocations), allocations, {"USDT": D("1000"), "BTC": D("1")})
    assert funds.held["fixed"] == {"USDT": D("100")}
    assert funds.held["half"] == {"USDT": D("500"), "BTC": D("0.5")}
    assert funds.held["a"] == funds.held["b"] == {"USDT": D("200"), "BTC": D("0.25")}
    assert funds.account() == {"USDT": D("1000"), "BTC": D("1")} and funds.unassigned["USDT"] == 0
    funds.reserve("o1", "a", "USDT", D("150"))
    assert funds.available("a", "USDT") == 50
    smaller = {**allocations, "a": Allocation({"USDT": D("10")})}  # what is free goes back, reserved stays
    funds.fund(sorted(smaller), smaller, {"USDT": D("1000"), "BTC": D("1")})
    assert funds.held["a"]["USDT"] == 150 and funds.available("a", "USDT") == 0
    funds.release("o1")
    funds.fund(sorted(smaller), smaller, {"USDT": D("1000"), "BTC": D("1")})
    assert funds.held["a"]["USDT"] == 10 and funds.account()["USDT"] == 1000


def test_perp_positions_lock_their_margin_at_their_leverage():
    ledger = Ledger(Funds({"USDC": D("1000")}))
    key = ("s", "hl", "perp", "BTC-USDC")
    ledger.funds.move("s", {"USDC": D("1000")})
    ledger.funds.unassigned["USDC"] = D(0)
    ledger.apply_fill(key, "buy", D("2"), D("100"), D("0"), leverage=D("4"))
    assert ledger.funds.reserved_of("s", "USDC") == 50 and ledger.funds.available("s", "USDC") == 950
    ledger.apply_fill(key, "sell", D("1"), D("110"), D("0"))
    assert ledger.funds.reserved_of("s", "USDC") == 25 and ledger.funds.balance("s", "USDC") == 1010


def test_journal_row_cache_matches_the_database(tmp_path):
    from wispd.execution.journal import Journal

    j = Journal(tmp_path / "j.sqlite")
    j.record_intent({"client_id": "wd1", "strategy": "s", "signal_id": "g", "action": 0, "exchange": "sim",
                     "market": "spot", "symbol": "BTC-USDT", "side": "buy", "order_type": "limit", "qty": "1",
                     "price": "100", "tif": "GTC", "flags": {"post_only": True}})
    j.update_order("wd1", status="open")
    j.update_order("wd1", status="partially_filled", filled="0.5", avg_price="100", fees="0.01")
    j.commit()
    cached = j.order("wd1")
    fresh = dict(j.db.execute("SELECT * FROM orders WHERE client_id='wd1'").fetchone())
    assert cached == fresh
    j.close()
    reopened = Journal(tmp_path / "j.sqlite")
    assert reopened.order("wd1") == fresh and reopened.order("nope") is None
    reopened.close()
