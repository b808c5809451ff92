"""`wispctl resume`: lift a `wispctl halt` on every executor."""

from __future__ import annotations

import argparse
from typing import Any

from wispd.control.verbs import halt

NAME = "resume"
HELP = "lift the trading halt on every executor"
MUTATING = True
TIMEOUT = 10.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def request(ns: argparse.Namespace) -> dict[str, Any]:
    return {}


def handle(sup: Any, args: dict[str, Any], respond: Any) -> None:
    respond(True, {"executors": sup.set_halt(False)})


render = halt.render
