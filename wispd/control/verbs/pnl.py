"""`wispctl pnl [--by strategy|day] [--since 7d] [--json]`: realised PnL, fees and net per strategy (with
the open positions' unrealised PnL at the last mark the journal kept) or per UTC day.

Read from the journals in the state directory (read-only): it works whether the daemon runs or not.
"""

from __future__ import annotations

import argparse
import sys

from wispd.control.verbs._common import EXIT_ERROR, EXIT_OK, json_flag, print_json

NAME = "pnl"
HELP = "PnL per strategy (or --by day) from the journals: realised, fees, net, unrealised at the last mark"
MUTATING = False
LOCAL = True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--by", choices=("strategy", "day"), default="strategy")
    parser.add_argument("--since", help="30m, 2h, 7d, or an ISO date/time (UTC)")
    json_flag(parser)


def run_local(ns: argparse.Namespace) -> int:
    from wispd.config import ConfigError
    from wispd.config.paths import load_paths
    from wispd.execution.history import parse_since, pnl

    try:
        paths = load_paths(ns.config)
        rows = pnl(paths.state_dir, ns.by, parse_since(ns.since))
    except (ConfigError, ValueError) as exc:
        print(f"wispctl: {exc}", file=sys.stderr)
        return EXIT_ERROR
    if ns.json:
        print_json({"by": ns.by, "pnl": rows})
        return EXIT_OK
    for r in rows:
        extra = ""
        if ns.by == "strategy":
            extra = f"  unrealised {r['unrealized'] or 'unknown':>10}  total {r['total'] or 'unknown':>10}"
        print(f"{r[ns.by]:<16} fills {r['fills']:>5}  realised {r['realized']:>10}  fees {r['fees']:>10}  "
              f"net {r['net']:>10}{extra}")
    if not rows:
        print("no fills yet")
    return EXIT_OK
