"""`wispctl check [--config FILE]`: what `wispd check` does, from the operator's tool.

Validates the configuration, imports every strategy in a throwaway process (all parameter problems at
once) and type-checks the strategy files against the SDK; exit 78 when anything is wrong. Runs locally:
no daemon needed, nothing is started.
"""

from __future__ import annotations

import argparse
import sys

NAME = "check"
HELP = "validate the config, every strategy (imported, all params) and their types; exit 78 on a problem"
MUTATING = False
LOCAL = True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", dest="check_config", metavar="CONFIG",
                        help="the wispd.toml to check (also accepted before the verb; default as wispd's)")


def run_local(ns: argparse.Namespace) -> int:
    from wispd.check import check

    def out(line: str) -> None:
        problem = line.startswith(("config error", "error", "configuration invalid")) or "problem(s)" in line
        print(line, file=sys.stderr if problem else sys.stdout, flush=True)

    return check(getattr(ns, "check_config", None) or getattr(ns, "config", None), out)
