"""Signal validation and risk checks, done in the executor so a broken strategy cannot bypass them.

Every rejection is a ``Reject(code, message)``: ``code`` is machine-readable (counted, reported back to
the strategy), ``message`` says what was wrong in words.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import Decimal, localcontext
from typing import Any

from wispd.protocol import to_decimal

ZERO = Decimal(0)
_SYMBOL = re.compile(r"^[A-Z0-9]{1,20}-[A-Z0-9]{1,20}$")
_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_AMOUNT = Decimal("1e18")  # no quantity, price or leverage of any market comes near this
SIGNAL_KEYS = frozenset({"v", "id", "name", "strategy", "ts", "ttl_ms", "actions"})
ACTION_KEYS = {
    "order": frozenset({"type", "side", "exchange", "market", "symbol", "qty", "price", "order_type", "tif",
                        "post_only", "reduce_only", "short", "leverage", "stop_loss", "take_profit"}),
    "cancel": frozenset({"type", "client_id"}),
    "amend": frozenset({"type", "client_id", "price", "qty"}),
    "close": frozenset({"type", "exchange", "market", "symbol"}),
}


@dataclass(frozen=True)
class Reject(Exception):
    code: str
    message: str


def _show(raw: Any) -> str:
    text = repr(raw)
    return text if len(text) <= 40 else text[:37] + "..."


def _dec(action: dict[str, Any], key: str, required: bool, positive: bool = True) -> Decimal | None:
    raw = action.get(key)
    if raw is None and not required:
        return None
    value = to_decimal(raw)
    if value is None:
        raise Reject("bad_schema", f"{key} must be a decimal string of at most 40 digits within 1e+/-30, "
                     f"got {_show(raw)}")
    if positive and value <= 0:
        raise Reject("bad_quantity" if key == "qty" else "bad_price", f"{key} must be greater than 0, got {raw}")
    if abs(value) >= MAX_AMOUNT:
        raise Reject("bad_quantity" if key == "qty" else "bad_price", f"{key} {raw} is out of range (< 1e18)")
    return value


def _known_keys(obj: dict[str, Any], known: frozenset[str], where: str) -> None:
    """Every field is honoured or refused: a field this version does not know is an error, not ignored."""
    unknown = [k for k in obj if k not in known]
    if unknown:
        raise Reject("unknown_field", f"{where}: unknown field {_show(unknown[0])} (known: {', '.join(sorted(known))})")


def parse_signal(msg: dict[str, Any] | None) -> dict[str, Any]:
    """Validate a decoded signal; returns it with Decimal fields, or raises Reject."""
    if msg is None:
        raise Reject("bad_schema", "not a JSON object")
    if msg.get("v") != 1:
        raise Reject("bad_schema", f"unsupported signal version {_show(msg.get('v'))}")
    for key in ("id", "strategy"):
        if not isinstance(msg.get(key), str) or not _ID.match(msg[key]):
            raise Reject("bad_schema", f"{key} must be 1-64 letters, digits, '-' or '_'")
    _known_keys(msg, SIGNAL_KEYS, "signal")
    if "name" in msg and not (isinstance(msg["name"], str) and len(msg["name"]) <= 64):
        raise Reject("bad_schema", "name must be a string of at most 64 characters")
    ts, ttl = msg.get("ts"), msg.get("ttl_ms")
    if isinstance(ts, bool) or not isinstance(ts, int | float) or not math.isfinite(ts) or ts <= 0 or \
            isinstance(ttl, bool) or not isinstance(ttl, int) or not 0 < ttl <= 3_600_000:
        raise Reject("bad_schema", "ts (ms since the epoch) and ttl_ms (1 to 3600000) are required")
    actions = msg.get("actions")
    if not isinstance(actions, list) or not 1 <= len(actions) <= 20:
        raise Reject("bad_schema", "actions must be a list of 1 to 20 actions")
    parsed = []
    for i, a in enumerate(actions):
        if not isinstance(a, dict):
            raise Reject("bad_schema", "each action must be an object")
        kind = a.get("type")
        if kind in ACTION_KEYS:
            _known_keys(a, ACTION_KEYS[kind], f"action {i} ({kind})")
        if kind == "order":
            parsed.append(_order(a))
        elif kind == "cancel":
            if not isinstance(a.get("client_id"), str) or not _ID.match(a["client_id"]):
                raise Reject("bad_schema", "cancel needs a client_id")
            parsed.append({"type": "cancel", "client_id": a["client_id"]})
        elif kind == "amend":
            if not isinstance(a.get("client_id"), str) or not _ID.match(a["client_id"]):
                raise Reject("bad_schema", "amend needs a client_id")
            price, qty = _dec(a, "price", False), _dec(a, "qty", False)
            if price is None and qty is None:
                raise Reject("bad_schema", "amend needs a new price, a new qty, or both")
            parsed.append({"type": "amend", "client_id": a["client_id"], "price": price, "qty": qty})
        elif kind == "close":
            parsed.append({"type": "close", **_where(a)})
        else:
            raise Reject("bad_schema", f"unknown action type {_show(kind)}")
    return {**msg, "actions": parsed}


_EXCHANGE = re.compile(r"^[a-z][a-z0-9_-]{0,47}$")


def _where(a: dict[str, Any]) -> dict[str, str]:
    if not isinstance(a.get("exchange"), str) or not _EXCHANGE.match(a["exchange"]) or \
            a.get("market") not in ("spot", "perp"):
        raise Reject("bad_schema", "exchange and market (spot|perp) are required")
    if not isinstance(a.get("symbol"), str) or not _SYMBOL.match(a["symbol"]):
        raise Reject("unknown_symbol", f"symbol must look like BTC-USDT, got {a.get('symbol')!r}")
    return {"exchange": a["exchange"], "market": a["market"], "symbol": a["symbol"]}


def _order(a: dict[str, Any]) -> dict[str, Any]:
    if a.get("side") not in ("buy", "sell"):
        raise Reject("bad_schema", f"side must be buy or sell, got {_show(a.get('side'))}")
    if a.get("tif", "GTC") not in ("GTC", "IOC", "FOK"):
        raise Reject("bad_schema", f"time in force must be GTC, IOC or FOK, got {_show(a.get('tif'))}")
    for flag in ("post_only", "reduce_only", "short"):
        if a.get(flag) not in (None, True, False):
            raise Reject("bad_schema", f"{flag} must be true or false, got {_show(a.get(flag))}")
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
        def d(key: str, default: str, *, positive: bool = False, floor: Decimal = ZERO) -> Decimal:
            value = to_decimal(raw.get(key, default))
            if value is None or value < floor or (positive and value <= 0):
                return Decimal(default)  # an ingestor's nonsense never becomes a rule
            return value

        rebate = Decimal("-0.01")  # maker rebates are negative fees
        return cls(d("tick", "0.01", positive=True), d("step", "0.0001", positive=True), d("min_qty", "0"),
                   d("min_notional", "0"), d("maker_fee", "0", floor=rebate), d("taker_fee", "0", floor=rebate))


def check_rules(order: dict[str, Any], rules: MarketRules, ref_price: Decimal | None) -> None:
    with localcontext() as ctx:
        ctx.prec = 120  # bounded inputs (see protocol.to_decimal): exact remainders, never DivisionImpossible
        _check_rules(order, rules, ref_price)


def _check_rules(order: dict[str, Any], rules: MarketRules, ref_price: Decimal | None) -> None:
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
