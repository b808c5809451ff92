"""``wispctl backtest`` / ``wispd backtest``: one backtest run, a sweep of many, and the list of past runs.

A run directory (``<state_dir>/backtests/<id>/``, or ``--out``) holds everything about one run: the
journal of each account (the same SQLite schema as live), the strategies' logs, ``result.json`` (what was
asked: config, data, window, parameters, latencies) and the report (``report.json``, ``report.html``,
``equity.png``).
"""

from __future__ import annotations

import calendar
import hashlib
import itertools
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from wispd.config.model import Config

try:
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python < 3.11
    import tomli as tomllib

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhdw])$")
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class BacktestError(Exception):
    """A request that cannot run (bad dates, no data, an unknown strategy): said before anything starts."""


def parse_time(text: str, what: str) -> int:
    """Microseconds since the epoch from ``2026-11-30``, ``2026-11-30T12:00[:00][Z]`` or epoch seconds."""
    text = text.strip()
    if re.fullmatch(r"\d{9,11}(\.\d+)?", text):
        return int(float(text) * 1e6)
    for fmt in ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"):
        try:
            return calendar.timegm(time.strptime(text.rstrip("Z"), fmt)) * 1_000_000
        except ValueError:
            continue
    raise BacktestError(f"{what} {text!r}: expected a UTC date or time such as 2026-11-30 or 2026-11-30T12:00:00, "
                        "or epoch seconds")


def parse_duration(text: str, what: str) -> int:
    match = _DURATION.match(text.strip())
    if not match:
        raise BacktestError(f"{what} {text!r}: expected a duration such as 90s, 30m, 2h or 1d")
    return int(float(match.group(1)) * UNITS[match.group(2)] * 1e6)


def iso(t_us: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t_us / 1e6))


def default_data_dir(config: Config) -> Path:
    """The first recorder's data directory, else ``<state_dir>/data`` (where recorders write by default)."""
    for spec in config.children:
        if spec.kind == "recorder":
            return Path(spec.args["path"])
    return config.daemon.state_dir / "data"


def parse_value(text: str) -> Any:
    """A parameter value as TOML reads it (1.5, 20, true, "x"); anything else is a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def parse_params(items: list[str], strategies: list[str]) -> dict[str, list[tuple[str, str, Any]]]:
    """``--param [STRATEGY.]NAME=v1,v2`` -> {"STRATEGY.NAME": [(strategy, name, value), ...]}."""
    axes: dict[str, list[tuple[str, str, Any]]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        if not sep or not key or not values:
            raise BacktestError(f"--param {item!r}: expected NAME=value[,value...] or STRATEGY.NAME=...")
        strategy, dot, name = key.rpartition(".")
        if not dot:
            if len(strategies) != 1:
                raise BacktestError(f"--param {item!r}: this backtest runs {len(strategies)} strategies "
                                    f"({', '.join(strategies)}); say whose parameter it is: STRATEGY.{key}=...")
            strategy = strategies[0]
        elif strategy not in strategies:
            raise BacktestError(f"--param {item!r}: {strategy!r} is not a strategy of this backtest "
                                f"(have: {', '.join(strategies)})")
        axes[f"{strategy}.{name}"] = [(strategy, name, parse_value(v)) for v in _split(values)]
    return axes


def _split(values: str) -> list[str]:
    """Comma-separated, commas inside quotes kept."""
    out, cur, quote = [], "", ""
    for ch in values:
        if ch in "\"'" and (not quote or quote == ch):
            quote = "" if quote else ch
        if ch == "," and not quote:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    out.append(cur)
    return [v.strip() for v in out if v.strip()]


def grid(axes: dict[str, list[tuple[str, str, Any]]]) -> list[dict[str, dict[str, Any]]]:
    """Every combination, as per-strategy parameter overrides."""
    combos = []
    for choice in itertools.product(*axes.values()) if axes else [()]:
        params: dict[str, dict[str, Any]] = {}
        for strategy, name, value in choice:
            params.setdefault(strategy, {})[name] = value
        combos.append(params)
    return combos


@dataclass
class Request:
    config_path: Path
    t_from: str | None = None
    t_to: str | None = None
    data: str | None = None
    out: str | None = None
    warmup: str = "0s"
    strategies: list[str] = field(default_factory=list)
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    entry_ms: float = 0.0
    response_ms: float = 0.0
    latency_ms: str | None = None  # --latency: ms, or journal:FILE (default: each executor's paper.latency_ms)
    label: str = ""
    run_ahead: bool = True  # False: one step per frame (slower; the same result, which a test proves)
    starts: dict[str, int] = field(default_factory=dict)  # parity: each strategy's live start (us)
    stops: dict[str, int] = field(default_factory=dict)  # parity: ... and the end of its live session (us)


def run(req: Request, config: Config) -> tuple[Path, dict[str, Any]]:
    """One backtest: replay, then the report. Returns the run directory and the report document."""
    from wispd.backtest import report
    from wispd.backtest.replayer import Replayer, ReplayError
    from wispd.data import store
    from wispd.logs import setup_logging

    data = Path(req.data).expanduser().absolute() if req.data else default_data_dir(config)
    info = store.summary(data) if data.is_dir() else None
    if not info or not info["records"]:
        raise BacktestError(f"no recorded data in {data} (record with a [recorders.NAME] section, or use wispctl "
                            "data import / download / generate)")
    first = min(t["first_us"] for t in info["topics"].values())
    last = max(t["last_us"] for t in info["topics"].values()) + 1
    t_from = parse_time(req.t_from, "--from") if req.t_from else first
    t_to = parse_time(req.t_to, "--to") if req.t_to else last
    if t_to <= t_from:
        raise BacktestError(f"--to {iso(t_to)} is not after --from {iso(t_from)}")
    if t_to <= first or t_from >= last:
        raise BacktestError(f"the data in {data} covers {iso(first)} to {iso(last)}; nothing of it is between "
                            f"{iso(t_from)} and {iso(t_to)}")
    warmup = parse_duration(req.warmup, "--warmup")
    from wispd.backtest.latency import parse as parse_latency

    try:
        latency = parse_latency(req.latency_ms)
    except ValueError as exc:
        raise BacktestError(str(exc)) from None
    strategies = req.strategies or sorted(c.name for c in config.children if c.kind == "strategy")
    digest = hashlib.sha256(orjson.dumps([str(req.config_path), str(data), t_from, t_to, req.params, strategies],
                                         option=orjson.OPT_SORT_KEYS)).hexdigest()[:6]
    run_id = time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + f"-{digest}"
    out = Path(req.out).expanduser().absolute() if req.out else config.daemon.state_dir / "backtests" / run_id
    if out.exists() and any(out.iterdir()):
        raise BacktestError(f"the output directory {out} is not empty")
    out.mkdir(parents=True, exist_ok=True)
    log = setup_logging("backtest", out / "logs", config.daemon.log_level, stderr=False)
    try:
        replayer = Replayer(config, data, t_from, t_to, out, log, warmup_us=warmup, entry_ms=req.entry_ms,
                            response_ms=req.response_ms, paper_latency_ms=latency, strategies=strategies,
                            params=req.params, run_ahead=req.run_ahead, starts=req.starts,
                            stops=req.stops)
    except ReplayError as exc:
        raise BacktestError(str(exc)) from exc
    capital: dict[str, dict[str, float]] = {}
    result = replayer.run()
    for acct in replayer.accounts.values():
        for s, funded in acct.core.funds.funded.items():
            capital[s] = {a: float(v) for a, v in funded.items()}
    meta = {"id": out.name, "label": req.label, "config": str(req.config_path), "data": str(data), "from": iso(t_from),
            "to": iso(t_to), "from_us": t_from, "to_us": t_to, "warmup": req.warmup, "strategies_run": strategies, "params": req.params,
            "latency": {"entry_ms": req.entry_ms, "response_ms": req.response_ms,
                        "paper_ms": latency.describe() if hasattr(latency, "describe") else
                        latency if latency is not None else "as configured"},
            "started": iso(int(time.time() * 1e6))}
    (out / "result.json").write_bytes(orjson.dumps({**meta, "lanes": result.lanes, "accounts": result.accounts,
                                                    "records": result.records, "wall_s": result.wall_s},
                                                   option=orjson.OPT_INDENT_2))
    doc = report.build(result, capital, meta)
    report.write(out, doc)
    return out, doc


def summary_line(doc: dict[str, Any]) -> str:
    t = doc["total"]
    sharpe = f"{t['sharpe']:.2f}" if t["sharpe"] is not None else "-"
    return (f"{doc['id']}: {doc['from']} -> {doc['to']}, {len(doc['strategies'])} strategies, {t['fills']} fills, "
            f"PnL {t['pnl']['total']:,.2f} (fees {t['pnl']['fees']:,.2f}), max drawdown {t['max_drawdown']:,.2f}, "
            f"Sharpe {sharpe}")


def list_runs(root: Path) -> list[dict[str, Any]]:
    runs = []
    for path in sorted(root.glob("*/report.json")):
        try:
            doc = orjson.loads(path.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            continue
        t = doc.get("total") or {}
        runs.append({"id": doc.get("id"), "dir": str(path.parent), "label": doc.get("label", ""),
                     "from": doc.get("from"), "to": doc.get("to"), "strategies": sorted(doc.get("strategies") or {}),
                     "params": doc.get("params"), "fills": t.get("fills"), "pnl": (t.get("pnl") or {}).get("total"),
                     "max_drawdown": t.get("max_drawdown"), "sharpe": t.get("sharpe"),
                     "errors": {n: s["error"] for n, s in (doc.get("strategies") or {}).items() if s.get("error")}})
    return runs


def sweep(req: Request, config: Config, axes: dict[str, list[tuple[str, str, Any]]], jobs: int,
          out: Any = print) -> tuple[Path, list[dict[str, Any]]]:
    """Every combination of ``axes`` as its own backtest process (``jobs`` at a time, one core each)."""
    combos = grid(axes)
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    root = Path(req.out).expanduser().absolute() if req.out else config.daemon.state_dir / "backtests" / f"sweep-{stamp}"
    root.mkdir(parents=True, exist_ok=True)
    running: list[tuple[int, subprocess.Popen[bytes], Path]] = []
    rows: list[dict[str, Any]] = []
    queue = list(enumerate(combos))
    try:
        _drive(req, combos, root, queue, running, rows, jobs, out)
    finally:
        for _, proc, _ in running:
            proc.terminate()
            proc.wait(10)
    rows.sort(key=lambda r: r["run"])
    (root / "summary.json").write_bytes(orjson.dumps(rows, option=orjson.OPT_INDENT_2))
    return root, rows


def _drive(req: Request, combos: list[dict[str, dict[str, Any]]], root: Path, queue: list[tuple[int, Any]],
           running: list[tuple[int, subprocess.Popen[bytes], Path]], rows: list[dict[str, Any]], jobs: int,
           out: Any) -> None:
    while queue or running:
        while queue and len(running) < max(1, jobs):
            n, params = queue.pop(0)
            run_dir = root / f"run-{n:03d}"
            cmd = [sys.executable, "-m", "wispd.cli.daemon", "backtest", "--config", str(req.config_path),
                   "--out", str(run_dir), "--warmup", req.warmup, "--entry-latency", str(req.entry_ms),
                   "--response-latency", str(req.response_ms), "--params-json", orjson.dumps(params).decode(),
                   "--label", f"sweep {root.name} #{n}"]
            for flag, value in (("--from", req.t_from), ("--to", req.t_to), ("--data", req.data)):
                if value:
                    cmd += [flag, value]
            if req.latency_ms is not None:
                cmd += ["--latency", req.latency_ms]
            for s in req.strategies:
                cmd += ["--strategy", s]
            log = open(root / f"run-{n:03d}.log", "wb")  # noqa: SIM115 - closed when the process ends
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ},
                                    preexec_fn=_one_core(n))  # noqa: PLW1509 - the sweep process runs no threads
            log.close()
            running.append((n, proc, run_dir))
        time.sleep(0.05)
        for item in list(running):
            n, proc, run_dir = item
            if proc.poll() is None:
                continue
            running.remove(item)
            row: dict[str, Any] = {"run": n, "params": combos[n], "dir": str(run_dir), "exit": proc.returncode}
            try:
                doc = orjson.loads((run_dir / "report.json").read_bytes())
                t = doc["total"]
                row.update(fills=t["fills"], pnl=t["pnl"]["total"], fees=t["pnl"]["fees"],
                           max_drawdown=t["max_drawdown"], sharpe=t["sharpe"], return_pct=t["return_pct"])
                failed = {n: s["error"] for n, s in doc["strategies"].items() if s.get("error")}
                if failed:
                    row["error"] = "; ".join(f"{n}: {e}" for n, e in failed.items())
            except (OSError, orjson.JSONDecodeError, KeyError):
                row["error"] = (root / f"run-{n:03d}.log").read_text(errors="replace")[-400:].strip()
            rows.append(row)
            out(_row_text(row))


def _one_core(n: int) -> Any:
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []

    def pin() -> None:
        from wispd.runtime.bootstrap import _set_pdeathsig

        _set_pdeathsig(signal.SIGTERM)  # the sweep's death is its runs' death
        if cores:
            os.sched_setaffinity(0, {cores[n % len(cores)]})

    return pin


def _row_text(row: dict[str, Any]) -> str:
    params = ", ".join(f"{s}.{k}={v}" for s, kv in row["params"].items() for k, v in kv.items()) or "(as configured)"
    if "error" in row:
        last = row["error"].splitlines()[-1] if row["error"] else ""
        return f"#{row['run']:<3} {params}: FAILED (exit {row['exit']}): {last}"
    sharpe = f"{row['sharpe']:.2f}" if row.get("sharpe") is not None else "-"
    return (f"#{row['run']:<3} {params}: PnL {row['pnl']:,.2f}  fills {row['fills']}  max DD "
            f"{row['max_drawdown']:,.2f}  Sharpe {sharpe}")
