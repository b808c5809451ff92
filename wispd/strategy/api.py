"""What a strategy author programs against: ``Strategy``, ``Param``, the ``spot``/``perp`` domains.

    class RsiDip(Strategy):
        params = {"pair": Param(str, "BTC-USDT"), "period": Param(int, 14, min=2), "qty": Param(Decimal, "0.01")}

        def on_start(self, ctx):
            ctx.spot.watch_pair("sim", self.p.pair)

        def run(self, ctx):
            for _ in ctx.every(5):
                value = indicators.rsi(ctx.spot.klines("sim", self.p.pair, "1m", 100), self.p.period)
                ...

The domain objects read the cache the receiver keeps current; nothing here touches a socket.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from wispd.protocol import Topic, interval_seconds, pair_prefix
from wispd.strategy.signals import SignalBuilder
from wispd.strategy.types import D, Funding, Kline, Order, OrderBook, Pair, Position, Ticker, Trade

if TYPE_CHECKING:
    from wispd.strategy.runtime import Runtime, StrategyContext

REQUIRED: Any = object()


class ParamError(ValueError):
    pass


@dataclass(frozen=True)
class Param:
    """A typed strategy parameter, validated before the strategy starts (a bad one exits 78: FATAL)."""

    type: type
    default: Any = REQUIRED
    min: Any = None
    max: Any = None
    choices: tuple[Any, ...] | None = None
    help: str = ""

    def convert(self, name: str, value: Any) -> Any:
        """The configured ``value`` as this parameter's type, checked against min, max and choices (``ParamError`` if not)."""
        try:
            if self.type is Decimal:
                out: Any = D(value)
            elif self.type is bool:
                if not isinstance(value, bool):
                    raise TypeError("expected true or false")
                out = value
            elif self.type is float:
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise TypeError("expected a number")
                out = float(value)
            elif self.type is int:
                if isinstance(value, bool) or not isinstance(value, int):
                    raise TypeError("expected an integer")
                out = value
            elif not isinstance(value, self.type):
                raise TypeError(f"expected {self.type.__name__}")
            else:
                out = value
        except (TypeError, ValueError) as exc:
            raise ParamError(f"parameter {name!r} = {value!r}: {exc}") from None
        if self.min is not None and out < self.min:
            raise ParamError(f"parameter {name!r} = {value!r}: must be at least {self.min}")
        if self.max is not None and out > self.max:
            raise ParamError(f"parameter {name!r} = {value!r}: must be at most {self.max}")
        if self.choices is not None and out not in self.choices:
            raise ParamError(f"parameter {name!r} = {value!r}: must be one of {list(self.choices)}")
        return out


def resolve_params(spec: dict[str, Param], given: dict[str, Any]) -> SimpleNamespace:
    """The validated parameters; a ParamError lists every problem at once (one line each)."""
    values, problems = check_params(spec, given)
    if problems:
        raise ParamError("; ".join(problems))
    return SimpleNamespace(**values)


def check_params(spec: dict[str, Param], given: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Every parameter converted, and every problem found (unknown, missing, wrong type, out of range)."""
    problems = []
    unknown = sorted(set(given) - set(spec))
    if unknown:
        problems.append(f"unknown parameter(s) {unknown}; this strategy takes {sorted(spec)}")
    values = {}
    for name, param in spec.items():
        try:
            if name in given:
                values[name] = param.convert(name, given[name])
            elif param.default is REQUIRED:
                problems.append(f"parameter {name!r} is required ({param.type.__name__})")
            else:
                values[name] = param.convert(name, param.default)
        except ParamError as exc:
            problems.append(str(exc))
    return values, problems


class Strategy:
    """Base class of every strategy. Override ``run``; ``on_start``/``on_stop`` are optional."""

    params: dict[str, Param] = {}
    name: str = ""
    p: SimpleNamespace

    def on_start(self, ctx: StrategyContext) -> None:
        """Watch pairs, warm up. The strategy reports ready after this returns."""

    def run(self, ctx: StrategyContext) -> Any:
        """The strategy's own loop (plain or ``async def``); return when ``ctx`` is cancelled."""
        raise TypeError(f"{type(self).__name__} must define run(self, ctx)")

    def on_stop(self, ctx: StrategyContext) -> None:
        """Called once after run returns (also after a stop request)."""


class Domain:
    """``spot`` or ``perp``: market data and trading state for one market type."""

    def __init__(self, runtime: Runtime, market: str) -> None:
        self._rt = runtime
        self.market = market

    def signal(self, name: str) -> SignalBuilder:
        """Start a signal whose orders are all for this market (``ctx.perp.signal("x").buy(...)`` buys perp)."""
        return SignalBuilder(name, self.market)

    def _key(self, exchange: str, p: Pair | str, channel: str) -> tuple[bytes, Pair]:
        self._rt.check_exchange(exchange)
        pr = Pair.parse(p)
        return Topic(exchange, self.market, pr.symbol, channel).encode(), pr

    def _refused(self, key: bytes, exchange: str, prefixes: list[bytes]) -> None:
        """Raise what the ingestor said when it refused a topic (an unknown pair), after unwatching it."""
        why = self._rt.cache.errors.pop(key, None)
        if why is not None:
            self._rt.receiver.submit("unwatch", exchange=exchange, prefixes=prefixes)
            self._rt.kline_limits.pop(key, None)
            raise ValueError(why)

    def watch_pair(self, exchange: str, p: Pair | str, timeout: float = 10.0) -> bool:
        """Subscribe to the pair's book, trades and ticker (and funding on perp); waits for the first book.

        Returns False if no book arrived within ``timeout`` (the subscription stays; data may come later).
        Raises ValueError for an exchange that is not configured or a pair it does not have (the message
        names the close matches). Call it from ``on_start``: ready is reported after it.
        """
        pr = Pair.parse(p)
        rt = self._rt
        rt.check_exchange(exchange)
        key = Topic(exchange, self.market, pr.symbol, "book").encode()
        event = rt.cache.event(key)
        channels = ["book", "ticker"] + (["funding"] if self.market == "perp" else [])
        rt.receiver.submit("watch", exchange=exchange, prefixes=[pair_prefix(exchange, self.market, pr.symbol)],
                           snapshots=[Topic(exchange, self.market, pr.symbol, c).encode().decode() for c in channels])
        rt.watched.add((exchange, self.market, pr.symbol))
        got = rt.wait_event(event, timeout)
        if key in rt.cache.errors:
            rt.watched.discard((exchange, self.market, pr.symbol))
        self._refused(key, exchange, [pair_prefix(exchange, self.market, pr.symbol)])
        return got

    def unwatch_pair(self, exchange: str, p: Pair | str) -> None:
        """Stop watching the pair (its streams stop when nobody else watches them)."""
        pr = Pair.parse(p)
        self._rt.receiver.submit("unwatch", exchange=exchange,
                                 prefixes=[pair_prefix(exchange, self.market, pr.symbol)])
        self._rt.watched.discard((exchange, self.market, pr.symbol))

    def order_book(self, exchange: str, p: Pair | str) -> OrderBook | None:
        """The newest book of a watched pair (None before the first); ``book.stale`` while its feed is silent."""
        key, pr = self._key(exchange, p, "book")
        return self._rt.cache.book(key, exchange, pr)

    def updates(self, exchange: str, p: Pair | str, timeout: float | None = None) -> Iterator[OrderBook | None]:
        """``for book in ctx.spot.updates(ex, pair):`` wake on every new book of a watched pair (conflated:
        a slow loop gets the newest, never a backlog); with ``timeout``, ``None`` when none came for that
        long. Heartbeats while it waits and ends when the strategy is asked to stop. A pair not watched yet
        is watched first (waiting for nothing would look like a quiet market)."""
        key, pr = self._key(exchange, p, "book")
        rt = self._rt
        if (exchange, self.market, pr.symbol) not in rt.watched:
            self.watch_pair(exchange, pr)
        cache = rt.cache
        cache.wake_keys.add(key)
        last = None
        try:
            while not rt.child.stopping:
                cache.changed.clear()
                raw = cache.raw_books.get(key)
                if raw is not None and raw[2] != last:
                    last = raw[2]
                    rt.service()
                    yield cache.book(key, exchange, pr)
                    continue
                if not rt.wait_event(cache.changed, 3600.0 if timeout is None else timeout) and \
                        timeout is not None and not rt.child.stopping:
                    yield None
        finally:
            cache.wake_keys.discard(key)

    def price(self, exchange: str, p: Pair | str) -> Decimal | None:
        """Mid price from the book (last trade price if there is no book)."""
        book = self.order_book(exchange, p)
        if book is not None and book.mid is not None:
            return book.mid
        trades = self.trades(exchange, p, 1)
        return trades[-1].price if trades else None

    def ticker(self, exchange: str, p: Pair | str) -> Ticker | None:
        """Best bid, best ask, last trade and volume of a watched pair (None before the first)."""
        return self._rt.cache.tickers.get(self._key(exchange, p, "ticker")[0])

    def trades(self, exchange: str, p: Pair | str, limit: int = 100) -> list[Trade]:
        """The last ``limit`` public trades of a watched pair, oldest first."""
        return self._rt.cache.trade_list(self._key(exchange, p, "trades")[0], limit)

    def klines(self, exchange: str, p: Pair | str, interval: str = "1m", limit: int = 100,
               timeout: float = 10.0) -> list[Kline]:
        """The last ``limit`` candles (oldest first, the current open one last), any interval.

        The first call for an interval subscribes to its stream and backfills history from the ingestor.
        ``interval`` is a number and a unit (s, m, h, d, w, M): 1m, 15m, 4h, 1d; anything else, or a pair the
        exchange does not have, raises ValueError.
        """
        interval_seconds(interval)
        key, pr = self._key(exchange, p, f"kline.{interval}")
        rt = self._rt
        rt.check_exchange(exchange)
        have = rt.kline_limits.get(key, 0)
        if have < limit:
            rt.kline_limits[key] = limit
            done = threading.Event()
            prefixes = [key + b" "]
            rt.receiver.submit("watch", exchange=exchange, prefixes=prefixes, snapshots=[])
            rt.receiver.submit("history", exchange=exchange, topic=key.decode(), limit=max(limit, 200), done=done)
            rt.wait_event(done, timeout)
            self._refused(key, exchange, prefixes)
        return rt.cache.kline_list(key, limit)

    def funding_rate(self, exchange: str, p: Pair | str) -> Funding | None:
        """The perp's current funding rate, next funding time and mark (perp domain only)."""
        if self.market != "perp":
            raise AttributeError("funding_rate is a perp feature")
        return self._rt.cache.funding.get(self._key(exchange, p, "funding")[0])

    def position(self, exchange: str, p: Pair | str) -> Position:
        """This strategy's position in the pair: qty 0 when flat, never None (on_start runs only once the
        executor's state is known)."""
        symbol = Pair.parse(p).symbol
        held = self._rt.cache.positions.get((exchange, self.market, symbol))
        return held if held is not None else Position(exchange, self.market, symbol, D(0), D(0))

    def positions(self) -> list[Position]:
        """This strategy's open positions in this market (flat ones left out)."""
        return [pos for (_, m, _), pos in self._rt.cache.positions.items() if m == self.market and pos.qty != 0]

    def open_orders(self, p: Pair | str | None = None) -> list[Order]:
        """This strategy's working orders on this market (of one pair, when given), armed ones included."""
        symbol = Pair.parse(p).symbol if p is not None else None
        return [o for o in self._rt.cache.orders.values() if o.market == self.market
                and o.status in ("armed", "intent", "accepted", "open", "partially_filled")
                and (symbol is None or o.symbol == symbol)]
