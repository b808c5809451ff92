"""``[recorders.<name>]``: record the bus to segment files for backtests (``wispd/data/recorder.py``).

A recorder is one more subscriber of an exchange's ingestor: what it writes is exactly what strategies
received, with the receive time, so a backtest replays the feed the live strategies saw.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from wispd.config.model import LIMITS_SPEC, RESTART_SPEC, ChildSpec, DaemonConfig, child_spec
from wispd.config.schema import ConfigIssue, Field, MapOf, Table, between
from wispd.protocol import valid_channel
from wispd.supervisor.kinds import RECORDER

DEFAULT_CHANNELS = ["book", "trades", "ticker", "funding", "kline.1m"]

SPEC = MapOf(
    Table(
        {
            "exchange": Field(str, "a configured exchange whose ingestor this records", required=True),
            "pairs": Field(list, 'the pairs to record, e.g. ["BTC-USDT", "perp:BTC-USDC"] (default: the exchange\'s '
                           "configured pairs)", item_type=str),
            "channels": Field(list, 'channels per pair: book, trades, ticker, funding (perp only), kline.<interval>',
                              default=DEFAULT_CHANNELS, item_type=str),
            "path": Field(str, "the data directory (default: <state_dir>/data; relative to this config file)"),
            "segment_seconds": Field(float, "seconds from 60 to 86400: a new segment file after this long",
                                     default=3600.0, check=between(60, 86400)),
            "segment_mb": Field(float, "megabytes from 0.1 to 4096: a new segment file once one is this large",
                                default=256.0, check=between(0.1, 4096, "megabytes")),
            "keep_days": Field(float, "days from 0 (keep everything) to 3650: older segments are deleted",
                               default=30.0, check=between(0, 3650, "days")),
            "keep_gb": Field(float, "gigabytes from 0 (no limit) to 100000: the oldest segments go first above it",
                             default=0.0, check=between(0, 100000, "gigabytes")),
            "autostart": Field(bool, "true or false", default=True),
            "restart": RESTART_SPEC,
            "limits": LIMITS_SPEC,
        }
    )
)


def data_dir(item_path: str | None, daemon: DaemonConfig) -> Path:
    """Where recorded data lives: the recorder's ``path`` or ``<state_dir>/data``."""
    if not item_path:
        return daemon.state_dir / "data"
    path = Path(item_path).expanduser()
    return path if path.is_absolute() else (daemon.config_path.parent / path).resolve()


def build(raw: dict[str, Any], daemon: DaemonConfig, issues: list[ConfigIssue],
          data: dict[str, Any]) -> list[ChildSpec]:
    from wispd.config import exchanges as exchanges_section

    file = str(daemon.config_path)
    specs = []
    for name, item in raw.items():
        path = f"recorders.{name}"
        exchange = item["exchange"]
        ex_item = data["exchanges"].get(exchange)
        if ex_item is None:
            issues.append(ConfigIssue(file, f"{path}.exchange", exchange,
                                      f"a configured exchange (have: {', '.join(sorted(data['exchanges'])) or 'none'})"))
            continue
        pairs = []
        texts = item["pairs"] if item["pairs"] is not None else list(ex_item.get("pairs") or [])
        for i, text in enumerate(texts):
            if not isinstance(text, str) or not exchanges_section._PAIR.match(text):
                issues.append(ConfigIssue(file, f"{path}.pairs[{i}]", text, '"BASE-QUOTE" or "perp:BASE-QUOTE"'))
                continue
            pairs.append(list(exchanges_section.parse_pair(text, ex_item["market"])))
        if not pairs:
            issues.append(ConfigIssue(file, f"{path}.pairs", texts, "at least one pair (the exchange configures "
                                      "none, so name them here)"))
        for i, channel in enumerate(item["channels"]):
            if not valid_channel(channel):
                issues.append(ConfigIssue(file, f"{path}.channels[{i}]", channel,
                                          "book, trades, ticker, funding or kline.<interval> (e.g. kline.1m)"))
        args = {"exchange": exchange, "endpoints": exchanges_section.endpoints(exchange, ex_item, daemon),
                "pairs": pairs, "channels": list(item["channels"]), "path": str(data_dir(item["path"], daemon)),
                "segment_seconds": item["segment_seconds"], "segment_bytes": int(item["segment_mb"] * 1024 * 1024),
                "keep_days": item["keep_days"], "keep_bytes": int(item["keep_gb"] * 1024 ** 3)}
        specs.append(child_spec(name, RECORDER, args, item, daemon))
    return specs
