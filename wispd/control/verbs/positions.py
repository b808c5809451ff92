"""`wispctl positions [--json]`: positions and PnL per strategy, from every executor's last report."""

from __future__ import annotations

import argparse
from typing import Any

from wispd.control.verbs._common import EXIT_OK, json_flag, no_request_args, print_json

NAME = "positions"
HELP = "positions, PnL and balances per strategy and account (Decimal strings in --json)"
MUTATING = False
TIMEOUT = 10.0


add_arguments = json_flag
request = no_request_args


def executor_states(sup: Any) -> list[dict[str, Any]]:
    out = []
    for child in sup.ordered():
        state = (child.metrics or {}).get("exec") if child.kind == "executor" else None
        if isinstance(state, dict):
            out.append({"executor": child.name, "state": child.state.value, **state})
    return out


def handle(sup: Any, args: dict[str, Any], respond: Any) -> None:
    respond(True, {"accounts": [{k: s[k] for k in ("executor", "account", "halted", "positions", "balances", "pnl")}
                                for s in executor_states(sup)]})


def render(reply: dict[str, Any], ns: argparse.Namespace) -> int:
    accounts = reply["result"]["accounts"]
    if ns.json:
        print_json(reply["result"])
        return EXIT_OK
    for acc in accounts:
        print(f"account {acc['account']}{' (HALTED)' if acc['halted'] else ''}: balances "
              + ", ".join(f"{k} {v}" for k, v in sorted(acc["balances"].items())))
        for p in acc["positions"]:
            print(f"  {p['strategy']:<16} {p['exchange']}:{p['market']}:{p['symbol']:<12} qty {p['qty']:>12} "
                  f"avg {p['avg_price']:>12} mark {p['mark'] or '-':>12} uPnL {p['unrealized_pnl']:>10} "
                  f"rPnL {p['realized_pnl']:>10} fees {p['fees']}")
        for strategy, pnl in sorted(acc["pnl"].items()):
            print(f"  {strategy:<16} PnL total {pnl['total']} (realized {pnl['realized']}, "
                  f"unrealized {pnl['unrealized']}, fees {pnl['fees']})")
    if not accounts:
        print("no executor has reported yet")
    return EXIT_OK
