"""What a child process sees of the supervisor: ``ChildContext``.

Every child kind's entry point is ``main(ctx: ChildContext) -> int | None``. Through ``ctx`` it reports
readiness and status, heartbeats and learns that it must stop (a drain request over the link, or SIGTERM).

Heartbeats are sent from the child's own loop (``ctx.wait``/``ctx.beat``), never from a side thread: a
heartbeat then proves the loop is alive, so a hung or SIGSTOPped child goes silent and is replaced.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import zmq

from wispd import protocol
from wispd.auth import Credentials, ServerKeys
from wispd.logs import EventLogger


class ChildContext:
    """The link from one child process to its supervisor, plus the child's identity and arguments."""

    def __init__(self, boot: dict[str, Any], log: EventLogger) -> None:
        self.name: str = boot["name"]
        self.kind: str = boot["kind"]
        self.generation: int = boot["gen"]
        self.args: dict[str, Any] = boot.get("args") or {}
        self.config_path = Path(boot["config_path"]) if boot.get("config_path") else None
        self.run_dir = Path(boot["run_dir"])
        self.state_dir = Path(boot["state_dir"])
        self.heartbeat_interval: float = boot.get("heartbeat_interval", 1.0)
        auth = boot.get("auth") or {}
        self.credentials = Credentials.from_boot(auth.get("client"))  # what this child presents
        self.server_keys = ServerKeys.from_boot(auth.get("server"))  # how it checks clients (servers only)
        self.secrets: dict[str, str] = dict(boot.get("secrets") or {})  # its own secret variables, if any
        self.log = log
        self.stop_reason: str | None = None
        self.commands: list[dict[str, Any]] = []  # operator commands relayed by wispd (halt, resume)
        self._last_beat = 0.0
        self._zmq = zmq.Context()
        self._link = self._zmq.socket(zmq.DEALER)
        self._link.setsockopt(zmq.IDENTITY, protocol.link_identity(self.name, self.generation, boot.get("nonce", "")))
        self._link.setsockopt(zmq.LINGER, 2000)
        self._link.setsockopt(zmq.SNDHWM, 1000)
        self._link.connect(boot["link_endpoint"])
        self._send(protocol.LINK_HELLO, pid=os.getpid())
        signal.signal(signal.SIGTERM, self._on_sigterm)

    # ------------------------------------------------------------------ reporting
    def _send(self, kind: str, **fields: Any) -> None:
        try:
            self._link.send(protocol.link_message(kind, **fields), zmq.NOBLOCK)
        except zmq.Again:
            return  # the supervisor is gone or swamped; it will judge us by our silence
        # Any message tells the supervisor this process is alive (it refreshes last_seen on each), so the
        # next heartbeat is due a full interval after it: a child sending its metrics every second sends
        # one message a second, not two (100 children: half the supervisor's link traffic).
        self._last_beat = time.monotonic()

    def ready(self, **fields: Any) -> None:
        """Tell the supervisor this child is ready (it moves STARTING -> RUNNING)."""
        self._send(protocol.LINK_READY, **fields)
        self.log.info("ready", **fields)

    def status(self, phase: str, summary: str = "", **fields: Any) -> None:
        """Publish a status line (shown by ``wispctl status``; the supervisor keeps a short history)."""
        self._send(protocol.LINK_STATUS, phase=phase, summary=summary, fields=fields, ts=time.time())

    def metrics(self, snapshot: dict[str, Any]) -> None:
        self._send(protocol.LINK_METRICS, m=snapshot)

    def exiting(self, error: str) -> None:
        """Say why this process is about to exit (shown in ``wispctl status`` next to the exit code)."""
        self._send(protocol.LINK_EXIT, error=error[:500])

    def draining(self, extend_s: float) -> None:
        """Acknowledge a drain and ask for ``extend_s`` more seconds before SIGTERM."""
        self._send(protocol.LINK_DRAINING, extend=extend_s)

    def beat(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last_beat >= self.heartbeat_interval:
            self._last_beat = now
            self._send(protocol.LINK_HEARTBEAT)

    # ------------------------------------------------------------------ stop requests
    def _on_sigterm(self, signum: int, frame: Any) -> None:
        self.stop_reason = self.stop_reason or "sigterm"

    @property
    def stopping(self) -> bool:
        return self.stop_reason is not None

    @property
    def link_socket(self) -> zmq.Socket:
        """For children that run their own poller: register this and call ``handle_link`` when readable."""
        return self._link

    def handle_link(self) -> None:
        """Read every pending message from the supervisor (drain requests)."""
        while True:
            try:
                frame = self._link.recv(zmq.NOBLOCK)
            except zmq.Again:
                return
            msg = protocol.parse_link_message(frame)
            if msg and msg["t"] == protocol.LINK_DRAIN:
                self.log.info("drain_requested")
                self.stop_reason = self.stop_reason or "drain"
            elif msg and msg["t"] == protocol.LINK_COMMAND:
                self.commands.append(msg)

    def wait(self, timeout: float) -> bool:
        """Sleep up to ``timeout`` seconds while heartbeating and serving the link.

        Returns True (early) as soon as a stop has been requested.
        """
        deadline = time.monotonic() + timeout
        while not self.stopping:
            self.beat()
            left = deadline - time.monotonic()
            if left <= 0:
                break
            step = min(left, self.heartbeat_interval, 0.25)
            if self._link.poll(int(step * 1000)):
                self.handle_link()
        return self.stopping

    def close(self) -> None:
        self._link.close()
        self._zmq.term()
