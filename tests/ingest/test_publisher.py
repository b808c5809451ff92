"""Coalescing in the market-data publisher: quiet topics go out at once, a busy topic's updates go out as
one frame per window (trades appended, books replaced by the newest), klines and stale flags never wait,
and the order and sequence numbers of each topic stay intact."""

from __future__ import annotations

from wispd import protocol
from wispd.ingest.publisher import MdPublisher

TRADES = b"md.sim.spot.BTC-USDT.trades"
BOOK = b"md.sim.spot.BTC-USDT.book"
KLINE = b"md.sim.spot.BTC-USDT.kline.1m"


class Sock:
    def __init__(self) -> None:
        self.frames: list[bytes] = []

    def send(self, frame: bytes, flags: int = 0) -> None:
        self.frames.append(frame)

    def decoded(self) -> list[tuple[bytes, dict]]:
        return [p for f in self.frames if (p := protocol.parse_md_frame(f)) is not None]


def trade(i: int) -> dict:
    return {"trades": [{"id": str(i), "px": "100", "qty": "1", "side": "buy", "ts": 1.0}]}


def test_off_sends_every_update():
    sock = Sock()
    pub = MdPublisher(sock, "t", 0.0)
    for i in range(3):
        pub.publish(TRADES, "trades", trade(i), None)
    assert len(sock.frames) == 3


def test_busy_topic_is_coalesced_and_flushed_within_the_window():
    sock, scheduled = Sock(), []
    pub = MdPublisher(sock, "t", 1000.0, lambda delay, fn: scheduled.append((delay, fn)))  # a long window
    pub.publish(TRADES, "trades", trade(0), 1.0)  # quiet until now: out at once
    pub.publish(TRADES, "trades", trade(1), 2.0)
    pub.publish(TRADES, "trades", trade(2), 3.0)
    pub.publish(BOOK, "book", {"bids": [["99", "1"]], "asks": [["101", "1"]]}, None)  # another topic: at once
    pub.publish(BOOK, "book", {"bids": [["98", "1"]], "asks": [["101", "1"]]}, None)
    pub.publish(BOOK, "book", {"bids": [["97", "1"]], "asks": [["101", "1"]]}, None)
    assert len(sock.frames) == 2 and len(scheduled) == 1 and scheduled[0][0] == 1.0
    scheduled[0][1]()  # the event loop runs flush_due one window later
    frames = sock.decoded()
    trades = [env for topic, env in frames if topic == TRADES]
    assert [[t["id"] for t in env["body"]["trades"]] for env in trades] == [["0"], ["1", "2"]]
    assert [env["seq"] for env in trades] == [1, 2] and trades[1]["ts_exch"] == 3.0
    books = [env["body"]["bids"][0][0] for topic, env in frames if topic == BOOK]
    assert books == ["99", "97"]  # the newest snapshot, never a stale one
    assert pub.coalesced == 2 and pub.pending == {}  # trade 2 joined trade 1's frame; book 98 was replaced


def test_klines_and_stale_flags_never_wait_and_keep_the_topic_order():
    sock = Sock()
    pub = MdPublisher(sock, "t", 1000.0)
    pub.publish(KLINE, "kline", {"t": 1, "c": "100", "closed": True}, None)
    pub.publish(KLINE, "kline", {"t": 2, "c": "101", "closed": False}, None)
    pub.publish(TRADES, "trades", trade(0), None)
    pub.publish(TRADES, "trades", trade(1), None)  # held
    pub.publish(TRADES, "stale", {"stale": True, "silent_s": 12.0}, None)  # the held trade goes out first
    kinds = [(topic, env["kind"], env["seq"]) for topic, env in sock.decoded()]
    assert kinds == [(KLINE, "kline", 1), (KLINE, "kline", 2), (TRADES, "trades", 1), (TRADES, "trades", 2),
                     (TRADES, "stale", 3)]


def test_a_snapshot_serves_the_newest_state_even_if_it_is_held():
    sock = Sock()
    pub = MdPublisher(sock, "t", 1000.0)
    pub.publish(BOOK, "book", {"bids": [["99", "1"]], "asks": []}, None)
    pub.publish(BOOK, "book", {"bids": [["98", "1"]], "asks": []}, None)  # held
    env = pub.snapshot(BOOK)
    assert env is not None and env["body"]["bids"][0][0] == "98" and pub.pending == {}
