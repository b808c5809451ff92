"""The executor's reports socket: execution reports and state snapshots to each strategy.

It is an XPUB in manual mode, so the executor sees each strategy (re)subscribe and decides what it gets:
a connection authenticated as strategy S (see ``wispd/auth.py``) is subscribed to ``exec.S`` and to
nothing else, whatever it asks for, so no process can read another strategy's reports. A strategy's SUB socket reconnects to a
restarted executor on its own schedule (and not before it has read what it had queued), so reports made
before that (reconciliation's) are held for that strategy, up to ``HOLD_S`` after the bind, and sent
when its subscription arrives, instead of reaching nobody.
"""

from __future__ import annotations

import time
from typing import Any

import zmq

from wispd import protocol
from wispd.auth import ServerKeys, user_id
from wispd.execution.journal import now_ms
from wispd.transport import bind, limits

HOLD_S = 15.0


def report_frame(source: str, seq: int, strategy: str, kind: str, body: dict[str, Any]) -> bytes:
    """One frame of a strategy's report stream (``exec.<strategy> `` + envelope), live and in a backtest."""
    env = {"v": 1, "kind": kind, "src": source, "seq": seq, "ts": now_ms(), "body": body}
    return f"exec.{strategy} ".encode() + protocol.dumps(env)


class ReportPublisher:
    def __init__(self, zctx: zmq.Context, endpoint: str, source: str, keys: ServerKeys) -> None:
        self.source = source
        self.sock = limits(zctx.socket(zmq.XPUB), max_msg=1024, sndhwm=100_000, linger=1000)
        self.sock.setsockopt(zmq.XPUB_VERBOSE, 1)
        self.sock.setsockopt(zmq.XPUB_MANUAL, 1)
        keys.server(self.sock, endpoint)
        bind(self.sock, endpoint)
        self.refused = 0  # subscriptions to someone else's reports
        self.since = time.monotonic()
        self.seq = 0
        self.listeners: set[str] = set()
        self.held: dict[str, list[bytes]] = {}

    def publish(self, strategy: str, kind: str, body: dict[str, Any]) -> None:
        self.seq += 1
        frame = report_frame(self.source, self.seq, strategy, kind, body)
        if strategy not in self.listeners and time.monotonic() - self.since < HOLD_S:
            self.held.setdefault(strategy, []).append(frame)
            return
        self.sock.send(frame, zmq.NOBLOCK)

    def subscriptions(self) -> list[str]:
        """Read (un)subscriptions; anything held for a strategy that just subscribed goes out now. Returns
        the strategies that (re)subscribed (each gets its state at once)."""
        joined: list[str] = []
        while True:
            try:
                frame = self.sock.recv(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                break
            msg, user = frame.bytes, user_id(frame)
            topic = msg[1:]
            if user is None or topic.rstrip(b" ") != f"exec.{user}".encode():
                self.refused += msg[:1] == b"\x01"
                continue  # only its own reports, whatever a connection asks for
            name = user
            if msg[:1] == b"\x01":
                self.sock.setsockopt(zmq.SUBSCRIBE, topic)
                self.listeners.add(name)
                joined.append(name)
                for frame in self.held.pop(name, []):
                    self.sock.send(frame, zmq.NOBLOCK)
            else:
                self.sock.setsockopt(zmq.UNSUBSCRIBE, topic)
                self.listeners.discard(name)
        if self.held and time.monotonic() - self.since >= HOLD_S:
            for frames in self.held.values():
                for frame in frames:
                    self.sock.send(frame, zmq.NOBLOCK)
            self.held = {}
        return joined
