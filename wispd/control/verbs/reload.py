"""`wispctl reload`: re-read the config; start added children, stop removed ones, restart changed ones.

Unchanged children are not touched. An invalid config changes nothing and the errors are printed.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from wispd.control.verbs._common import EXIT_ERROR, EXIT_OK, no_arguments, no_request_args

NAME = "reload"
HELP = "re-read the configuration and apply the difference (only changed children restart)"
MUTATING = True
TIMEOUT = 300.0


add_arguments = no_arguments
request = no_request_args


def handle(sup: Any, args: dict[str, Any], respond: Any) -> None:
    sup.reload(respond)


def render(reply: dict[str, Any], ns: argparse.Namespace) -> int:
    res = reply.get("result") or {}
    for err in res.get("errors", []):
        print(err, file=sys.stderr)
    if "added" in res:
        print(f"added: {', '.join(res['added']) or '-'}; removed: {', '.join(res['removed']) or '-'}; "
              f"changed: {', '.join(res['changed']) or '-'}; unchanged: {res['unchanged']}")
    if res.get("needs_wispd_restart"):
        print("these daemon settings take effect only after restarting wispd: "
              + ", ".join(res["needs_wispd_restart"]))
    for name, message in (res.get("failed") or {}).items():
        print(f"{name}: ERROR {message}")
    if not reply.get("ok"):
        print(f"error: {reply.get('error')}", file=sys.stderr)
        return EXIT_ERROR
    return EXIT_OK
