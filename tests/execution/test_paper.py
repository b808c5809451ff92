"""The paper engine against hand-computed cases: book walks, partial fills, TIFs, post-only, fees."""

from __future__ import annotations

from decimal import Decimal as D

from hypothesis import given, settings
from hypothesis import strategies as st

from wispd import clock
from wispd.clock import VirtualClock
from wispd.execution.orders import Done, Fill, WorkingOrder
from wispd.execution.paper import PaperEngine

KEY = ("sim", "spot", "BTC-USDT")
BIDS = [(D("99"), D("1")), (D("98"), D("2")), (D("97"), D("5"))]
ASKS = [(D("101"), D("1")), (D("102"), D("2")), (D("103"), D("5"))]


def engine(latency: float = 0) -> PaperEngine:
    e = PaperEngine(lambda ex, sym: (D("0.001"), D("0.002")), latency)
    e.on_book(KEY, BIDS, ASKS, 0)
    return e


def order(side: str, qty: str, price: str | None = None, tif: str = "GTC", post: bool = False, cid: str = "c1"):
    return WorkingOrder(cid, "s", *KEY, side, D(qty), D(price) if price else None, tif, post)


def fills(events):
    return [(e.price, e.qty, e.fee, e.liquidity) for e in events if isinstance(e, Fill)]


def test_market_buy_walks_levels_with_taker_fee():
    ev = engine().submit(order("buy", "2.5"), 0)
    assert fills(ev) == [(D("101"), D("1"), D("0.202"), "taker"), (D("102"), D("1.5"), D("0.306"), "taker")]
    assert ev[-1].status == "filled"


def test_market_order_larger_than_the_book_is_partially_filled_then_cancelled():
    ev = engine().submit(order("sell", "10"), 0)
    assert sum(q for _, q, _, _ in fills(ev)) == 8
    assert isinstance(ev[-1], Done) and ev[-1].status == "cancelled" and "depth" in ev[-1].reason


def test_marketable_limit_takes_up_to_its_price_then_rests():
    e = engine()
    ev = e.submit(order("buy", "5", "102"), 0)
    assert [(p, q) for p, q, _, _ in fills(ev)] == [(D("101"), D("1")), (D("102"), D("2"))]
    assert ev[-1].status == "open" and e.orders["c1"].remaining == 2


def test_ioc_and_fok():
    ev = engine().submit(order("buy", "5", "102", "IOC"), 0)
    assert sum(q for _, q, _, _ in fills(ev)) == 3 and ev[-1].status == "cancelled"
    ev = engine().submit(order("buy", "5", "102", "FOK"), 0)
    assert fills(ev) == [] and ev[-1].status == "cancelled"
    ev = engine().submit(order("buy", "3", "102", "FOK"), 0)
    assert sum(q for _, q, _, _ in fills(ev)) == 3 and ev[-1].status == "filled"


def test_post_only_that_would_cross_is_rejected():
    ev = engine().submit(order("buy", "1", "101", post=True), 0)
    assert ev[-1].status == "rejected" and "post-only" in ev[-1].reason


def test_resting_order_fills_on_trade_through_partially_with_maker_fee():
    e = engine()
    assert e.submit(order("buy", "3", "100"), 0)[-1].status == "open"
    ev = e.on_trades(KEY, [(D("99.5"), D("1"))], 2)
    assert fills(ev) == [(D("100"), D("1"), D("0.1"), "maker")]
    assert e.orders["c1"].status == "partially_filled"
    ev = e.on_trades(KEY, [(D("99"), D("4"))], 3)
    assert fills(ev) == [(D("100"), D("2"), D("0.2"), "maker")] and ev[-1].status == "filled"


def test_trades_at_a_resting_orders_price_eat_the_queue_ahead_of_it_first():
    e = engine()
    assert e.submit(order("buy", "3", "99"), 0)[-1].status == "open"  # joins the 99 level behind 1
    assert fills(e.on_trades(KEY, [(D("99"), D("0.5"))], 1)) == []  # half of the queue ahead
    ev = e.on_trades(KEY, [(D("99"), D("1.5"))], 2)  # the other half, then 1 for us
    assert fills(ev) == [(D("99"), D("1"), D("0.099"), "maker")]
    # a level of its own (nothing ahead): the first trade at the price is ours
    e2 = engine()
    e2.submit(order("sell", "1", "100.5"), 0)
    assert fills(e2.on_trades(KEY, [(D("100.5"), D("2"))], 1)) == [(D("100.5"), D("1"), D("0.1005"), "maker")]
    # cancellations ahead of us (the level shrinks below the queue) move us up; a deleted level, to the front
    e3 = engine()
    e3.submit(order("buy", "1", "98"), 0)  # 2 ahead
    e3.on_book(KEY, [(D("99"), D("1")), (D("98"), D("0.5"))], ASKS, 1)
    assert fills(e3.on_trades(KEY, [(D("98"), D("0.6"))], 2)) == [(D("98"), D("0.1"), D("0.0098"), "maker")]


def test_our_fills_take_liquidity_the_next_order_cannot_take_again():
    e = engine()
    ev = e.submit(order("buy", "0.6", cid="a"), 0)
    assert fills(ev)[0][:2] == (D("101"), D("0.6"))
    ev = e.submit(order("buy", "0.6", cid="b"), 0)  # the same book: only 0.4 is left at 101
    assert [(p, q) for p, q, _, _ in fills(ev)] == [(D("101"), D("0.4")), (D("102"), D("0.2"))]
    # the venue's next book shows the 101 level with another size: it is the venue's truth again
    e.on_book(KEY, BIDS, [(D("101"), D("0.9")), *ASKS[1:]], 1)
    ev = e.submit(order("buy", "0.6", cid="c"), 1)
    assert fills(ev)[0][:2] == (D("101"), D("0.6"))


def test_resting_order_fills_when_the_book_crosses_it():
    e = engine()
    e.submit(order("sell", "2", "101.5"), 0)
    ev = e.on_book(KEY, [(D("102"), D("1")), (D("101.7"), D("4"))], [(D("103"), D("1"))], 1)
    assert [(p, q) for p, q, _, _ in fills(ev)] == [(D("101.5"), D("1")), (D("101.5"), D("1"))]
    assert ev[-1].status == "filled"


def test_latency_delays_activation_and_cancel():
    e = engine(latency=50)
    assert e.submit(order("buy", "1"), 1000) == []
    assert e.tick(1049) == []
    assert e.tick(1050)[-1].status == "filled"
    e.submit(order("buy", "1", "90", cid="c2"), 2000)
    assert e.cancel("c2")[0].status == "cancelled" and e.cancel("c2") == []


def test_no_book_rejects():
    e = PaperEngine(lambda ex, sym: (D(0), D(0)), 0)
    assert e.submit(order("buy", "1"), 0)[-1].status == "rejected"


def test_amend_replaces_a_resting_order_and_the_new_one_can_cross():
    e = engine()
    e.submit(order("buy", "1", "100", cid="old"), 0)
    ev = e.amend("old", order("buy", "1.5", "101", cid="new"), 0)
    assert [(x.order.client_id, x.status, x.reason) for x in ev if isinstance(x, Done)] == [
        ("old", "cancelled", "replaced by new"), ("new", "open", "")]
    assert fills(ev) == [(D("101"), D("1"), D("0.202"), "taker")]  # the new price takes the 101 ask
    assert set(e.orders) == {"new"} and e.orders["new"].remaining == D("0.5")


@settings(max_examples=300, deadline=None)
@given(now_ms=st.floats(1.7e12, 2.1e12), latency=st.floats(0.5, 500))
def test_an_order_is_live_at_the_microsecond_a_backtest_wakes_for_it(now_ms: float, latency: float):
    """The replayer wakes an account at the first whole microsecond of an order's activation and the virtual
    clock hands that instant back as float ms: the order must be live then (float ms near 2e12 carry a
    quarter-microsecond error), and not three microseconds earlier."""
    e = engine(latency=latency)
    assert e.submit(order("buy", "1"), now_ms) == []
    at_us = clock.us_not_before(e.next_activation())
    assert e.tick(VirtualClock((at_us - 3) / 1e6).t * 1000.0) == []
    assert e.tick(VirtualClock(at_us / 1e6).t * 1000.0)[-1].status == "filled"
