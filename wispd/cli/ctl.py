"""`wispctl`: the operator's command line. Each verb lives in ``wispd/control/verbs/<verb>.py``."""

from __future__ import annotations

import argparse
import os
import sys

from wispd import __version__
from wispd.cli import quiet_on_closed_pipe
from wispd.config import ConfigError
from wispd.config.paths import load_control_endpoint, load_paths
from wispd.control import verbs
from wispd.control.client import Unreachable, call

EXIT_ERROR = 1
TAKES_VALUE = ("--config", "--socket", "--timeout")  # the global options that take a value


def verb_of(argv: list[str]) -> str | None:
    """The verb a command line runs, when it is plain to see before parsing (None: parse with every verb,
    as ``--help`` without a verb needs)."""
    skip = False
    for token in argv:
        if skip:
            skip = False
        elif token in TAKES_VALUE:
            skip = True
        elif token.startswith("-"):
            if token in ("-h", "--help", "--version"):
                return None  # (--config=PATH and the like take their value with them)
        else:
            return token if token in verbs.NAMES else None
    return None


def terminal_width() -> int:
    """What ``shutil.get_terminal_size`` would say ($COLUMNS, the terminal, else 80), without importing shutil:
    argparse's help formatter imports it (and with it zlib, bz2 and lzma) on every ``add_argument``, which was
    a tenth of a command's run time."""
    try:
        columns = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns if sys.__stdout__ else 0
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


def formatter(prog: str) -> argparse.HelpFormatter:
    return argparse.HelpFormatter(prog, width=terminal_width() - 2)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """wispctl's parser; with ``only``, that verb alone (a subparser per verb was a tenth of a command's
    run time, and a command line whose verb is plain to see parses with its own)."""
    parser = argparse.ArgumentParser(prog="wispctl", description="Control a running wispd.", formatter_class=formatter)
    parser.add_argument("--version", action="version", version=f"wispctl {__version__}")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--config", help="wispd.toml of the daemon to talk to")
    where.add_argument("--socket", help="path of the daemon's control socket")
    parser.add_argument("--timeout", type=float, help="seconds to wait for the reply")
    sub = parser.add_subparsers(dest="verb", required=True)
    for name in verbs.NAMES if only is None else (only,):
        module = verbs.load(name)
        p = sub.add_parser(name, help=module.HELP, description=module.HELP, formatter_class=formatter)
        module.add_arguments(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    return quiet_on_closed_pipe(_main, argv)


def _main(argv: list[str] | None) -> int:
    args = sys.argv[1:] if argv is None else argv
    ns = build_parser(verb_of(args)).parse_args(args)
    module = verbs.load(ns.verb)
    if getattr(module, "LOCAL", False):
        return int(module.run_local(ns))
    if ns.socket:
        endpoint = ns.socket if ns.socket.startswith("ipc://") else f"ipc://{ns.socket}"
    else:
        try:  # only the [daemon] section: no secrets, no writable state directory needed to reach wispd
            endpoint = load_control_endpoint(ns.config)
        except ConfigError as exc:
            for issue in exc.issues:
                print(f"wispctl: config error: {issue}", file=sys.stderr)
            return EXIT_ERROR
    if getattr(module, "INTERACTIVE", False) and sys.stdout.isatty():
        return int(module.run_interactive(ns, endpoint))
    try:
        reply = call(endpoint, module.NAME, module.request(ns), ns.timeout or module.TIMEOUT)
    except Unreachable as exc:
        if not ns.socket and hasattr(module, "offline") and not exc.denied:
            try:
                return int(module.offline(ns, load_paths(ns.config)))
            except ConfigError as err:
                print(f"wispctl: {exc}; and the config cannot be read: {err}", file=sys.stderr)
                return EXIT_ERROR
        print(f"wispctl: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return EXIT_ERROR
    return int(module.render(reply, ns))


if __name__ == "__main__":
    sys.exit(main())
