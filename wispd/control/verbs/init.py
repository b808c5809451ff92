"""`wispctl init DIR`: create a working project (config on the sim exchange, a starter strategy, README).

Runs locally; no daemon needed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from wispd.control.verbs._common import EXIT_ERROR, EXIT_OK

NAME = "init"
HELP = "create a new wispd project in DIR (sim exchange, paper account, a starter strategy)"
MUTATING = False
LOCAL = True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("directory", help="where to create the project (must be empty or absent)")


def run_local(ns: argparse.Namespace) -> int:
    from wispd.scaffold.project import ScaffoldError, init_project

    try:
        written = init_project(Path(ns.directory))
    except ScaffoldError as exc:
        print(f"wispctl: {exc}", file=sys.stderr)
        return EXIT_ERROR
    for path in written:
        print(f"created {path}")
    print(f"next: cd {ns.directory} && wispd run --config config/wispd.toml")
    return EXIT_OK
