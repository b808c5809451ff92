"""`wispctl status [NAME] [--json]`: one line per child; exit 0 all wanted running, 3 not, 4 unknown name.

``--json`` prints the stable document ``{"daemon": {...}, "children": [{"name", "kind", "state", "pid",
"restarts", "uptime_s", "last_exit", "status": {...}, ...}]}``; each child's ``status_history`` (its last 20
status lines) only for ``status NAME`` or with ``--history``, so the status of 100 children stays small.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from wispd.control import envelope
from wispd.control.verbs._common import EXIT_ERROR, EXIT_NOT_RUNNING, EXIT_OK, EXIT_UNKNOWN, print_json

NAME = "status"
HELP = "show children: state, pid, uptime, restarts, last exit, CPU, memory, strategy status"
MUTATING = False
TIMEOUT = 10.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", nargs="?", help="only this child")
    parser.add_argument("--json", action="store_true", help="print the status document as JSON")
    parser.add_argument("--history", action="store_true",
                        help="include every child's last 20 status lines (always included for one NAME)")


def request(ns: argparse.Namespace) -> dict[str, Any]:
    return {"name": ns.name, "history": bool(getattr(ns, "history", False))}


def handle(sup: Any, args: dict[str, Any], respond: Any) -> None:
    name = args.get("name")
    if name is not None and name not in sup.children:
        respond(False, {"known": sorted(sup.children)}, envelope.ERR_UNKNOWN_NAME, f"no such child: {name!r}")
        return
    respond(True, sup.status_doc([name] if name else None, history=bool(name) or args.get("history") is True))


def _uptime(seconds: float) -> str:
    s = int(seconds)
    if s >= 86400:
        return f"{s // 86400}d{(s % 86400) // 3600:02d}h"
    return f"{s // 3600}:{(s % 3600) // 60:02d}:{s % 60:02d}"


def child_ok(child: dict[str, Any]) -> bool:
    """Fine for the exit code: not wanted, RUNNING, or a clean exit of a child that may finish."""
    if not child.get("wanted", True):
        return True
    return child.get("state") == "RUNNING" or (child.get("state") == "EXITED" and child.get("last_exit") == "exit 0")


def format_line(c: dict[str, Any]) -> str:
    pid = str(c.get("pid") or "-")
    mem = f"{(c.get('rss_bytes') or 0) / 1048576:.0f}MB"
    line = (f"{c['name']:<20} {c['kind']:<9} {c['state']:<9} pid {pid:<7} uptime {_uptime(c.get('uptime_s') or 0):<9} "
            f"restarts {c.get('restarts', 0):<3} cpu {c.get('cpu_s', 0):.1f}s mem {mem:<6}")
    if c.get("state") in ("BACKOFF", "FATAL", "EXITED", "STOPPED") and c.get("last_exit"):
        line += f" last exit: {c['last_exit']}"
    if c.get("state") in ("BACKOFF", "FATAL") and c.get("reason"):
        line += f" ({c['reason']})"
    if not c.get("wanted", True):
        line += " [stopped by operator]"
    status = c.get("status") or {}
    if status.get("phase"):
        line += f" | {status['phase']}: {status.get('summary') or ''}".rstrip()
    return line


def render(reply: dict[str, Any], ns: argparse.Namespace) -> int:
    if not reply.get("ok"):
        print(f"error: {reply.get('error')}", file=sys.stderr)
        return EXIT_UNKNOWN if reply.get("code") == envelope.ERR_UNKNOWN_NAME else EXIT_ERROR
    doc = reply["result"]
    if ns.json:
        print_json(doc)
    else:
        for child in doc["children"]:
            print(format_line(child))
    return EXIT_OK if all(child_ok(c) for c in doc["children"]) else EXIT_NOT_RUNNING
