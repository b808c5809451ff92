"""Fan-out of market data: one XPUB socket, per-topic sequence numbers, and the latest message per topic.

XPUB (not PUB) so subscriptions reach the ingestor: libzmq delivers a topic's first subscription and its
last unsubscription (reference counted across subscriber processes, including ones that die), which is
exactly "start streams when someone watches a pair, stop them when the last watcher leaves".

A slow subscriber never blocks the ingestor: XPUB drops at the high-water mark, per subscriber. Drops are
visible to the subscriber as sequence gaps (every message carries ``epoch`` and ``seq``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import zmq

from wispd import protocol

SNDHWM = 10_000


class MdPublisher:
    def __init__(self, sock: zmq.Socket, source: str) -> None:
        self.sock = sock
        self.source = source
        # A new epoch per process start: subscribers see a restart as an epoch change, not a gap.
        self.epoch = int(time.time() * 1000) * 1000 + os.getpid() % 1000
        self.seq: dict[bytes, int] = {}
        self.latest: dict[bytes, bytes] = {}  # topic -> last frame (served by the snapshot endpoint)
        self.sent = 0
        self.by_kind: dict[str, int] = {}
        self.by_topic: dict[bytes, int] = {}

    def publish(self, topic: bytes, kind: str, body: dict[str, Any], ts_exch: float | None) -> None:
        seq = self.seq.get(topic, 0) + 1
        self.seq[topic] = seq
        frame = protocol.md_frame(topic, kind, self.source, self.epoch, seq, ts_exch, body)
        if kind != "stale":
            self.latest[topic] = frame
        try:
            self.sock.send(frame, zmq.NOBLOCK)
        except zmq.Again:  # XPUB does not block per subscriber; Again only if the socket itself is full
            pass
        self.sent += 1
        self.by_kind[kind] = self.by_kind.get(kind, 0) + 1
        self.by_topic[topic] = self.by_topic.get(topic, 0) + 1

    def snapshot(self, topic: bytes) -> dict[str, Any] | None:
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
