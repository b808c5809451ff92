"""`wispd`: the daemon's command line (`wispd run`, `wispd check`)."""

from __future__ import annotations

import argparse
import os
import sys

from wispd import __version__
from wispd.cli import quiet_on_closed_pipe
from wispd.config import EX_CONFIG, ConfigError, load_config


def _load(path: str | None):  # type: ignore[no-untyped-def]
    try:
        return load_config(path)
    except ConfigError as exc:
        for issue in exc.issues:
            print(f"wispd: config error: {issue}", file=sys.stderr)
        print(f"wispd: configuration invalid ({len(exc.issues)} problem(s)); nothing was started", file=sys.stderr)
        return None


def cmd_run(ns: argparse.Namespace) -> int:
    config = _load(ns.config)
    if config is None:
        return EX_CONFIG
    from wispd.logs import setup_logging
    from wispd.supervisor.lock import AlreadyRunning
    from wispd.supervisor.supervisor import StartError, Supervisor

    os.umask(0o077)  # every file wispd and its children create is private unless made 0640 on purpose (logs)
    raise_fd_limit()
    d = config.daemon
    log = setup_logging("wispd", d.log_dir, d.log_level, d.log_max_bytes, d.log_backups)
    for warning in config.warnings:
        log.warning("config_warning", warning=warning)
    try:
        return Supervisor(config, log).run()
    except AlreadyRunning as exc:
        print(f"wispd: {exc}", file=sys.stderr)
        return 1
    except StartError as exc:
        print(f"wispd: {exc}", file=sys.stderr)
        return EX_CONFIG
    except Exception:
        log.exception("wispd_crash")  # into the log file too, not only stderr
        raise


def raise_fd_limit() -> None:
    """Up to the hard limit: held /metrics connections and many children must not meet 1024 fds."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft < min(target, 65536):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(target, 65536), hard))
        except (ValueError, OSError):
            pass


def cmd_check(ns: argparse.Namespace) -> int:
    from wispd.check import check

    return check(ns.config, lambda line: print(f"wispd: {line}" if line.startswith(("config error", "error",
                                                                                        "configuration")) else line))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="wispd", description="Run Python trading strategies 24/7, supervised.")
    parser.add_argument("--version", action="version", version=f"wispd {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the daemon in the foreground (Ctrl-C stops it in order)")
    run.add_argument("--config", help="path to wispd.toml (default: $WISPD_CONFIG, ./config/wispd.toml, "
                                      "/etc/wispd/wispd.toml)")
    run.set_defaults(func=cmd_run)
    check = sub.add_parser("check", help="validate the configuration and every strategy (imported in a throwaway "
                                         "process, all parameters checked); exit 78 when anything is wrong")
    check.add_argument("--config")
    check.set_defaults(func=cmd_check)
    backtest = sub.add_parser("backtest", help="replay recorded market data through the configured strategies in "
                                               "virtual time (same processes, same executor checks, paper fills)")
    from wispd.backtest import cli as backtest_cli

    backtest_cli.add_arguments(backtest)
    backtest.set_defaults(func=backtest_cli.main)
    ns = parser.parse_args(argv)
    if ns.func in (cmd_check, backtest_cli.main):  # `wispd check | head`; the daemon itself never writes to a pipe it must survive
        return quiet_on_closed_pipe(lambda _: int(ns.func(ns)), None)
    return int(ns.func(ns))


if __name__ == "__main__":
    sys.exit(main())
