"""Many strategies on one sim ingestor: start time, supervisor CPU, status and scrape latency, memory.

A real wispd with ``--n`` strategies (``bench.strategies.Idle`` watching one book each) on the sim
exchange and a paper executor. Measured: time from ``wispd run`` to every child RUNNING; the supervisor's
CPU share over ``--seconds`` of steady state; ``wispctl status --json`` wall time and size (the overview,
without status histories); a /metrics scrape's wall time; USS per strategy (median). Goals (issue 14):
supervisor <= 5 % of a core with 100 idle strategies, status <= 50 ms, scrape <= 50 ms.

    python bench/scale.py [--n 100] [--seconds 10] [--write docs/BENCHMARKS.md]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import PRODUCTION  # noqa: E402
from bench.report import replace_section  # noqa: E402
from tests.helpers import BIN, Daemon, wait_for  # noqa: E402


def lag_quantiles(exposition: str) -> tuple[float, float]:
    """p50 and p99 (bucket upper bounds, ms) of ingestor publish -> strategy decode, all strategies."""
    buckets: dict[float, float] = {}
    for line in exposition.splitlines():
        if line.startswith("wispd_md_lag_seconds_bucket{"):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            bound = float("inf") if le == "+Inf" else float(le)
            buckets[bound] = buckets.get(bound, 0.0) + float(line.rsplit(" ", 1)[1])
    if not buckets or not buckets.get(float("inf")):
        return float("nan"), float("nan")
    total = buckets[float("inf")]

    def q(p: float) -> float:
        return next(b for b in sorted(buckets) if buckets[b] >= p * total) * 1000

    return q(0.5), q(0.99)


def run(n: int, seconds: float) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="wb-", dir="/tmp"))
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
        c0, w0 = sum(sup.cpu_times()[:2]), time.perf_counter()
        time.sleep(seconds)
        cpu = (sum(sup.cpu_times()[:2]) - c0) / (time.perf_counter() - w0)
        status_ms, sizes = [], []
        for _ in range(5):
            t = time.perf_counter()
            out = subprocess.run([str(BIN / "wispctl"), "--config", str(d.config), "status", "--json"],
                                 capture_output=True, env=d.env(), timeout=60).stdout
            status_ms.append((time.perf_counter() - t) * 1000)
            sizes.append(len(out))
        from wispd.control.client import call

        rtt = []
        for _ in range(10):
            t = time.perf_counter()
            call(d.endpoint, "status", {"name": None}, 30.0)
            rtt.append((time.perf_counter() - t) * 1000)
        url = d.status()["daemon"]["metrics_url"]
        scrape_ms = []
        for _ in range(5):
            t = time.perf_counter()
            text = urllib.request.urlopen(url, timeout=30).read().decode()
            scrape_ms.append((time.perf_counter() - t) * 1000)
        lag = lag_quantiles(text)
        uss = [c.get("uss_bytes") or 0 for c in d.status()["children"] if c["kind"] == "strategy"]
    finally:
        d.stop()
        d.kill()
    return {"n": n, "start_s": started, "cpu": cpu, "status_ms": statistics.median(status_ms),
            "rtt_ms": statistics.median(rtt), "lag_p50": lag[0], "lag_p99": lag[1],
            "status_kb": statistics.median(sizes) / 1024, "scrape_ms": statistics.median(scrape_ms),
            "uss_mb": statistics.median(uss) / 1048576 if uss else 0.0}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", default="100")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--write")
    ns = ap.parse_args()
    rows = [run(int(n), ns.seconds) for n in ns.n.split(",")]
    for r in rows:
        print(f"{r['n']} strategies: all running in {r['start_s']:.1f} s, supervisor {r['cpu'] * 100:.1f} % of a "
              f"core, status --json {r['status_ms']:.0f} ms ({r['status_kb']:.0f} KB; the request itself "
              f"{r['rtt_ms']:.1f} ms), scrape {r['scrape_ms']:.0f} "
              f"ms, md lag p50 <= {r['lag_p50']:g} ms p99 <= {r['lag_p99']:g} ms, USS/strategy {r['uss_mb']:.1f} MB", flush=True)
    if ns.write:
        table = ["| strategies | all RUNNING after | supervisor CPU | `wispctl status --json` (process) | the status "
                 "request itself | size | /metrics scrape | md lag p50 / p99 | USS per strategy |",
                 "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        table += [f"| {r['n']} | {r['start_s']:.1f} s | **{r['cpu'] * 100:.1f} %** of a core | {r['status_ms']:.0f} ms "
                  f"| **{r['rtt_ms']:.1f} ms** | {r['status_kb']:.0f} KB | **{r['scrape_ms']:.0f} ms** | "
                  f"<= {r['lag_p50']:g} / **<= {r['lag_p99']:g} ms** | {r['uss_mb']:.1f} MB |" for r in rows]
        table += ["", "Goals: supervisor <= 5 % of a core with 100 idle strategies, status <= 50 ms, scrape <= 50 ms. "
                  "Each strategy watches one book (BTC-USDT at 10 updates/s). md lag: ingestor publish -> decoded "
                  "in the strategy, from the strategies' own sampled histogram (bucket upper bounds); goal p99 <= 5 ms."]
        replace_section(Path(ns.write), "scale", "\n".join(table), "python bench/scale.py " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
