"""`wispctl health [--json]`: ok, degraded or failing, and why.

| verdict | when | exit | `/health` |
| --- | --- | --- | --- |
| ok | every wanted child runs, every feed is fresh, nothing halted | 0 | 200 |
| degraded | it runs, but not everything trades or sees data: trading halted (all, some strategies, or an executor that halted itself), a child stopped by the operator, a stale feed | 2 | 200 (503 with `?strict`) |
| failing | a wanted child is not running (crashed, FATAL, in backoff, hung), wispd starting or shutting down | 3 | 503 |

An unreachable daemon is exit 1, as for every verb. Degraded answers 200 so a liveness probe does not
restart a daemon that an operator halted on purpose; alert on the `wispd_health` gauge (0/1/2) or probe
`/health?strict` to treat degraded as down.
"""

from __future__ import annotations

import argparse
from typing import Any

from wispd.control.verbs._common import EXIT_NOT_RUNNING, EXIT_OK, json_flag, no_request_args, print_json

NAME = "health"
HELP = "ok (exit 0), degraded: halted, operator-stopped, stale feed (exit 2), failing (exit 3)"
MUTATING = False
TIMEOUT = 10.0
EXIT_DEGRADED = 2
EXITS = {"ok": EXIT_OK, "degraded": EXIT_DEGRADED, "failing": EXIT_NOT_RUNNING}


add_arguments = json_flag
request = no_request_args


def handle(sup: Any, args: dict[str, Any], respond: Any) -> None:
    respond(True, sup.health_doc)


def render(reply: dict[str, Any], ns: argparse.Namespace) -> int:
    doc = reply["result"]
    status = str(doc.get("status") or "failing")
    if ns.json:
        print_json(doc)
    elif status == "ok":
        print("ok: every wanted child runs, every feed is fresh, trading is on")
    else:
        print(f"{status}: " + "; ".join(doc.get("problems") or ["unknown"]))
    return EXITS.get(status, EXIT_NOT_RUNNING)
