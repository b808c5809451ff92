"""Fan-out of market data: one XPUB socket, per-topic sequence numbers, and the latest message per topic.

XPUB (not PUB) so subscriptions reach the ingestor: libzmq delivers a topic's first subscription and its
last unsubscription (reference counted across subscriber processes, including ones that die), which is
exactly "start streams when someone watches a pair, stop them when the last watcher leaves".

A slow subscriber never blocks the ingestor: XPUB drops at the high-water mark, per subscriber. Drops are
visible to the subscriber as sequence gaps (every message carries ``epoch`` and ``seq``).

Coalescing (``coalesce_ms``, default 1 ms; 0 turns it off): a topic that sent a frame less than a window
ago does not send another at once; what arrives meanwhile waits, at most one window, and goes out as one
frame: trades are appended to one ``trades`` list, books, tickers and funding keep only the newest (every
book frame is a full top-N snapshot, so nothing is lost). A quiet topic's update goes out immediately, so
the latency cost is paid only by topics busier than one frame per window, and there it buys what keeps
every subscriber ahead of the stream: one decode per window instead of one per update. Klines (a closed
candle must not be replaced by the next one) and stale flags are never held; a held frame of the same
topic goes out before them, so order per topic is kept.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import zmq

from wispd import protocol

SNDHWM = 10_000


COALESCED = frozenset({"trades", "book", "ticker", "funding"})
Schedule = Callable[[float, Callable[[], None]], object]


class MdPublisher:
    def __init__(self, sock: zmq.Socket, source: str, coalesce_ms: float = 0.0,
                 schedule: Schedule | None = None, on_sent: Callable[[], None] | None = None) -> None:
        self.sock = sock
        self.on_sent = on_sent  # after every send (the ingestor checks for subscriptions a send may hide)
        self.source = source
        self.window = coalesce_ms / 1000
        self.schedule = schedule  # runs flush_due after a delay (the ingestor's event loop call_later)
        self.pending: dict[bytes, list[Any]] = {}  # topic -> [kind, body, ts_exch]
        self.last_sent: dict[bytes, float] = {}
        self.due_at: float | None = None
        self.coalesced = 0  # updates that went out inside another update's frame
        # A new epoch per process start: subscribers see a restart as an epoch change, not a gap.
        self.epoch = int(time.time() * 1000) * 1000 + os.getpid() % 1000
        self.seq: dict[bytes, int] = {}
        self.latest: dict[bytes, bytes] = {}  # topic -> last frame (served by the snapshot endpoint)
        self.sent = 0
        self.by_kind: dict[str, int] = {}
        self.by_topic: dict[bytes, int] = {}

    def publish(self, topic: bytes, kind: str, body: dict[str, Any], ts_exch: float | None) -> None:
        if self.window <= 0:
            self._send(topic, kind, body, ts_exch)
            return
        held = self.pending.get(topic)
        if kind not in COALESCED:
            if held is not None:
                self._send(topic, *self.pending.pop(topic))
            self._send(topic, kind, body, ts_exch)
            return
        if held is not None:
            self.coalesced += 1
            if kind == "trades" and held[0] == "trades":
                held[1]["trades"].extend(body.get("trades") or [])
                held[2] = ts_exch
            else:
                held[:] = [kind, body, ts_exch]
            return
        now = time.monotonic()
        if now - self.last_sent.get(topic, -1e9) >= self.window:
            self._send(topic, kind, body, ts_exch)
            return
        if kind == "trades":
            body = {**body, "trades": list(body.get("trades") or [])}  # ours to extend
        self.pending[topic] = [kind, body, ts_exch]
        if self.due_at is None:
            self.due_at = now + self.window
            if self.schedule is not None:
                self.schedule(self.window, self.flush_due)

    def flush_due(self) -> None:
        """Send every held frame (each waited at most one window)."""
        self.due_at = None
        pending, self.pending = self.pending, {}
        for topic, (kind, body, ts_exch) in pending.items():
            self._send(topic, kind, body, ts_exch)

    def _send(self, topic: bytes, kind: str, body: dict[str, Any], ts_exch: float | None) -> None:
        if self.window > 0:
            self.last_sent[topic] = time.monotonic()
        seq = self.seq.get(topic, 0) + 1
        self.seq[topic] = seq
        frame = protocol.md_frame(topic, kind, self.source, self.epoch, seq, ts_exch, body)
        if kind != "stale":
            self.latest[topic] = frame
        try:
            self.sock.send(frame, zmq.NOBLOCK)
        except zmq.Again:  # XPUB does not block per subscriber; Again only if the socket itself is full
            pass
        if self.on_sent is not None:
            self.on_sent()
        self.sent += 1
        self.by_kind[kind] = self.by_kind.get(kind, 0) + 1
        self.by_topic[topic] = self.by_topic.get(topic, 0) + 1

    def snapshot(self, topic: bytes) -> dict[str, Any] | None:
        if topic in self.pending:
            self._send(topic, *self.pending.pop(topic))  # the newest state, not the last frame sent
        frame = self.latest.get(topic)
        parsed = protocol.parse_md_frame(frame) if frame else None
        return parsed[1] if parsed else None

    @staticmethod
    def subscription_events(frames: list[bytes], on_sub: Callable[[bytes], None],
                            on_unsub: Callable[[bytes], None]) -> None:
        """XPUB delivers b"\\x01<prefix>" for a subscribe and b"\\x00<prefix>" for an unsubscribe."""
        for frame in frames:
            if frame[:1] == b"\x01":
                on_sub(frame[1:])
            elif frame[:1] == b"\x00":
                on_unsub(frame[1:])
