"""`wispctl backtest [run|list] --config FILE [--from] [--to] [--data DIR] [--param ...]`: what `wispd backtest`
does, from the operator's tool (docs/backtesting.md).

Replays recorded market data through the configured strategies, as their own processes, in virtual time,
against the executors' own checks and the paper engine; writes a run directory with the journals and a
report (JSON, HTML, PNG). Several ``--param`` values run a sweep in parallel processes. Runs locally: no
daemon needed, and a running daemon is not touched.
"""

from __future__ import annotations

import argparse

from wispd.backtest import cli

NAME = "backtest"
HELP = "backtest the configured strategies on recorded data in virtual time (run, list); sweeps with --param"
MUTATING = False
LOCAL = True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    cli.add_arguments(parser)


def run_local(ns: argparse.Namespace) -> int:
    return cli.main(ns)
