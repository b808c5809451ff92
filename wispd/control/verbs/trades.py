"""`wispctl trades [NAME] [--since 2h] [--json]`: fill history (time, price, qty, fee, realised PnL).

Read from the journals in the state directory (read-only): it works whether the daemon runs or not.
"""

from __future__ import annotations

import argparse
import sys

from wispd.control.verbs._common import EXIT_ERROR, EXIT_OK, json_flag, print_json

NAME = "trades"
HELP = "fill history of every strategy, or of NAME (--since 2h|7d|ISO date), from the journals"
MUTATING = False
LOCAL = True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", nargs="?", help="one strategy")
    parser.add_argument("--since", help="30m, 2h, 7d, or an ISO date/time (UTC)")
    json_flag(parser)


def run_local(ns: argparse.Namespace) -> int:
    from wispd.config import ConfigError
    from wispd.config.paths import load_paths
    from wispd.execution.history import fills, parse_since

    try:
        paths = load_paths(ns.config)
        since = parse_since(ns.since)
    except (ConfigError, ValueError) as exc:
        print(f"wispctl: {exc}", file=sys.stderr)
        return EXIT_ERROR
    rows = [{k: v for k, v in f.items() if not k.startswith("_")} for f in fills(paths.state_dir, since, ns.name)]
    if ns.json:
        print_json({"trades": rows})
        return EXIT_OK
    for f in rows:
        print(f"{f['time']} {f['strategy']:<14} {f['exchange']}:{f['market']}:{f['symbol']:<10} {f['side']:<4} "
              f"{f['qty']:>12} @ {f['price']:>12}  fee {f['fee']:>10}  rPnL {f['realized_pnl'] or '-':>10}  "
              f"{f['liquidity']}")
    if not rows:
        print("no fills" + (f" for {ns.name}" if ns.name else "") + (f" since {ns.since}" if ns.since else ""))
    return EXIT_OK
