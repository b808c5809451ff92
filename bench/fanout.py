"""Market-data fan-out: one publisher to 1, 4 and 16 subscriber processes, decoded into a cache.

Three variants, interleaved repeat by repeat in the same run:
- bare: PUB sends b"<topic> " + orjson.dumps(update) per update; each SUB recv()s and orjson.loads() it.
- wispd: the ingestor's MdPublisher (envelope, epoch, per-topic sequence) with coalescing off, one frame per
  update, and the strategy receiver's own ``ingest`` (strict envelope validation, topic parsing,
  sequence/gap tracking, the cache, the sampled lag histogram), exactly as a strategy process runs it.
- wispd coalesced: the same with the ingestor's default ``coalesce_ms = 1``: a busy topic sends at most one
  frame per millisecond carrying every trade that arrived meanwhile (the flush is driven by the same
  deadline the ingestor's event loop uses).

Each update is 5 trades on a ``trades`` topic (trades are never conflated: every trade is decoded into the
subscriber's cache in every variant). The publisher sends flat out for ``--seconds``; each subscriber
reports the trades it decoded and its first/last receive time. Figures: trades decoded per second summed
over the subscribers, and loss (1 - trades received / trades sent). Ratios = variant / bare.

    python bench/fanout.py [--subs 1,4,16] [--seconds 2] [--repeats 3] [--write docs/BENCHMARKS.md]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

TOPIC = b"md.bench.spot.BTC-USDT.trades"
LEVELS = 10


def body(i: int) -> dict:
    px = 60000 + (i % 100) / 10
    return {"trades": [{"id": str(i * 10 + k), "px": f"{px + k / 10:.1f}", "qty": "0.0123", "side": "buy",
                        "ts": 1795496443740.5} for k in range(LEVELS // 2)]}


def subscriber(mode: str, endpoint: str, ready, results, expected: int) -> None:
    import orjson
    import zmq

    from wispd.logs import get_logger
    from wispd.strategy.cache import MarketCache
    from wispd.strategy.receiver import Receiver

    ctx = zmq.Context()
    sock = ctx.socket(zmq.SUB)
    sock.setsockopt(zmq.RCVHWM, 1_000_000)
    sock.setsockopt(zmq.SUBSCRIBE, b"md.bench.")
    sock.connect(endpoint)
    cache = MarketCache()
    receiver = Receiver("bench", {}, None, cache, get_logger("bench"))  # its ingest path, not its thread
    ready.put(os.getpid())
    n, first, last, done = 0, 0.0, 0.0, False
    while not done and sock.poll(1500):
        # Poll once, then drain without blocking: the strategy receiver's loop does the same.
        for _ in range(5000):
            try:
                frame = sock.recv(zmq.NOBLOCK)
            except zmq.Again:
                break
            if frame == b"END":
                done = True
                break
            if mode == "bare":
                _, _, payload = frame.partition(b" ")
                n += len(orjson.loads(payload)["trades"])
            else:
                receiver.ingest(frame, time.time() * 1000)
                n = cache.trades_received
            if not first:
                first = time.perf_counter()
        last = time.perf_counter()
    results.put((n, first, last, sum(cache.gaps.values())))
    sock.close()
    ctx.term()


def publisher(mode: str, endpoint: str, subs: int, seconds: float) -> tuple[int, list[tuple]]:
    import orjson
    import zmq

    from wispd.ingest.publisher import MdPublisher

    mpctx = mp.get_context("fork")
    ready, results = mpctx.Queue(), mpctx.Queue()
    procs = [mpctx.Process(target=subscriber, args=(mode, endpoint, ready, results, 0)) for _ in range(subs)]
    for p in procs:
        p.start()
    for _ in procs:
        ready.get(timeout=30)
    ctx = zmq.Context()
    sock = ctx.socket(zmq.PUB)
    sock.setsockopt(zmq.SNDHWM, 1_000_000)
    sock.bind(endpoint)
    time.sleep(0.5)  # slow joiners
    pub = MdPublisher(sock, "ingestor.bench", 1.0 if mode == "coalesced" else 0.0)
    sent, end = 0, time.perf_counter() + seconds
    bodies = [body(i) for i in range(100)]
    while time.perf_counter() < end:
        for i in range(100):
            if mode == "bare":
                sock.send(TOPIC + b" " + orjson.dumps(bodies[i]))
            else:
                pub.publish(TOPIC, "trades", bodies[i], None)
                if pub.due_at is not None and time.monotonic() >= pub.due_at:
                    pub.flush_due()  # what the ingestor's loop.call_later does
        sent += 100 * (LEVELS // 2)
    pub.flush_due()
    time.sleep(0.2)
    for _ in range(subs * 3):
        sock.send(b"END")
    out = [results.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(10)
    sock.close()
    ctx.term()
    return sent, out


def run_once(mode: str, subs: int, seconds: float) -> dict:
    with tempfile.TemporaryDirectory(prefix="wb-") as tmp:
        sent, results = publisher(mode, f"ipc://{tmp}/md.sock", subs, seconds)
    received = sum(r[0] for r in results)
    rates = [r[0] / (r[2] - r[1]) for r in results if r[0] > 1 and r[2] > r[1]]
    return {"sent": sent, "received": received, "rate": sum(rates), "loss": 1 - received / (sent * subs),
            "gaps": sum(r[3] for r in results)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--subs", default="1,4,16")
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--write", help="update this markdown file's fan-out section")
    ns = ap.parse_args()
    rows = []
    modes = ("bare", "wispd", "coalesced")
    for subs in [int(s) for s in ns.subs.split(",")]:
        runs: dict[str, list[dict]] = {m: [] for m in modes}
        for _ in range(ns.repeats):
            for mode in modes:
                runs[mode].append(run_once(mode, subs, ns.seconds))
        med = {m: statistics.median(r["rate"] for r in rs) for m, rs in runs.items()}
        loss = {m: statistics.median(r["loss"] for r in rs) for m, rs in runs.items()}
        sent = {m: statistics.median(r["sent"] / ns.seconds for r in rs) for m, rs in runs.items()}
        row = (subs, *[(sent[m], med[m], loss[m]) for m in modes])
        rows.append(row)
        print(f"subs {subs:2d} | " + " | ".join(
            f"{m} sent {sent[m]:9.0f}/s decoded {med[m]:9.0f}/s loss {loss[m] * 100:5.1f}% ratio "
            f"{med[m] / med['bare']:.2f}" for m in modes), flush=True)
    if ns.write:
        table = ["| subscribers | bare: trades sent/s | bare: decoded/s (all subs) | bare loss | "
                 "wispd per update: decoded/s | loss | ratio | wispd coalesced (default): decoded/s | loss | "
                 "ratio |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for subs, bare, one, co in rows:
            table.append(f"| {subs} | {bare[0]:,.0f} | {bare[1]:,.0f} | {bare[2] * 100:.1f} % | {one[1]:,.0f} | "
                         f"{one[2] * 100:.1f} % | {one[1] / bare[1]:.2f} | {co[1]:,.0f} | {co[2] * 100:.1f} % | "
                         f"**{co[1] / bare[1]:.2f}** |")
        cmd = "python bench/fanout.py " + " ".join(sys.argv[1:])
        update_section(Path(ns.write), "fan-out", "\n".join(table), cmd, ns)


def update_section(path: Path, key: str, table: str, cmd: str, ns: argparse.Namespace) -> None:
    from bench.report import replace_section

    replace_section(path, key, table, cmd)


if __name__ == "__main__":
    main()
