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


FIELDS = ("executor", "account", "halted", "positions", "balances", "pnl", "unassigned", "strategies",
          "halted_strategies", "orphaned")


def handle(sup: Any, args: dict[str, Any], respond: Any) -> None:
    respond(True, {"accounts": [{k: s.get(k) for k in FIELDS} for s in executor_states(sup)]})


def shown(value: Any) -> str:
    """A number as the executor formatted it; None (no mark yet) is shown as unknown, never as 0."""
    return "unknown" if value is None else str(value)


def render(reply: dict[str, Any], ns: argparse.Namespace) -> int:
    accounts = reply["result"]["accounts"]
    if ns.json:
        print_json(reply["result"])
        return EXIT_OK
    for acc in accounts:
        print(f"account {acc['account']}{' (HALTED)' if acc['halted'] else ''}: balances "
              + ", ".join(f"{k} {v}" for k, v in sorted(acc["balances"].items())))
        for name, reason in sorted((acc.get("halted_strategies") or {}).items()):
            print(f"  {name:<16} HALTED: {reason}")
        for p in acc["positions"]:
            orphan = "  ORPHANED (its strategy left the config)" if p.get("orphaned") else ""
            print(f"  {p['strategy']:<16} {p['exchange']}:{p['market']}:{p['symbol']:<12} qty {p['qty']:>12} "
                  f"avg {p['avg_price']:>12} mark {shown(p['mark']):>12} uPnL {shown(p['unrealized_pnl']):>10} "
                  f"rPnL {p['realized_pnl']:>10} fees {p['fees']}{orphan}")
        for strategy, pnl in sorted(acc["pnl"].items()):
            funds = (acc.get("strategies") or {}).get(strategy) or {}
            avail = ", ".join(f"{k} {v}" for k, v in sorted((funds.get("available") or {}).items()))
            print(f"  {strategy:<16} PnL total {shown(pnl['total'])} (realized {pnl['realized']}, "
                  f"unrealized {shown(pnl['unrealized'])}, fees {pnl['fees']})" + (f"; available {avail}" if avail
                                                                                 else ""))
    if not accounts:
        print("no executor has reported yet")
    return EXIT_OK
