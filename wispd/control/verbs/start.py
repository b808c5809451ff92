"""`wispctl start`: start a child (waits until it is ready) or --all in dependency order."""

from __future__ import annotations

from functools import partial

from wispd.control.verbs._common import add_target, render_results, run_op, target_request

NAME = "start"
HELP = "start a child (waits until it is ready) or --all in dependency order"
MUTATING = True
TIMEOUT = 300.0  # waits for the children to get there; start timeouts are per child

add_arguments = partial(add_target, allow_all=True)
request = target_request
handle = partial(run_op, verb=NAME)
render = render_results
