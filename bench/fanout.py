"""Market-data fan-out: one publisher to 1, 4 and 16 subscriber processes, decoded into a cache.

Two variants, interleaved repeat by repeat in the same run:
- bare: PUB sends b"<topic> " + orjson.dumps(body); each SUB recv()s and orjson.loads() every message.
- wispd: the ingestor's MdPublisher (envelope, epoch, per-topic sequence) and the strategy receiver's
  own ``ingest`` (strict envelope validation, topic parsing, sequence/gap tracking, the cache, the sampled
  lag histogram), exactly as a strategy process runs it.

The payload is a 10-level book-sized body on a ``trades`` topic (trades are never conflated, so every
message is decoded on both sides). The publisher sends flat out for ``--seconds``; each subscriber reports
messages decoded and its first/last receive time. Figures: decoded deliveries per second summed over the
subscribers, and loss (1 - received / sent). Ratio = wispd / bare.

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
                orjson.loads(payload)
            else:
                receiver.ingest(frame, time.time() * 1000)
            n += 1
            if n == 1:
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
    pub = MdPublisher(sock, "ingestor.bench")
    sent, end = 0, time.perf_counter() + seconds
    bodies = [body(i) for i in range(100)]
    while time.perf_counter() < end:
        for i in range(100):
            if mode == "bare":
                sock.send(TOPIC + b" " + orjson.dumps(bodies[i]))
            else:
                pub.publish(TOPIC, "trades", bodies[i], None)
        sent += 100
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
    for subs in [int(s) for s in ns.subs.split(",")]:
        runs: dict[str, list[dict]] = {"bare": [], "wispd": []}
        for _ in range(ns.repeats):
            for mode in ("bare", "wispd"):
                runs[mode].append(run_once(mode, subs, ns.seconds))
        med = {m: statistics.median(r["rate"] for r in rs) for m, rs in runs.items()}
        loss = {m: statistics.median(r["loss"] for r in rs) for m, rs in runs.items()}
        sent = {m: statistics.median(r["sent"] / ns.seconds for r in rs) for m, rs in runs.items()}
        row = (subs, sent["bare"], med["bare"], loss["bare"], sent["wispd"], med["wispd"], loss["wispd"],
               med["wispd"] / med["bare"])
        rows.append(row)
        print(f"subs {row[0]:2d} | bare sent {row[1]:8.0f}/s decoded {row[2]:8.0f}/s loss {row[3] * 100:5.1f}% | "
              f"wispd sent {row[4]:8.0f}/s decoded {row[5]:8.0f}/s loss {row[6] * 100:5.1f}% | ratio {row[7]:.2f}",
              flush=True)
    if ns.write:
        table = ["| subscribers | bare: sent/s | bare: decoded/s (all subs) | bare loss | wispd: sent/s | "
                 "wispd: decoded/s (all subs) | wispd loss | ratio wispd/bare |",
                 "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for r in rows:
            table.append(f"| {r[0]} | {r[1]:,.0f} | {r[2]:,.0f} | {r[3] * 100:.1f} % | {r[4]:,.0f} | {r[5]:,.0f} | "
                         f"{r[6] * 100:.1f} % | **{r[7]:.2f}** |")
        cmd = "python bench/fanout.py " + " ".join(sys.argv[1:])
        update_section(Path(ns.write), "fan-out", "\n".join(table), cmd, ns)


def update_section(path: Path, key: str, table: str, cmd: str, ns: argparse.Namespace) -> None:
    from bench.report import replace_section

    replace_section(path, key, table, cmd)


if __name__ == "__main__":
    main()
