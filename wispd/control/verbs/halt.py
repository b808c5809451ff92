"""`wispctl halt [NAME] [--cancel] [--flatten]`: stop new orders on every executor at once, or for one
strategy (optionally cancel its working orders, and flatten its positions with reduce-only market orders).

Reducing risk stays possible while halted: cancels, `close` and reduce-only orders go through. The halt is
kept in the state directory: it survives executor and wispd restarts until `wispctl resume [NAME]`.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from wispd.control import envelope
from wispd.control.verbs._common import EXIT_ERROR, EXIT_OK, EXIT_UNKNOWN

NAME = "halt"
HELP = "stop new orders on every executor, or for strategy NAME (--cancel cancels working orders, --flatten " \
       "also closes positions)"
MUTATING = True
TIMEOUT = 10.0
NAME_PAST = {"halt": "halted", "resume": "resumed"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", nargs="?", help="one strategy (default: every executor)")
    parser.add_argument("--cancel", action="store_true", help="also cancel every working order")
    parser.add_argument("--flatten", action="store_true", help="also close the positions (reduce-only market)")


def request(ns: argparse.Namespace) -> dict[str, Any]:
    return {"name": ns.name, "cancel": bool(getattr(ns, "cancel", False)),
            "flatten": bool(getattr(ns, "flatten", False))}


def strategy_arg(sup: Any, args: dict[str, Any], respond: Any) -> tuple[bool, str | None]:
    """(ok, the strategy named, or None for all); answers the request itself when the name is unknown."""
    name = args.get("name")
    if name is None:
        return True, None
    child = sup.children.get(name) if isinstance(name, str) else None
    if child is None or child.kind != "strategy":
        respond(False, {"known": sorted(n for n, c in sup.children.items() if c.kind == "strategy")},
                envelope.ERR_UNKNOWN_NAME, f"no such strategy: {name!r}")
        return False, None
    return True, name


def handle(sup: Any, args: dict[str, Any], respond: Any) -> None:
    ok, strategy = strategy_arg(sup, args, respond)
    if ok:
        answer(respond, "halt", strategy, *sup.set_halt(True, bool(args.get("cancel")), strategy,
                                                        bool(args.get("flatten"))))


def answer(respond: Any, verb: str, strategy: str | None, reached: list[str], unsaved: str | None) -> None:
    """Done only when it is also saved; otherwise it holds in memory and the operator is told so."""
    if unsaved is None:
        respond(True, {"executors": reached, "strategy": strategy, "saved": True})
    else:
        respond(False, {"executors": reached, "strategy": strategy, "saved": False}, envelope.ERR_FAILED,
                f"trading {NAME_PAST[verb]} in memory on {len(reached)} executor(s), but it could not be saved "
                f"({unsaved}): it will NOT survive a restart of wispd until it can be written")


def render(reply: dict[str, Any], ns: argparse.Namespace) -> int:
    if not reply.get("ok"):
        print(f"error: {reply.get('error')}", file=sys.stderr)
        return EXIT_UNKNOWN if reply.get("code") == envelope.ERR_UNKNOWN_NAME else EXIT_ERROR
    result = reply["result"]
    reached = result["executors"]
    what = f"for {result['strategy']}" if result.get("strategy") else "on every executor"
    print(f"trading {NAME_PAST[ns.verb]} {what} ({len(reached)} executor(s): {', '.join(reached) or '-'}; also "
          "kept for executors that start later)")
    return EXIT_OK
