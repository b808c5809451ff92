"""Memory of strategy processes: USS (memory that would be freed if the process exited) of an idle
strategy and of one watching 10 pairs (books, trades, tickers and 1m candles), after a warm-up, under a
real wispd on the sim exchange. Goal: <= 30 MB USS.

    python bench/strategy_memory.py [--seconds 15] [--write docs/BENCHMARKS.md]
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import PRODUCTION, scratch_dir  # noqa: E402
from bench.report import replace_section  # noqa: E402
from tests.helpers import Daemon  # noqa: E402

BODY = """
[exchanges.sim]
driver = "sim"
[exchanges.sim.sim]
update_hz = 10.0
trade_rate = 5.0
serve_any = true  # WatchMany watches C0-USDT ... C9-USDT, which are not in any pairs list
[strategies.idle]
module = "bench.strategies"
class = "Idle"
[strategies.watch10]
module = "bench.strategies"
class = "WatchMany"
params = { pairs = 10 }
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--write")
    ns = ap.parse_args()
    tmp = Path(scratch_dir())
    d = Daemon(tmp, BODY, uuid.uuid4().hex, **PRODUCTION)
    d.start()
    try:
        time.sleep(ns.seconds)
        rows = []
        for name in ("idle", "watch10", "ingestor.sim"):
            c = d.child(name)
            info = psutil.Process(c["pid"]).memory_full_info()
            rows.append((name, info.uss / 2**20, info.pss / 2**20, info.rss / 2**20, c["status"].get("summary", "")))
            print(f"{name:<14} USS {rows[-1][1]:6.1f} MB  PSS {rows[-1][2]:6.1f} MB  RSS {rows[-1][3]:6.1f} MB",
                  flush=True)
    finally:
        d.stop()
        d.kill()
    if ns.write:
        table = ["| process | USS MB | PSS MB | RSS MB | note |", "| --- | --- | --- | --- | --- |"]
        for name, uss, pss, rss, note in rows:
            table.append(f"| {name} | **{uss:.1f}** | {pss:.1f} | {rss:.1f} | {note} |")
        table.append("")
        table.append("Goal for strategy processes: <= 30 MB USS. Children are forked from wispd's forkserver, which "
                     "preloads pyzmq, orjson and the runtime, so those pages are shared (PSS) rather than private "
                     "(USS). Strategy processes never import ccxt.")
        replace_section(Path(ns.write), "strategy-memory", "\n".join(table),
                        "python bench/strategy_memory.py " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
