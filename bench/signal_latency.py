"""Signal -> paper fill latency, and sustained journaled signals per second.

wispd: this process plays a strategy: it PUSHes market-order signals to a real paper executor (under a
real wispd on the sim exchange) and SUBscribes to its execution reports; latency = send -> "filled"
report received (validation, dedupe, risk, journal intent + commit (fsync), paper fill against the sim
book, fill journaled + commit, report). Baseline in the same run: a bare two-hop pyzmq loop, PUSH -> an
echo process that orjson-decodes, re-encodes and PUBlishes -> SUB, with no work at all.

    python bench/signal_latency.py [--rate 1000] [--seconds 5] [--burst 5000] [--write docs/BENCHMARKS.md]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.report import replace_section  # noqa: E402
from tests.helpers import Daemon  # noqa: E402

BODY = """
[exchanges.sim]
driver = "sim"
pairs = ["BTC-USDT"]
[exchanges.sim.sim]
update_hz = 20.0
prices = { BTC-USDT = 60000.0 }
[executors.paper]
exchanges = ["sim"]
[executors.paper.paper]
latency_ms = 0.0
balances = { USDT = "100000000", BTC = "1000" }
[executors.paper.risk]
max_open_orders = 100000
[strategies.bench]
module = "bench.strategies"
class = "Idle"
"""


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def echo(pull_ep: str, pub_ep: str, ready, plain: bool = False) -> None:
    import orjson
    import zmq

    from wispd.auth import ZapHandler

    ctx = zmq.Context()
    zap = ZapHandler(ctx, lambda *_: "bench") if plain else None
    pull, pub = ctx.socket(zmq.PULL), ctx.socket(zmq.PUB)
    if plain:  # the same PLAIN + ZAP arrangement as the executor's, to show what authentication costs
        for sock in (pull, pub):
            sock.plain_server = True
            sock.zap_domain = b"wispd"
        threading.Thread(target=lambda: [zap.handle() for _ in iter(lambda: zap.sock.poll(100) or True, None)],
                         daemon=True).start()
    pull.bind(pull_ep)
    pub.bind(pub_ep)
    ready.put(1)
    while True:
        frame = pull.recv(copy=False) if plain else pull.recv()
        if plain:
            frame.get("User-Id")  # what the executor reads of every signal
            frame = frame.bytes
        if frame == b"END":
            break
        msg = orjson.loads(frame)
        pub.send(b"exec.bench " + orjson.dumps({"v": 1, "kind": "report", "body": {"signal_id": msg["id"],
                                                                                     "status": "filled"}}))


def signal_frame(i: int) -> tuple[str, bytes]:
    import orjson

    sid = uuid.uuid4().hex
    side = "buy" if i % 2 == 0 else "sell"
    return sid, orjson.dumps({"v": 1, "id": sid, "strategy": "bench", "ts": time.time() * 1000, "ttl_ms": 10000,
                              "actions": [{"type": "order", "side": side, "exchange": "sim", "market": "spot",
                                           "symbol": "BTC-USDT", "qty": "0.001", "price": None,
                                           "order_type": "market"}]})


def drive(push_ep: str, sub_ep: str, rate: float, seconds: float, burst: int, creds=None) -> dict:
    import orjson
    import zmq

    ctx = zmq.Context.instance()
    push, sub = ctx.socket(zmq.PUSH), ctx.socket(zmq.SUB)
    if creds is not None:
        for sock in (push, sub):
            sock.plain_username, sock.plain_password = creds
    push.setsockopt(zmq.SNDHWM, 1_000_000)
    sub.setsockopt(zmq.RCVHWM, 1_000_000)
    sub.setsockopt(zmq.SUBSCRIBE, b"exec.bench ")
    push.connect(push_ep)
    sub.connect(sub_ep)
    time.sleep(0.5)
    sent: dict[str, float] = {}
    lat: list[float] = []

    def collect(timeout_ms: int) -> None:
        while sub.poll(timeout_ms):
            env = orjson.loads(sub.recv().split(b" ", 1)[1])
            body = env.get("body", {})
            if env.get("kind") == "report" and body.get("status") in ("filled", "rejected"):
                t0 = sent.pop(body.get("signal_id"), None)
                if t0 is not None:
                    lat.append((time.perf_counter() - t0) * 1000)
            timeout_ms = 0

    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        due = start + n / rate
        while time.perf_counter() < due:
            collect(0)
        sid, frame = signal_frame(n)
        sent[sid] = time.perf_counter()
        push.send(frame)
        n += 1
    end = time.perf_counter() + 5
    while sent and time.perf_counter() < end:
        collect(50)
    paced = {"n": n, "done": len(lat), "p50": pct(lat, 0.5), "p99": pct(lat, 0.99), "max": max(lat or [0])}
    lat.clear()
    t0 = time.perf_counter()
    for i in range(burst):
        sid, frame = signal_frame(i)
        sent[sid] = time.perf_counter()
        push.send(frame)
    end = time.perf_counter() + 60
    while sent and time.perf_counter() < end:
        collect(50)
    took = time.perf_counter() - t0
    paced["burst_rate"] = (burst - len(sent)) / took
    paced["burst_lost"] = len(sent)
    push.close()
    sub.close()
    return paced


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=float, default=1000.0)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--burst", type=int, default=5000)
    ap.add_argument("--write")
    ns = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="wb-", dir="/tmp"))
    mpctx = mp.get_context("fork")
    ready = mpctx.Queue()
    bare_ep = (f"ipc://{tmp}/bare.pull", f"ipc://{tmp}/bare.pub")
    import zmq

    results = {}
    for label, plain in (("bare", False), ("bare_plain", True)):
        proc = mpctx.Process(target=echo, args=(*bare_ep, ready, plain))
        proc.start()
        ready.get(timeout=10)
        results[label] = drive(*bare_ep, ns.rate, ns.seconds, ns.burst,
                               (b"bench", b"x") if plain else None)
        end = zmq.Context.instance().socket(zmq.PUSH)
        if plain:
            end.plain_username, end.plain_password = b"bench", b"x"
        end.connect(bare_ep[0])
        end.send(b"END")
        proc.join(5)
        end.close()
    bare = results["bare"]
    d = Daemon(tmp, BODY, uuid.uuid4().hex, heartbeat_timeout=10.0)
    d.start()
    try:
        wispd = drive(f"ipc://{tmp}/run/exec-paper.pull", f"ipc://{tmp}/run/exec-paper.pub", ns.rate, ns.seconds,
                      ns.burst, d.credentials("bench"))
    finally:
        d.stop()
        d.kill()
    for name, r in (("bare two-hop", bare), ("bare + PLAIN/ZAP", results["bare_plain"]),
                    ("wispd signal->fill", wispd)):
        print(f"{name:<20} {r['done']}/{r['n']} at {ns.rate:.0f}/s: p50 {r['p50']:.3f} ms p99 {r['p99']:.3f} ms "
              f"max {r['max']:.1f} ms | burst {ns.burst}: {r['burst_rate']:,.0f}/s, unanswered {r['burst_lost']}",
              flush=True)
    if ns.write:
        table = [f"| path | paced {ns.rate:.0f}/s for {ns.seconds:g} s: answered | p50 ms | p99 ms | max ms | "
                 f"burst of {ns.burst}: signals/s | unanswered |", "| --- | --- | --- | --- | --- | --- | --- |"]
        for name, r in (("bare two-hop pyzmq + orjson echo", bare),
                        ("the same with PLAIN auth + ZAP (as the executor)", results["bare_plain"]),
                        ("wispd signal -> journaled paper fill", wispd)):
            table.append(f"| {name} | {r['done']}/{r['n']} | {r['p50']:.3f} | {r['p99']:.3f} | {r['max']:.1f} | "
                         f"{r['burst_rate']:,.0f} | {r['burst_lost']} |")
        table.append("")
        table.append("The wispd path includes two SQLite commits with `synchronous=FULL` (intent before the order, "
                     "fill before the report); a burst shares them across the batch, which is why sustained "
                     "journaled throughput is far above 1/fsync.")
        replace_section(Path(ns.write), "signal-latency", "\n".join(table),
                        "python bench/signal_latency.py " + " ".join(sys.argv[1:]))
    _ = statistics


if __name__ == "__main__":
    main()
