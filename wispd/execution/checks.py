"""Signal validation and risk checks, done in the executor so a broken strategy cannot bypass them.

Every rejection is a ``Reject(code, message)``: ``code`` is machine-readable (counted, reported back to
the strategy), ``message`` says what was wrong in words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from wispd.protocol import to_decimal

ZERO = Decimal(0)
_SYMBOL = re.compile(r"^[A-Z0-9]{1,20}-[A-Z0-9]{1,20}$")
_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(frozen=True)
class Reject(Exception):
    code: str
    message: str


def _dec(action: dict[str, Any], key: str, required: bool, positive: bool = True) -> Decimal | None:
    raw = action.get(key)
    if raw is None and not required:
        return None
    value = to_decimal(raw)
    if value is None:
        raise Reject("bad_schema", f"{key} must be a decimal string, got {raw!r}")
    if positive and value <= 0:
        raise Reject("bad_quantity" if key == "qty" else "bad_price", f"{key} must be greater than 0, got {raw}")
    return value


def parse_signal(msg: dict[str, Any] | None) -> dict[str, Any]:
    """Validate a decoded signal; returns it with Decimal fields, or raises Reject."""
    if msg is None:
        raise Reject("bad_schema", "not a JSON object")
    if msg.get("v") != 1:
        raise Reject("bad_schema", f"unsupported signal version {msg.get('v')!r}")
    for key in ("id", "strategy"):
        if not isinstance(msg.get(key), str) or not _ID.match(msg[key]):
            raise Reject("bad_schema", f"{key} must be 1-64 letters, digits, '-' or '_'")
    if not isinstance(msg.get("ts"), int | float) or not isinstance(msg.get("ttl_ms"), int) or msg["ttl_ms"] <= 0:
        raise Reject("bad_schema", "ts (ms) and a positive ttl_ms are required")
    actions = msg.get("actions")
    if not isinstance(actions, list) or not 1 <= len(actions) <= 20:
        raise Reject("bad_schema", "actions must be a list of 1 to 20 actions")
    parsed = []
    for a in actions:
        if not isinstance(a, dict):
            raise Reject("bad_schema", "each action must be an object")
        kind = a.get("type")
        if kind == "order":
            parsed.append(_order(a))
        elif kind == "cancel":
            if not isinstance(a.get("client_id"), str):
                raise Reject("bad_schema", "cancel needs client_id")
            parsed.append({"type": "cancel", "client_id": a["client_id"]})
        elif kind == "amend":
            if not isinstance(a.get("client_id"), str):
                raise Reject("bad_schema", "amend needs client_id")
            price, qty = _dec(a, "price", False), _dec(a, "qty", False)
            if price is None and qty is None:
                raise Reject("bad_schema", "amend needs a new price, a new qty, or both")
            parsed.append({"type": "amend", "client_id": a["client_id"], "price": price, "qty": qty})
        elif kind == "close":
            parsed.append({"type": "close", **_where(a)})
        else:
            raise Reject("bad_schema", f"unknown action type {kind!r}")
    return {**msg, "actions": parsed}


def _where(a: dict[str, Any]) -> dict[str, str]:
    if not isinstance(a.get("exchange"), str) or a.get("market") not in ("spot", "perp"):
        raise Reject("bad_schema", "exchange and market (spot|perp) are required")
    if not isinstance(a.get("symbol"), str) or not _SYMBOL.match(a["symbol"]):
        raise Reject("unknown_symbol", f"symbol must look like BTC-USDT, got {a.get('symbol')!r}")
    return {"exchange": a["exchange"], "market": a["market"], "symbol": a["symbol"]}


def _order(a: dict[str, Any]) -> dict[str, Any]:
    if a.get("side") not in ("buy", "sell"):
        raise Reject("bad_schema", f"side must be buy or sell, got {a.get('side')!r}")
    if a.get("tif", "GTC") not in ("GTC", "IOC", "FOK"):
        raise Reject("bad_schema", f"time in force must be GTC, IOC or FOK, got {a.get('tif')!r}")
    qty = _dec(a, "qty", True)
    price = _dec(a, "price", False)
    if a.get("order_type") not in ("market", "limit") or (a["order_type"] == "limit") != (price is not None):
        raise Reject("bad_schema", "order_type must be limit with a price, or market without one")
    out = {"type": "order", **_where(a), "side": a["side"], "qty": qty, "price": price, "tif": a.get("tif", "GTC"),
           "post_only": bool(a.get("post_only")), "reduce_only": bool(a.get("reduce_only")),
           "short": bool(a.get("short")), "leverage": _dec(a, "leverage", False),
           "stop_loss": _dec(a, "stop_loss", False), "take_profit": _dec(a, "take_profit", False)}
    if out["post_only"] and price is None:
        raise Reject("bad_schema", "post_only needs a limit price")
    if out["short"] and out["market"] != "perp":
        raise Reject("bad_schema", "sell_short is for perp markets")
    return out


@dataclass(frozen=True)
class MarketRules:
    tick: Decimal
    step: Decimal
    min_qty: Decimal
    min_notional: Decimal
    maker_fee: Decimal
    taker_fee: Decimal

    @classmethod
    def from_wire(cls, raw: dict[str, Any]) -> MarketRules:
        def d(key: str, default: str) -> Decimal:
            return to_decimal(raw.get(key, default)) or Decimal(default)

        return cls(d("tick", "0.01"), d("step", "0.0001"), d("min_qty", "0"), d("min_notional", "0"),
                   d("maker_fee", "0"), d("taker_fee", "0"))


def check_rules(order: dict[str, Any], rules: MarketRules, ref_price: Decimal | None) -> None:
    qty, price = order["qty"], order["price"]
    if qty % rules.step != 0:
        raise Reject("qty_step", f"quantity {qty} is not a multiple of the step {rules.step}")
    if qty < rules.min_qty:
        raise Reject("min_qty", f"quantity {qty} is below the minimum {rules.min_qty}")
    if price is not None and price % rules.tick != 0:
        raise Reject("price_tick", f"price {price} is not on the tick grid {rules.tick}")
    px = price if price is not None else ref_price
    if px is not None and qty * px < rules.min_notional:
        raise Reject("min_notional", f"notional {qty * px} is below the minimum {rules.min_notional}")


@dataclass
class RiskLimits:
    max_order_notional: Decimal
    max_position_notional: Decimal
    max_open_orders: int
    strategy_budget: Decimal
    budgets: dict[str, Decimal]
    price_collar_pct: Decimal

    @classmethod
    def from_config(cls, raw: dict[str, Any]) -> RiskLimits:
        return cls(Decimal(raw["max_order_notional"]), Decimal(raw["max_position_notional"]),
                   int(raw["max_open_orders"]), Decimal(raw["strategy_budget"]),
                   {k: Decimal(v) for k, v in (raw.get("budgets") or {}).items()},
                   Decimal(str(raw["price_collar_pct"])))


def check_risk(order: dict[str, Any], strategy: str, limits: RiskLimits, *, halted: bool, mid: Decimal | None,
               position_qty: Decimal, open_orders: int, strategy_exposure: Decimal) -> None:
    if halted:
        raise Reject("halted", "trading is halted (wispctl resume lifts it)")
    if mid is None:
        raise Reject("no_market_data", "no current price for this symbol")
    qty, price = order["qty"], order["price"]
    px = price if price is not None else mid
    notional = qty * px
    if notional > limits.max_order_notional:
        raise Reject("max_order_notional", f"order notional {notional:.2f} exceeds {limits.max_order_notional}")
    if price is not None and abs(price - mid) / mid * 100 > limits.price_collar_pct:
        raise Reject("price_collar", f"price {price} is more than {limits.price_collar_pct}% from the mid {mid}")
    signed = qty if order["side"] == "buy" else -qty
    after = position_qty + signed
    if order["reduce_only"] and (position_qty == 0 or abs(after) > abs(position_qty) or
                                 (after != 0 and (after > 0) != (position_qty > 0))):
        raise Reject("reduce_only", f"reduce-only order would not reduce the position {position_qty}")
    reduces = abs(after) < abs(position_qty)
    if not reduces and abs(after) * px > limits.max_position_notional:
        raise Reject("max_position", f"position would be {abs(after) * px:.2f}, above {limits.max_position_notional}")
    if open_orders >= limits.max_open_orders:
        raise Reject("max_open_orders", f"{open_orders} orders already open (limit {limits.max_open_orders})")
    budget = limits.budgets.get(strategy, limits.strategy_budget)
    if not reduces and strategy_exposure + notional > budget:
        raise Reject("strategy_budget", f"exposure would be {strategy_exposure + notional:.2f}, budget {budget}")
