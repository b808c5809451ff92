"""Every field honoured or refused: each public method of the signal builder and each field a signal can
carry on the wire has a scenario here that shows its effect in paper mode, through the SDK's own builder
and the executor's own core. A new method or field without a scenario fails this test."""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal as D

import orjson
import pytest

from tests.execution.core_harness import PERP, SPOT, Harness
from wispd.execution.checks import ACTION_KEYS, SIGNAL_KEYS
from wispd.strategy.signals import SignalBuilder, SignalError, signal
from wispd.strategy.types import Order, Position


@pytest.fixture
def h(tmp_path):
    harness = Harness(tmp_path / "journal-acct.sqlite")
    harness.book("60000", "60001")
    harness.book("60000", "60001", key=PERP)
    yield harness
    harness.close()


def send(h: Harness, builder: SignalBuilder, strategy: str = "a") -> list[dict]:
    sig = builder.build()
    msg = sig.wire(strategy)
    h.journal.savepoint()
    h.core.signal(msg)
    h.journal.release_savepoint()
    h.settle()
    return h.sink.of(sig.id)


def final(reports: list[dict]) -> dict:
    return reports[-1]


def entry_id(reports: list[dict]) -> str:
    return next(r["order"]["client_id"] for r in reports if r["order"] and not r["order"].get("parent"))


BTC = "BTC-USDT"


def s_buy(h):
    assert final(send(h, signal("x").buy(BTC, "sim", "0.01")))["status"] == "filled"
    assert h.core.ledger.positions[("a", *SPOT)].qty == D("0.01")


def s_sell(h):
    send(h, signal("x").buy(BTC, "sim", "0.02"))
    assert final(send(h, signal("x").sell(BTC, "sim", "0.01")))["status"] == "filled"
    assert h.core.ledger.positions[("a", *SPOT)].qty == D("0.01")
    r = final(send(h, signal("x").sell("BTC-USDC", "sim", "0.01", market="perp")))
    assert r["code"] == "would_open_short"  # a plain perp sell never opens a short


def s_sell_short(h):
    assert final(send(h, signal("x").sell_short("BTC-USDC", "sim", "0.01")))["status"] == "filled"
    assert h.core.ledger.positions[("a", *PERP)].qty == D("-0.01")
    with pytest.raises(SignalError):
        signal("x").sell_short(BTC, "sim", "0.01", market="spot").build()


def s_limit(h):
    r = final(send(h, signal("x").buy(BTC, "sim", "0.01").limit("59000")))
    assert r["status"] == "accepted" and r["order"]["price"] == "59000"


def s_market(h):
    b = signal("x").buy(BTC, "sim", "0.01").limit("59000").market()
    assert final(send(h, b))["status"] == "filled"


def s_post_only(h):
    r = final(send(h, signal("x").buy(BTC, "sim", "0.01").limit("60001").post_only()))
    assert r["status"] == "rejected" and "post-only" in r["reason"]
    assert final(send(h, signal("x").buy(BTC, "sim", "0.01").limit("59999").post_only()))["status"] == "accepted"


def s_reduce_only(h):
    r = final(send(h, signal("x").buy("BTC-USDC", "sim", "0.01", market="perp").reduce_only()))
    assert r["code"] == "reduce_only"  # nothing to reduce
    with pytest.raises(SignalError):
        signal("x").buy(BTC, "sim", "0.01").reduce_only().build()


def s_tif(h):
    h.book("60000", "60001", size="0.005")
    r = final(send(h, signal("x").buy(BTC, "sim", "0.02").limit("60001").tif("IOC")))
    assert r["status"] == "cancelled" and D(r["order"]["filled"]) == D("0.005")
    r = final(send(h, signal("x").buy(BTC, "sim", "0.02").limit("60001").tif("FOK")))
    assert r["status"] == "cancelled" and D(r["order"]["filled"]) == 0
    with pytest.raises(SignalError):
        signal("x").buy(BTC, "sim", "0.02").tif("GTC").build()  # a market order cannot rest


def s_leverage(h):
    send(h, signal("x").buy("BTC-USDC", "sim", "0.1", market="perp").leverage("4"))
    margin = h.core.funds.reserved_of("a", "USDC")
    assert margin == D("0.1") * D("60001") / 4
    with pytest.raises(SignalError):
        signal("x").buy(BTC, "sim", "0.1").leverage("4").build()  # BTC-USDT is spot on the sim


def s_stop_loss(h):
    reports = send(h, signal("x").buy(BTC, "sim", "0.01").stop_loss("59000", limit="58900"))
    sl = next(o for o in h.core.orders.values() if o.leg == "sl")
    assert sl.qty == D("0.01") and sl.trigger.price == D("59000") and sl.price == D("58900")
    assert entry_id(reports) == sl.parent


def s_take_profit(h):
    send(h, signal("x").buy(BTC, "sim", "0.01").take_profit("61000"))
    tp = next(o for o in h.core.orders.values() if o.leg == "tp")
    assert tp.status == "open" and tp.price == D("61000") and tp.qty == D("0.01")  # resting for what filled
    send(h, signal("x").buy(BTC, "sim", "0.01").take_profit("61000", market=True))
    armed = [o for o in h.core.orders.values() if o.leg == "tp" and o.status == "armed"]
    assert armed and armed[0].trigger.kind == "take_profit"


def s_stop(h):
    send(h, signal("x").buy(BTC, "sim", "0.01"))
    h.trade("60000")
    reports = send(h, signal("x").sell(BTC, "sim", "0.01").stop("59500"))
    assert h.core.orders[entry_id(reports)].status == "armed"
    h.trade("59400")
    assert final(h.sink.of(reports[0]["signal_id"]))["status"] == "filled"


def s_take_profit_at(h):
    send(h, signal("x").buy(BTC, "sim", "0.01"))
    h.trade("60000")
    reports = send(h, signal("x").sell(BTC, "sim", "0.01").take_profit_at("60500").limit("59990"))
    cid = entry_id(reports)
    h.trade("60600")
    assert cid not in h.core.orders and h.journal.order(cid)["status"] == "filled"


def s_trailing_stop(h):
    send(h, signal("x").buy(BTC, "sim", "0.01"))
    h.trade("60000")
    reports = send(h, signal("x").sell(BTC, "sim", "0.01").trailing_stop(percent="1"))
    cid = entry_id(reports)
    h.trade("61000")
    assert h.core.orders[cid].trigger.price == D("60390")
    h.trade("60300")
    assert h.journal.order(cid)["status"] == "filled"


def s_cancel(h):
    cid = entry_id(send(h, signal("x").buy(BTC, "sim", "0.01").limit("59000")))
    assert final(send(h, signal("x").cancel(cid)))["status"] == "cancelled"
    assert final(send(h, signal("x").cancel(Order(cid, "", "sim", "spot", BTC, "buy", D(1), None, "x"))))[
        "code"] == "order_not_open"


def s_cancel_all(h):
    send(h, signal("x").buy(BTC, "sim", "0.01").limit("59000").buy(BTC, "sim", "0.01").limit("59001"))
    send(h, signal("x").cancel_all(BTC, exchange="sim", market="spot"))
    assert not [o for o in h.core.orders.values() if o.strategy == "a"]


def s_amend(h):
    cid = entry_id(send(h, signal("x").buy(BTC, "sim", "0.01").limit("59000")))
    reports = send(h, signal("x").amend(cid, price="59100", qty="0.02"))
    new = entry_id(reports)
    assert new != cid and h.core.orders[new].price == D("59100") and h.core.orders[new].qty == D("0.02")
    assert h.journal.order(cid)["status"] == "cancelled"


def s_close(h):
    send(h, signal("x").buy(BTC, "sim", "0.01"))
    pos = Position("sim", "spot", BTC, D("0.01"), D("60001"))
    assert final(send(h, signal("x").close(pos)))["status"] == "filled"
    assert h.core.ledger.positions[("a", *SPOT)].qty == 0


def s_ttl(h):
    b = signal("x").buy(BTC, "sim", "0.01").ttl(0.001)
    sig = b.build()
    time.sleep(0.01)
    h.core.signal(sig.wire("a"))
    h.settle()
    assert final(h.sink.of(sig.id))["code"] == "expired"
    # woke: when the loop woke to decide (never after ts): journaled with the signal, for a replay's schedule
    sig = signal("x").buy(BTC, "sim", "0.01").build()
    msg = sig.wire("a", woke=sig.created - 0.5)
    assert msg["woke"] == pytest.approx(msg["ts"] - 500)
    h.core.signal(msg)
    h.settle()
    assert final(h.sink.of(sig.id))["status"] == "filled"
    row = h.journal.db.execute("SELECT payload FROM signals WHERE signal_id=?", (sig.id,)).fetchone()
    assert orjson.loads(row[0])["woke"] == msg["woke"]
    assert sig.wire("a", woke=sig.created + 9)["woke"] == msg["ts"]  # a wake after the build is the build
    late = signal("x").buy(BTC, "sim", "0.01").build()
    h.core.signal({**late.wire("a"), "woke": late.created * 1000 + 1})
    h.settle()
    assert final(h.sink.of(late.id))["code"] == "bad_schema"


def s_id(h):
    send(h, signal("x").id("candle-1").buy(BTC, "sim", "0.01"))
    assert final(send(h, signal("x").id("candle-1").buy(BTC, "sim", "0.01")))["code"] == "duplicate"


def s_build(h):
    with pytest.raises(SignalError):
        signal("x").build()  # no action
    assert signal("x").buy(BTC, "sim", "1").build().actions[0].qty == 1


SCENARIOS: dict[str, Callable[[Harness], None]] = {
    "buy": s_buy, "sell": s_sell, "sell_short": s_sell_short, "limit": s_limit, "market": s_market,
    "post_only": s_post_only, "reduce_only": s_reduce_only, "tif": s_tif, "leverage": s_leverage,
    "stop_loss": s_stop_loss, "take_profit": s_take_profit, "stop": s_stop, "take_profit_at": s_take_profit_at,
    "trailing_stop": s_trailing_stop, "cancel": s_cancel, "cancel_all": s_cancel_all, "amend": s_amend,
    "close": s_close, "ttl": s_ttl, "id": s_id, "build": s_build,
}

# Every wire field, and the scenario that shows what it does.
FIELDS = {
    "v": "build", "id": "id", "name": "build", "strategy": "buy", "ts": "ttl", "woke": "ttl", "ttl_ms": "ttl", "actions": "build",
    "type": "build", "side": "sell", "exchange": "buy", "market": "sell_short", "symbol": "buy", "qty": "buy",
    "price": "limit", "order_type": "market", "tif": "tif", "post_only": "post_only",
    "reduce_only": "reduce_only", "short": "sell_short", "leverage": "leverage", "stop_loss": "stop_loss",
    "stop_loss_limit": "stop_loss", "take_profit": "take_profit", "take_profit_type": "take_profit",
    "trigger_type": "stop", "trigger_price": "stop", "trail_distance": "trailing_stop",
    "trail_percent": "trailing_stop", "client_id": "cancel",
}


def test_every_builder_method_and_wire_field_has_a_scenario():
    methods = {m for m in dir(SignalBuilder) if not m.startswith("_")}
    assert methods == set(SCENARIOS), methods ^ set(SCENARIOS)
    fields = set(SIGNAL_KEYS).union(*ACTION_KEYS.values())
    assert fields == set(FIELDS), fields ^ set(FIELDS)
    assert set(FIELDS.values()) <= set(SCENARIOS)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_each_field_has_its_effect(h, name):
    SCENARIOS[name](h)
