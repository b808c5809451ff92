"""Tick -> fill: the ingestor publishes a book, an SDK strategy wakes on it (``ctx.spot.updates``), sends a
market order, the paper executor journals and fills it, and the fill report comes back to the strategy.

Floor, measured in the same run: a bare three-hop pyzmq + orjson loop doing the same hops with no work,
plus the one fsync the money-safety rule needs (the intent, before the order leaves): PUB (tick, with its
publish time) -> SUB in a "strategy" process -> PUSH to an "executor" process that appends the order to a
file, fsyncs it and PUBlishes a report -> back to the strategy. Latency = tick publish -> report received.

    python bench/tick_to_fill.py [--seconds 30] [--write docs/BENCHMARKS.md]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import PRODUCTION, scratch_dir  # noqa: E402
from bench.report import replace_section  # noqa: E402
from tests.helpers import Daemon, wait_for  # noqa: E402

RATE = 50.0  # books per second (the sim's update_hz)
EVERY = 5  # the strategy trades on every 5th book: 10 orders/s


def _executor(pull_ep: str, pub_ep: str, path: str, ready) -> None:
    import orjson
    import zmq

    ctx = zmq.Context()
    pull, pub = ctx.socket(zmq.PULL), ctx.socket(zmq.PUB)
    pull.bind(pull_ep)
    pub.bind(pub_ep)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    ready.put(1)
    while True:
        frame = pull.recv()
        if frame == b"END":
            break
        msg = orjson.loads(frame)
        os.write(fd, frame + b"\n")
        os.fdatasync(fd)  # the intent, durable before the order would leave (as the journal syncs)
        pub.send(b"exec.bench " + orjson.dumps({"id": msg["id"], "t": msg["t"], "status": "filled"}))


def _strategy(md_ep: str, push_ep: str, rep_ep: str, ready, results, n_orders: int) -> None:
    import orjson
    import zmq

    ctx = zmq.Context()
    sub, push, rep = ctx.socket(zmq.SUB), ctx.socket(zmq.PUSH), ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"md.")
    rep.setsockopt(zmq.SUBSCRIBE, b"exec.bench ")
    sub.connect(md_ep)
    push.connect(push_ep)
    rep.connect(rep_ep)
    ready.put(1)
    lat, n = [], 0
    while len(lat) < n_orders:
        topic, _, payload = sub.recv().partition(b" ")
        if payload == b"END":
            break
        tick = orjson.loads(payload)
        n += 1
        if n % EVERY:
            continue
        push.send(orjson.dumps({"id": uuid.uuid4().hex, "t": tick["t"], "side": "buy", "qty": "0.001"}))
        reply = orjson.loads(rep.recv().partition(b" ")[2])
        lat.append(time.time() * 1000 - reply["t"])
    results.put(lat)


def bare(seconds: float) -> list[float]:
    import orjson
    import zmq

    tmp = scratch_dir()  # the same file system as the wispd run's journal
    md, pull, rep = (f"ipc://{tmp}/{n}" for n in ("md", "pull", "rep"))
    mpctx = mp.get_context("fork")
    ready, results = mpctx.Queue(), mpctx.Queue()
    ex = mpctx.Process(target=_executor, args=(pull, rep, f"{tmp}/journal", ready))
    ex.start()
    ready.get(timeout=10)
    ctx = zmq.Context()
    pub = ctx.socket(zmq.PUB)
    pub.bind(md)
    n_orders = int(seconds * RATE / EVERY)
    st = mpctx.Process(target=_strategy, args=(md, pull, rep, ready, results, n_orders))
    st.start()
    ready.get(timeout=10)
    time.sleep(0.5)
    lat = None
    end = time.monotonic() + seconds + 10
    while time.monotonic() < end and lat is None:
        book = {"t": time.time() * 1000, "bids": [["60000", "1"]], "asks": [["60000.1", "1"]]}
        pub.send(b"md.bench.spot.BTC-USDT.book " + orjson.dumps(book))
        try:
            lat = results.get(timeout=1 / RATE)
        except Exception:  # noqa: BLE001 - queue.Empty: not done yet
            lat = None
    pub.send(b"md.x END")
    end_sock = ctx.socket(zmq.PUSH)
    end_sock.connect(pull)
    end_sock.send(b"END")
    for p in (st, ex):
        p.join(5)
        if p.is_alive():
            p.kill()
    return lat or []


def wispd(seconds: float) -> dict:
    tmp = Path(scratch_dir())
    samples = int(seconds * RATE / EVERY)
    body = f"""
[exchanges.sim]
driver = "sim"
pairs = ["BTC-USDT"]
[exchanges.sim.sim]
update_hz = {RATE}
prices = {{ BTC-USDT = 60000.0 }}
[executors.paper]
exchanges = ["sim"]
[executors.paper.paper]
latency_ms = 0.0
balances = {{ USDT = "100000000", BTC = "1000" }}
[strategies.tt]
module = "bench.strategies"
class = "TickTrader"
params = {{ every = {EVERY}, samples = {samples} }}
"""
    d = Daemon(tmp, body, uuid.uuid4().hex, **PRODUCTION)
    d.start()
    try:
        status = wait_for(lambda: d.child("tt")["status"].get("phase") == "measured" and d.child("tt")["status"],
                          seconds * 3 + 60, what="the strategy's measurement")
    finally:
        d.stop()
        d.kill()
    return status["fields"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--write")
    ns = ap.parse_args()
    floor = sorted(bare(ns.seconds))
    f50, f99 = statistics.median(floor), floor[int(0.99 * len(floor)) - 1]
    w = wispd(ns.seconds)
    print(f"bare three-hop + fsync: p50 {f50:.3f} ms p99 {f99:.3f} ms ({len(floor)} orders)")
    print(f"wispd tick -> fill:     p50 {w['p50']:.3f} ms p99 {w['p99']:.3f} ms ({w['n']} orders); "
          f"p50 ratio {w['p50'] / f50:.2f} (goal <= 1.3)")
    if ns.write:
        table = ["| path | orders | p50 ms | p99 ms | p50 / floor |", "| --- | --- | --- | --- | --- |",
                 f"| floor: bare three-hop pyzmq + orjson + one fsync | {len(floor)} | {f50:.3f} | {f99:.3f} | 1 |",
                 f"| wispd: book -> SDK strategy (`updates`) -> journaled paper fill -> report | {w['n']} | "
                 f"{w['p50']:.3f} | {w['p99']:.3f} | **{w['p50'] / f50:.2f}** |", "",
                 f"Books at {RATE:.0f}/s, an order on every {EVERY}th ({RATE / EVERY:.0f} orders/s), one in flight at "
                 "a time. Goal (issue 14): p50 <= 1.3x the floor."]
        replace_section(Path(ns.write), "tick-to-fill", "\n".join(table),
                        "python bench/tick_to_fill.py " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
