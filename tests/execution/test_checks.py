"""Signal validation and risk checks give machine-readable reasons."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from wispd.execution.checks import MarketRules, Reject, RiskLimits, check_risk, check_rules, parse_signal


def sig(**order):
    base = {"type": "order", "side": "buy", "exchange": "sim", "market": "spot", "symbol": "BTC-USDT", "qty": "1",
            "price": None, "order_type": "market"}
    return {"v": 1, "id": "s1", "strategy": "rsi", "ts": 1, "ttl_ms": 5000, "actions": [{**base, **order}]}


@pytest.mark.parametrize("msg,code", [
    (None, "bad_schema"), ({"v": 2}, "bad_schema"), ({**sig(), "id": "bad id"}, "bad_schema"),
    ({**sig(), "actions": []}, "bad_schema"), ({**sig(), "ttl_ms": 0}, "bad_schema"),
    (sig(qty="-1"), "bad_quantity"), (sig(qty="0"), "bad_quantity"), (sig(qty=1.5), "bad_schema"),
    (sig(symbol="btcusdt"), "unknown_symbol"), (sig(side="hold"), "bad_schema"), (sig(tif="DAY"), "bad_schema"),
    (sig(price="100"), "bad_schema"), (sig(order_type="limit"), "bad_schema"), (sig(price="-1", order_type="limit"),
                                                                                "bad_price"),
    ({**sig(), "actions": [{"type": "teleport"}]}, "bad_schema"),
])
def test_bad_signals(msg, code):
    with pytest.raises(Reject) as err:
        parse_signal(msg)
    assert err.value.code == code


RULES = MarketRules(D("0.1"), D("0.001"), D("0.001"), D("10"), D(0), D(0))
LIMITS = RiskLimits(D("10000"), D("20000"), 2, D("15000"), {"greedy": D("100")}, D("5"))


def order(**kw):
    return parse_signal(sig(**kw))["actions"][0]


@pytest.mark.parametrize("o,code", [
    (order(qty="0.0015"), "qty_step"), (order(qty="0.0001"), "qty_step"),
    (order(qty="0.05", price="100.05", order_type="limit"), "price_tick"),
    (order(qty="0.001", price="100", order_type="limit"), "min_notional"),
])
def test_market_rules(o, code):
    with pytest.raises(Reject) as err:
        check_rules(o, RULES, D("100"))
    assert err.value.code == code


def risk(o, strategy="rsi", halted=False, mid=D("100"), pos=D(0), open_orders=0, exposure=D(0)):
    check_risk(o, strategy, LIMITS, halted=halted, mid=mid, position_qty=pos, open_orders=open_orders,
               strategy_exposure=exposure)


@pytest.mark.parametrize("kwargs,code", [
    ({"o": order(), "halted": True}, "halted"),
    ({"o": order(), "mid": None}, "no_market_data"),
    ({"o": order(qty="101")}, "max_order_notional"),
    ({"o": order(price="106", order_type="limit")}, "price_collar"),
    ({"o": order(qty="50"), "pos": D("160")}, "max_position"),
    ({"o": order(), "open_orders": 2}, "max_open_orders"),
    ({"o": order(qty="10"), "exposure": D("14500")}, "strategy_budget"),
    ({"o": order(qty="2"), "strategy": "greedy"}, "strategy_budget"),
    ({"o": order(reduce_only=True, market="perp"), "pos": D(0)}, "reduce_only"),
    ({"o": order(reduce_only=True, side="buy", market="perp"), "pos": D("1")}, "reduce_only"),
])
def test_risk_rejections(kwargs, code):
    with pytest.raises(Reject) as err:
        risk(**kwargs)
    assert err.value.code == code


def test_reducing_orders_pass_position_and_budget_limits():
    risk(order(side="sell", qty="50", reduce_only=True), pos=D("199"), exposure=D("19900"))


@pytest.mark.parametrize("fields,code", [
    ({"tif": "GTC"}, "bad_combination"),  # a market order cannot rest
    ({"post_only": True, "price": "100", "order_type": "limit", "tif": "IOC"}, "bad_combination"),
    ({"short": True}, "bad_combination"),  # short is a perp sell
    ({"reduce_only": True}, "bad_combination"),  # a spot buy never reduces
    ({"leverage": "3"}, "bad_combination"),  # leverage is for perps
    ({"market": "perp", "leverage": "0.5"}, "bad_combination"),
    ({"trigger_price": "90"}, "bad_combination"),  # a trigger price without a trigger type
    ({"trigger_type": "stop"}, "bad_combination"),  # a stop without its price
    ({"trigger_type": "teleport", "trigger_price": "90"}, "bad_schema"),
    ({"trigger_type": "trailing_stop", "trail_distance": "5", "trail_percent": "1"}, "bad_combination"),
    ({"trigger_type": "trailing_stop", "trail_percent": "150"}, "bad_combination"),
    ({"trigger_type": "trailing_stop", "trail_distance": "5", "price": "100", "order_type": "limit"},
     "bad_combination"),
    ({"stop_loss_limit": "89"}, "bad_combination"),  # a stop-limit price without the stop
    ({"take_profit_type": "market"}, "bad_combination"),
    ({"take_profit_type": "maybe", "take_profit": "110"}, "bad_schema"),
    ({"stop_loss": "90", "reduce_only": True, "market": "perp"}, "bad_combination"),
    ({"stop_loss": "90", "trigger_type": "stop", "trigger_price": "110"}, "bad_combination"),
])
def test_combinations_that_cannot_be_honoured_are_refused(fields, code):
    with pytest.raises(Reject) as err:
        parse_signal(sig(**fields))
    assert err.value.code == code and err.value.action == 0 and err.value.message.startswith("action 0: ")
