"""`wispctl halt [--cancel]`: stop new orders on every executor at once (optionally cancel working ones).

The halt is kept in the state directory: it survives executor and wispd restarts until `wispctl resume`.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from wispd import protocol
from wispd.control.verbs._common import EXIT_ERROR, EXIT_OK

NAME = "halt"
HELP = "stop new orders on every executor (--cancel also cancels working orders)"
MUTATING = True
TIMEOUT = 10.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cancel", action="store_true", help="also cancel every working order")


def request(ns: argparse.Namespace) -> dict[str, Any]:
    return {"cancel": bool(getattr(ns, "cancel", False))}


def handle(sup: Any, args: dict[str, Any], respond: Any) -> None:
    answer(respond, "halt", *sup.set_halt(True, bool(args.get("cancel"))))


def answer(respond: Any, verb: str, reached: list[str], unsaved: str | None) -> None:
    """Done only when it is also saved; otherwise it holds in memory and the operator is told so."""
    if unsaved is None:
        respond(True, {"executors": reached, "saved": True})
    else:
        respond(False, {"executors": reached, "saved": False}, protocol.ERR_FAILED,
                f"trading {NAME_PAST[verb]} in memory on {len(reached)} executor(s), but it could not be saved "
                f"({unsaved}): it will NOT survive a restart of wispd until it can be written")


def render(reply: dict[str, Any], ns: argparse.Namespace) -> int:
    if not reply.get("ok"):
        print(f"error: {reply.get('error')}", file=sys.stderr)
        return EXIT_ERROR
    reached = reply["result"]["executors"]
    print(f"trading {NAME_PAST[ns.verb]} on {len(reached)} executor(s): {', '.join(reached) or '-'} "
          "(also kept for executors that start later)")
    return EXIT_OK


NAME_PAST = {"halt": "halted", "resume": "resumed"}
