"""Value types of the strategy SDK: assets, pairs, books, candles, trades, orders, positions.

Prices and quantities are ``Decimal`` everywhere on the order path; they arrive as decimal strings on the
wire. All types are immutable, so the receiver thread can replace them while strategy code reads them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from wispd.levels import Level
from wispd.protocol import to_decimal

ZERO = Decimal(0)
_new = object.__new__

# What the SDK takes for a price, a quantity or a trigger: exact numbers only. A float is refused at run
# time (D raises) and, through this annotation, by `wispd check`'s type check before deploy.
Amount = Decimal | str | int


def D(value: Amount) -> Decimal:  # noqa: N802 - reads like the domain: D("0.01")
    """A Decimal from a string, int or Decimal (floats are refused: they cannot hold prices exactly)."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):  # outside the annotation, refused at run time too
        raise TypeError(f"use a string or Decimal for prices and quantities, not the float {value!r}")
    d = to_decimal(value)
    if d is None:
        raise ValueError(f"not a decimal number: {value!r}")
    return d


@dataclass(frozen=True)
class Asset:
    symbol: str

    def __post_init__(self) -> None:
        if not self.symbol or not self.symbol.isalnum():
            raise ValueError(f"asset symbols are letters and digits, got {self.symbol!r}")
        object.__setattr__(self, "symbol", self.symbol.upper())

    def __str__(self) -> str:
        return self.symbol


@dataclass(frozen=True)
class Pair:
    base: Asset
    quote: Asset

    @property
    def symbol(self) -> str:
        """Wire form, BASE-QUOTE."""
        return f"{self.base}-{self.quote}"

    def __str__(self) -> str:
        return self.symbol

    @classmethod
    def parse(cls, text: str | Pair) -> Pair:
        if isinstance(text, Pair):
            return text
        for sep in ("-", "/"):
            if sep in text:
                base, quote = text.split(sep, 1)
                return cls(Asset(base), Asset(quote.split(":")[0]))
        raise ValueError(f"pairs look like BTC-USDT, got {text!r}")


def asset(symbol: str) -> Asset:
    """An asset by its symbol (``asset("btc")`` is ``BTC``)."""
    return Asset(symbol)


def pair(base: str | Asset, quote: str | Asset) -> Pair:
    """A pair from its base and quote (``pair("BTC", "USDT")`` is ``BTC-USDT``)."""
    return Pair(base if isinstance(base, Asset) else Asset(base), quote if isinstance(quote, Asset) else Asset(quote))


@dataclass(frozen=True)
class OrderBook:
    """Top-N snapshot of one book. ``stale`` is set when the ingestor flagged the stream silent."""

    exchange: str
    pair: Pair
    bids: Sequence[Level]
    asks: Sequence[Level]
    ts: float | None
    seq: int
    stale: bool = False

    @classmethod
    def of(cls, exchange: str, pair: Pair, bids: Sequence[Level], asks: Sequence[Level], ts: float | None,
           seq: int, stale: bool) -> OrderBook:
        """The same as ``OrderBook(...)``, for the one place that builds a book per market-data update
        (``MarketCache.book``): a frozen dataclass's ``__init__`` sets each field through
        ``object.__setattr__`` (2.9 us here), this fills the new instance's dict (1.2 us). Same object, equal
        and hashing alike (tests/strategy/test_types.py holds the two to each other)."""
        book = _new(cls)
        d = book.__dict__
        d["exchange"], d["pair"], d["bids"], d["asks"], d["ts"], d["seq"], d["stale"] = \
            exchange, pair, bids, asks, ts, seq, stale
        return book

    @property
    def best_bid(self) -> Level | None:
        """The highest bid (price and size), None on an empty side."""
        try:
            return self.bids[0]
        except IndexError:
            return None

    @property
    def best_ask(self) -> Level | None:
        """The lowest ask (price and size), None on an empty side."""
        try:
            return self.asks[0]
        except IndexError:
            return None

    @property
    def mid(self) -> Decimal | None:
        """(best bid + best ask) / 2, None unless both sides have a level."""
        if not self.bids or not self.asks:
            return None
        return (self.bids[0].price + self.asks[0].price) / 2

    @property
    def spread(self) -> Decimal | None:
        """best ask - best bid, None unless both sides have a level."""
        if not self.bids or not self.asks:
            return None
        return self.asks[0].price - self.bids[0].price

    def spread_bps(self) -> Decimal | None:
        """The spread in basis points of the mid."""
        mid, spread = self.mid, self.spread
        return None if not mid or spread is None else spread / mid * 10000

    def depth(self, side: str, levels: int | None = None) -> Decimal:
        """Total size on one side ("bid" or "ask"), over the first ``levels`` levels."""
        book = self.bids if side.startswith("b") else self.asks
        return sum((lv.size for lv in book[:levels]), ZERO)

    def vwap(self, side: str, size: Decimal) -> Decimal | None:
        """Average price to take ``size`` from one side ("buy" walks the asks); None if the book is too thin."""
        book = self.asks if side == "buy" else self.bids
        need, cost = D(size), ZERO
        for lv in book:
            take = min(need, lv.size)
            cost += take * lv.price
            need -= take
            if need <= 0:
                return cost / D(size)
        return None


@dataclass(frozen=True)
class Kline:
    t: int  # open time, ms
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    closed: bool


@dataclass(frozen=True)
class Trade:
    id: str
    price: Decimal
    qty: Decimal
    side: str
    ts: float | None


@dataclass(frozen=True)
class Ticker:
    bid: Decimal | None
    ask: Decimal | None
    last: Decimal | None
    volume: Decimal | None
    ts: float | None


@dataclass(frozen=True)
class Funding:
    rate: Decimal
    next_ts: int | None
    mark: Decimal | None
    ts: float | None


@dataclass(frozen=True)
class Position:
    """A strategy's position in one market, as its executor reports it. ``qty`` is 0 when flat (a
    position is never None once the executor's state is known); ``unrealized_pnl`` is None while no mark
    price is known (unknown, not zero)."""

    exchange: str
    market: str
    symbol: str
    qty: Decimal  # signed: negative is short
    avg_price: Decimal
    realized_pnl: Decimal = ZERO
    unrealized_pnl: Decimal | None = ZERO
    fees: Decimal = ZERO
    mark: Decimal | None = None

    @property
    def flat(self) -> bool:
        """True when the position's quantity is 0."""
        return self.qty == 0


@dataclass(frozen=True)
class Order:
    client_id: str
    signal_id: str
    exchange: str
    market: str
    symbol: str
    side: str
    qty: Decimal
    price: Decimal | None
    status: str
    filled: Decimal = ZERO
    avg_price: Decimal | None = None
    extra: dict[str, Any] = field(default_factory=dict)
