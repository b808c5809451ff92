"""`wispctl new strategy NAME`: add strategies/NAME.py and its [strategies.NAME] block to the config.

Runs locally on the config file (``--config``, default as for wispd); `wispctl reload` starts it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from wispd.control.verbs._common import EXIT_ERROR, EXIT_OK

NAME = "new"
HELP = "add a strategy: `wispctl new strategy NAME` (then `wispctl reload`)"
MUTATING = False
LOCAL = True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("what", choices=["strategy"], help="what to create")
    parser.add_argument("name", help="strategy name (lowercase letters, digits, _)")


def run_local(ns: argparse.Namespace) -> int:
    from wispd.config.paths import default_config_path
    from wispd.scaffold.project import ScaffoldError, add_strategy

    config = Path(ns.config) if ns.config else default_config_path()
    try:
        written = add_strategy(config, ns.name)
    except ScaffoldError as exc:
        print(f"wispctl: {exc}", file=sys.stderr)
        return EXIT_ERROR
    print(f"created {written[0]}\nadded [strategies.{ns.name}] to {written[1]}")
    print("next: wispctl reload (or start wispd)")
    return EXIT_OK
