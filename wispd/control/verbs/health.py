"""`wispctl health [--json]`: are all wanted children running and every feed fresh? Exit 0 yes, 3 no.

The same verdict is served at http://<metrics bind>/health (200 or 503) for load balancers and probes.
"""

from __future__ import annotations

import argparse
from typing import Any

from wispd.control.verbs._common import EXIT_NOT_RUNNING, EXIT_OK, json_flag, no_request_args, print_json

NAME = "health"
HELP = "exit 0 when every wanted child runs and every feed is fresh, 3 otherwise"
MUTATING = False
TIMEOUT = 10.0


add_arguments = json_flag
request = no_request_args


def handle(sup: Any, args: dict[str, Any], respond: Any) -> None:
    respond(True, sup.health_doc)


def render(reply: dict[str, Any], ns: argparse.Namespace) -> int:
    doc = reply["result"]
    if ns.json:
        print_json(doc)
    elif doc.get("healthy"):
        print("healthy: every wanted child runs, every feed is fresh")
    else:
        problems = [f"{n} {s}" for n, s in (doc.get("unhealthy_children") or {}).items()]
        problems += [f"stale feed {f}" for f in doc.get("stale_feeds") or {}]
        print("unhealthy: " + (", ".join(problems) or doc.get("reason", "starting")))
    return EXIT_OK if doc.get("healthy") else EXIT_NOT_RUNNING
