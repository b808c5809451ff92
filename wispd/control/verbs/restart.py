"""`wispctl restart`: restart a child; an operator restart is never counted as a crash."""

from __future__ import annotations

from functools import partial

from wispd.control.verbs._common import add_target, render_results, run_op, target_request

NAME = "restart"
HELP = "restart a child; an operator restart is never counted as a crash"
MUTATING = True
TIMEOUT = 300.0  # waits for the children to get there; start timeouts are per child

add_arguments = partial(add_target, allow_all=False)
request = target_request
handle = partial(run_op, verb=NAME)
render = render_results
