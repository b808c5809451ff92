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

wispd's publisher sends as the ingestor does: MdPublisher on a plain XPUB socket (the ingestor's is on its
asyncio context but sent on synchronously), with the ingestor's after-send check for subscriptions.

``--paced RATE`` adds a second table: the publisher sends RATE updates a second, in 1 ms ticks, as a busy
venue would, so every variant keeps up and the figure is the subscriber's CPU time per trade decoded
(process CPU between its first and last frame), with how many updates the default coalescing packs into a
frame at that rate. Flat out, coalescing packs hundreds of updates per frame, which no real feed produces.

    python bench/fanout.py [--subs 1,4,16] [--seconds 2] [--repeats 3] [--paced 20000] [--write docs/BENCHMARKS.md]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
from collections import deque
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

TOPIC = b"md.bench.spot.BTC-USDT.trades"
LEVELS = 10


def body(i: int) -> dict:
    px = 60000 + (i % 100) / 10
    return {"trades": [{"id": str(i * 10 + k), "px": f"{px + k / 10:.1f}", "qty": "0.0123", "side": "buy",
                        "ts": 1795496443740.5} for k in range(LEVELS // 2)]}


def subscriber(mode: str, endpoint: str, ready, results, expected: int, curve: tuple | None = None) -> None:
    import orjson
    import zmq

    from wispd.logs import get_logger
    from wispd.strategy.cache import MarketCache
    from wispd.strategy.receiver import Receiver

    ctx = zmq.Context()
    sock = ctx.socket(zmq.SUB)
    if curve is not None:  # (server public, client public, client secret): CURVE on every frame, as tcp://
        sock.curve_serverkey, sock.curve_publickey, sock.curve_secretkey = curve
    sock.setsockopt(zmq.RCVHWM, 1_000_000)
    sock.setsockopt(zmq.SUBSCRIBE, b"md.bench.")
    sock.connect(endpoint)
    cache = MarketCache()
    receiver = Receiver("bench", {}, None, cache, get_logger("bench"))  # its ingest path, not its thread
    ready.put(os.getpid())
    n, frames, first, last, done = 0, 0, 0.0, 0.0, False
    cpu_first = cpu_last = 0.0
    kept: deque = deque(maxlen=1000)  # what the strategy cache keeps of a trades topic (TRADES_KEPT)
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
            frames += 1
            if mode.startswith("bare"):  # decoded into a cache as well: the same work as the receiver's
                _, _, payload = frame.partition(b" ")
                trades = orjson.loads(payload)["trades"]
                kept.extend(trades)
                n += len(trades)
            else:
                receiver.ingest(frame, time.time() * 1000)
                n = cache.trades_received
            if not first:
                first, cpu_first = time.perf_counter(), time.process_time()
        last, cpu_last = time.perf_counter(), time.process_time()
    results.put((n, first, last, sum(cache.gaps.values()), frames, cpu_last - cpu_first))
    sock.close()
    ctx.term()


def publisher(mode: str, endpoint: str, subs: int, seconds: float, batch: int = 1,
              keys: tuple | None = None, rate: float = 0.0) -> tuple[int, list[tuple]]:
    """``batch``: updates per frame of the bare_batched loop (the coalesced run's measured average);
    ``keys``: (server public, server secret, client public, client secret) to run CURVE on both ends;
    ``rate``: updates a second, paced in 1 ms ticks (0: flat out)."""
    import orjson
    import zmq

    from wispd.ingest.publisher import MdPublisher

    mpctx = mp.get_context("fork")
    ready, results = mpctx.Queue(), mpctx.Queue()
    client = (keys[0], keys[2], keys[3]) if keys else None
    procs = [mpctx.Process(target=subscriber, args=(mode, endpoint, ready, results, 0, client)) for _ in range(subs)]
    for p in procs:
        p.start()
    for _ in procs:
        ready.get(timeout=30)
    ctx = zmq.Context()
    sock = ctx.socket(zmq.PUB if mode.startswith("bare") else zmq.XPUB)
    if keys is not None:
        sock.curve_server = True
        sock.curve_secretkey = keys[1]
    sock.setsockopt(zmq.SNDHWM, 1_000_000)
    sock.bind(endpoint)
    time.sleep(0.5)  # slow joiners
    check = [False]

    def after_sends() -> None:  # the ingestor's: once per event-loop pass that sent, ask for subscriptions
        check[0] = False
        if sock.getsockopt(zmq.EVENTS) & zmq.POLLIN:
            while True:
                try:
                    sock.recv(zmq.NOBLOCK)
                except zmq.Again:
                    break

    def on_sent() -> None:
        check[0] = True

    pub = MdPublisher(sock, "ingestor.bench", 1.0 if mode == "coalesced" else 0.0, None, on_sent)
    sent, end = 0, time.perf_counter() + seconds
    bodies = [body(i) for i in range(100)]
    held: list[dict] = []
    per_pass, tick, owed = 100, time.perf_counter(), 0.0
    while (now := time.perf_counter()) < end:
        if rate:  # a busy venue: rate/1000 updates every millisecond
            owed += rate / 1000
            per_pass, owed = int(owed), owed - int(owed)
            tick += 0.001
            if tick > now:
                time.sleep(tick - now)
        for j in range(per_pass):
            i = (sent // (LEVELS // 2) + j) % 100
            if mode == "bare_batched":  # the same updates per frame as coalesced wispd sent, bare
                held.extend(bodies[i]["trades"])
                if len(held) >= batch * (LEVELS // 2):
                    sock.send(TOPIC + b" " + orjson.dumps({"trades": held}))
                    held = []
            elif mode.startswith("bare"):
                sock.send(TOPIC + b" " + orjson.dumps(bodies[i]))
            else:
                pub.publish(TOPIC, "trades", bodies[i], None)
                if pub.due_at is not None and time.monotonic() >= pub.due_at:
                    pub.flush_due()  # what the ingestor's loop.call_later does
        if check[0]:
            after_sends()
        sent += per_pass * (LEVELS // 2)
    pub.flush_due()
    if held:
        sock.send(TOPIC + b" " + orjson.dumps({"trades": held}))
    time.sleep(0.2)
    for _ in range(subs * 3):
        sock.send(b"END")
    out = [results.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(10)
    sock.close()
    ctx.term()
    return sent, out


def _port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_once(mode: str, subs: int, seconds: float, batch: int = 1, rate: float = 0.0) -> dict:
    """``mode``: bare, wispd, coalesced, bare_batched (ipc), or bare_curve / wispd_curve (tcp + CURVE)."""
    import zmq

    keys = None
    if mode.endswith("_curve"):
        server_public, server_secret = zmq.curve_keypair()
        keys = (server_public, server_secret, *zmq.curve_keypair())
    with tempfile.TemporaryDirectory(prefix="wb-") as tmp:
        endpoint = f"tcp://127.0.0.1:{_port()}" if keys else f"ipc://{tmp}/md.sock"
        sent, results = publisher(mode.removesuffix("_curve") if mode != "bare_curve" else "bare_curve", endpoint,
                                  subs, seconds, batch, keys, rate)
    received = sum(r[0] for r in results)
    frames = sum(r[4] for r in results)
    rates = [r[0] / (r[2] - r[1]) for r in results if r[0] > 1 and r[2] > r[1]]
    cpu = [r[5] / r[0] * 1e6 for r in results if r[0] > 1]  # subscriber CPU microseconds per trade
    return {"sent": sent, "received": received, "rate": sum(rates), "loss": 1 - received / (sent * subs),
            "cpu_us": statistics.mean(cpu) if cpu else 0.0,
            "gaps": sum(r[3] for r in results), "per_frame": received / frames / (LEVELS // 2) if frames else 0}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--subs", default="1,4,16")
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--paced", type=float, default=0.0,
                    help="also run every variant at this many updates a second (a busy venue) and report the "
                         "subscribers' CPU per trade")
    ap.add_argument("--paced-subs", type=int, default=4)
    ap.add_argument("--write", help="update this markdown file's fan-out sections")
    ns = ap.parse_args()
    rows = []
    modes = ("bare", "wispd", "coalesced", "bare_batched", "bare_curve", "wispd_curve")
    for subs in [int(s) for s in ns.subs.split(",")]:
        runs: dict[str, list[dict]] = {m: [] for m in modes}
        for _ in range(ns.repeats):
            batch = 1
            for mode in modes:
                runs[mode].append(run_once(mode, subs, ns.seconds, batch))
                if mode == "coalesced":  # the bare loop then batches exactly as many updates per frame
                    batch = max(1, round(runs[mode][-1]["per_frame"]))
        med = {m: statistics.median(r["rate"] for r in rs) for m, rs in runs.items()}
        loss = {m: statistics.median(r["loss"] for r in rs) for m, rs in runs.items()}
        sent = {m: statistics.median(r["sent"] / ns.seconds for r in rs) for m, rs in runs.items()}
        per_frame = statistics.median(r["per_frame"] for r in runs["coalesced"])
        row = (subs, per_frame, {m: (sent[m], med[m], loss[m]) for m in modes})
        rows.append(row)
        print(f"subs {subs:2d} | " + " | ".join(
            f"{m} sent {sent[m]:9.0f}/s decoded {med[m]:9.0f}/s loss {loss[m] * 100:5.1f}% ratio "
            f"{med[m] / med['bare']:.2f}" for m in modes), flush=True)
    if ns.write:
        def cell(r: tuple) -> str:
            return f"{r[1]:,.0f}" + (f" ({r[2] * 100:.1f} % lost)" if r[2] > 0.0005 else "")

        table = ["Trades decoded per second, summed over the subscribers (ipc unless marked tcp). Like for like: "
                 "per update against a bare loop sending one update per frame; coalesced against a bare loop "
                 "sending the same number of updates per frame as coalesced wispd did in that run; CURVE (what "
                 "every tcp:// endpoint uses) against the same bare loop over tcp with CURVE.", "",
                 "| subscribers | bare, per update | wispd, per update | ratio | updates per frame (coalesced) | "
                 "bare, same batching | wispd coalesced (default) | ratio | bare, tcp + CURVE | "
                 "wispd per update, tcp + CURVE | ratio | CURVE cost (bare) |",
                 "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for subs, per_frame, r in rows:
            b, w, c, bb, bc, wc = (r[m] for m in modes)
            table.append(f"| {subs} | {cell(b)} | {cell(w)} | **{w[1] / b[1]:.2f}** | {per_frame:,.0f} | {cell(bb)} | "
                         f"{cell(c)} | **{c[1] / bb[1]:.2f}** | {cell(bc)} | {cell(wc)} | **{wc[1] / bc[1]:.2f}** | "
                         f"{bc[1] / b[1]:.2f}x |")
        cmd = "python bench/fanout.py " + " ".join(sys.argv[1:])
        update_section(Path(ns.write), "fan-out", "\n".join(table), cmd, ns)
    if ns.paced:
        paced(ns)


def paced(ns: argparse.Namespace) -> None:
    """Every variant at a busy venue's rate: all keep up, so compare the subscribers' CPU per trade."""
    modes = ("bare", "wispd", "coalesced", "bare_batched")
    runs: dict[str, list[dict]] = {m: [] for m in modes}
    for _ in range(ns.repeats):
        batch = 1
        for mode in modes:
            runs[mode].append(run_once(mode, ns.paced_subs, ns.seconds, batch, ns.paced))
            if mode == "coalesced":
                batch = max(1, round(runs[mode][-1]["per_frame"]))
    cpu = {m: statistics.median(r["cpu_us"] for r in rs) for m, rs in runs.items()}
    loss = {m: statistics.median(r["loss"] for r in rs) for m, rs in runs.items()}
    per_frame = statistics.median(r["per_frame"] for r in runs["coalesced"])
    print(f"paced {ns.paced:.0f} updates/s, {ns.paced_subs} subscribers | " + " | ".join(
        f"{m} {cpu[m]:.3f} us CPU per trade, loss {loss[m] * 100:.1f}%" for m in modes)
        + f" | coalesced {per_frame:.1f} updates per frame", flush=True)
    if ns.write:
        lost = [m for m in modes if loss[m] > 0.0005]
        table = [f"The publisher paced at {ns.paced:,.0f} updates a second ({ns.paced * (LEVELS // 2):,.0f} trades; "
                 f"1 ms ticks) to {ns.paced_subs} subscribers: every variant keeps up, so the figure is each "
                 "subscriber's CPU time per trade decoded (lower is better; ratio = bare / wispd, so 1 is parity). "
                 "Coalesced against a bare loop batching the same updates per frame.", "",
                 "| bare, per update | wispd, per update | ratio | updates per frame (coalesced) | "
                 "bare, same batching | wispd coalesced (default) | ratio | lost |",
                 "| --- | --- | --- | --- | --- | --- | --- | --- |",
                 f"| {cpu['bare']:.3f} us | {cpu['wispd']:.3f} us | **{cpu['bare'] / cpu['wispd']:.2f}** | "
                 f"{per_frame:.1f} | {cpu['bare_batched']:.3f} us | {cpu['coalesced']:.3f} us | "
                 f"**{cpu['bare_batched'] / cpu['coalesced']:.2f}** | {', '.join(lost) or 'none'} |"]
        cmd = "python bench/fanout.py " + " ".join(sys.argv[1:])
        update_section(Path(ns.write), "fan-out-paced", "\n".join(table), cmd, ns)


def update_section(path: Path, key: str, table: str, cmd: str, ns: argparse.Namespace) -> None:
    from bench.report import replace_section

    replace_section(path, key, table, cmd)


if __name__ == "__main__":
    main()
