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
SIGNAL_KEYS = frozenset({"v", "id", "name", "strategy", "ts", "woke", "ttl_ms", "actions"})
ACTION_KEYS = {
    "order": frozenset({"type", "side", "exchange", "market", "symbol", "qty", "price", "order_type", "tif",
                        "post_only", "reduce_only", "short", "leverage", "stop_loss", "stop_loss_limit",
                        "take_profit", "take_profit_type", "trigger_type", "trigger_price", "trail_distance",
                        "trail_percent"}),
    "cancel": frozenset({"type", "client_id"}),
    "cancel_all": frozenset({"type", "exchange", "market", "symbol"}),
    "amend": frozenset({"type", "client_id", "price", "qty"}),
    "close": frozenset({"type", "exchange", "market", "symbol"}),
}
TRIGGER_TYPES = ("stop", "take_profit", "trailing_stop")


@dataclass(frozen=True)
class Reject(Exception):
    code: str
    message: str
    action: int | None = None  # which action of the signal (None: the signal as a whole)

    def at(self, index: int) -> Reject:
        """The same rejection, said of action ``index`` (the message says which, the report too)."""
        if self.action is not None:
            return self
        return Reject(self.code, f"action {index}: {self.message}", index)


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
    woke = msg.get("woke")
    if woke is not None and (isinstance(woke, bool) or not isinstance(woke, int | float) or not math.isfinite(woke)
                             or not 0 < woke <= ts):
        raise Reject("bad_schema", f"woke (ms since the epoch, when the decision was taken) must be a number "
                                   f"greater than 0 and not after ts {ts}, got {_show(woke)}")
    actions = msg.get("actions")
    if not isinstance(actions, list) or not 1 <= len(actions) <= 20:
        raise Reject("bad_schema", "actions must be a list of 1 to 20 actions")
    parsed = []
    for i, a in enumerate(actions):
        try:
            parsed.append(_action(a, i))
        except Reject as rej:
            raise rej.at(i) from None
    return {**msg, "actions": parsed}


def _action(a: Any, i: int) -> dict[str, Any]:
    if not isinstance(a, dict):
        raise Reject("bad_schema", "each action must be an object")
    kind = a.get("type")
    if kind in ACTION_KEYS:
        _known_keys(a, ACTION_KEYS[kind], f"action {i} ({kind})")
    if kind == "order":
        return _order(a)
    if kind == "cancel":
        if not isinstance(a.get("client_id"), str) or not _ID.match(a["client_id"]):
            raise Reject("bad_schema", "cancel needs a client_id")
        return {"type": "cancel", "client_id": a["client_id"]}
    if kind == "cancel_all":
        where = {k: a.get(k) for k in ("exchange", "market", "symbol")}
        if where["symbol"] is not None:
            return {"type": "cancel_all", **_where(a)}
        if where["exchange"] is not None and not (isinstance(where["exchange"], str) and
                                                  _EXCHANGE.match(where["exchange"])):
            raise Reject("bad_schema", "cancel_all: exchange must be an exchange name")
        if where["market"] not in (None, "spot", "perp"):
            raise Reject("bad_schema", "cancel_all: market must be spot or perp")
        return {"type": "cancel_all", **where}
    if kind == "amend":
        if not isinstance(a.get("client_id"), str) or not _ID.match(a["client_id"]):
            raise Reject("bad_schema", "amend needs a client_id")
        price, qty = _dec(a, "price", False), _dec(a, "qty", False)
        if price is None and qty is None:
            raise Reject("bad_schema", "amend needs a new price, a new qty, or both")
        return {"type": "amend", "client_id": a["client_id"], "price": price, "qty": qty}
    if kind == "close":
        return {"type": "close", **_where(a)}
    raise Reject("bad_schema", f"unknown action type {_show(kind)}")


_EXCHANGE = re.compile(r"^[a-z][a-z0-9_-]{0,47}$")


def _where(a: dict[str, Any]) -> dict[str, str]:
    if not isinstance(a.get("exchange"), str) or not _EXCHANGE.match(a["exchange"]) or \
            a.get("market") not in ("spot", "perp"):
        raise Reject("bad_schema", "exchange and market (spot|perp) are required")
    if not isinstance(a.get("symbol"), str) or not _SYMBOL.match(a["symbol"]):
        raise Reject("unknown_symbol", f"symbol must look like BTC-USDT, got {a.get('symbol')!r}")
    return {"exchange": a["exchange"], "market": a["market"], "symbol": a["symbol"]}


def _combo(message: str) -> Reject:
    return Reject("bad_combination", message)


def _order(a: dict[str, Any]) -> dict[str, Any]:
    """One order action: every field parsed, and every combination that cannot be honoured refused."""
    if a.get("side") not in ("buy", "sell"):
        raise Reject("bad_schema", f"side must be buy or sell, got {_show(a.get('side'))}")
    for flag in ("post_only", "reduce_only", "short"):
        if a.get(flag) not in (None, True, False):
            raise Reject("bad_schema", f"{flag} must be true or false, got {_show(a.get(flag))}")
    qty = _dec(a, "qty", True)
    price = _dec(a, "price", False)
    if a.get("order_type") not in ("market", "limit") or (a["order_type"] == "limit") != (price is not None):
        raise Reject("bad_schema", "order_type must be limit with a price, or market without one")
    tif = a.get("tif") or ("GTC" if price is not None else "IOC")
    if tif not in ("GTC", "IOC", "FOK"):
        raise Reject("bad_schema", f"time in force must be GTC, IOC or FOK, got {_show(a.get('tif'))}")
    trigger_type = a.get("trigger_type")
    if trigger_type is not None and trigger_type not in TRIGGER_TYPES:
        raise Reject("bad_schema", f"trigger_type must be one of {', '.join(TRIGGER_TYPES)}, got {_show(trigger_type)}")
    tp_type = a.get("take_profit_type") or "limit"
    if tp_type not in ("limit", "market"):
        raise Reject("bad_schema", f"take_profit_type must be limit or market, got {_show(tp_type)}")
    out = {"type": "order", **_where(a), "side": a["side"], "qty": qty, "price": price, "tif": tif,
           "post_only": bool(a.get("post_only")), "reduce_only": bool(a.get("reduce_only")),
           "short": bool(a.get("short")), "leverage": _dec(a, "leverage", False),
           "stop_loss": _dec(a, "stop_loss", False), "stop_loss_limit": _dec(a, "stop_loss_limit", False),
           "take_profit": _dec(a, "take_profit", False), "take_profit_type": tp_type,
           "trigger_type": trigger_type, "trigger_price": _dec(a, "trigger_price", False),
           "trail_distance": _dec(a, "trail_distance", False), "trail_percent": _dec(a, "trail_percent", False)}
    if price is None and tif == "GTC":
        raise _combo("a market order cannot rest on the book: its time in force is IOC or FOK (GTC is for limits)")
    if out["post_only"] and (price is None or tif != "GTC"):
        raise _combo("post_only needs a GTC limit order (it must be able to rest)")
    if out["short"] and (out["market"] != "perp" or out["side"] != "sell"):
        raise _combo("short (sell_short) is a sell on a perp market")
    if out["reduce_only"] and out["market"] == "spot" and out["side"] == "buy":
        raise _combo("a spot buy cannot be reduce-only: spot positions are never short")
    if out["leverage"] is not None and (out["market"] != "perp" or out["leverage"] < 1):
        raise _combo("leverage is for perp orders, and at least 1")
    if trigger_type is None:
        if any(out[k] is not None for k in ("trigger_price", "trail_distance", "trail_percent")):
            raise _combo("trigger_price, trail_distance and trail_percent need a trigger_type")
    elif trigger_type == "trailing_stop":
        if (out["trail_distance"] is None) == (out["trail_percent"] is None) or out["trigger_price"] is not None:
            raise _combo("a trailing stop takes exactly one of trail_distance or trail_percent, and no trigger_price")
        if out["trail_percent"] is not None and not 0 < out["trail_percent"] < 100:
            raise _combo("trail_percent must be between 0 and 100")
        if price is not None:
            raise _combo("a trailing stop becomes a market order when it fires (no limit price)")
    elif out["trigger_price"] is None:
        raise _combo(f"a {trigger_type} order needs a trigger_price")
    if trigger_type is not None and out["post_only"]:
        raise _combo("a triggered order takes liquidity when it fires: it cannot be post_only")
    bracket = out["stop_loss"] is not None or out["take_profit"] is not None
    if out["stop_loss_limit"] is not None and out["stop_loss"] is None:
        raise _combo("stop_loss_limit needs a stop_loss (the trigger)")
    if a.get("take_profit_type") is not None and out["take_profit"] is None:
        raise _combo("take_profit_type needs a take_profit")
    if bracket and (out["reduce_only"] or trigger_type is not None):
        raise _combo("stop_loss and take_profit protect an entry: not on a reduce-only or triggered order")
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

    def wire(self) -> dict[str, str]:
        """As journaled with each order: what it was checked against (a restart needs no ingestor)."""
        return {k: str(getattr(self, k)) for k in ("tick", "step", "min_qty", "min_notional", "maker_fee",
                                                    "taker_fee")}


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
    max_leverage: Decimal = Decimal(10)

    @classmethod
    def from_config(cls, raw: dict[str, Any]) -> RiskLimits:
        return cls(Decimal(raw["max_order_notional"]), Decimal(raw["max_position_notional"]),
                   int(raw["max_open_orders"]), Decimal(raw["strategy_budget"]),
                   {k: Decimal(v) for k, v in (raw.get("budgets") or {}).items()},
                   Decimal(str(raw["price_collar_pct"])), Decimal(str(raw.get("max_leverage", 10))))


def check_risk(order: dict[str, Any], strategy: str, limits: RiskLimits, *, halted: bool | str, mid: Decimal | None,
               position_qty: Decimal, open_orders: int, strategy_exposure: Decimal) -> None:
    if halted and not order["reduce_only"]:
        raise Reject("halted", halted if isinstance(halted, str) else "trading is halted (wispctl resume lifts it)")
    if order.get("leverage") is not None and order["leverage"] > limits.max_leverage:
        raise Reject("max_leverage", f"leverage {order['leverage']} is above this account's limit "
                     f"{limits.max_leverage}")
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
