"""The execution core by hand: atomic multi-action signals, reserved funds and sub-ledgers, contingent
orders and brackets, restarts that leave no row behind, numbers as the market shows them."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from tests.execution.core_harness import PERP, SPOT, Harness, cancel, order
from wispd.execution.funds import Allocation


@pytest.fixture
def h(tmp_path):
    harness = Harness(tmp_path / "journal-acct.sqlite")
    harness.book("60000", "60001")
    yield harness
    harness.close()


def client_id(h: Harness, sid: str) -> str:
    """The client id of a signal's (first) order, not of a bracket exit it armed."""
    return next(r["order"]["client_id"] for r in h.sink.of(sid) if r["order"] and not r["order"].get("parent"))


# ---------------------------------------------------------------------- atomic signals
def test_a_signal_whose_second_action_fails_does_nothing_at_all(h):
    rest = h.signal("a", order(price="59000.0"))
    cid = client_id(h, rest)
    for actions in ([cancel("wd" + "0" * 30), cancel(cid)], [cancel(cid), cancel("wd" + "0" * 30)]):
        sid = h.signal("a", *actions)
        (report,) = h.sink.of(sid)
        assert report["status"] == "rejected" and report["code"] == "unknown_order"
        assert report["action"] == (0 if actions[0]["client_id"] != cid else 1)
        assert cid in h.working()  # the working order stays: none of the signal was acted on
    two = h.signal("a", order(price="59000.0"), order(price="30000.0"))  # the second is off the collar
    (report,) = h.sink.of(two)
    assert report["code"] == "price_collar" and report["action"] == 1
    rows = h.journal.db.execute("SELECT COUNT(*) FROM orders WHERE signal_id=?", (two,)).fetchone()[0]
    assert rows == 0  # no intent left behind for the first action


def test_results_per_action_and_cancel_all(h):
    sid = h.signal("a", order(price="59000.0"), order(price="59001.0"), order(side="sell", qty="0.01"))
    by_action = {r["action"]: r["status"] for r in h.sink.of(sid)}
    assert by_action == {0: "accepted", 1: "accepted", 2: "filled"}
    h.signal("b", order(price="59002.0"))
    gone = h.signal("a", {"type": "cancel_all", "exchange": "sim", "market": "spot", "symbol": "BTC-USDT"})
    assert sorted(r["status"] for r in h.sink.of(gone)) == ["cancelled", "cancelled"]
    assert [o.strategy for o in h.working().values()] == ["b"]  # only its own
    empty = h.signal("a", {"type": "cancel_all"})
    assert h.last(empty)["status"] == "cancelled" and "no working order" in h.last(empty)["reason"]
    final = h.signal("a", cancel(client_id(h, sid)))
    assert h.last(final)["code"] == "order_not_open"  # cancelled already: said plainly, not "unknown"


# ---------------------------------------------------------------------- funds
def test_resting_orders_reserve_what_they_can_consume_and_balances_never_go_negative(h):
    assert h.core.funds.balance("a", "BTC") == D("0.5")  # an equal split of the account's 1 BTC
    first = h.signal("a", order(side="sell", qty="0.5", price="61000.0"))
    assert h.last(first)["status"] == "accepted"
    second = h.signal("a", order(side="sell", qty="0.5", price="61000.0"))
    assert h.last(second)["code"] == "insufficient_funds"
    assert h.core.funds.reserved_of("a", "BTC") == D("0.5")
    h.signal("a", cancel(client_id(h, first)))
    assert h.core.funds.reserved_of("a", "BTC") == 0
    third = h.signal("a", order(side="sell", qty="0.5", price="61000.0"))
    assert h.last(third)["status"] == "accepted"
    # b cannot sell a's inventory, nor spend more than its own quote
    assert h.last(h.signal("b", order(side="sell", qty="0.6")))["code"] == "insufficient_funds"
    assert h.last(h.signal("b", order(qty="1.0", price="59990.0")))["code"] == "insufficient_funds"
    # a market buy whose reservation runs out part-way through a thin book stops there
    h.core.funds.held["b"]["USDT"] = D("1000")
    h.core.funds.unassigned["USDT"] += D("49000")
    h.core.on_book(SPOT, [(D("60000"), D("1"))], [(D("60001"), D("0.001")), (D("90000"), D("1"))], h.now)
    buy = h.signal("b", order(qty="0.015"))  # reserved: 0.015 x 60000.5 x 1.1 x 1.0005 = 990.2
    final = h.last(buy)
    assert final["status"] == "cancelled" and "reserved funds are spent" in final["reason"]
    assert D(final["order"]["filled"]) == D("0.011")  # 0.001 at 60001, then what 930 buys at 90000
    assert all(v >= 0 for v in h.core.funds.held["b"].values())
    for strategy in ("a", "b"):
        assert all(h.core.funds.available(strategy, a) >= 0 for a in ("USDT", "BTC"))


def test_a_cancel_in_the_same_signal_pays_for_the_new_order(h):
    old = h.signal("a", order(side="sell", qty="0.5", price="61000.0"))
    swap = h.signal("a", cancel(client_id(h, old)), order(side="sell", qty="0.5", price="61001.0"))
    assert {r["action"]: r["status"] for r in h.sink.of(swap)} == {0: "cancelled", 1: "accepted"}


def test_allocations_from_the_config(tmp_path):
    h = Harness(tmp_path / "journal-acct.sqlite", strategies={
        "small": Allocation({"USDT": D("1000")}), "big": Allocation(share=D("0.5")), "rest": Allocation()})
    try:
        assert h.core.funds.balance("small", "USDT") == 1000
        assert h.core.funds.balance("big", "USDT") == 50000 and h.core.funds.balance("big", "BTC") == D("0.5")
        assert h.core.funds.balance("rest", "USDT") == 49000
        h.book("60000", "60001")
        refused = h.signal("small", order(qty="0.02"))  # 0.02 x 60001 x collar > 1000
        assert h.last(refused)["code"] == "insufficient_funds"
    finally:
        h.close()


# ---------------------------------------------------------------------- contingent orders
def test_stop_market_fires_once_on_the_last_trade(h):
    h.signal("a", order(qty="0.1"))  # hold something to stop out
    stop = h.signal("a", order(side="sell", qty="0.1", trigger_type="stop", trigger_price="59500.0"))
    cid = client_id(h, stop)
    assert h.working()[cid].status == "armed" and h.last(stop)["status"] == "accepted"
    h.trade("59600.0")
    assert h.working()[cid].status == "armed"
    h.book("59400", "59401")
    h.trade("59450.0")  # below the trigger: fires, sells at the bid
    assert cid not in h.working() and h.last(stop)["status"] == "filled"
    assert h.core.fired == 1
    h.trade("59000.0")
    assert h.core.fired == 1  # once


def test_wrong_side_triggers_are_refused(h):
    h.trade("60000.0")
    bad = h.signal("a", order(side="sell", qty="0.1", trigger_type="stop", trigger_price="60500.0"))
    assert h.last(bad)["code"] == "trigger_side"


def test_stop_limit_take_profit_and_trailing_stop(h):
    h.signal("a", order(qty="0.3"))
    h.trade("60000.0")
    sl = h.signal("a", order(side="sell", qty="0.1", price="59400.0", trigger_type="stop", trigger_price="59500.0"))
    tp = h.signal("a", order(side="sell", qty="0.1", trigger_type="take_profit", trigger_price="60500.0"))
    trail = h.signal("a", order(side="sell", qty="0.1", trigger_type="trailing_stop", trail_distance="200"))
    h.trade("60800.0")  # TP fires (market at the bid 60000: the test book did not move)
    assert h.last(tp)["status"] == "filled"
    assert h.working()[client_id(h, trail)].trigger.price == D("60600.0")  # followed the high
    h.trade("60550.0")  # 250 down from the high: the trailing stop fires
    assert h.last(trail)["status"] == "filled"
    h.book("59450", "59451")
    h.trade("59450.0")  # the stop fires and becomes a limit at 59400 (the bid is above: it fills)
    assert h.last(sl)["status"] == "filled"
    assert h.core.fired == 3


def test_bracket_exits_follow_partial_fills_one_cancels_other(h):
    h.book("60000", "60001", size="0.05")  # a thin book: the entry fills in parts
    entry = h.signal("a", order(qty="0.2", price="60100.0", tif="GTC", stop_loss="59000.0", take_profit="61000.0"))
    legs = {o.leg: o for o in h.working().values() if o.parent}
    assert set(legs) == {"sl", "tp"}
    entry_id = next(o.client_id for o in h.working().values() if not o.parent)
    filled = D([r for r in h.sink.of(entry) if r["order"]["client_id"] == entry_id][-1]["order"]["filled"])
    assert filled == D("0.1")  # two levels of 0.05 within the limit
    assert legs["sl"].qty == filled and legs["tp"].qty == filled
    assert legs["tp"].status in ("open", "partially_filled")  # the take-profit rests for what filled
    h.book("60000", "60050", size="0.05")  # more of the entry fills: the exits grow
    assert legs["sl"].qty == D("0.2") and legs["tp"].qty == D("0.2")
    assert h.core.funds.reserved_of("a", "BTC") >= D("0.2")  # the bracket holds the inventory it protects
    h.book("61050", "61051", size="0.05")  # the take-profit sells into the bid, partly: the stop shrinks
    assert legs["tp"].filled > 0 and legs["sl"].qty == D("0.2") - legs["tp"].filled
    h.book("58900", "58901", size="1")
    h.trade("58950.0")  # the stop fires for what is left, the take-profit is cancelled (OCO)
    assert not [o for o in h.working().values() if o.parent]
    pos = h.core.ledger.positions[("a", *SPOT)]
    assert pos.qty == 0
    exits = [r for r in h.sink.reports if r[1]["order"] and r[1]["order"].get("parent")]
    assert exits and h.core.fired >= 1


def test_an_entry_that_never_fills_leaves_no_exit(h):
    entry = h.signal("a", order(qty="0.1", price="59000.0", stop_loss="58000.0", take_profit="61000.0"))
    assert len([o for o in h.working().values() if o.parent]) == 2
    h.signal("a", cancel(client_id(h, entry)))
    assert not h.working()


def test_brackets_on_the_wrong_side_are_refused(h):
    bad = h.signal("a", order(qty="0.1", price="59000.0", stop_loss="59500.0"))
    assert h.last(bad)["code"] == "bracket_side"


def test_perp_short_needs_sell_short_and_margin_follows_leverage(h):
    h.book("60000", "60001", key=PERP)
    plain = h.signal("a", order(side="sell", qty="0.1", key=PERP))
    assert h.last(plain)["code"] == "would_open_short"
    short = h.signal("a", order(side="sell", qty="0.1", key=PERP, short=True, leverage="5"))
    assert h.last(short)["status"] == "filled"
    assert h.core.funds.reserved_of("a", "USDC") == D("0.1") * D("60000") / 5  # its margin, locked
    flip = h.signal("a", order(side="sell", qty="0.1", key=PERP, short=True, leverage="50"))
    assert h.last(flip)["code"] == "max_leverage"


# ---------------------------------------------------------------------- restarts
def test_kill9_at_each_step_leaves_every_row_final_or_working(h, tmp_path):
    h.signal("a", order(qty="0.2"))
    armed = client_id(h, h.signal("a", order(side="sell", qty="0.1", trigger_type="stop", trigger_price="59000.0")))
    resting = client_id(h, h.signal("a", order(price="59500.0")))
    # an intent journaled, committed, and the process dies before it is sent
    sid = "unsent"
    h.core.signal({"v": 1, "id": sid, "strategy": "b", "ts": h.now, "ttl_ms": 60_000,
                   "actions": [order(price="59600.0")]})
    h.core.commit()
    h.crash()
    assert h.last(sid)["code"] == "not_sent"
    assert set(h.working()) == {armed, resting}
    assert h.working()[armed].status == "armed" and h.working()[resting].status in ("open", "partially_filled")
    # a trigger that fired and died before its market order left is armed again, and fires once
    h.book("58900", "58901")
    h.core.on_trades(SPOT, [(D("58950.0"), D("1"))], h.now)  # fires: the intent is journaled ...
    h.core.commit()  # ... committed, and the executor dies before sending it
    h.crash()
    assert h.summary["rearmed"] == 1 and h.working()[armed].status == "armed"
    h.trade("58950.0")  # fires again before the restarted executor has a book: it waits for one
    assert h.core.fired == 1 and h.working()[armed].status == "pending"
    h.book("58900", "58901")
    assert armed not in h.working() and h.journal.order(armed)["status"] == "filled"
    assert h.core.ledger.positions[("a", *SPOT)].qty == D("0.11")  # 0.2 + the resting 0.01 - the stop's 0.1
    statuses = {r[0] for r in h.journal.db.execute("SELECT status FROM orders")}
    assert statuses <= {"filled", "cancelled", "rejected", "open", "partially_filled", "armed"}


def test_market_and_ioc_orders_in_flight_at_a_restart_are_resolved_not_rested(h):
    ioc = h.signal("a", order(qty="0.1", price="59000.0", tif="IOC"))
    cid = client_id(h, ioc)
    h.journal.update_order(cid, status="accepted")  # as if the executor died after its ack
    h.core.commit()
    h.crash()
    row = h.journal.order(cid)
    assert row["status"] == "cancelled" and "restarted" in row["reason"] and cid not in h.engine.orders


def test_a_restart_restores_working_orders_without_an_ingestor(h, tmp_path):
    resting = client_id(h, h.signal("a", order(price="59500.0")))
    h.known = ()  # the ingestor is down: no market rules can be fetched
    h.crash()
    assert resting in h.working() and resting in h.engine.orders
    assert h.core.rules[SPOT].tick == D("0.1")  # from the journal, as the order was checked


# ---------------------------------------------------------------------- numbers and marks
def test_numbers_are_shown_as_the_market_shows_them_and_unknown_upnl_is_null(h):
    h.signal("a", order(qty="0.013"))
    doc = h.state("a")
    (pos,) = doc["positions"]
    assert pos["qty"] == "0.013" and pos["avg_price"] == "60001"
    assert len(pos["fees"].split(".")[1]) <= 4  # tick 0.1 x step 0.001: 4 places
    h.core.marks.clear()
    h.engine.books.clear()
    doc = h.state("a")
    assert doc["positions"][0]["unrealized_pnl"] is None and doc["pnl"]["total"] is None


def test_which_trigger_orders_the_venue_holds(tmp_path):
    """Live with triggers = "venue": a standalone stop or take-profit goes to the venue as its own trigger
    order when the venue has that kind, its limit form can have that time-in-force, and the market lists the
    order type; otherwise (and for trailing stops, bracket exits, paper, triggers = "executor") it is held."""
    from wispd.execution.orders import Trigger, WorkingOrder

    class Listed:  # the one thing venue_holds asks the engine: the order types a market lists
        def __init__(self, types: dict[str, set[str] | None]) -> None:
            self.types = types

        def order_types(self, key):
            return self.types.get(key[2])

    def order(kind="stop", price=None, tif="GTC", parent=None, symbol="BTC-USDT"):
        return WorkingOrder("wd" + "1" * 30, "a", "ex", "spot", symbol, "sell", D("1"), price, tif,
                            trigger=Trigger(kind, D("100")), parent=parent)

    h = Harness(tmp_path / "j.sqlite")
    core = h.core
    core.mode, core.driver = "live", "binance"
    core.engine = Listed({"BTC-USDT": {"STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT"},
                          "ETH-USDT": {"STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"}})
    core.live_cfg = {"triggers": "venue"}
    assert core.venue_holds(order())
    assert core.venue_holds(order("take_profit", D("99"), "IOC"))
    assert not core.venue_holds(order(symbol="ETH-USDT"))  # no STOP_LOSS listed: held by the executor
    assert core.venue_holds(order(price=D("99"), symbol="ETH-USDT"))
    assert not core.venue_holds(order("trailing_stop"))
    assert not core.venue_holds(order(parent="wd" + "2" * 30))
    core.driver = "hyperliquid"
    assert core.venue_holds(order()) and not core.venue_holds(order(price=D("99"), tif="IOC"))
    core.live_cfg = {"triggers": "executor"}
    assert not core.venue_holds(order())
    core.mode, core.live_cfg = "paper", {"triggers": "venue"}
    assert not core.venue_holds(order())
    h.journal.close()
