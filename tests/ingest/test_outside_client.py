"""An outside program written from docs/protocol.md alone: plain pyzmq and the standard json module, no
wispd import. It finds the endpoints from `wispctl status --json`, asks for markets and snapshots, and
watches and unwatches streams from two clients: one client's unwatch never stops the other's stream, the
last one's does, a ttl'd watch runs out by itself, and `unwatch` is an accepted op."""

from __future__ import annotations

import json
import time
import uuid

import zmq

from tests.helpers import wait_for

BODY = """
[exchanges.sim]
driver = "sim"
pairs = ["ETH-USDT"]
[exchanges.sim.sim]
serve_any = true
update_hz = 20.0
prices = { ETH-USDT = 3000.0, BTC-USDT = 60000.0 }
"""
BOOK = "md.sim.spot.BTC-USDT.book"


class Client:
    """A DEALER on the snapshot endpoint: one JSON frame per request, replies matched by id."""

    def __init__(self, ctx: zmq.Context, endpoint: str) -> None:
        self.sock = ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(endpoint)

    def ask(self, op: str, **fields) -> dict:
        rid = uuid.uuid4().hex
        self.sock.send(json.dumps({"id": rid, "op": op, **fields}).encode())
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.sock.poll(1000):
                reply = json.loads(self.sock.recv())
                if reply["id"] == rid:
                    return reply
        raise AssertionError(f"no reply to {op}")


def _frames(sub: zmq.Socket, seconds: float) -> list[tuple[str, dict]]:
    out = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if sub.poll(50):
            topic, _, payload = sub.recv().partition(b" ")
            out.append((topic.decode(), json.loads(payload)))
    return out


def test_a_client_written_from_the_protocol_doc(daemon):
    d = daemon(BODY)
    run_dir = d.status()["daemon"]["run_dir"]
    ctx = zmq.Context()
    a, b = Client(ctx, f"ipc://{run_dir}/md-sim.snap"), Client(ctx, f"ipc://{run_dir}/md-sim.snap")
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.RCVHWM, 100_000)
    sub.connect(f"ipc://{run_dir}/md-sim.pub")
    sub.setsockopt(zmq.SUBSCRIBE, b"")  # whatever streams; starts nothing
    try:
        markets = a.ask("markets", symbols=[["spot", "BTC-USDT"]])
        assert markets["ok"] and set(markets["markets"]["spot:BTC-USDT"]) >= {"tick", "step", "min_qty"}
        idle = a.ask("snapshot", topic=BOOK)  # nobody watches it: null at once, and nothing starts
        assert idle == {"id": idle["id"], "ok": True, "envelope": None}
        assert not [t for t, _ in _frames(sub, 1.0) if t == BOOK]

        assert a.ask("watch", topics=[BOOK])["watching"] == [BOOK]
        assert b.ask("watch", topics=[BOOK])["watching"] == [BOOK]
        wait_for(lambda: [t for t, _ in _frames(sub, 0.3) if t == BOOK], 10, what="the book streaming")
        snap = a.ask("snapshot", topic=BOOK)["envelope"]
        assert snap["kind"] == "book" and snap["body"]["bids"] and isinstance(snap["body"]["bids"][0][0], str)

        gone = b.ask("unwatch", topics=[BOOK])
        assert gone["ok"] is True and gone["watching"] == []
        _frames(sub, 0.5)
        assert [t for t, _ in _frames(sub, 1.0) if t == BOOK], "b's unwatch stopped a's stream"
        assert a.ask("unwatch", topics=[BOOK])["watching"] == []
        _frames(sub, 0.5)  # what was in flight
        assert not [t for t, _ in _frames(sub, 1.5) if t == BOOK], "the last unwatch did not stop it"

        assert a.ask("watch", topics=[BOOK], ttl=1)["ok"]
        wait_for(lambda: [t for t, _ in _frames(sub, 0.3) if t == BOOK], 10, what="streaming again")
        time.sleep(2.0)  # the ttl runs out, nobody renewed it
        _frames(sub, 0.5)
        assert not [t for t, _ in _frames(sub, 1.5) if t == BOOK], "an expired watch kept its stream"

        for bad in (["md.other.spot.BTC-USDT.book"], ["md.sim.spot.BTC-USDT."], "md.sim.spot.BTC-USDT.book"):
            refused = a.ask("watch", topics=bad)  # another exchange, a prefix, not a list
            assert refused["ok"] is False and refused["error"], refused
        assert a.ask("watch", topics=[BOOK], ttl=0)["ok"] is False
    finally:
        for s in (a.sock, b.sock, sub):
            s.close()
        ctx.term()
