"""The executor's reports socket: execution reports and state snapshots to each strategy.

It is an XPUB, so the executor sees each strategy (re)subscribe. A strategy's SUB socket reconnects to a
restarted executor on its own schedule (and not before it has read what it had queued), so reports made
before that (reconciliation's) are held for that strategy, up to ``HOLD_S`` after the bind, and sent
when its subscription arrives, instead of reaching nobody.
"""

from __future__ import annotations

import time
from typing import Any

import zmq

from wispd import protocol
from wispd.execution.journal import now_ms
from wispd.transport import bind

HOLD_S = 15.0


class ReportPublisher:
    def __init__(self, zctx: zmq.Context, endpoint: str, source: str) -> None:
        self.source = source
        self.sock = zctx.socket(zmq.XPUB)
        self.sock.setsockopt(zmq.XPUB_VERBOSE, 1)
        self.sock.setsockopt(zmq.SNDHWM, 100_000)
        self.sock.setsockopt(zmq.LINGER, 1000)
        bind(self.sock, endpoint)
        self.since = time.monotonic()
        self.seq = 0
        self.listeners: set[str] = set()
        self.held: dict[str, list[bytes]] = {}

    def publish(self, strategy: str, kind: str, body: dict[str, Any]) -> None:
        self.seq += 1
        env = {"v": 1, "kind": kind, "src": self.source, "seq": self.seq, "ts": now_ms(), "body": body}
        frame = f"exec.{strategy} ".encode() + protocol.dumps(env)
        if strategy not in self.listeners and time.monotonic() - self.since < HOLD_S:
            self.held.setdefault(strategy, []).append(frame)
            return
        self.sock.send(frame, zmq.NOBLOCK)

    def subscriptions(self) -> None:
        """Read (un)subscriptions; anything held for a strategy that just subscribed goes out now."""
        while True:
            try:
                msg = self.sock.recv(zmq.NOBLOCK)
            except zmq.Again:
                break
            topic = msg[1:].decode("utf-8", "replace").strip()
            if not topic.startswith("exec."):
                continue
            name = topic[len("exec."):]
            if msg[:1] == b"\x01":
                self.listeners.add(name)
                for frame in self.held.pop(name, []):
                    self.sock.send(frame, zmq.NOBLOCK)
            else:
                self.listeners.discard(name)
        if self.held and time.monotonic() - self.since >= HOLD_S:
            for frames in self.held.values():
                for frame in frames:
                    self.sock.send(frame, zmq.NOBLOCK)
            self.held = {}
