"""The strategy author's API, in one import:

    from wispd.sdk import Strategy, Param, Decimal, D, asset, pair, signal, indicators, spot, perp

``spot`` and ``perp`` here are the same domains as ``ctx.spot``/``ctx.perp`` of the running strategy.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, cast

from wispd.strategy import indicators
from wispd.strategy.api import Domain, Param, ParamError, Strategy
from wispd.strategy.runtime import active
from wispd.strategy.signals import Handle, Report, Signal, SignalError, signal
from wispd.strategy.types import (
    Asset,
    D,
    Funding,
    Kline,
    Level,
    Order,
    OrderBook,
    Pair,
    Position,
    Ticker,
    Trade,
    asset,
    pair,
)


class _ActiveDomain:
    def __init__(self, market: str) -> None:
        self._market = market

    def __getattr__(self, attr: str) -> Any:
        return getattr(active().domains[self._market], attr)

    def __repr__(self) -> str:
        return f"<wispd {self._market} domain>"


# Typed as the Domain they stand for, so `wispd check` type-checks `spot.signal(...)` like `ctx.spot.signal(...)`.
spot: Domain = cast(Domain, _ActiveDomain("spot"))
perp: Domain = cast(Domain, _ActiveDomain("perp"))

__all__ = [
    "D", "Asset", "Decimal", "Funding", "Handle", "Kline", "Level", "Order", "OrderBook", "Pair", "Param",
    "ParamError", "Position", "Report", "Signal", "SignalError", "Strategy", "Ticker", "Trade", "asset",
    "indicators", "pair", "perp", "signal", "spot",
]
