"""The live engine's bookkeeping on the executor thread, fed the messages the exchange thread posts:
a trade that overtakes its order's acknowledgement, replayed trades, partial and final fills."""

from __future__ import annotations

from decimal import Decimal as D

from wispd.execution.journal import Journal
from wispd.execution.live.engine import LiveEngine
from wispd.execution.live.messages import FailMsg, OrderMsg, TradeMsg
from wispd.execution.orders import Done, Fill, WorkingOrder
from wispd.logs import get_logger

LIVE = {"request_timeout_s": 5.0, "poll_interval_s": 10.0, "account_poll_s": 30.0, "unknown_orders": "report"}


def engine(tmp_path) -> LiveEngine:
    return LiveEngine("binance", {"markets": ["spot"]}, LIVE, {"apiKey": "k", "secret": "s"},
                      Journal(tmp_path / "j.sqlite"), get_logger("test"))


def kinds(events) -> list[tuple]:
    return [("fill", e.qty, e.trade_id) if isinstance(e, Fill) else (e.status, e.code) for e in events]


def test_trade_before_ack_is_held_then_matched_and_replays_count_once(tmp_path):
    e = engine(tmp_path)
    order = WorkingOrder("wd" + "1" * 30, "s", "bn", "spot", "BTC-USDT", "buy", D("1"), D("100"))
    e.orders[order.client_id] = order
    e._post(TradeMsg("t1", "77", None, "BTC/USDT", D("100"), D("0.4"), D("0.04"), "maker"))
    assert e.tick(0) == []  # whose trade? not known until the acknowledgement
    e._post(OrderMsg(order.client_id, "77", "open", "BTC/USDT"))
    assert kinds(e.tick(0)) == [("open", ""), ("fill", D("0.4"), "t1")]
    e._post(TradeMsg("t1", "77", None, "BTC/USDT", D("100"), D("0.4"), D("0.04"), "maker"))  # a poll's replay
    assert e.tick(0) == []
    e._post(TradeMsg("t2", "77", None, "BTC/USDT", D("100"), D("0.6"), D("0.06"), "maker"))
    events = e.tick(0)
    assert kinds(events) == [("fill", D("0.6"), "t2"), ("filled", "")]
    assert order.filled == D("1") and order.client_id not in e.orders
    e.close()


def test_rejection_and_cancel_reasons(tmp_path):
    e = engine(tmp_path)
    a = WorkingOrder("wd" + "2" * 30, "s", "bn", "spot", "BTC-USDT", "buy", D("1"), D("100"))
    b = WorkingOrder("wd" + "3" * 30, "s", "bn", "spot", "BTC-USDT", "buy", D("1"), D("100"), status="open")
    e.orders.update({a.client_id: a, b.client_id: b})
    e._post(FailMsg(a.client_id, "insufficient_funds", "InsufficientFunds: no money"))
    e.cancel_reasons[b.client_id] = "replaced by wdnew"
    e._post(OrderMsg(b.client_id, "9", "canceled", "BTC/USDT"))
    events = e.tick(0)
    assert [(ev.status, ev.code, ev.reason) for ev in events if isinstance(ev, Done)] == [
        ("rejected", "insufficient_funds", "InsufficientFunds: no money"), ("cancelled", "", "replaced by wdnew")]
    assert e.orders == {}
    e.close()
