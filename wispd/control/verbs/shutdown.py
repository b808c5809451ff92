"""`wispctl shutdown`: stop every child in order (strategies, executors, ingestors), then wispd exits.

Unlike `stop --all`, a shutdown does not change the desired state: the next `wispd run` starts the same
children again.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import psutil

from wispd.control.verbs._common import EXIT_ERROR, EXIT_OK

NAME = "shutdown"
HELP = "stop all children in order and exit wispd (desired state unchanged)"
MUTATING = True
TIMEOUT = 10.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--wait", action="store_true", help="wait until wispd has exited")


def request(ns: argparse.Namespace) -> dict[str, Any]:
    return {}


def handle(sup: Any, args: dict[str, Any], respond: Any) -> None:
    alive = sum(1 for c in sup.children.values() if c.state.alive)
    respond(True, {"stopping": alive, "pid": sup.status_doc([])["daemon"]["pid"]})
    sup.shutdown("wispctl shutdown")


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def render(reply: dict[str, Any], ns: argparse.Namespace) -> int:
    if not reply.get("ok"):
        print(f"error: {reply.get('error')}", file=sys.stderr)
        return EXIT_ERROR
    res = reply["result"]
    print(f"wispd (pid {res['pid']}) is stopping {res['stopping']} children")
    if ns.wait:
        while _alive(res["pid"]):
            time.sleep(0.1)
        print("wispd stopped")
    return EXIT_OK
