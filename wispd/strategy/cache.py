"""The strategy process's local cache of market data and execution state.

The receiver thread writes, strategy code reads. Writes replace whole immutable values (or append to
bounded deques), so readers never see a half-updated object. Books are kept as the raw wire body and
turned into ``OrderBook`` (with Decimals) only when read, once per update: a strategy that looks at the
book twice a second does not pay for converting 50 updates a second.
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from decimal import Decimal
from typing import Any

from wispd.levels import Levels
from wispd.protocol import Topic, to_decimal
from wispd.strategy.types import Funding, Kline, Order, OrderBook, Pair, Position, Ticker, Trade

KLINES_KEPT = 1500
TRADES_KEPT = 1000


def _d(value: Any) -> Decimal | None:
    return to_decimal(value)


def kline_from(body: dict[str, Any]) -> Kline | None:
    vals = [_d(body.get(k)) for k in ("o", "h", "l", "c", "v")]
    if any(v is None for v in vals) or not isinstance(body.get("t"), int):
        return None
    o, h, low, c, v = vals
    return Kline(body["t"], o, h, low, c, v, bool(body.get("closed")))  # type: ignore[arg-type]


class MarketCache:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.raw_books: dict[bytes, tuple[dict[str, Any], float | None, int]] = {}
        self.wake_keys: set[bytes] = set()  # topics a strategy waits on (Domain.updates): set ``changed``
        self.changed = threading.Event()
        self._books: dict[bytes, OrderBook] = {}
        self.tickers: dict[bytes, Ticker] = {}
        self.funding: dict[bytes, Funding] = {}
        self.trades: dict[bytes, deque[dict[str, Any]]] = {}  # raw wire trades; converted when read
        self.klines: dict[bytes, dict[int, Kline]] = {}
        self.stale: set[bytes] = set()
        self.first: dict[bytes, threading.Event] = {}
        self.errors: dict[bytes, str] = {}  # topic -> why the ingestor refused it (unknown pair, interval)
        self.seen: set[bytes] = set()  # topics that have had data (their first-data events are set)
        self.last_seq: dict[bytes, tuple[int, int]] = {}
        self.gaps: Counter[bytes] = Counter()  # per topic
        self.received: dict[bytes, int] = {}  # per topic
        self.dropped = 0
        self.resyncs = 0
        self.trades_received = 0  # trades decoded into the cache (a frame can carry many)
        # execution state, from the executor's reports (the first state report sets ``state_known``)
        self.orders: dict[str, Order] = {}
        self.positions: dict[tuple[str, str, str], Position] = {}
        self.balances: dict[str, Decimal] = {}
        self.available: dict[str, Decimal] = {}
        self.reserved: dict[str, Decimal] = {}
        self.allocation: dict[str, Decimal] = {}
        self.pnl: dict[str, Decimal | None] = {}
        self.halted: str | None = None
        self.state_known = threading.Event()
        self.state_seq = 0

    def event(self, key: bytes) -> threading.Event:
        with self.lock:
            ev = self.first.setdefault(key, threading.Event())
            if key in self.seen:
                ev.set()
            return ev

    # ------------------------------------------------------------------ writes (receiver thread)
    def sequence(self, key: bytes, channel: str, epoch: int, seq: int) -> str:  # noqa: ARG002
        """Track (epoch, seq) per topic: returns "ok", "gap" or "epoch" (the ingestor restarted)."""
        last = self.last_seq.get(key)
        self.last_seq[key] = (epoch, seq)
        if last is None or (seq == last[1] + 1 and last[0] == epoch):
            return "ok"
        if last[0] != epoch:
            self.resyncs += 1
            return "epoch"
        if seq > last[1] + 1 and channel not in ("book", "ticker"):
            self.gaps[key] += seq - last[1] - 1  # books and tickers are full snapshots: a skip loses nothing
        return "gap"

    def apply(self, key: bytes, topic: Topic, env: dict[str, Any]) -> None:
        kind, body, ts = env["kind"], env["body"], env.get("ts_exch")
        self.received[key] = self.received.get(key, 0) + 1
        if kind == "stale":
            (self.stale.add if body.get("stale") else self.stale.discard)(key)
            return
        if self.stale:
            self.stale.discard(key)
        if kind == "trades":
            dq = self.trades.get(key)
            if dq is None:
                dq = self.trades[key] = deque(maxlen=TRADES_KEPT)
            trades = body.get("trades")
            if type(trades) is list:
                dq.extend(trades)
                self.trades_received += len(trades)
        elif kind == "book":
            self.raw_books[key] = (body, ts, env["seq"])
            if key in self.wake_keys and not self.changed.is_set():
                self.changed.set()
        elif kind == "ticker":
            self.tickers[key] = Ticker(_d(body.get("bid")), _d(body.get("ask")), _d(body.get("last")),
                                       _d(body.get("volume")), ts)
        elif kind == "funding":
            rate = _d(body.get("rate"))
            if rate is not None:
                self.funding[key] = Funding(rate, body.get("next_ts"), _d(body.get("mark")), ts)
        elif kind == "kline":
            k = kline_from(body)
            if k is not None:
                self.merge_klines(key, [k])
        if key not in self.seen:
            self.seen.add(key)
            ev = self.first.get(key)
            if ev is not None:
                ev.set()

    def merge_klines(self, key: bytes, klines: list[Kline]) -> None:
        with self.lock:
            current = dict(self.klines.get(key, {}))
            for k in klines:
                current[k.t] = k
            if len(current) > KLINES_KEPT:
                for t in sorted(current)[:-KLINES_KEPT]:
                    del current[t]
            self.klines[key] = current

    # ------------------------------------------------------------------ reads (strategy thread)
    def book(self, key: bytes, exchange: str, pair: Pair) -> OrderBook | None:
        raw = self.raw_books.get(key)
        if raw is None:
            return None
        body, ts, seq = raw
        cached = self._books.get(key)
        stale = key in self.stale
        if cached is not None and cached.seq == seq and cached.stale == stale:
            return cached

        bids, asks = body.get("bids"), body.get("asks")
        book = OrderBook.of(exchange, pair, Levels(bids if type(bids) is list else []),
                            Levels(asks if type(asks) is list else []), ts, seq, stale)
        self._books[key] = book
        return book

    def trade_list(self, key: bytes, limit: int) -> list[Trade]:
        raw = list(self.trades.get(key) or ())[-limit:]
        out = []
        for t in raw:
            if isinstance(t, dict):
                px, qty = _d(t.get("px")), _d(t.get("qty"))
                if px is not None and qty is not None:
                    out.append(Trade(str(t.get("id")), px, qty, str(t.get("side")), t.get("ts")))
        return out

    def kline_list(self, key: bytes, limit: int) -> list[Kline]:
        data = self.klines.get(key) or {}
        return [data[t] for t in sorted(data)][-limit:]
