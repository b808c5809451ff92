"""Real ccxt.pro code in a real ingestor against loopback fakes that speak the real protocols:
Hyperliquid (perp; one socket, full book snapshots) and Binance spot (REST snapshot + sequenced diffs)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import pytest
import zmq

from tests.helpers import wait_for
from wispd import protocol


@dataclass(frozen=True)
class Venue:
    driver: str
    fake: str
    market: str
    pair: str
    other: str  # a second pair, watched only through a subscription
    step: str  # the quantity step the fake's market rules declare

    @property
    def prefix(self) -> str:
        return f"md.hl.{self.market}.{self.pair}"


VENUES = [Venue("hyperliquid", "tests.fakes.hyperliquid", "perp", "BTC-USDC", "ETH-USDC", "0.00001"),
          Venue("binance", "tests.fakes.binance", "spot", "BTC-USDT", "ETH-USDT", "0.00001"),
          Venue("bybit", "tests.fakes.bybit", "perp", "BTC-USDT", "ETH-USDT", "0.001"),
          Venue("paradex", "tests.fakes.paradex", "perp", "BTC-USD", "ETH-USD", "0.001")]


@pytest.fixture(params=VENUES, ids=lambda v: v.driver)
def venue(request) -> Venue:
    return request.param


def config(fake, venue: Venue) -> str:
    return f"""
[exchanges.hl]
driver = "{venue.driver}"
market = "{venue.market}"
pairs = ["{venue.pair}"]
api_base = "{fake.base}"
stale_after = 1.5
keepalive_s = 2.0
backoff_initial = 0.3
backoff_max = 2.0
"""


def subscribe(d, *prefixes: bytes) -> zmq.Socket:
    sock = zmq.Context.instance().socket(zmq.SUB)
    sock.setsockopt(zmq.LINGER, 0)
    for p in prefixes:
        sock.setsockopt(zmq.SUBSCRIBE, p)
    sock.connect(f"ipc://{d.tmp / 'run' / 'md-hl.pub'}")
    return sock


def collect(sock: zmq.Socket, seconds: float) -> list[tuple[bytes, dict]]:
    out, end = [], time.monotonic() + seconds
    while time.monotonic() < end:
        if sock.poll(50):
            parsed = protocol.parse_md_frame(sock.recv())
            assert parsed is not None
            out.append(parsed)
    return out


def running(daemon, fake_exchange, venue: Venue, *channels: str):
    """A fake exchange, a wispd ingesting from it, a subscriber to ``channels`` of the venue's pair, and
    the first data seen."""
    fake = fake_exchange(venue.fake)
    d = daemon(config(fake, venue))
    sock = subscribe(d, *(f"{venue.prefix}.{c} ".encode() for c in channels))
    wait_for(lambda: collect(sock, 0.5), 20, what="data")
    return fake, d, sock


def _snap(d, op, **fields):
    import orjson

    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(f"ipc://{d.tmp / 'run' / 'md-hl.snap'}")
    try:
        rid, frame = protocol.snap_request(op, **fields)
        sock.send(frame)
        assert sock.poll(10000)
        return orjson.loads(sock.recv())
    finally:
        sock.close()


def test_normal_flow_every_channel_and_only_loopback(daemon, fake_exchange, venue):
    fake = fake_exchange(venue.fake)
    d = daemon(config(fake, venue))
    sock = subscribe(d, (venue.prefix + ".").encode(), f"md.hl.{venue.market}.{venue.other}.kline.1m ".encode())
    try:
        kinds = wait_for(lambda: {(t.decode().split(".", 4)[4], e["kind"]) for t, e in collect(sock, 1.0)} >= {
            ("book", "book"), ("trades", "trades"), ("ticker", "ticker"), ("kline.1m", "kline")} or None, 30,
            what="every channel")
        assert kinds
        if venue.market == "perp":
            wait_for(lambda: any(e["kind"] == "funding" for _, e in collect(sock, 1.0)), 20, what="funding")
    finally:
        sock.close()
    book = _snap(d, "snapshot", topic=f"{venue.prefix}.book")["envelope"]["body"]
    assert len(book["bids"]) == 10 and float(book["bids"][0][0]) < float(book["asks"][0][0])
    hist = _snap(d, "history", topic=f"{venue.prefix}.kline.5m", limit=20)
    assert hist["ok"] and len(hist["candles"]) == 20 and all(c["closed"] for c in hist["candles"])
    rules = _snap(d, "markets", symbols=[[venue.market, venue.pair]])["markets"][f"{venue.market}:{venue.pair}"]
    assert rules["step"] == venue.step and float(rules["taker_fee"]) > 0
    log = fake.ctl("log")
    assert log and all(entry["host"] == f"127.0.0.1:{fake.port}" for entry in log)  # nothing left loopback
    hosts = {(entry.get("path") or entry.get("ws")).split("/")[1] for entry in log}
    assert hosts <= {"api.hyperliquid.xyz", "api.binance.com", "stream.binance.com", "api.bybit.com",
                     "stream.bybit.com", "api.prod.paradex.trade", "ws.api.prod.paradex.trade"}, hosts
    assert not any("approveBuilderFee" in str(e) or "setReferrer" in str(e) for e in log)  # public data, no keys


def test_server_drop_reconnects_and_resubscribes_every_stream(daemon, fake_exchange, venue):
    fake, d, sock = running(daemon, fake_exchange, venue, "book", "trades")
    try:
        fake.ctl("drop")
        wait_for(lambda: any(e.get("event") == "stream_error" for e in d.log_events("ingestor.hl")), 15,
                 what="the drop is noticed")
        after = wait_for(lambda: {t for t, _ in collect(sock, 1.0)} >= {f"{venue.prefix}.book".encode(),
                                                                        f"{venue.prefix}.trades".encode()} or None, 20,
                         what="both streams back")
        assert after
        frames = [e["frame"] for e in fake.ctl("log") if "frame" in e and "subscribe" in e["frame"].lower()]
        book_sub, trade_sub = {"hyperliquid": ('"l2Book"', '"trades"'), "binance": ("@depth", "@trade"),
                               "bybit": ("orderbook.", "publicTrade."),
                               "paradex": ("order_book.", '"trades.')}[venue.driver]
        assert sum(book_sub in f for f in frames) >= 2 and sum(trade_sub in f for f in frames) >= 2
        if venue.driver == "binance":  # the rebuilt book starts from a fresh REST snapshot
            assert sum(1 for e in fake.ctl("log") if e.get("path", "").endswith("/depth")) >= 2
    finally:
        sock.close()


def test_silent_server_gets_a_stale_flag_then_recovers(daemon, fake_exchange, venue):
    fake, d, sock = running(daemon, fake_exchange, venue, "book")
    try:
        fake.ctl("silence", on=1)
        stale = wait_for(lambda: [e for _, e in collect(sock, 0.5) if e["kind"] == "stale"], 15, what="stale flag")
        assert stale[0]["body"]["stale"] is True
        degraded = wait_for(lambda: (r := d.ctl("health")).returncode == 2 and r, 10,
                            what="a stale feed makes wispd degraded")
        assert "stale feed" in degraded.stdout
        fake.ctl("silence", on=0)
        seen = wait_for(lambda: [e for _, e in collect(sock, 0.5) if e["kind"] in ("stale", "book")], 20,
                        what="recovery")
        kinds = [e["kind"] for e in seen] + [e["kind"] for _, e in collect(sock, 1.0)]
        assert "book" in kinds
        wait_for(lambda: d.ctl("health").returncode == 0, 10, what="healthy again")
    finally:
        sock.close()


def test_refused_connections_back_off_then_recover(daemon, fake_exchange, venue):
    fake, d, sock = running(daemon, fake_exchange, venue, "book")
    try:
        connects_before = sum(1 for e in fake.ctl("log") if e.get("ws") is True)
        fake.ctl("refuse", s=4)
        refused_at = time.monotonic()
        wait_for(lambda: any(e.get("event") == "stream_error" and e.get("topic") == f"{venue.prefix}.book"
                             for e in d.log_events("ingestor.hl")), 15, what="the drop is counted")
        # while refused nothing arrives; after the window a new connection is made and data resumes
        wait_for(lambda: time.monotonic() - refused_at > 4.5 and collect(sock, 0.5), 40, what="data after refusal")
        assert sum(1 for e in fake.ctl("log") if e.get("ws") is True) > connects_before
        assert d.child("ingestor.hl")["state"] == "RUNNING" and d.child("ingestor.hl")["restarts"] == 0
    finally:
        sock.close()


def test_malformed_frames_do_not_take_the_ingestor_down(daemon, fake_exchange, venue):
    fake, d, sock = running(daemon, fake_exchange, venue, "book")
    try:
        pid = d.child("ingestor.hl")["pid"]
        for _ in range(3):
            fake.ctl("malformed")
        wait_for(lambda: collect(sock, 1.0), 20, what="data keeps flowing")
        assert d.child("ingestor.hl")["pid"] == pid
    finally:
        sock.close()
