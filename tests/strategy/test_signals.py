"""The signal builder: what it builds, and the clear errors it gives at build time."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from wispd.strategy.signals import Handle, Report, SignalError, signal
from wispd.strategy.types import D, Order, Position, pair

BTC = pair("BTC", "USDT")


def test_builds_an_immutable_signal_with_id_and_ttl():
    sig = (signal("entry").buy(BTC, "sim", "0.01").limit("59000").post_only().stop_loss("58000")
           .take_profit("61000").ttl(3).build())
    assert len(sig.id) == 32 and sig.ttl == 3 and sig.expires == pytest.approx(sig.created + 3)
    (a,) = sig.actions
    assert a.price == Decimal("59000") and a.post_only and a.stop_loss == Decimal("58000")
    wire = sig.wire("rsi")
    assert wire["actions"][0]["order_type"] == "limit" and wire["actions"][0]["qty"] == "0.01"
    with pytest.raises(AttributeError):
        sig.ttl = 5  # frozen
    assert signal("x").buy(BTC, "sim", "1").build().id != signal("x").buy(BTC, "sim", "1").build().id


def test_market_perp_short_leverage_tif_reduce_only_cancel_close():
    order = Order("wdabc", "s1", "sim", "spot", "BTC-USDT", "buy", D("1"), None, "open")
    pos = Position("sim", "perp", "ETH-USDC", D("-2"), D("3000"))
    sig = (signal("multi").sell_short(pair("ETH", "USDC"), "sim", "2").leverage("5").tif("IOC")
           .sell(BTC, "sim", "0.5").reduce_only().cancel(order).cancel("wdother").close(pos).build())
    kinds = [type(a).__name__ for a in sig.actions]
    assert kinds == ["OrderAction", "OrderAction", "CancelAction", "CancelAction", "CloseAction"]
    assert sig.actions[0].short and sig.actions[0].leverage == 5 and sig.actions[0].tif == "IOC"
    assert sig.actions[1].reduce_only and sig.actions[2].client_id == "wdabc"


def test_amend_names_the_order_and_what_changes():
    order = Order("wdabc", "s1", "sim", "spot", "BTC-USDT", "buy", D("1"), D("100"), "open")
    sig = signal("reprice").amend(order, price="99.5").amend("wdother", qty="2").build()
    assert [a.wire() for a in sig.actions] == [
        {"type": "amend", "client_id": "wdabc", "price": "99.5", "qty": None},
        {"type": "amend", "client_id": "wdother", "price": None, "qty": "2"}]
    with pytest.raises(SignalError, match="new price, a new qty"):
        signal("x").amend(order)


@pytest.mark.parametrize("build,message", [
    (lambda: signal("x").build(), "has no action"),
    (lambda: signal("x").buy(BTC, "sim", "0").build(), "greater than 0"),
    (lambda: signal("x").buy(BTC, "sim", "-1"), "greater than 0"),
    (lambda: signal("x").buy(BTC, "sim", 0.1), "not the float"),
    (lambda: signal("x").buy("BTCUSDT", "sim", "1"), "pairs look like"),
    (lambda: signal("x").buy(BTC, "", "1"), "exchange"),
    (lambda: signal("x").limit("1"), "call buy/sell"),
    (lambda: signal("x").buy(BTC, "sim", "1").limit("-5"), "greater than 0"),
    (lambda: signal("x").buy(BTC, "sim", "1").post_only().build(), "post_only needs a limit"),
    (lambda: signal("x").buy(BTC, "sim", "1").limit("10").post_only().tif("IOC").build(), "must be GTC"),
    (lambda: signal("x").buy(BTC, "sim", "1").tif("DAY"), "time in force"),
    (lambda: signal("x").buy(BTC, "sim", "1").leverage("3").build(), "perp orders only"),
    (lambda: signal("x").buy(BTC, "sim", "1", market="spot").leverage("3"), "perp orders only"),
    (lambda: signal("x").sell_short(BTC, "sim", "1", market="spot").build(), "perp only"),
    (lambda: signal("x").buy(BTC, "sim", "1").limit("100").stop_loss("101").build(), "wrong side"),
    (lambda: signal("x").sell(BTC, "sim", "1").limit("100").take_profit("101").build(), "wrong side"),
    (lambda: signal("x").buy(BTC, "sim", "1").ttl(0), "ttl"),
    (lambda: signal("x").id("bad id!"), "signal id"),
    (lambda: signal(""), "needs a name"),
])
def test_validation_errors(build, message):
    with pytest.raises(SignalError, match=message):
        build()


def test_handle_resolves_on_reports_and_expires_without_executor():
    sig = signal("x").buy(BTC, "sim", "1").ttl(0.2).build()
    unsent = Handle(sig)
    assert unsent.wait(0.05) is None and not unsent.done()
    time.sleep(0.25)
    assert unsent.done() and unsent.result().status == "rejected" and unsent.result().code == "no_executor"
    assert "no executor reachable" in unsent.result().reason
    h = Handle(signal("y").buy(BTC, "sim", "1").build())
    h.sent = True
    h._resolve(Report("partially_filled", orders=[{"client_id": "wd1"}]))
    assert not h.done()
    h._resolve(Report("filled", orders=[{"client_id": "wd1"}]))
    assert h.wait(1).status == "filled" and h.client_ids() == ["wd1"]


def test_the_market_of_an_order_is_said_or_unambiguous():
    """A literal port of Wisp's ``Perp().Signal(...).Buy(...)`` must not buy spot: ctx.perp.signal (here
    SignalBuilder(name, "perp")) binds the market; a bare signal() resolves it only when the exchange or the
    pair leaves no doubt, and a market the exchange does not have is refused at build time."""
    from wispd.strategy.signals import SignalBuilder

    perp = SignalBuilder("port", "perp").buy("BTC-USDC", "sim", "0.1").build()
    assert perp.actions[0].market == "perp"
    assert signal("x").buy(BTC, "sim", "1").build().actions[0].market == "spot"  # BTC-USDT: spot on the sim
    assert signal("x").buy("BTC-USDC", "sim", "1").build().actions[0].market == "perp"
    assert signal("x").buy("SOL-USDT", "bn", "1").build().actions[0].market == "spot"  # Binance: spot only
    with pytest.raises(SignalError, match="say which"):
        signal("x").buy("SOL-USDT", "sim", "1").build()  # configured on neither market of the sim
    with pytest.raises(SignalError, match="bn has no perp market"):
        SignalBuilder("x", "perp").buy(BTC, "bn", "1").build()
    with pytest.raises(SignalError, match="ctx.spot.signal"):
        SignalBuilder("x", "spot").buy(BTC, "sim", "1", market="perp")
    with pytest.raises(SignalError, match="perp only"):
        SignalBuilder("x", "spot").sell_short(BTC, "sim", "1")
    with pytest.raises(SignalError, match=r"unknown exchange 'simm'.*did you mean 'sim'"):
        signal("x").buy(BTC, "simm", "1").build()
