"""The money-relevant ccxt settings of each live driver, checked on ccxt's own request building (no
network): no broker or builder tags, our client ids in the exchange's form, error classes mapped."""

from __future__ import annotations

from decimal import Decimal

import aiohttp
import ccxt
import pytest

from wispd.execution.journal import client_order_id
from wispd.execution.live import drivers
from wispd.execution.live.errors import classify
from wispd.execution.orders import WorkingOrder


def make(driver: str):
    creds = {"walletAddress": "0x" + "ab" * 20, "privateKey": "0x" + "11" * 32} if driver == "hyperliquid" \
        else {"apiKey": "k", "secret": "s"}
    return drivers.exchange_class(driver)({**creds, "options": drivers.options(driver, ["spot"] if driver ==
                                                                               "binance" else ["perp"])})


def test_bybit_posts_carry_no_broker_referer():
    ex = make("bybit")
    signed = ex.sign("order/create", ["private"], "POST", {"symbol": "BTCUSDT", "orderLinkId": "wd" + "0" * 30})
    assert "Referer" not in (signed["headers"] or {})
    plain = ccxt.bybit({"apiKey": "k", "secret": "s"})  # what ccxt would do by default
    assert plain.sign("order/create", ["private"], "POST", {"symbol": "BTCUSDT"})["headers"]["Referer"] == "CCXT"


def test_binance_broker_prefix_cannot_appear():
    ex = make("binance")
    with pytest.raises(ValueError, match="own client order id"):
        ex.generate_client_order_id(None)
    order = WorkingOrder(client_order_id("s", "sig", 0), "s", "bn", "spot", "BTC-USDT", "buy", Decimal("1"),
                         Decimal("100"))
    assert drivers.order_params("binance", order)["newClientOrderId"] == order.client_id


def test_hyperliquid_never_approves_a_builder_fee():
    import asyncio

    async def check() -> None:
        ex = make("hyperliquid")
        assert await ex.handle_builder_fee_approval() is True
        assert ex.options["approvedBuilderFee"] is False and ex.options["refSet"] is True
        await ex.close()

    asyncio.run(check())


def test_client_ids_round_trip_in_each_exchange_form():
    cid = client_order_id("strategy", "signal-1", 3)
    for driver in (*drivers.LIVE_DRIVERS, "bybit"):
        vid = drivers.venue_client_id(driver, cid)
        assert drivers.our_client_id(driver, vid) == cid
    hl = drivers.venue_client_id("hyperliquid", cid)
    assert hl.startswith("0x") and len(hl) == 34 and int(hl, 16) >= 0  # a 128-bit hex cloid
    assert drivers.our_client_id("binance", "x-TKT5PX2Fabc") is None  # not ours: reported, never adopted


@pytest.mark.parametrize("exc,action,code", [
    (ccxt.InsufficientFunds("binance {}"), "reject", "insufficient_funds"),
    (ccxt.InvalidOrder("bad"), "reject", "invalid_order"),
    (ccxt.AuthenticationError("no"), "reject", "auth"),
    (ccxt.DDoSProtection('binance {"code":-2015,"msg":"Invalid API-key"}'), "reject", "auth"),
    (ccxt.RateLimitExceeded("slow down"), "retry", "rate_limited"),
    (ccxt.RequestTimeout("timed out"), "unknown", "unknown"),
    (ccxt.ExchangeNotAvailable("503"), "unknown", "unknown"),
    (ccxt.DuplicateOrderId("dup"), "unknown", "duplicate_client_id"),
    (ccxt.ExchangeError("odd"), "reject", "exchange_error"),
])
def test_error_classes(exc, action, code):
    out = classify(exc)
    assert (out.action, out.code) == (action, code)


def test_a_refused_connection_is_retried_but_a_dropped_one_is_looked_up():
    refused = ccxt.ExchangeNotAvailable("binance POST http://127.0.0.1:1/order")
    refused.__cause__ = aiohttp.ClientConnectorError(None, OSError(111, "Connection refused"))  # type: ignore[arg-type]
    assert classify(refused).action == "retry"
    dropped = ccxt.ExchangeNotAvailable("binance POST")
    dropped.__cause__ = aiohttp.ServerDisconnectedError()
    assert classify(dropped).action == "unknown"
