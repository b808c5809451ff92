"""Helpers shared by the verbs that act on children (start, stop, restart)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from wispd.control import envelope

if TYPE_CHECKING:
    from wispd.supervisor.child import Child
    from wispd.supervisor.supervisor import Supervisor

EXIT_OK, EXIT_ERROR, EXIT_NOT_RUNNING, EXIT_UNKNOWN = 0, 1, 3, 4


def no_arguments(parser: argparse.ArgumentParser) -> None:
    """For verbs that take no arguments."""


def json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the reply as JSON")


def print_json(doc: Any) -> None:
    """The one way a verb prints its --json output (indented, Decimal values as strings)."""
    import orjson

    sys.stdout.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2, default=str).decode() + "\n")


def no_request_args(ns: argparse.Namespace) -> dict[str, Any]:
    return {}


def add_target(parser: argparse.ArgumentParser, allow_all: bool = True) -> None:
    if allow_all:
        group = parser.add_mutually_exclusive_group(required=True)
        group.add_argument("name", nargs="?", help="child name")
        group.add_argument("--all", action="store_true", help="every configured child, in dependency order")
    else:
        parser.add_argument("name", help="child name")


def target_request(ns: argparse.Namespace) -> dict[str, Any]:
    return {"name": ns.name, "all": bool(getattr(ns, "all", False))}


def resolve(sup: Supervisor, args: dict[str, Any], respond: Callable[..., None]) -> list[Child] | None:
    if args.get("all"):
        return sup.ordered()
    name = args.get("name")
    child = sup.children.get(name) if isinstance(name, str) else None
    if child is None:
        respond(False, {"known": sorted(sup.children)}, envelope.ERR_UNKNOWN_NAME, f"no such child: {name!r}")
        return None
    return [child]


def run_op(sup: Supervisor, args: dict[str, Any], respond: Callable[..., None], verb: str) -> None:
    children = resolve(sup, args, respond)
    if children is None:
        return

    def done(results: dict[str, tuple[bool, str]]) -> None:
        doc = {"results": {n: {"ok": ok, "message": m} for n, (ok, m) in results.items()}}
        if all(ok for ok, _ in results.values()):
            respond(True, doc)
        else:
            respond(False, doc, envelope.ERR_FAILED, f"{verb} failed for "
                    + ", ".join(n for n, (ok, _) in results.items() if not ok))

    sup.submit(children, verb, done)


def render_results(reply: dict[str, Any], ns: argparse.Namespace) -> int:
    if reply.get("code") == envelope.ERR_UNKNOWN_NAME:
        print(f"error: {reply.get('error')}", file=sys.stderr)
        return EXIT_UNKNOWN
    results = (reply.get("result") or {}).get("results") or {}
    for name, res in results.items():
        print(f"{name}: {res.get('message')}" if res.get("ok") else f"{name}: ERROR {res.get('message')}")
    if not reply.get("ok"):
        if not results:
            print(f"error: {reply.get('error')}", file=sys.stderr)
        return EXIT_ERROR
    return EXIT_OK
