"""What a strategy knows about the exchanges it was configured with: their names, the markets each one
has (Binance: spot; Hyperliquid: perp; the sim: both) and the pairs configured on each market.

The signal builder asks it which market an order is for when the author did not say (``signal(name)``
rather than ``ctx.spot.signal(name)``/``ctx.perp.signal(name)``): an exchange with one market, or a pair
configured on exactly one market of it, is unambiguous; anything else is a ``SignalError`` that names the
fix. A perp order on an exchange without perps (or the reverse) and an unknown exchange are refused the
same way, at build time, not by the executor.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Venue:
    name: str
    markets: tuple[str, ...]
    pairs: dict[str, frozenset[str]] = field(default_factory=dict)  # market -> configured symbols


class Venues:
    def __init__(self, raw: dict[str, Any]) -> None:
        self.by_name: dict[str, Venue] = {}
        for name, item in raw.items():
            if isinstance(item, dict) and isinstance(item.get("markets"), list | tuple):
                pairs = {m: frozenset(s) for m, s in (item.get("pairs") or {}).items()}
                self.by_name[name] = Venue(name, tuple(item["markets"]), pairs)

    def venue(self, exchange: str) -> Venue:
        venue = self.by_name.get(exchange)
        if venue is None:
            close = difflib.get_close_matches(exchange, list(self.by_name), n=3)
            hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
            raise LookupError(f"unknown exchange {exchange!r} (configured: {', '.join(sorted(self.by_name)) or 'none'})"
                              + hint)
        return venue

    def market_for(self, exchange: str, symbol: str) -> str:
        """The market an order on ``exchange`` for ``symbol`` must be for, when it is unambiguous."""
        venue = self.venue(exchange)
        if len(venue.markets) == 1:
            return venue.markets[0]
        configured = [m for m in venue.markets if symbol in venue.pairs.get(m, ())]
        if len(configured) == 1:
            return configured[0]
        where = "on both its markets" if configured else "on none of its markets"
        raise LookupError(f"{exchange} has {' and '.join(venue.markets)} markets and {symbol} is configured {where}: "
                          "say which, with ctx.spot.signal(...) / ctx.perp.signal(...) or market='spot'|'perp'")

    def check(self, exchange: str, market: str) -> None:
        venue = self.venue(exchange)
        if market not in venue.markets:
            other = "ctx.perp.signal" if market == "spot" else "ctx.spot.signal"
            raise LookupError(f"{exchange} has no {market} market (it has: {', '.join(venue.markets)})"
                              + (f"; use {other}(...)" if len(venue.markets) == 1 else ""))


_current: list[Venues] = []


def install(venues: Venues) -> None:
    """The running strategy's venues (set by its runtime at start)."""
    _current[:] = [venues]


def current() -> Venues | None:
    return _current[0] if _current else None
