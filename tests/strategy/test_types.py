"""SDK value types: pairs, Decimal-only prices, book maths."""

from __future__ import annotations

from decimal import Decimal

import pytest

from wispd.strategy.types import D, Level, OrderBook, Pair, asset, pair


def book() -> OrderBook:
    d = Decimal
    return OrderBook("sim", pair("BTC", "USDT"),
                     (Level(d("99"), d("1")), Level(d("98"), d("2"))),
                     (Level(d("101"), d("1")), Level(d("102"), d("3"))), None, 1)


def test_pairs_and_assets():
    assert pair("btc", "usdt").symbol == "BTC-USDT" and str(asset("eth")) == "ETH"
    assert Pair.parse("BTC/USDC:USDC") == pair("BTC", "USDC") and Pair.parse("ETH-USDT").base == asset("ETH")
    with pytest.raises(ValueError):
        asset("BT C")


def test_decimals_only():
    assert D("0.1") + D("0.2") == D("0.3")
    with pytest.raises(TypeError):
        D(0.1)
    with pytest.raises(ValueError):
        D("abc")


def test_book_maths():
    b = book()
    assert b.mid == 100 and b.spread == 2 and b.spread_bps() == 200
    assert b.depth("bid") == 3 and b.depth("ask", 1) == 1
    assert b.vwap("buy", D("2")) == (101 + 102) / D(2)
    assert b.vwap("sell", D("3")) == (99 + 98 * 2) / D(3)
    assert b.vwap("buy", D("10")) is None


def test_the_fast_book_constructor_builds_the_same_book():
    """``OrderBook.of`` (the receiver's per-update constructor) fills every field the dataclass has, as the
    dataclass would: a field added to OrderBook and not to ``of`` fails here."""
    import dataclasses

    ref = book()
    args = [getattr(ref, f.name) for f in dataclasses.fields(OrderBook)]
    fast = OrderBook.of(*args)
    assert fast == ref and hash(fast) == hash(ref) and type(fast) is OrderBook
    assert vars(fast) == vars(ref) and list(vars(fast)) == [f.name for f in dataclasses.fields(OrderBook)]
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.seq = 2  # type: ignore[misc]
