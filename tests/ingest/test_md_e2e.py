"""Market data end to end: a real wispd with a sim ingestor, subscribers in this test process."""

from __future__ import annotations

import os
import signal
import time

import orjson
import zmq

from tests.helpers import wait_for
from wispd import protocol
from wispd.strategy.cache import MarketCache

SIM = """
[exchanges.sim]
driver = "sim"
pairs = ["BTC-USDT"]
stale_after = 5.0
[exchanges.sim.sim]
seed = 3
update_hz = 20.0
trade_rate = 10.0
serve_any = true  # these tests watch pairs that are not pre-declared
[exchanges.sim.restart]
backoff_initial = 0.2
"""


def sub_socket(d, *prefixes: bytes) -> zmq.Socket:
    sock = zmq.Context.instance().socket(zmq.SUB)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVHWM, 100_000)
    for prefix in prefixes:
        sock.setsockopt(zmq.SUBSCRIBE, prefix)
    sock.connect(f"ipc://{d.tmp / 'run' / 'md-sim.pub'}")
    return sock


def snap(d, op: str, **fields):
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(f"ipc://{d.tmp / 'run' / 'md-sim.snap'}")
    try:
        rid, frame = protocol.snap_request(op, **fields)
        sock.send(frame)
        assert sock.poll(5000), f"no reply to {op}"
        reply = orjson.loads(sock.recv())
        assert reply["id"] == rid
        return reply
    finally:
        sock.close()


def receive(sock: zmq.Socket, seconds: float) -> list[tuple[bytes, dict]]:
    out, end = [], time.monotonic() + seconds
    while time.monotonic() < end:
        if sock.poll(100):
            parsed = protocol.parse_md_frame(sock.recv())
            assert parsed is not None
            out.append(parsed)
    return out


def test_books_arrive_with_contiguous_sequence_and_resync_after_kill9(daemon):
    d = daemon(SIM)
    sock = sub_socket(d, b"md.sim.spot.BTC-USDT.book ")
    try:
        msgs = receive(sock, 2.0)
        assert len(msgs) >= 20
        seqs = [env["seq"] for _, env in msgs]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # contiguous: nothing lost
        epoch = msgs[0][1]["epoch"]
        cache = MarketCache()
        for topic, env in msgs:
            assert cache.sequence(topic, "book", env["epoch"], env["seq"]) == "ok"
        old = d.child("ingestor.sim")
        os.kill(old["pid"], signal.SIGKILL)
        wait_for(lambda: (c := d.child("ingestor.sim"))["state"] == "RUNNING" and c["pid"] != old["pid"], 20,
                 what="ingestor restarted")
        after = wait_for(lambda: receive(sock, 0.3), 10, what="data after the restart")
        topic, env = after[0]
        assert env["epoch"] != epoch and cache.sequence(topic, "book", env["epoch"], env["seq"]) == "epoch"
        assert cache.resyncs == 1
        resync = snap(d, "snapshot", topic="md.sim.spot.BTC-USDT.book")
        assert resync["ok"] and resync["envelope"]["epoch"] == env["epoch"] and resync["envelope"]["kind"] == "book"
    finally:
        sock.close()


def test_streams_follow_subscriptions(daemon):
    d = daemon(SIM)
    sock = sub_socket(d, b"md.sim.spot.SOL-USDT.", b"md.sim.spot.BTC-USDT.kline.1m ")
    try:
        msgs = receive(sock, 2.0)
        kinds = {(t, env["kind"]) for t, env in msgs}
        assert (b"md.sim.spot.SOL-USDT.book", "book") in kinds and (b"md.sim.spot.SOL-USDT.ticker", "ticker") in kinds
        assert any(t == b"md.sim.spot.BTC-USDT.kline.1m" for t, _ in msgs)
        started = [e["topic"] for e in d.log_events("ingestor.sim") if e.get("event") == "stream_start"]
        assert "md.sim.spot.SOL-USDT.book" in started and "md.sim.spot.BTC-USDT.kline.1m" in started
    finally:
        sock.close()
    wait_for(lambda: "md.sim.spot.SOL-USDT.book" in [e["topic"] for e in d.log_events("ingestor.sim")
                                                     if e.get("event") == "stream_stop"], 10,
             what="stream stopped after the last watcher left")
    stopped = {e["topic"] for e in d.log_events("ingestor.sim") if e.get("event") == "stream_stop"}
    assert "md.sim.spot.BTC-USDT.book" not in stopped  # pre-declared in config: it stays


def test_snapshot_history_markets_and_bad_requests(daemon):
    d = daemon(SIM)
    book = snap(d, "snapshot", topic="md.sim.spot.BTC-USDT.book")
    assert book["ok"] and len(book["envelope"]["body"]["bids"]) == 10
    hist = snap(d, "history", topic="md.sim.spot.BTC-USDT.kline.5m", limit=30)
    assert hist["ok"] and len(hist["candles"]) == 30
    ts = [c["t"] for c in hist["candles"]]
    assert ts == sorted(ts) and all(b - a == 300_000 for a, b in zip(ts, ts[1:], strict=False))
    markets = snap(d, "markets", symbols=[["spot", "ETH-USDT"]])
    assert markets["markets"]["spot:ETH-USDT"]["tick"] == "0.001"  # unconfigured: starts at 100
    for op, fields in (("history", {"topic": "md.sim.spot.BTC-USDT.book"}), ("history", {"topic": "nope"}),
                       ("snapshot", {"topic": "md.other.spot.BTC-USDT.book"}),
                       ("history", {"topic": "md.sim.spot.BTC-USDT.kline.1m", "limit": 10 ** 6})):
        assert snap(d, op, **fields)["ok"] is False
    raw = zmq.Context.instance().socket(zmq.DEALER)
    raw.setsockopt(zmq.LINGER, 0)
    raw.connect(f"ipc://{d.tmp / 'run' / 'md-sim.snap'}")
    raw.send(b"\x00garbage")
    assert raw.poll(5000) and orjson.loads(raw.recv())["ok"] is False
    raw.close()
    assert d.child("ingestor.sim")["state"] == "RUNNING"


def test_the_sim_serves_only_its_pairs_and_says_what_was_meant(daemon):
    """Without serve_any a typo is an error with the close matches (requests), and a subscription to it
    starts nothing (logged), instead of a market near 100 that no strategy meant."""
    d = daemon(SIM.replace("serve_any = true", "serve_any = false"))
    reply = snap(d, "snapshot", topic="md.sim.spot.BTC-USTD.book")
    assert reply["ok"] is False and reply["code"] == "unknown_symbol" and "did you mean BTC-USDT" in reply["error"]
    reply = snap(d, "history", topic="md.sim.spot.DOGE-USDT.kline.1m", limit=10)
    assert reply["ok"] is False and reply["code"] == "unknown_symbol"
    assert snap(d, "markets", symbols=[["spot", "DOGE-USDT"]])["markets"] == {
        k: v for k, v in snap(d, "markets", symbols=[])["markets"].items()}  # nothing made up for it
    sock = sub_socket(d, b"md.sim.spot.BTC-USTD.")
    try:
        wait_for(lambda: [e for e in d.log_events("ingestor.sim") if e.get("event") == "stream_refused"], 10,
                 what="the subscription refused")
    finally:
        sock.close()


BUSY = SIM.replace("update_hz = 20.0", "update_hz = 400.0").replace("trade_rate = 10.0", "trade_rate = 400.0")


def test_subscriptions_are_seen_while_the_ingestor_publishes_flat_out(daemon):
    """The market-data socket is sent on synchronously and its subscriptions read on FD readiness; a send
    can consume the edge that announced a subscription, so every subscribe and unsubscribe made while the
    ingestor is busy publishing must still start and stop its stream (here: 12 watchers come and go)."""
    d = daemon(BUSY)
    busy = sub_socket(d, b"md.sim.spot.BTC-USDT.")  # keeps the publisher sending all the time
    try:
        receive(busy, 0.5)
        for i in range(12):
            pair = f"T{i}-USDT"
            sock = sub_socket(d, f"md.sim.spot.{pair}.book ".encode())
            try:
                got = []
                end = time.monotonic() + 10
                while not got and time.monotonic() < end:
                    got = [t for t, _ in receive(sock, 0.2) if t == f"md.sim.spot.{pair}.book".encode()]
                    busy.recv_multipart(zmq.NOBLOCK) if busy.poll(0) else None
                assert got, f"the stream of {pair} never started"
            finally:
                sock.close()

        def stopped() -> set[str]:
            return {e["topic"] for e in d.log_events("ingestor.sim") if e.get("event") == "stream_stop"}

        wait_for(lambda: all(f"md.sim.spot.T{i}-USDT.book" in stopped() for i in range(12)), 15,
                 what="every stream stopped after its watcher left")
    finally:
        busy.close()
