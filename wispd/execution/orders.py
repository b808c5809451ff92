"""Working orders and the events every venue (paper or live) hands to the executor.

The executor does not care where an event came from: a paper fill and a fill read from an exchange's
trade stream are both a ``Fill``; an order resting on the paper book and an exchange acknowledgement are
both ``Done(status="open")``. That is what lets paper and live share the journal, reports and risk checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson

ZERO = Decimal(0)


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


def order_from_row(row: dict[str, Any]) -> WorkingOrder:
    """Rebuild a working order from its journal row (restart, or a late fill of a finished order)."""
    flags = orjson.loads(row["flags"] or b"{}") if row.get("flags") else {}
    order = WorkingOrder(row["client_id"], row["strategy"], row["exchange"], row["market"], row["symbol"],
                         row["side"], Decimal(row["qty"]), Decimal(row["price"]) if row["price"] else None,
                         row["tif"], bool(flags.get("post_only")), reduce_only=bool(flags.get("reduce_only")),
                         replaces=flags.get("replaces"), exchange_id=row.get("exchange_id"))
    order.filled = Decimal(row["filled"])
    order.cost = order.filled * Decimal(row["avg_price"] or "0")
    order.status = row["status"] if row["status"] != "intent" else "pending"
    return order
