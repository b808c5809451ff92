"""`wispctl stack NAME`: the Python stack of every thread of a running child, now.

The child dumps them itself from a signal handler (faulthandler), so this works while its loop is stuck
in a computation or a C call; the same dump is written to the child's log before a child that stopped
heartbeating is killed (`child_hung`).
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from wispd.control import envelope
from wispd.control.verbs._common import EXIT_ERROR, EXIT_OK, EXIT_UNKNOWN

NAME = "stack"
HELP = "print the Python stack of every thread of a running child (works while it is stuck)"
MUTATING = False
TIMEOUT = 10.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="child name")


def request(ns: argparse.Namespace) -> dict[str, Any]:
    return {"name": ns.name}


def handle(sup: Any, args: dict[str, Any], respond: Any) -> None:
    child = sup.children.get(args.get("name"))
    if child is None:
        respond(False, {"known": sorted(sup.children)}, envelope.ERR_UNKNOWN_NAME,
                f"no such child: {args.get('name')!r}")
        return
    pid = child.pid

    def done(text: str) -> None:
        respond(True, {"name": child.name, "pid": pid, "stacks": text})

    if not child.state.alive or not sup.stacks.ask(child, time.monotonic(), done):
        respond(False, {}, envelope.ERR_FAILED, f"{child.name} is {child.state.value}: no process to ask")


def render(reply: dict[str, Any], ns: argparse.Namespace) -> int:
    if not reply.get("ok"):
        print(f"error: {reply.get('error')}", file=sys.stderr)
        return EXIT_UNKNOWN if reply.get("code") == envelope.ERR_UNKNOWN_NAME else EXIT_ERROR
    result = reply.get("result") or {}
    print(f"{result.get('name')} (pid {result.get('pid')}):")
    print(result.get("stacks", ""))
    return EXIT_OK
