"""The executor's view of the market-data plane: market rules and books from the ingestors.

Rules (tick, step, minimums, fees) and a first book come from the ingestor's snapshot endpoint the first
time a market is traded (or, after a restart, for every market with a position or a working order); from
then on its book and trades (and, for perps, the funding stream's mark price) are followed over PUB/SUB.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any, NamedTuple

import zmq

from wispd import protocol
from wispd.auth import Credentials
from wispd.execution.checks import MarketRules, Reject
from wispd.execution.paper import Levels, parse_levels
from wispd.protocol import Topic
from wispd.transport import limits

MarketKey = tuple[str, str, str]  # exchange, market, symbol
MD_MAX_BYTES = 16 * 1024 * 1024  # a market-data frame from an ingestor (a coalesced burst of trades)


class MarketFeed:
    """SUB sockets to every exchange's ingestor and DEALER requests to its snapshot endpoint."""

    def __init__(self, zctx: zmq.Context, exchanges: dict[str, dict[str, str]], credentials: Credentials,
                 idle: Callable[[], None], first_book: Callable[[MarketKey, Levels, Levels], None]) -> None:
        self.zctx, self.exchanges, self.credentials = zctx, exchanges, credentials
        self.idle = idle  # heartbeat (and stop check) while a request waits
        self.first_book = first_book
        self.followed: set[MarketKey] = set()
        self.bad_frames = 0
        self.subs: dict[str, zmq.Socket] = {}
        for name, eps in exchanges.items():
            sub = limits(zctx.socket(zmq.SUB), max_msg=MD_MAX_BYTES, rcvhwm=100_000)
            credentials.client(sub, eps["pub"], plain=False)
            sub.connect(eps["pub"])
            self.subs[name] = sub

    def _request(self, exchange: str, op: str, timeout: float = 3.0, **fields: Any) -> dict[str, Any]:
        sock = self.zctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        try:
            self.credentials.client(sock, self.exchanges[exchange]["snapshot"], plain=False)
            sock.connect(self.exchanges[exchange]["snapshot"])
            rid, frame = protocol.snap_request(op, **fields)
            sock.send(frame)
            end = time.monotonic() + timeout
            while (left := end - time.monotonic()) > 0:
                self.idle()
                if sock.poll(int(min(left, 0.1) * 1000) + 1):
                    reply = protocol.loads_dict(sock.recv_multipart()[-1]) or {}
                    if reply.get("id") == rid:
                        return reply
            return {"ok": False, "error": f"ingestor of {exchange} did not answer {op}"}
        finally:
            sock.close()

    def rules(self, key: MarketKey) -> MarketRules:
        """Rules of a market from its ingestor (first use); the market is followed from then on."""
        exchange, market, symbol = key
        if exchange not in self.exchanges:
            raise Reject("unknown_exchange", f"this account does not trade on {exchange!r}")
        reply = self._request(exchange, "markets", symbols=[[market, symbol]])
        if not reply.get("ok"):
            raise Reject("no_market_data", f"the ingestor of {exchange} cannot say what {symbol} is "
                         f"({reply.get('error')})")
        raw = (reply.get("markets") or {}).get(f"{market}:{symbol}")
        if raw is None:
            raise Reject("unknown_symbol", f"{exchange} has no {market} market {symbol}")
        self.follow(key)
        return MarketRules.from_wire(raw)

    def follow(self, key: MarketKey) -> None:
        """Subscribe to a market's book and trades (and mark, for perps) and apply a first book now."""
        if key in self.followed or key[0] not in self.subs:
            return
        self.followed.add(key)
        exchange, market, symbol = key
        channels = ("book", "trades", "funding") if market == "perp" else ("book", "trades")
        for channel in channels:
            self.subs[exchange].setsockopt(zmq.SUBSCRIBE, Topic(exchange, market, symbol, channel).encode() + b" ")
        snap = self._request(exchange, "snapshot", topic=Topic(exchange, market, symbol, "book").encode().decode())
        env = snap.get("envelope")
        if protocol.valid_envelope(env):
            self.first_book(key, parse_levels(env["body"].get("bids")), parse_levels(env["body"].get("asks")))

    def drain(self, sock: zmq.Socket) -> Parsed:
        """Everything queued on one SUB: the newest book per market, every trade, the newest mark and funding."""
        frames = []
        for _ in range(5000):
            try:
                frames.append(sock.recv(zmq.NOBLOCK))
            except zmq.Again:
                break
        parsed = parse_frames(frames)
        self.bad_frames += parsed.bad
        return parsed

    def close(self) -> None:
        for sock in self.subs.values():
            sock.close()


class Parsed(NamedTuple):
    books: dict[MarketKey, tuple[Levels, Levels]]
    trades: list[tuple[MarketKey, list[tuple[Decimal, Decimal]]]]
    marks: dict[MarketKey, Decimal]
    funding: dict[MarketKey, tuple[Decimal, int, Decimal]]  # rate, next funding time (ms), mark
    bad: int


def parse_frames(frames: list[bytes]) -> Parsed:
    """What the executor takes from market-data frames: the newest book per market, every trade, the newest
    mark and funding, and how many frames were malformed (live: one drained batch; a backtest: one frame)."""
    books: dict[MarketKey, dict[str, Any]] = {}
    trades: list[tuple[MarketKey, list[tuple[Decimal, Decimal]]]] = []
    marks: dict[MarketKey, Decimal] = {}
    funding: dict[MarketKey, tuple[Decimal, int, Decimal]] = {}
    bad = 0
    for frame in frames:
        parsed = protocol.parse_md_frame(frame)
        topic = protocol.parse_topic(parsed[0]) if parsed else None
        if parsed is None or topic is None:
            bad += 1
            continue
        key = (topic.exchange, topic.market, topic.symbol)
        env = parsed[1]
        if env["kind"] == "book":
            books[key] = env
        elif env["kind"] == "trades":
            batch = []
            for t in env["body"].get("trades") or []:
                if not isinstance(t, dict):
                    continue
                px, qty = protocol.to_decimal(t.get("px")), protocol.to_decimal(t.get("qty"))
                if px is not None and qty is not None and px > 0 and qty > 0:
                    batch.append((px, qty))
            if batch:
                trades.append((key, batch))
        elif env["kind"] == "funding":
            mark = protocol.to_decimal(env["body"].get("mark"))
            if mark is not None and mark > 0:
                marks[key] = mark
                rate, nxt = protocol.to_decimal(env["body"].get("rate")), env["body"].get("next_ts")
                if rate is not None and type(nxt) is int and abs(rate) < 1:
                    funding[key] = (rate, nxt, mark)
    return Parsed({k: (parse_levels(e["body"].get("bids")), parse_levels(e["body"].get("asks")))
                   for k, e in books.items()}, trades, marks, funding, bad)
