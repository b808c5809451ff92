"""``[exchanges.<name>]``: one ingestor child per exchange (named ``ingestor.<name>``).

Ingestors use public market data only; no key is ever read here.
"""

from __future__ import annotations

import re
from typing import Any

from wispd import protocol
from wispd.config.model import LIMITS_SPEC, RESTART_SPEC, ChildSpec, DaemonConfig, child_spec
from wispd.config.schema import ConfigIssue, Field, MapOf, Table, between, endpoint, one_of
from wispd.supervisor.kinds import INGESTOR

# The markets each driver supports in this version (each one tested against a loopback fake).
MARKETS = {"sim": ("spot", "perp"), "binance": ("spot",), "bybit": ("spot", "perp"), "hyperliquid": ("perp",),
           "paradex": ("perp",)}
DRIVERS = tuple(MARKETS)


def _loopback(value: str) -> str | None:
    if re.match(r"^http://127\.0\.0\.1:\d{1,5}$", value):
        return None
    return "http://127.0.0.1:<port> (only loopback: a local fake exchange or gateway)"
_PAIR = re.compile(r"^(?:(spot|perp):)?([A-Z0-9]{1,20}-[A-Z0-9]{1,20})$")


def _pairs(value: list[str]) -> str | None:
    bad = [p for p in value if not isinstance(p, str) or not _PAIR.match(p)]
    return f'pairs like "BTC-USDT" or "perp:BTC-USDC" (bad: {", ".join(map(str, bad))})' if bad else None


def _intervals(value: list[str]) -> str | None:
    bad = [i for i in value if not isinstance(i, str) or not protocol.valid_interval(i)]
    return f'kline intervals like "1m", "5m", "1h" (bad: {", ".join(map(str, bad))})' if bad else None


SIM_SPEC = Table(
    {
        "seed": Field(int, "an integer seed", default=1),
        "update_hz": Field(float, "updates per second above 0, up to 1000", default=5.0,
                           check=between(0, 1000, "updates per second", low_open=True)),
        "volatility": Field(float, "annualised volatility above 0, up to 100 (0.8 = 80%)", default=0.8,
                            check=between(0, 100, "a volatility", low_open=True)),
        "drift": Field(float, "expected log-return per day from -1 to 1 (-0.1 is a market falling about 10% "
                       "a day); 0 is a driftless walk", default=0.0, check=between(-1, 1, "a drift per day")),
        "trade_rate": Field(float, "mean trades per second from 0 to 1000", default=2.0,
                            check=between(0, 1000, "trades per second")),
        "levels": Field(int, "book levels per side from 1 to 1000", default=20, check=between(1, 1000, "levels")),
        "prices": Field(dict, 'a table of start prices, e.g. {BTC-USDT = 60000.0}', default={}),
        "ticks": Field(dict, 'a table of tick sizes, e.g. {BTC-USDT = "0.1"}', default={}),
        "steps": Field(dict, 'a table of quantity steps, e.g. {BTC-USDT = "0.0001"}', default={}),
        "serve_any": Field(bool, "serve any well-formed pair, not only the configured ones (a typo then gets "
                           "a market of its own instead of an error)", default=False),
        "history_days": Field(float, "days of minute bars drawn before the sim's first start, so indicators "
                              "have values at once; 0 to 365", default=30.0, check=between(0, 365, "days")),
    },
    doc="the built-in simulated exchange",
)

SPEC = MapOf(
    Table(
        {
            "driver": Field(str, "the exchange driver", required=True, check=one_of(*DRIVERS)),
            "market": Field(str, 'the default market of pairs: "spot" or "perp"', default="spot",
                            check=one_of("spot", "perp")),
            "pairs": Field(list, "a list of pairs to watch from the start", default=[], check=_pairs),
            "klines": Field(list, "kline intervals to stream for the pre-declared pairs", default=[],
                            check=_intervals),
            "book_depth": Field(int, "order book levels per side, 1-100", default=10,
                                check=lambda v: None if 1 <= v <= 100 else "an integer from 1 to 100"),
            "stale_after": Field(float, "seconds from 0.1 to 3600", default=10.0, check=between(0.1, 3600)),
            "backoff_initial": Field(float, "seconds from 0.01 to 3600", default=0.5, check=between(0.01, 3600)),
            "backoff_max": Field(float, "seconds from 0.01 to 86400", default=30.0, check=between(0.01, 86400)),
            "api_base": Field(str, "http://127.0.0.1:<port>", check=_loopback),
            "keepalive_s": Field(float, "seconds > 0 (WebSocket ping interval; silence is noticed after 2)",
                                 default=15.0, check=between(1, 600)),
            "coalesce_ms": Field(float, "milliseconds a busy topic's updates may wait to go out as one frame "
                                 "(0 sends every update at once)", default=1.0,
                                 check=lambda v: None if 0 <= v <= 1000 else "0 to 1000 milliseconds"),
            "pub_endpoint": Field(str, "a ZeroMQ endpoint", check=endpoint),
            "snapshot_endpoint": Field(str, "a ZeroMQ endpoint", check=endpoint),
            "sim": SIM_SPEC,
            "restart": RESTART_SPEC,
            "limits": LIMITS_SPEC,
        }
    )
)


def parse_pair(text: str, default_market: str) -> tuple[str, str]:
    match = _PAIR.match(text)
    assert match is not None
    return match.group(1) or default_market, match.group(2)


def endpoints(name: str, item: dict[str, Any], daemon: DaemonConfig) -> dict[str, str]:
    """Where an exchange's ingestor publishes and answers snapshot requests (the one rule, used by all)."""
    return {
        "pub": item.get("pub_endpoint") or f"ipc://{daemon.run_dir}/md-{name}.pub",
        "snapshot": item.get("snapshot_endpoint") or f"ipc://{daemon.run_dir}/md-{name}.snap",
    }


def venue(item: dict[str, Any]) -> dict[str, Any]:
    """What a strategy is told of an exchange: its markets and the pairs configured on each."""
    pairs: dict[str, list[str]] = {}
    for text in item.get("pairs") or []:
        try:
            market, symbol = parse_pair(text, item["market"])
        except ValueError:
            continue  # reported by build
        pairs.setdefault(market, []).append(symbol)
    return {"markets": list(MARKETS.get(item.get("driver") or "", ())), "pairs": pairs}


def build(raw: dict[str, Any], daemon: DaemonConfig, issues: list[ConfigIssue],
          data: dict[str, Any]) -> list[ChildSpec]:
    specs = []
    for name, item in raw.items():
        if not item.get("driver"):
            continue
        file, supported = str(daemon.config_path), MARKETS[item["driver"]]
        if item["market"] not in supported:
            issues.append(ConfigIssue(file, f"exchanges.{name}.market", item["market"],
                                      f"a market {item['driver']} supports: {', '.join(supported)}"))
        for i, text in enumerate(item["pairs"] or []):
            market = parse_pair(text, item["market"])[0]
            if market not in supported:
                issues.append(ConfigIssue(file, f"exchanges.{name}.pairs[{i}]", text,
                                          f"a pair on a market {item['driver']} supports: {', '.join(supported)}"))
        eps = endpoints(name, item, daemon)
        args = {
            "exchange": name,
            "driver": item["driver"],
            "pairs": [list(parse_pair(p, item["market"])) for p in item["pairs"] or []],
            "klines": item["klines"] or [],
            "book_depth": item["book_depth"],
            "stale_after": item["stale_after"],
            "backoff_initial": item["backoff_initial"],
            "backoff_max": item["backoff_max"],
            "pub_endpoint": eps["pub"],
            "snapshot_endpoint": eps["snapshot"],
            "sim": item["sim"],
            "market": item["market"],
            "api_base": item["api_base"],
            "keepalive_s": item["keepalive_s"],
            "coalesce_ms": item["coalesce_ms"],
            "ready_wait": (item["limits"].get("start_timeout") or INGESTOR.start_timeout) / 2,
        }
        specs.append(child_spec(f"ingestor.{name}", INGESTOR, args, item, daemon))
    return specs
