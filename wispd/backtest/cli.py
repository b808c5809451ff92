"""The command line of backtests, shared by ``wispd backtest`` and ``wispctl backtest``."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import orjson

EX_CONFIG, EX_USAGE = 78, 64


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", nargs="?", choices=["run", "list"], default="run",
                        help="run a backtest (default), or list the past runs")
    parser.add_argument("--config", dest="bt_config", metavar="FILE",
                        help="the wispd.toml whose strategies and executors are backtested (default as wispd's)")
    parser.add_argument("--from", dest="t_from", metavar="TIME", help="start (UTC date/time; default: the data's start)")
    parser.add_argument("--to", dest="t_to", metavar="TIME", help="end, exclusive (default: the data's end)")
    parser.add_argument("--data", metavar="DIR", help="the data directory (default: the recorders' data directory, "
                                                      "<state_dir>/data)")
    parser.add_argument("--out", metavar="DIR", help="the run directory (default: <state_dir>/backtests/<id>)")
    parser.add_argument("--strategy", action="append", default=[], metavar="NAME",
                        help="backtest only this strategy (repeatable; default: every configured strategy)")
    parser.add_argument("--warmup", default="0s", metavar="DURATION",
                        help="replay this much data before --from into candle history and snapshots, e.g. 2h")
    parser.add_argument("--param", action="append", default=[], metavar="[STRATEGY.]NAME=V1[,V2...]",
                        help="override a parameter; several values (or several --param) run a sweep of every "
                             "combination in parallel processes")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="parallel backtests in a sweep")
    parser.add_argument("--entry-latency", type=float, default=0.0, metavar="MS",
                        help="strategy -> executor latency in virtual time (default 0)")
    parser.add_argument("--response-latency", type=float, default=0.0, metavar="MS",
                        help="executor -> strategy report latency in virtual time (default 0)")
    parser.add_argument("--latency", default=None, metavar="MS|journal:FILE",
                        help="the paper engine's order latency: milliseconds, or journal:FILE to draw it from the live "
                             "acknowledgement latencies that journal recorded (default: each executor's "
                             "paper.latency_ms)")
    parser.add_argument("--params-json", default=None, help=argparse.SUPPRESS)  # a sweep's run
    parser.add_argument("--no-run-ahead", action="store_true",
                        help="step strategies one frame at a time even where they could run ahead (slower, the same "
                             "result: for checking that)")
    parser.add_argument("--parity", action="store_true",
                        help="replay a recorded paper session and diff its orders and fills against the session's "
                             "own journal (window: the journal's, unless --from/--to); exit 1 on a divergence")
    parser.add_argument("--journal", metavar="FILE", help="--parity: the session's journal (default: "
                                                          "<state_dir>/journal-<account>.sqlite)")
    parser.add_argument("--label", default="", help="a note kept with the run (shown by list)")
    parser.add_argument("--json", action="store_true", help="print the report summary (or the list) as JSON")


def _parity_journals(ns: argparse.Namespace, config: object, strategies: list[str]) -> dict[str, Path]:
    from wispd.backtest.run import BacktestError

    accounts = sorted({c.args.get("account") for c in config.children  # type: ignore[attr-defined]
                       if c.kind == "strategy" and c.name in strategies and c.args.get("account")})
    if ns.journal:
        if len(accounts) != 1:
            raise BacktestError(f"--journal names one journal, but these strategies trade on {len(accounts)} "
                                f"accounts ({', '.join(accounts)}); run --parity per account with --strategy")
        journals = {accounts[0]: Path(ns.journal).expanduser().absolute()}
    else:
        state = config.daemon.state_dir  # type: ignore[attr-defined]
        journals = {a: state / f"journal-{a}.sqlite" for a in accounts}
    missing = [str(p) for p in journals.values() if not p.is_file()]
    if missing:
        raise BacktestError(f"no session journal at {', '.join(missing)} (--journal FILE names another)")
    return journals


def _parity(journals: dict[str, Path], out: Path, doc: dict, ns: argparse.Namespace) -> int:  # type: ignore[type-arg]
    from wispd.backtest import parity
    t_from, t_to = doc["from_us"], doc["to_us"]
    result: dict = {"accounts": {}, "identical": True}  # type: ignore[type-arg]
    for account, journal in journals.items():
        names = [n for n, s in doc["strategies"].items() if s["account"] == account]
        cmp = parity.compare(journal, out / f"journal-{account}.sqlite", names, t_from, t_to, parity.ends(journal),
                             Path(doc["data"]) if doc.get("data") else None)
        result["accounts"][account] = cmp
        result["identical"] &= cmp["identical"]
    (out / "parity.json").write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    if ns.json:
        print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
    else:
        for cmp in result["accounts"].values():
            for line in parity.text(cmp):
                print(line)
        print(("identical" if result["identical"] else "divergent") + f": {out / 'parity.json'}")
    return 0 if result["identical"] else 1


RUN_ONLY = {"t_from": ("--from", None), "t_to": ("--to", None), "data": ("--data", None), "out": ("--out", None),
            "strategy": ("--strategy", []), "warmup": ("--warmup", "0s"), "param": ("--param", []),
            "entry_latency": ("--entry-latency", 0.0), "response_latency": ("--response-latency", 0.0),
            "latency": ("--latency", None), "parity": ("--parity", False), "journal": ("--journal", None),
            "label": ("--label", ""), "no_run_ahead": ("--no-run-ahead", False)}


def refused_options(ns: argparse.Namespace) -> list[str]:
    """Options given that this request would not use: refused, never silently ignored."""
    if ns.action == "list":
        return [flag for key, (flag, default) in RUN_ONLY.items() if getattr(ns, key, default) != default]
    if ns.journal and not ns.parity:
        return ["--journal"]
    return []


def main(ns: argparse.Namespace) -> int:
    from wispd.backtest import run
    from wispd.cli import load_config_or_say

    unused = refused_options(ns)
    if unused:
        print(f"backtest: {', '.join(unused)} do(es) not apply here ({'list' if ns.action == 'list' else 'without --parity'})",
              file=sys.stderr)
        return EX_USAGE
    config = load_config_or_say(getattr(ns, "bt_config", None) or getattr(ns, "config", None))
    if config is None:
        return EX_CONFIG
    if ns.action == "list":
        runs = run.list_runs(config.daemon.state_dir / "backtests")
        runs += [r for sweep in sorted((config.daemon.state_dir / "backtests").glob("sweep-*"))
                 for r in run.list_runs(sweep)]
        if ns.json:
            print(orjson.dumps({"runs": runs}, option=orjson.OPT_INDENT_2).decode())
            return 0
        if not runs:
            print(f"no backtests in {config.daemon.state_dir / 'backtests'}")
        for r in runs:
            pnl = f"{r['pnl']:,.2f}" if isinstance(r["pnl"], float | int) else "-"
            errors = f"  ERRORS: {r['errors']}" if r["errors"] else ""
            print(f"{r['id']}  {r['from']} -> {r['to']}  {','.join(r['strategies'])}  fills {r['fills']}  "
                  f"PnL {pnl}  {r['label']}{errors}\n    {r['dir']}/report.html")
        return 0
    req = run.Request(Path(config.daemon.config_path), ns.t_from, ns.t_to, ns.data, ns.out, ns.warmup,
                      list(ns.strategy), {}, ns.entry_latency, ns.response_latency, ns.latency, ns.label,
                      run_ahead=not ns.no_run_ahead)
    try:
        if ns.params_json:
            req.params = orjson.loads(ns.params_json)
        strategies = req.strategies or sorted(c.name for c in config.children if c.kind == "strategy")
        axes = run.parse_params(ns.param, strategies)
        if any(len(v) > 1 for v in axes.values()):
            root, rows = run.sweep(req, config, axes, ns.jobs, out=lambda line: print(line, flush=True))
            failed = [r for r in rows if "error" in r]
            print(f"{len(rows)} runs, {len(failed)} failed: {root}/summary.json")
            if ns.json:
                print(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode())
            return 1 if failed else 0
        for combo in run.grid(axes):
            for strategy, values in combo.items():
                req.params.setdefault(strategy, {}).update(values)
        journals = _parity_journals(ns, config, strategies) if ns.parity else {}
        if journals and not (ns.t_from and ns.t_to):
            from wispd.backtest.parity import session_window

            windows = [w for w in (session_window(p) for p in journals.values()) if w]
            if not windows:
                raise run.BacktestError(f"the session journal(s) {', '.join(map(str, journals.values()))} hold no "
                                        "signal: nothing to compare")
            req.t_from = req.t_from or str(min(w[0] for w in windows) / 1e6)
            req.t_to = req.t_to or str(max(w[1] for w in windows) / 1e6)
        if journals:
            from wispd.backtest.parity import ends, starts

            for journal in journals.values():
                req.starts.update(starts(journal))
                req.stops.update(ends(journal))
        if journals and req.warmup == "0s":
            req.warmup = "60s"  # the replayed strategy starts with the feed's state, as the live one did
        out, doc = run.run(req, config)
    except run.BacktestError as exc:
        print(f"backtest: {exc}", file=sys.stderr)
        return EX_USAGE
    if journals:
        return _parity(journals, out, doc, ns)
    if ns.json:
        print(orjson.dumps({k: v for k, v in doc.items() if k != "fills"} | {
            "strategies": {n: {k: v for k, v in s.items() if k != "equity"} for n, s in doc["strategies"].items()},
            "total": {k: v for k, v in doc["total"].items() if k != "equity"}}, option=orjson.OPT_INDENT_2).decode())
    else:
        print(run.summary_line(doc))
        for name, s in doc["strategies"].items():
            err = f"  ERROR: {s['error']}" if s["error"] else ""
            print(f"  {name:<16} fills {s['fills']:<6} PnL {s['pnl']['total']:>12,.2f}  fees {s['pnl']['fees']:>10,.2f}"
                  f"  max DD {s['max_drawdown']:>10,.2f}{err}")
        print(f"report: {out / 'report.html'}")
    return 1 if any(s["error"] for s in doc["strategies"].values()) else 0
