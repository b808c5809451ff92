"""What the exchange thread tells the executor thread: plain values, converted from ccxt's dicts at once.

The exchange thread never touches working orders; it only does I/O and posts these. The executor thread
turns them into ``Fill``/``Done`` events against its own order book-keeping, so all order state has one
owner and no locks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from wispd.execution.live.drivers import our_client_id
from wispd.protocol import to_decimal

ZERO = Decimal(0)


@dataclass
class OrderMsg:
    client_id: str | None
    exchange_id: str | None
    status: str  # ccxt's: open | closed | canceled | expired | rejected
    symbol: str  # ccxt symbol
    filled: Decimal | None = None
    reason: str = ""


@dataclass
class TradeMsg:
    trade_id: str
    exchange_id: str | None
    client_id: str | None
    symbol: str
    price: Decimal
    qty: Decimal
    fee: Decimal  # in the quote currency
    liquidity: str
    ts: float = 0.0


@dataclass
class FailMsg:
    client_id: str
    code: str
    reason: str


@dataclass
class AccountMsg:
    balances: dict[str, Decimal] = field(default_factory=dict)
    positions: dict[str, Decimal] | None = None  # ccxt symbol -> signed contracts (perps)


@dataclass
class StreamMsg:
    up: bool
    reason: str = ""


Msg = OrderMsg | TradeMsg | FailMsg | AccountMsg | StreamMsg


def num(value: Any) -> Decimal | None:
    """ccxt hands numbers over as floats: through their shortest repr, so 0.004 stays 0.004."""
    if isinstance(value, float):
        return to_decimal(repr(value)) if value == value and abs(value) != float("inf") else None
    return to_decimal(value) if value is not None else None


def order_msg(driver: str, o: dict[str, Any], reason: str = "") -> OrderMsg:
    info = o.get("info") or {}
    vid = o.get("clientOrderId") or (info.get("c") if isinstance(info, dict) else None)
    return OrderMsg(our_client_id(driver, vid), str(o["id"]) if o.get("id") is not None else None,
                    str(o.get("status") or "open"), str(o.get("symbol") or ""), num(o.get("filled")), reason)


def trade_msg(driver: str, t: dict[str, Any], markets: dict[str, Any]) -> TradeMsg | None:
    price, qty = num(t.get("price")), num(t.get("amount"))
    if price is None or qty is None or t.get("id") is None:
        return None
    info = t.get("info") or {}
    vid = t.get("clientOrderId") or (info.get("cloid") or info.get("c") if isinstance(info, dict) else None)
    symbol = str(t.get("symbol") or "")
    market = markets.get(symbol) or {}
    fee = ZERO
    raw_fee = t.get("fee") or {}
    cost = num(raw_fee.get("cost")) if raw_fee else None
    if cost is not None:
        ccy = raw_fee.get("currency")
        if ccy == market.get("base"):
            fee = cost * price  # charged in the base asset: its quote value
        elif ccy in (market.get("quote"), market.get("settle"), None):
            fee = cost
    return TradeMsg(str(t["id"]), str(t["order"]) if t.get("order") is not None else None, our_client_id(driver, vid),
                    symbol, price, qty, fee, "maker" if t.get("takerOrMaker") == "maker" else "taker",
                    float(t.get("timestamp") or 0))
