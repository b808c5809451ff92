"""`wispctl resume`: lift a `wispctl halt` on every executor."""

from __future__ import annotations

from typing import Any

from wispd.control.verbs import halt
from wispd.control.verbs._common import no_arguments, no_request_args

NAME = "resume"
HELP = "lift the trading halt on every executor"
MUTATING = True
TIMEOUT = 10.0


add_arguments = no_arguments
request = no_request_args


def handle(sup: Any, args: dict[str, Any], respond: Any) -> None:
    halt.answer(respond, "resume", *sup.set_halt(False))


render = halt.render
