"""Working orders and the events every venue (paper or live) hands to the executor.

The executor does not care where an event came from: a paper fill and a fill read from an exchange's
trade stream are both a ``Fill``; an order resting on the paper book and an exchange acknowledgement are
both ``Done(status="open")``. That is what lets paper and live share the journal, reports and risk checks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import orjson

ZERO = Decimal(0)


@dataclass
class Trigger:
    """What an armed contingent order waits for (see ``contingent.py``).

    kind: stop (buy when the price rises to ``price``, sell when it falls to it), take_profit (the other
    way round), or trailing_stop (a stop that follows the best price seen by ``distance`` or ``percent``).
    """

    kind: str
    price: Decimal | None = None
    distance: Decimal | None = None
    percent: Decimal | None = None
    extreme: Decimal | None = None  # trailing: the best price seen since it was armed

    def wire(self) -> dict[str, Any]:
        return {k: (str(v) if isinstance(v, Decimal) else v) for k, v in
                (("kind", self.kind), ("price", self.price), ("distance", self.distance), ("percent", self.percent),
                 ("extreme", self.extreme)) if v is not None}

    @classmethod
    def from_wire(cls, raw: dict[str, Any] | None) -> Trigger | None:
        if not raw:
            return None
        d = {k: Decimal(raw[k]) for k in ("price", "distance", "percent", "extreme") if raw.get(k) is not None}
        return cls(str(raw["kind"]), **d)


@dataclass
class WorkingOrder:
    client_id: str
    strategy: str
    exchange: str
    market: str
    symbol: str
    side: str
    qty: Decimal
    price: Decimal | None
    tif: str = "GTC"
    post_only: bool = False
    active_at: float = 0.0
    filled: Decimal = ZERO
    cost: Decimal = ZERO
    status: str = "pending"  # pending -> open -> partially_filled -> filled | cancelled | rejected
    reduce_only: bool = False
    ref_price: Decimal | None = None  # the mid when it was sent (live market orders need a slippage bound)
    replaces: str | None = None  # amend: the client id of the order this one replaces
    exchange_id: str | None = None
    exchange_done: str | None = None  # live: final status the exchange reported before all its trades arrived
    trigger: Trigger | None = None  # armed contingent order: not on the book until this fires
    parent: str | None = None  # bracket exit: the entry order it protects (its size follows the entry's fills)
    leg: str = ""  # bracket exit: "sl" or "tp"
    leverage: Decimal = Decimal(1)
    max_cost: Decimal | None = None  # market buys: what its reservation covers (quote, fees included)
    step: Decimal | None = None  # the market's quantity step (what a partial fill may be cut to)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def remaining(self) -> Decimal:
        return self.qty - self.filled

    @property
    def avg_price(self) -> Decimal | None:
        return self.cost / self.filled if self.filled else None

    @property
    def book_key(self) -> tuple[str, str, str]:
        return self.exchange, self.market, self.symbol


@dataclass
class Fill:
    order: WorkingOrder
    price: Decimal
    qty: Decimal
    fee: Decimal
    liquidity: str  # maker | taker
    trade_id: str | None = None  # live: the exchange's trade id (fills are journaled once per trade id)


@dataclass
class Done:
    order: WorkingOrder
    status: str  # open (acknowledged / resting) | filled | cancelled | rejected
    reason: str = ""
    code: str = ""  # machine-readable reason of a rejection (insufficient_funds, rate_limited, ...)


Event = Fill | Done


def row_flags(row: dict[str, Any]) -> dict[str, Any]:
    raw = row.get("flags")
    if not raw:
        return {}
    return orjson.loads(raw) if isinstance(raw, bytes | str) else dict(raw)


def order_from_row(row: dict[str, Any]) -> WorkingOrder:
    """Rebuild a working order from its journal row (restart, or a late fill of a finished order)."""
    flags = row_flags(row)
    order = WorkingOrder(row["client_id"], row["strategy"], row["exchange"], row["market"], row["symbol"],
                         row["side"], Decimal(row["qty"]), Decimal(row["price"]) if row["price"] else None,
                         row["tif"], bool(flags.get("post_only")), reduce_only=bool(flags.get("reduce_only")),
                         replaces=flags.get("replaces"), exchange_id=row.get("exchange_id"),
                         trigger=Trigger.from_wire(flags.get("trigger")), parent=flags.get("parent"),
                         leg=flags.get("leg") or "", leverage=Decimal(flags.get("leverage") or "1"),
                         max_cost=Decimal(flags["max_cost"]) if flags.get("max_cost") else None,
                         step=Decimal(flags["rules"]["step"]) if (flags.get("rules") or {}).get("step") else None)
    order.filled = Decimal(row["filled"])
    order.cost = order.filled * Decimal(row["avg_price"] or "0")
    order.status = row["status"] if row["status"] != "intent" else "pending"
    if flags.get("native"):
        order.extra["native"] = True  # a trigger order the venue holds
    return order
