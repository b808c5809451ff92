"""Many strategies on one sim ingestor: start time, supervisor CPU, status and scrape latency, memory.

A real wispd with ``--n`` strategies (``bench.strategies.Idle`` watching one book each) on the sim
exchange and a paper executor. Measured: time from ``wispd run`` to every child RUNNING; the supervisor's
CPU share over ``--seconds`` of steady state; ``wispctl status`` and ``wispctl status --json`` wall time
(the whole command, as an operator's shell runs it, with the bytecode an installed package has) and size
(the overview, without status histories), beside their floor in the same run: the same interpreter starting
and doing nothing, plus the status request's own round trip; a /metrics scrape's wall time; USS per
strategy (median). Goals (issue 14):
supervisor <= 5 % of a core with 100 idle strategies, status <= 50 ms, scrape <= 50 ms, md lag p99 <= 5 ms.

md lag is read from the strategies' own histograms between two scrapes (the steady state), beside its floor
measured in the same run: as many bare processes, each a receiver thread decoding a 10-level book from one
PUB at the same rate (``bare_lag``), which says how much of the lag is waking that many processes on this
machine's cores rather than wispd's work.

    python bench/scale.py [--n 100] [--seconds 10] [--write docs/BENCHMARKS.md]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import PRODUCTION, scratch_dir  # noqa: E402
from bench.report import replace_section  # noqa: E402
from tests.helpers import BIN, Daemon, wait_for  # noqa: E402


def lag_buckets(exposition: str) -> dict[float, float]:
    """Cumulative bucket counts of ingestor publish -> strategy decode, summed over all strategies."""
    buckets: dict[float, float] = {}
    for line in exposition.splitlines():
        if line.startswith("wispd_md_lag_seconds_bucket{"):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            bound = float("inf") if le == "+Inf" else float(le)
            buckets[bound] = buckets.get(bound, 0.0) + float(line.rsplit(" ", 1)[1])
    return buckets


def lag_quantiles(after: str, before: str = "") -> tuple[float, float]:
    """p50 and p99 (bucket upper bounds, ms) of the lag observed between two scrapes: the steady state, not
    the start, when a hundred children forking at once delay everyone's first books."""
    end, start = lag_buckets(after), lag_buckets(before)
    buckets = {b: n - start.get(b, 0.0) for b, n in end.items()}
    if not buckets or not buckets.get(float("inf")):
        return float("nan"), float("nan")
    total = buckets[float("inf")]

    def q(p: float) -> float:
        return next(b for b in sorted(buckets) if buckets[b] >= p * total) * 1000

    return q(0.5), q(0.99)


def _bare_subscriber(endpoint: str, ready, results, samples: int) -> None:
    """What a strategy process does per book, bare: a receiver thread polls a SUB, decodes each frame and
    notes its lag; the main thread sleeps (an idle strategy)."""
    import threading

    import orjson
    import zmq

    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"md.")
    sub.connect(endpoint)
    lags: list[float] = []

    def receive() -> None:
        poller = zmq.Poller()
        poller.register(sub, zmq.POLLIN)
        while len(lags) < samples:
            if not poller.poll(500):
                continue
            while True:
                try:
                    frame = sub.recv(zmq.NOBLOCK)
                except zmq.Again:
                    break
                now = time.time() * 1000
                lags.append(now - orjson.loads(frame.partition(b" ")[2])["ts_ingest"])

    t = threading.Thread(target=receive, daemon=True)
    t.start()
    ready.put(1)
    while t.is_alive():
        time.sleep(1)
    results.put(lags)
    sub.close(0)
    ctx.term()


def bare_lag(n: int, seconds: float, rate: float = 10.0) -> tuple[float, float]:
    """The floor for md lag at ``n`` subscribers: ``n`` bare processes as above, one PUB sending a 10-level
    book ``rate`` times a second; p50 and p99 (ms, exact) of publish -> decoded, over every subscriber."""
    import multiprocessing as mp

    import orjson
    import zmq

    tmp = scratch_dir()
    endpoint = f"ipc://{tmp}/md"
    zctx = zmq.Context()
    pub = zctx.socket(zmq.PUB)
    pub.bind(endpoint)
    mpctx = mp.get_context("fork")
    ready, results = mpctx.Queue(), mpctx.Queue()
    samples = int(seconds * rate)
    procs = [mpctx.Process(target=_bare_subscriber, args=(endpoint, ready, results, samples)) for _ in range(n)]
    for p in procs:
        p.start()
    for _ in procs:
        ready.get(timeout=60)
    time.sleep(2)  # every subscription has reached the PUB
    levels = [[f"{60000 + k / 10:.1f}", "0.5"] for k in range(10)]
    lags: list[float] = []
    try:
        for i in range(samples + 20):
            pub.send(b"md.sim.spot.BTC-USDT.book " + orjson.dumps(
                {"v": 1, "kind": "book", "seq": i + 1, "ts_ingest": time.time() * 1000,
                 "body": {"bids": levels, "asks": levels}}))
            time.sleep(1 / rate)
            if i >= samples:
                break
        for _ in procs:
            lags += results.get(timeout=30)
    finally:
        for p in procs:
            p.join(5)
            if p.is_alive():
                p.kill()
        pub.close(0)
        zctx.term()
    lags.sort()
    return statistics.median(lags), lags[int(0.99 * len(lags)) - 1]


def run(n: int, seconds: float) -> dict:
    tmp = Path(scratch_dir())
    body = ('[exchanges.sim]\ndriver = "sim"\npairs = ["BTC-USDT"]\n[exchanges.sim.sim]\nupdate_hz = 10.0\n'
            'prices = { BTC-USDT = 60000.0 }\n[executors.paper]\nexchanges = ["sim"]\n')
    body += "".join(f'[strategies.s{i}]\nmodule = "bench.strategies"\nclass = "WatchOne"\n' for i in range(n))
    # the daemon's own defaults for the rates that cost the supervisor per child (the test settings beat and
    # sample five times a second, which no deployment does)
    d = Daemon(tmp, body, uuid.uuid4().hex, **PRODUCTION)
    t0 = time.perf_counter()
    d.start(wait_ready=False)
    try:
        wait_for(lambda: sum(c["state"] == "RUNNING" for c in d.status()["children"]) == n + 2, 300,
                 what="every child running")
        started = time.perf_counter() - t0
        sup = psutil.Process(d.proc.pid)
        time.sleep(2)
        url = d.status()["daemon"]["metrics_url"]
        before = urllib.request.urlopen(url, timeout=30).read().decode()
        c0, w0 = sum(sup.cpu_times()[:2]), time.perf_counter()
        time.sleep(seconds)
        cpu = (sum(sup.cpu_times()[:2]) - c0) / (time.perf_counter() - w0)
        # An installed package has its bytecode (pip compiles it): a command is not timed compiling wispd
        env = {k: v for k, v in d.env().items() if k != "PYTHONDONTWRITEBYTECODE"}

        def timed(argv: list[str]) -> tuple[float, int]:
            t = time.perf_counter()
            out = subprocess.run(argv, capture_output=True, env=env, timeout=60).stdout
            return (time.perf_counter() - t) * 1000, len(out)

        ctl = [str(BIN / "wispctl"), "--config", str(d.config), "status"]
        timed(ctl + ["--json"])  # writes the bytecode once
        bare = [sys.executable, str(Path(__file__).resolve().parent / "bare_status.py"), "--config", str(d.config),
                "status"]
        status_ms, json_ms, sizes, bare_ms, stdlib_ms = [], [], [], [], []
        for _ in range(9):
            status_ms.append(timed(ctl)[0])
            ms, size = timed(ctl + ["--json"])
            json_ms.append(ms)
            sizes.append(size)
            bare_ms.append(timed([sys.executable, "-c", "pass"])[0])
            stdlib_ms.append(timed(bare)[0])
        from wispd.control.client import call

        rtt = []
        for _ in range(10):
            t = time.perf_counter()
            call(d.endpoint, "status", {"name": None}, 30.0)
            rtt.append((time.perf_counter() - t) * 1000)
        scrape_ms = []
        for _ in range(5):
            t = time.perf_counter()
            text = urllib.request.urlopen(url, timeout=30).read().decode()
            scrape_ms.append((time.perf_counter() - t) * 1000)
        lag = lag_quantiles(text, before)
        uss = [c.get("uss_bytes") or 0 for c in d.status()["children"] if c["kind"] == "strategy"]
    finally:
        d.stop()
        d.kill()
    return {"n": n, "start_s": started, "cpu": cpu, "status_ms": statistics.median(status_ms),
            "json_ms": statistics.median(json_ms), "python_ms": statistics.median(bare_ms),
            "stdlib_ms": statistics.median(stdlib_ms),
            "rtt_ms": statistics.median(rtt), "lag_p50": lag[0], "lag_p99": lag[1],
            "status_kb": statistics.median(sizes) / 1024, "scrape_ms": statistics.median(scrape_ms),
            "uss_mb": statistics.median(uss) / 1048576 if uss else 0.0}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", default="100")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--write")
    ns = ap.parse_args()
    rows = []
    for n in ns.n.split(","):
        floor = bare_lag(int(n), ns.seconds)
        rows.append({**run(int(n), ns.seconds), "floor_p50": floor[0], "floor_p99": floor[1]})
    for r in rows:
        print(f"{r['n']} strategies: all running in {r['start_s']:.1f} s, supervisor {r['cpu'] * 100:.1f} % of a "
              f"core, status {r['status_ms']:.0f} ms, --json {r['json_ms']:.0f} ms ({r['status_kb']:.0f} KB; "
              f"floor: python -c pass {r['python_ms']:.0f} ms + the request {r['rtt_ms']:.1f} ms; a bare stdlib "
              f"client {r['stdlib_ms']:.0f} ms), scrape {r['scrape_ms']:.0f} "
              f"ms, md lag p50 <= {r['lag_p50']:g} ms p99 <= {r['lag_p99']:g} ms (bare floor p50 {r['floor_p50']:.2f} ms p99 "
              f"{r['floor_p99']:.2f} ms), USS/strategy {r['uss_mb']:.1f} MB", flush=True)
    if ns.write:
        table = ["| strategies | all RUNNING after | supervisor CPU | `wispctl status` / `--json` (whole command) "
                 "| floor: `python -c pass` + the request | bare stdlib client (bench/bare_status.py) | size (--json) | /metrics scrape | md lag p50 / p99 | bare floor: "
                 "md lag p50 / p99 | USS per strategy |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        table += [f"| {r['n']} | {r['start_s']:.1f} s | **{r['cpu'] * 100:.1f} %** of a core | **{r['status_ms']:.0f}** / "
                  f"{r['json_ms']:.0f} ms | {r['python_ms']:.0f} + {r['rtt_ms']:.1f} ms "
                  f"({(r['status_ms'] / (r['python_ms'] + r['rtt_ms'])):.2f}x) | {r['stdlib_ms']:.0f} ms "
                  f"({r['status_ms'] / r['stdlib_ms']:.2f}x) | {r['status_kb']:.0f} KB | **{r['scrape_ms']:.0f} ms** | "
                  f"<= {r['lag_p50']:g} / **<= {r['lag_p99']:g} ms** | "
                  f"{r['floor_p50']:.1f} / {r['floor_p99']:.1f} ms | {r['uss_mb']:.1f} MB |" for r in rows]
        table += ["", "Goals: supervisor <= 5 % of a core with 100 idle strategies, status <= 50 ms, scrape <= 50 ms. "
                  "Commands timed whole (start to exit, medians of 9, bytecode compiled as an installed package "
                  "has it); the ratio is `wispctl status` to its floor. "
                  "Each strategy watches one book (BTC-USDT at 10 updates/s). md lag: ingestor publish -> decoded "
                  "in the strategy, from the strategies' own sampled histogram between two scrapes of the steady state (bucket "
                  "upper bounds); goal p99 <= 5 ms. Floor: as many bare processes (a receiver thread decoding the "
                  "same book from one PUB at the same rate), exact quantiles."]
        replace_section(Path(ns.write), "scale", "\n".join(table), "python bench/scale.py " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
