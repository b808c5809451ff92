"""Ingestor resilience with a scripted source: errors -> backoff and re-watch; silence -> stale flag, then
recovery; malformed snapshot requests answered. Real ZeroMQ sockets; the supervisor link is a stand-in."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import zmq

from tests.helpers import wait_for
from wispd import protocol
from wispd.auth import Credentials, ServerKeys
from wispd.ingest.ingestor import Ingestor
from wispd.logs import get_logger


class LinkStandIn:
    """What the ingestor uses of ChildContext, without a supervisor."""

    name = "ingestor.fake"
    credentials = Credentials()
    server_keys = ServerKeys()

    def __init__(self) -> None:
        self.log = get_logger("test")
        self.stopping = False
        self.stop_reason = None
        self.readied = threading.Event()
        self.last_metrics: dict[str, Any] = {}

    def beat(self) -> None: ...
    def handle_link(self) -> None: ...
    def status(self, *a: Any, **k: Any) -> None: ...

    def ready(self, **k: Any) -> None:
        self.readied.set()

    def metrics(self, m: dict[str, Any]) -> None:
        self.last_metrics = m


class ScriptedSource:
    """Fails ``fail_first`` times, then streams books; goes silent between ``silent_from`` and ``silent_to``."""

    name = "fake"

    def __init__(self, fail_first: int, silent: tuple[float, float] | None) -> None:
        self.fail_first, self.silent = fail_first, silent
        self.calls: dict[str, int] = {}
        self.t0 = time.monotonic()

    async def connect(self) -> None: ...
    async def close(self) -> None: ...

    async def stream(self, topic):
        calls = self.calls[topic.channel] = self.calls.get(topic.channel, 0) + 1
        if calls <= self.fail_first:
            raise ConnectionError(f"scripted drop #{calls}")
        n = 0
        while True:
            now = time.monotonic() - self.t0
            if self.silent and self.silent[0] <= now < self.silent[1]:
                await asyncio.sleep(0.05)
                continue
            n += 1
            yield "book", {"bids": [["100", "1"]], "asks": [["101", "1"]], "n": n}, None
            await asyncio.sleep(0.02)

    async def history(self, topic, limit):
        raise RuntimeError("exchange said no")

    async def markets(self, wanted):
        return {}

    def unknown(self, market, symbol):
        return None


def run_ingestor(tmp: Path, source: ScriptedSource, **args: Any):
    ctx = LinkStandIn()
    full = {"exchange": "fake", "pairs": [["spot", "BTC-USDT"]], "pub_endpoint": f"ipc://{tmp}/p.sock",
            "snapshot_endpoint": f"ipc://{tmp}/s.sock", "backoff_initial": 0.05, "backoff_max": 0.4, **args}
    holder: dict[str, Any] = {}

    def target() -> None:
        holder["rc"] = asyncio.run(Ingestor(ctx, full, source).run())

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return ctx, thread, holder


def test_errors_back_off_and_rewatch_then_stream(short_tmp):
    source = ScriptedSource(fail_first=4, silent=None)
    ctx, thread, holder = run_ingestor(short_tmp, source)
    try:
        assert ctx.readied.wait(10), "never ready"
        # every stream is watched again after each drop, with backoff between the attempts
        wait_for(lambda: source.calls == {"book": 5, "trades": 5, "ticker": 5}, 5, what="re-watch of every stream")
        assert wait_for(lambda: ctx.last_metrics.get("reconnects", {}).get("book") == 4, 5)
    finally:
        ctx.stopping = True
        thread.join(10)
    assert holder["rc"] == 0


def test_silent_stream_is_flagged_stale_then_recovers(short_tmp):
    source = ScriptedSource(fail_first=0, silent=(1.0, 2.5))
    ctx, thread, _ = run_ingestor(short_tmp, source, stale_after=0.5)
    sub = zmq.Context.instance().socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.SUBSCRIBE, b"md.fake.spot.BTC-USDT.book ")
    sub.connect(f"ipc://{short_tmp}/p.sock")
    kinds: list[tuple[str, Any]] = []
    try:
        end = time.monotonic() + 4.0
        while time.monotonic() < end:
            if sub.poll(50):
                _, env = protocol.parse_md_frame(sub.recv())
                kinds.append((env["kind"], env["body"].get("stale")))
        stale_at = kinds.index(("stale", True))
        recovered_at = kinds.index(("stale", False))
        assert stale_at < recovered_at and kinds[recovered_at + 1][0] == "book"
        # a failing history call is an error reply, not a dead ingestor
        dealer = zmq.Context.instance().socket(zmq.DEALER)
        dealer.setsockopt(zmq.LINGER, 0)
        dealer.connect(f"ipc://{short_tmp}/s.sock")
        _, frame = protocol.snap_request("history", topic="md.fake.spot.BTC-USDT.kline.1m", limit=5)
        dealer.send(frame)
        assert dealer.poll(3000)
        reply = protocol.loads_dict(dealer.recv())
        assert reply["ok"] is False and "exchange said no" in reply["error"]
        dealer.close()
    finally:
        sub.close()
        ctx.stopping = True
        thread.join(10)
