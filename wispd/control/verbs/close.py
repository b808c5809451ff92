"""`wispctl close NAME|--all`: flatten a strategy's positions (or every position) with reduce-only market
orders, journaled like any order (their signal ids start with ``op-close-``)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from wispd.control import envelope
from wispd.control.verbs import halt
from wispd.control.verbs._common import EXIT_ERROR, EXIT_OK, EXIT_UNKNOWN, add_target

NAME = "close"
HELP = "close the positions of strategy NAME (or --all) with reduce-only market orders"
MUTATING = True
TIMEOUT = 10.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_target(parser)


def request(ns: argparse.Namespace) -> dict[str, Any]:
    return {"name": None if ns.all else ns.name}


def handle(sup: Any, args: dict[str, Any], respond: Any) -> None:
    ok, strategy = halt.strategy_arg(sup, args, respond)
    if ok:
        reached = sup.tell_executors(strategy, cmd="close")
        sup.log.warning("close_positions", strategy=strategy or "*", executors=reached)
        respond(True, {"executors": reached, "strategy": strategy})


def render(reply: dict[str, Any], ns: argparse.Namespace) -> int:
    if not reply.get("ok"):
        print(f"error: {reply.get('error')}", file=sys.stderr)
        return EXIT_UNKNOWN if reply.get("code") == envelope.ERR_UNKNOWN_NAME else EXIT_ERROR
    result = reply["result"]
    who = result.get("strategy") or "every strategy"
    print(f"closing the positions of {who} on {len(result['executors'])} executor(s): "
          f"{', '.join(result['executors']) or '-'} (see wispctl trades / positions)")
    return EXIT_OK
