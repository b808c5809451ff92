"""`wispctl stop`: stop a child (drain, SIGTERM, SIGKILL) or --all in reverse order; it stays stopped across wispd restarts."""

from __future__ import annotations

from functools import partial

from wispd.control.verbs._common import add_target, render_results, run_op, target_request

NAME = "stop"
HELP = "stop a child (drain, SIGTERM, SIGKILL) or --all in reverse order; it stays stopped across wispd restarts"
MUTATING = True
TIMEOUT = 300.0  # waits for the children to get there; start timeouts are per child

add_arguments = partial(add_target, allow_all=True)
request = target_request
handle = partial(run_op, verb=NAME)
render = render_results
