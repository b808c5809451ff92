"""`wispctl data list|import|download|export|generate`: the market data backtests replay (docs/backtesting.md).

- ``list``: what is recorded, per topic (records, first and last time), the size and open segments;
- ``import tardis-book|tardis-trades|ohlcv FILE...``: Tardis CSV and freqtrade-style OHLCV files;
- ``download EXCHANGE --pairs ... --interval 1m [--trades]``: OHLCV and trades through ccxt;
- ``export --out DIR``: Parquet tables;
- ``generate EXCHANGE --from --to``: a sim exchange's data in virtual time, as a recorder would have written it.

Everything lands in the same segment format in the data directory (``--data``, default the recorders'
directory, ``<state_dir>/data``). Runs locally: no daemon needed.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import orjson

NAME = "data"
HELP = "recorded market data: list, import (Tardis, OHLCV), download (ccxt), export (Parquet), generate (sim)"
MUTATING = False
LOCAL = True
EX_USAGE, EX_DATAERR, EX_CONFIG = 64, 65, 78


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["list", "import", "download", "export", "generate"])
    parser.add_argument("items", nargs="*", help="import: FORMAT FILE...; download/generate: EXCHANGE")
    parser.add_argument("--config", dest="data_config", metavar="FILE", help="the wispd.toml (default as wispd's)")
    parser.add_argument("--data", metavar="DIR", help="the data directory (default: <state_dir>/data)")
    parser.add_argument("--exchange", help="import: the exchange name the data is filed under (default: the "
                                           "file's own, e.g. binance)")
    parser.add_argument("--market", default="spot", choices=["spot", "perp"], help="import: spot or perp")
    parser.add_argument("--symbol", help="import: our symbol (BASE-QUOTE) when the file's cannot be read")
    parser.add_argument("--interval", help="import ohlcv / download: the candle interval (e.g. 1m)")
    parser.add_argument("--pairs", nargs="*", default=[], help="download/generate: pairs ([perp:]BASE-QUOTE); "
                                                               "default: the exchange's configured pairs")
    parser.add_argument("--trades", action="store_true", help="download: public trades too")
    parser.add_argument("--from", dest="t_from", help="download/export/generate: start (UTC)")
    parser.add_argument("--to", dest="t_to", help="download/export/generate: end (UTC, exclusive)")
    parser.add_argument("--depth", type=int, default=20, help="import tardis-book: levels kept per side")
    parser.add_argument("--tick", help="import: the price tick (default: inferred from the data)")
    parser.add_argument("--step", help="import: the lot step (default: inferred from the data)")
    parser.add_argument("--maker-fee", default="0.0002", help="import: maker fee rate")
    parser.add_argument("--taker-fee", default="0.0005", help="import: taker fee rate")
    parser.add_argument("--out", help="export: the output directory")
    parser.add_argument("--topic", action="append", default=[], help="export: only topics starting with this")
    parser.add_argument("--json", action="store_true", help="print the outcome as JSON")


def _root(ns: argparse.Namespace, config: Any) -> Path:
    from wispd.backtest.run import default_data_dir

    return Path(ns.data).expanduser().absolute() if ns.data else default_data_dir(config)


def _pairs(ns: argparse.Namespace, config: Any, exchange: str) -> list[tuple[str, str]]:
    from wispd.config.exchanges import _PAIR, parse_pair

    item = (config.sections.get("exchanges") or {}).get(exchange)
    if item is None:
        raise ValueError(f"no exchange {exchange!r} in {config.daemon.config_path} "
                         f"(have: {', '.join(sorted(config.sections.get('exchanges') or {}))})")
    texts = ns.pairs or list(item.get("pairs") or [])
    bad = [t for t in texts if not _PAIR.match(t)]
    if bad or not texts:
        raise ValueError(f"--pairs {bad or texts}: expected [perp:]BASE-QUOTE, at least one")
    return [parse_pair(t, item["market"]) for t in texts]


def _when(text: str | None, what: str, default: int) -> int:
    from wispd.backtest.run import parse_time

    return parse_time(text, what) if text else default


# Which options each action reads; any other given is refused (an option silently ignored is a surprise).
USES = {
    "list": set(),
    "import": {"exchange", "market", "symbol", "interval", "depth", "tick", "step", "maker_fee", "taker_fee"},
    "download": {"interval", "pairs", "trades", "t_from", "t_to"},
    "export": {"t_from", "t_to", "out", "topic"},
    "generate": {"pairs", "t_from", "t_to"},
}
DEFAULTS = {"exchange": None, "market": "spot", "symbol": None, "interval": None, "pairs": [], "trades": False,
            "t_from": None, "t_to": None, "depth": 20, "tick": None, "step": None, "maker_fee": "0.0002",
            "taker_fee": "0.0005", "out": None, "topic": []}
FLAGS = {"t_from": "--from", "t_to": "--to"}


def refused_options(ns: argparse.Namespace) -> list[str]:
    uses = set(USES[ns.action])
    if ns.action == "import" and ns.items and ns.items[0] != "tardis-book":
        uses = uses - {"depth"}
    if ns.action == "import" and ns.items and ns.items[0] != "ohlcv":
        uses = uses - {"interval"}
    return [FLAGS.get(k, "--" + k.replace("_", "-")) for k, default in DEFAULTS.items()
            if k not in uses and getattr(ns, k, default) != default]


def run_local(ns: argparse.Namespace) -> int:
    from wispd.backtest.run import BacktestError
    from wispd.cli import load_config_or_say
    from wispd.data.importers import ImportError_

    unused = refused_options(ns)
    if unused:
        what = f"{ns.action} {ns.items[0]}" if ns.action == "import" and ns.items else ns.action
        print(f"data {ns.action}: {', '.join(unused)} do(es) not apply to `data {what}`", file=sys.stderr)
        return EX_USAGE
    config = load_config_or_say(getattr(ns, "data_config", None) or getattr(ns, "config", None))
    if config is None:
        return EX_CONFIG
    root = _root(ns, config)
    try:
        result = ACTIONS[ns.action](ns, config, root)
    except (ImportError_, BacktestError, ValueError, RuntimeError, OSError) as exc:
        print(f"data {ns.action}: {exc}", file=sys.stderr)
        return EX_DATAERR if isinstance(exc, ImportError_ | OSError) else EX_USAGE
    if ns.json:
        print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
    return 0


def _list(ns: argparse.Namespace, config: Any, root: Path) -> dict[str, Any]:
    from wispd.backtest.run import iso
    from wispd.data import store

    info = store.summary(root) if root.is_dir() else {"root": str(root), "segments": 0, "open": [], "bytes": 0,
                                                      "records": 0, "gaps": 0, "topics": {}}
    if not ns.json:
        print(f"{root}: {info['segments']} segments, {info['records']:,} records, {info['bytes'] / 1e6:.1f} MB, "
              f"{info['gaps']} gaps" + (f", {len(info['open'])} open" if info["open"] else ""))
        for topic, t in info["topics"].items():
            print(f"  {topic:<44} {t['records']:>10,}  {iso(t['first_us'])} -> {iso(t['last_us'])}")
    return info


def _import(ns: argparse.Namespace, config: Any, root: Path) -> dict[str, Any]:
    from wispd.data import importers

    if len(ns.items) < 2:
        raise ValueError("usage: wispctl data import tardis-book|tardis-trades|ohlcv FILE... [--exchange NAME]")
    fmt, files = ns.items[0], [Path(f) for f in ns.items[1:]]
    funcs = {"tardis-book": importers.tardis_book, "tardis-trades": importers.tardis_trades, "ohlcv": importers.ohlcv}
    if fmt not in funcs:
        raise ValueError(f"unknown format {fmt!r}: tardis-book, tardis-trades or ohlcv")
    done = []
    for path in files:
        if not path.is_file():
            raise FileNotFoundError(f"no such file: {path}")
        exchange = ns.exchange or _file_exchange(path) or "imported"
        kwargs: dict[str, Any] = {"symbol": ns.symbol, "tick": ns.tick, "step": ns.step, "maker": ns.maker_fee,
                                  "taker": ns.taker_fee}
        if fmt == "tardis-book":
            kwargs["depth"] = ns.depth
        if fmt == "ohlcv":
            kwargs["interval"] = ns.interval
        out = funcs[fmt](path, root, exchange, ns.market, **kwargs)
        done.append({"file": str(path), "exchange": exchange, **out})
        if not ns.json:
            print(f"{path}: {out['frames']:,} frames of {', '.join(out['symbols'])} on {exchange} -> "
                  f"{len(out['segments'])} segment(s) in {root}")
    return {"imported": done}


def _file_exchange(path: Path) -> str | None:
    import csv

    with open(path, newline="", encoding="utf-8") as fh:
        row = next(csv.DictReader(fh), None)
    name = (row or {}).get("exchange")
    return name.strip().lower().replace("-", "_") if name else None


def _download(ns: argparse.Namespace, config: Any, root: Path) -> dict[str, Any]:
    from wispd.data.download import download

    if len(ns.items) != 1:
        raise ValueError("usage: wispctl data download EXCHANGE [--pairs ...] --interval 1m [--trades] --from --to")
    exchange = ns.items[0]
    spec = next((c for c in config.children if c.kind == "ingestor" and c.args.get("exchange") == exchange), None)
    if spec is None or spec.args.get("driver") == "sim":
        raise ValueError(f"{exchange!r} is not a ccxt exchange of {config.daemon.config_path} (for a sim exchange, "
                         "wispctl data generate makes its data)")
    if not ns.interval and not ns.trades:
        raise ValueError("say what to download: --interval 1m (candles) and/or --trades")
    now_ms = int(time.time() * 1000)
    t_from = _when(ns.t_from, "--from", (now_ms - 86_400_000) * 1000) // 1000
    t_to = _when(ns.t_to, "--to", now_ms * 1000) // 1000
    out = download(spec.args, root, exchange, _pairs(ns, config, exchange), ns.interval, ns.trades, t_from, t_to,
                   progress=(lambda line: None) if ns.json else (lambda line: print(line, flush=True)))
    if not ns.json:
        print(f"{exchange}: {out['bars']} bars, {out['trades']} trades -> {len(out['segments'])} segment(s) in {root}")
    return out


def _export(ns: argparse.Namespace, config: Any, root: Path) -> dict[str, Any]:
    from wispd.data.export import export_parquet

    if not ns.out:
        raise ValueError("export needs --out DIR")
    t_from = _when(ns.t_from, "--from", 0) or None
    t_to = _when(ns.t_to, "--to", 0) or None
    counts = export_parquet(root, Path(ns.out), t_from, t_to, ns.topic or None)
    if not ns.json:
        print(", ".join(f"{k}: {v:,} rows" for k, v in counts.items()) + f" -> {ns.out}")
    return counts


def _generate(ns: argparse.Namespace, config: Any, root: Path) -> dict[str, Any]:
    from wispd.data.generate import generate

    if len(ns.items) != 1:
        raise ValueError("usage: wispctl data generate EXCHANGE --from TIME --to TIME [--pairs ...]")
    exchange = ns.items[0]
    item = (config.sections.get("exchanges") or {}).get(exchange) or {}
    if item.get("driver") != "sim":
        raise ValueError(f"{exchange!r} is not a sim exchange of {config.daemon.config_path}")
    if not ns.t_from or not ns.t_to:
        raise ValueError("generate needs --from and --to")
    t_from, t_to = _when(ns.t_from, "--from", 0), _when(ns.t_to, "--to", 0)
    if t_to <= t_from:
        raise ValueError("--to must be after --from")
    intervals = tuple(item.get("klines") or ["1m"])
    written = generate(root, exchange, item.get("sim") or {}, _pairs(ns, config, exchange), t_from, t_to,
                       depth=int(item.get("book_depth", 10)), intervals=intervals,
                       on_hour=None if ns.json else (lambda p, n: print(f"{p}: {n:,} records", flush=True)))
    return {"segments": written}


ACTIONS = {"list": _list, "import": _import, "download": _download, "export": _export, "generate": _generate}
