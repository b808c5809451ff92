"""The executor's view of the market-data plane: market rules and books from the ingestors.

Rules (tick, step, minimums, fees) and a first book come from the ingestor's snapshot endpoint the first
time a symbol is traded; from then on its book and trades are followed over PUB/SUB and fed to the venue
(the paper engine matches against them; live uses the mid for collars and market-order references).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import zmq

from wispd import protocol
from wispd.execution.checks import MarketRules, Reject
from wispd.execution.journal import now_ms
from wispd.execution.orders import Event
from wispd.execution.paper import parse_levels
from wispd.protocol import Topic

MarketKey = tuple[str, str, str]  # exchange, market, symbol


class MarketData:
    """Mixed into the executor; uses its ``zctx``, ``exchanges``, ``subs``, ``rules``, ``engine``."""

    zctx: zmq.Context
    ctx: Any
    exchanges: dict[str, dict[str, str]]
    subs: dict[str, zmq.Socket]
    rules: dict[MarketKey, MarketRules]
    fee_override: tuple[Any, Any]
    engine: Any
    bad_frames: int
    idle: Callable[[], None]
    _apply_events: Callable[[list[Event]], None]

    def _fees(self, exchange: str, symbol: str) -> tuple[Decimal, Decimal]:
        rules = next((r for (ex, _, sym), r in self.rules.items() if ex == exchange and sym == symbol), None)
        maker = Decimal(self.fee_override[0]) if self.fee_override[0] else (rules.maker_fee if rules else Decimal(0))
        taker = Decimal(self.fee_override[1]) if self.fee_override[1] else (rules.taker_fee if rules else Decimal(0))
        return maker, taker

    def _request(self, exchange: str, op: str, timeout: float = 3.0, **fields: Any) -> dict[str, Any]:
        sock = self.zctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        try:
            self.ctx.credentials.client(sock, self.exchanges[exchange]["snapshot"], plain=False)
            sock.connect(self.exchanges[exchange]["snapshot"])
            rid, frame = protocol.snap_request(op, **fields)
            sock.send(frame)
            end = time.monotonic() + timeout
            while (left := end - time.monotonic()) > 0:
                self.idle()
                if sock.poll(int(min(left, 0.1) * 1000) + 1):
                    reply = protocol.loads_dict(sock.recv()) or {}
                    if reply.get("id") == rid:
                        return reply
            return {"ok": False, "error": f"ingestor of {exchange} did not answer {op}"}
        finally:
            sock.close()

    def ensure_market(self, key: MarketKey) -> MarketRules:
        """Rules and a first book for a symbol, fetched once; its book and trades are followed from then on."""
        if key in self.rules:
            return self.rules[key]
        exchange, market, symbol = key
        reply = self._request(exchange, "markets", symbols=[[market, symbol]])
        raw = (reply.get("markets") or {}).get(f"{market}:{symbol}") if reply.get("ok") else None
        if raw is None:
            raise Reject("unknown_symbol", f"{exchange} has no {market} market {symbol}")
        rules = self.rules[key] = MarketRules.from_wire(raw)
        for channel in ("book", "trades"):
            self.subs[exchange].setsockopt(zmq.SUBSCRIBE, Topic(exchange, market, symbol, channel).encode() + b" ")
        snap = self._request(exchange, "snapshot", topic=Topic(exchange, market, symbol, "book").encode().decode())
        env = snap.get("envelope")
        if protocol.valid_envelope(env):
            self._apply_events(self.engine.on_book(key, parse_levels(env["body"].get("bids")),
                                                   parse_levels(env["body"].get("asks")), now_ms()))
        return rules

    def _market_data(self, sock: zmq.Socket) -> list[Event]:
        events: list[Event] = []
        latest_books: dict[bytes, dict[str, Any]] = {}
        for _ in range(5000):
            try:
                frame = sock.recv(zmq.NOBLOCK)
            except zmq.Again:
                break
            parsed = protocol.parse_md_frame(frame)
            topic = protocol.parse_topic(parsed[0]) if parsed else None
            if parsed is None or topic is None:
                self.bad_frames += 1
                continue
            key = (topic.exchange, topic.market, topic.symbol)
            env = parsed[1]
            if env["kind"] == "book":
                latest_books[parsed[0]] = env
            elif env["kind"] == "trades":
                trades = []
                for t in env["body"].get("trades") or []:
                    px, qty = protocol.to_decimal(t.get("px")), protocol.to_decimal(t.get("qty"))
                    if px is not None and qty is not None:
                        trades.append((px, qty))
                events += self.engine.on_trades(key, trades, now_ms())
        for topic_bytes, env in latest_books.items():
            topic = protocol.parse_topic(topic_bytes)
            assert topic is not None
            events += self.engine.on_book((topic.exchange, topic.market, topic.symbol),
                                          parse_levels(env["body"].get("bids")), parse_levels(env["body"].get("asks")),
                                          now_ms())
        return events

    def _marks(self) -> dict[MarketKey, Decimal]:
        return {k: m for k in self.engine.books if (m := self.engine.mid(k)) is not None}

