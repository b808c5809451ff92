"""`wispctl resume [NAME]`: lift a `wispctl halt` (and a tripped kill switch) on every executor, or for one
strategy."""

from __future__ import annotations

import argparse
from typing import Any

from wispd.control.verbs import halt

NAME = "resume"
HELP = "lift the trading halt (and tripped kill switches) on every executor, or for strategy NAME"
MUTATING = True
TIMEOUT = 10.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", nargs="?", help="one strategy (default: every executor)")


def request(ns: argparse.Namespace) -> dict[str, Any]:
    return {"name": ns.name}


def handle(sup: Any, args: dict[str, Any], respond: Any) -> None:
    ok, strategy = halt.strategy_arg(sup, args, respond)
    if ok:
        halt.answer(respond, "resume", strategy, *sup.set_halt(False, strategy=strategy))


render = halt.render
