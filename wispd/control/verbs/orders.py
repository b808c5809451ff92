"""`wispctl orders [--json]`: working orders of every executor."""

from __future__ import annotations

import argparse
from typing import Any

from wispd.control.verbs._common import EXIT_OK, json_flag, no_request_args, print_json
from wispd.control.verbs.positions import executor_states

NAME = "orders"
HELP = "working orders of every executor"
MUTATING = False
TIMEOUT = 10.0


add_arguments = json_flag
request = no_request_args


def handle(sup: Any, args: dict[str, Any], respond: Any) -> None:
    respond(True, {"orders": [{"account": s["account"], **o} for s in executor_states(sup) for o in s["orders"]]})


def render(reply: dict[str, Any], ns: argparse.Namespace) -> int:
    orders = reply["result"]["orders"]
    if ns.json:
        print_json(reply["result"])
        return EXIT_OK
    for o in orders:
        trigger = f" when {o['trigger']['kind']} {o['trigger']['price']}" if o.get("trigger") else ""
        leg = f" ({o['leg']} of {o['parent']})" if o.get("parent") else ""
        print(f"{o['account']:<10} {o['strategy']:<16} {o['client_id']} {o['side']:<4} {o['qty']} "
              f"{o['exchange']}:{o['symbol']} @ {o['price'] or 'market'}{trigger} {o['status']} filled "
              f"{o['filled']}{leg}")
    if not orders:
        print("no working orders")
    return EXIT_OK
