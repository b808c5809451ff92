"""Atomic signals: every action of a signal is checked (schema, known orders, market rules, risk, funds)
against the account as the earlier actions of the same signal would leave it, before any action is acted
on. The result is a ``Plan``, carried out whole by the execution core, or a ``Reject`` that names the
failing action and why: nothing of the signal is journaled as an order, sent or cancelled.

The planner sees the account through ``View`` (a narrow interface of the execution core): it cannot
change anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from wispd.execution.checks import MarketRules, Reject, RiskLimits, check_risk, check_rules
from wispd.execution.contingent import wrong_side
from wispd.execution.journal import client_order_id
from wispd.execution.ledger import PositionState, split_symbol
from wispd.execution.orders import Trigger, WorkingOrder
from wispd.protocol import dec_str

ZERO = Decimal(0)
WORKING = ("armed", "intent", "accepted", "open", "partially_filled")
MarketKey = tuple[str, str, str]


class View(Protocol):
    mode: str
    limits: RiskLimits

    def halted(self, strategy: str) -> str | None: ...
    def has_exchange(self, exchange: str) -> bool: ...
    def market_rules(self, key: MarketKey) -> MarketRules: ...
    def mid(self, key: MarketKey) -> Decimal | None: ...
    def trigger_price(self, key: MarketKey) -> Decimal | None: ...
    def position_of(self, strategy: str, key: MarketKey) -> PositionState | None: ...
    def working(self, client_id: str) -> WorkingOrder | None: ...
    def working_of(self, strategy: str) -> list[WorkingOrder]: ...
    def final_status(self, client_id: str, strategy: str) -> str | None: ...
    def open_count(self) -> int: ...
    def exposure(self, strategy: str) -> Decimal: ...
    def available(self, strategy: str, asset: str) -> Decimal: ...
    def reservation(self, client_id: str) -> tuple[str, Decimal] | None: ...
    def capabilities(self) -> dict[str, Any]: ...

    def venue_holds(self, order: WorkingOrder) -> bool: ...


@dataclass
class NewOrder:
    index: int
    order: WorkingOrder
    intent: dict[str, Any]
    reserve: tuple[str, Decimal] | None
    exits: list[NewOrder] = field(default_factory=list)  # a bracket's legs, armed at size 0
    replaces: str | None = None  # amend: the working order this one replaces


@dataclass
class CancelOrders:
    index: int
    client_ids: list[str]
    kind: str  # cancel | cancel_all


Step = NewOrder | CancelOrders


@dataclass
class Plan:
    signal: dict[str, Any]
    steps: list[Step]


class Tentative:
    """The account as the earlier actions of this signal leave it."""

    def __init__(self, view: View) -> None:
        self.view = view
        self.extra: dict[tuple[str, str], Decimal] = {}  # (strategy, asset) -> reserved by this signal
        self.freed: dict[tuple[str, str], Decimal] = {}  # released by its cancels and amends
        self.opened = 0
        self.closed: set[str] = set()

    def available(self, strategy: str, asset: str) -> Decimal:
        k = (strategy, asset)
        return self.view.available(strategy, asset) - self.extra.get(k, ZERO) + self.freed.get(k, ZERO)

    def free(self, strategy: str, client_id: str) -> None:
        held = self.view.reservation(client_id)
        if held is not None:
            k = (strategy, held[0])
            self.freed[k] = self.freed.get(k, ZERO) + held[1]

    def take(self, strategy: str, need: tuple[str, Decimal] | None) -> None:
        if need is not None:
            k = (strategy, need[0])
            self.extra[k] = self.extra.get(k, ZERO) + need[1]


def reserve_need(o: WorkingOrder, taker_fee: Decimal, position: Decimal = ZERO) -> tuple[str, Decimal] | None:
    """What a working order can still consume: (asset, amount). Bracket exits reserve nothing themselves
    (their bracket reserves the inventory they would sell: see the execution core)."""
    if o.parent is not None:
        return None
    remaining = o.remaining
    if remaining <= 0:
        return None
    base, quote = split_symbol(o.symbol)
    if o.market == "spot":
        if o.side == "sell":
            return base, remaining
        if o.max_cost is not None:
            return quote, o.max_cost * remaining / o.qty
        assert o.price is not None
        return quote, remaining * o.price * (1 + max(ZERO, taker_fee))
    if o.reduce_only:
        return None
    reducing = position < 0 if o.side == "buy" else position > 0
    opening = max(ZERO, remaining - abs(position)) if reducing else remaining
    if opening <= 0:
        return None
    if o.max_cost is not None:
        return quote, o.max_cost * opening / o.qty
    assert o.price is not None
    return quote, opening * o.price / o.leverage * (1 + max(ZERO, taker_fee))


def _intent(o: WorkingOrder, signal_id: str, index: int, rules: MarketRules, order_type: str,
            flags: dict[str, Any]) -> dict[str, Any]:
    return {"client_id": o.client_id, "strategy": o.strategy, "signal_id": signal_id, "action": index,
            "exchange": o.exchange, "market": o.market, "symbol": o.symbol, "side": o.side,
            "order_type": order_type, "qty": dec_str(o.qty), "price": dec_str(o.price) if o.price is not None else None,
            "tif": o.tif, "flags": {**flags, "rules": rules.wire()}}


class Planner:
    def __init__(self, view: View) -> None:
        self.view = view

    def plan(self, sig: dict[str, Any]) -> Plan:
        t = Tentative(self.view)
        steps: list[Step] = []
        for index, action in enumerate(sig["actions"]):
            try:
                steps.append(self._action(sig, index, action, t))
            except Reject as rej:
                raise rej.at(index) from None
        return Plan(sig, steps)

    # ------------------------------------------------------------------ actions
    def _action(self, sig: dict[str, Any], index: int, a: dict[str, Any], t: Tentative) -> Step:
        strategy = sig["strategy"]
        kind = a["type"]
        if kind == "cancel":
            self._own_working(a["client_id"], strategy, t)
            t.free(strategy, a["client_id"]) if self.view.mode == "paper" else None
            t.closed.add(a["client_id"])
            return CancelOrders(index, [a["client_id"]], "cancel")
        if kind == "cancel_all":
            ids = [o.client_id for o in self.view.working_of(strategy) if o.client_id not in t.closed and all(
                a.get(k) is None or getattr(o, k) == a[k] for k in ("exchange", "market", "symbol"))]
            for cid in ids:
                if self.view.mode == "paper":
                    t.free(strategy, cid)
                t.closed.add(cid)
            return CancelOrders(index, ids, "cancel_all")
        if kind == "amend":
            old = self._own_working(a["client_id"], strategy, t)
            if old.price is None or old.trigger is not None or old.parent is not None:
                raise Reject("bad_combination", "only resting limit orders can be amended (cancel and place a "
                             "new order for the others)")
            order = {"type": "order", "exchange": old.exchange, "market": old.market, "symbol": old.symbol,
                     "side": old.side, "tif": old.tif, "qty": a["qty"] or old.qty, "price": a["price"] or old.price,
                     "post_only": old.post_only, "reduce_only": old.reduce_only, "short": False,
                     "leverage": old.leverage if old.market == "perp" else None}
            t.free(strategy, old.client_id)
            t.closed.add(old.client_id)
            t.opened -= 1
            step = self._order(sig, index, order, t)
            step.replaces = old.client_id
            step.order.replaces = old.client_id
            step.intent["flags"]["replaces"] = old.client_id
            return step
        if kind == "close":
            key = (a["exchange"], a["market"], a["symbol"])
            pos = self.view.position_of(strategy, key)
            if pos is None or pos.qty == 0:
                raise Reject("no_position", f"no {a['symbol']} position to close")
            order = {**a, "type": "order", "side": "sell" if pos.qty > 0 else "buy", "qty": abs(pos.qty),
                     "price": None, "tif": "IOC", "post_only": False, "reduce_only": True, "short": False,
                     "leverage": None}
            return self._order(sig, index, order, t)
        return self._order(sig, index, a, t)

    def _own_working(self, client_id: str, strategy: str, t: Tentative) -> WorkingOrder:
        if client_id in t.closed:
            raise Reject("unknown_order", f"order {client_id} is already cancelled by an earlier action")
        order = self.view.working(client_id)
        if order is None or order.strategy != strategy:
            final = self.view.final_status(client_id, strategy)
            if final is not None:
                raise Reject("order_not_open", f"order {client_id} is {final}: there is nothing left to cancel")
            raise Reject("unknown_order", f"no working order {client_id} of {strategy}")
        return order

    # ------------------------------------------------------------------ orders
    def _order(self, sig: dict[str, Any], index: int, a: dict[str, Any], t: Tentative) -> NewOrder:
        strategy = sig["strategy"]
        key: MarketKey = (a["exchange"], a["market"], a["symbol"])
        if not self.view.has_exchange(a["exchange"]):
            raise Reject("unknown_exchange", f"this account does not trade on {a['exchange']!r}")
        rules = self.view.market_rules(key)
        self._capabilities(a)
        mid = self.view.mid(key)
        check_rules(a, rules, mid)
        pos = self.view.position_of(strategy, key)
        position = pos.qty if pos else ZERO
        self._short_intent(a, position)
        check_risk(a, strategy, self.view.limits, halted=self.view.halted(strategy) or False, mid=mid,
                   position_qty=position, open_orders=self.view.open_count() + t.opened,
                   strategy_exposure=self.view.exposure(strategy))
        trigger = self._trigger(a, key, rules, mid)
        lev = a.get("leverage") or (Decimal(1) if a["market"] == "perp" else Decimal(1))
        cid = client_order_id(strategy, sig["id"], index)
        collar = 1 + self.view.limits.price_collar_pct / 100
        ref = (trigger.price if trigger is not None and trigger.price is not None else mid) or ZERO
        max_cost = None
        if a["price"] is None:  # what a market order (now, or when it fires) may spend at most
            worst = ref * collar if a["side"] == "buy" else ref
            fee = 1 + max(ZERO, rules.taker_fee)
            max_cost = a["qty"] * worst * fee / (lev if a["market"] == "perp" else 1)
        order = WorkingOrder(cid, strategy, *key, a["side"], a["qty"], a["price"], a["tif"], a["post_only"],
                             reduce_only=a["reduce_only"], ref_price=mid, trigger=trigger, leverage=lev,
                             max_cost=max_cost, step=rules.step)
        need = reserve_need(order, rules.taker_fee, position)
        self._funds(strategy, need, t)
        t.take(strategy, need)
        t.opened += 1
        flags = {"post_only": a["post_only"], "reduce_only": a["reduce_only"], "short": a.get("short", False),
                 "leverage": str(lev)}
        if trigger is not None:
            flags["trigger"] = trigger.wire()
            if self.view.venue_holds(order):
                flags["native"] = order.extra["native"] = True  # the venue holds and fires it
        if max_cost is not None:
            flags["max_cost"] = str(max_cost)
        step = NewOrder(index, order, _intent(order, sig["id"], index, rules,
                                              "market" if a["price"] is None else "limit", flags), need)
        step.exits = self._exits(sig, index, a, order, rules, mid, t)
        return step

    def _capabilities(self, a: dict[str, Any]) -> None:
        caps = self.view.capabilities()
        if a["tif"] not in caps.get("tif", ("GTC", "IOC", "FOK")):
            raise Reject("unsupported", f"{caps.get('name', 'this venue')} has no {a['tif']} orders")
        if a.get("post_only") and not caps.get("post_only", True):
            raise Reject("unsupported", f"{caps.get('name', 'this venue')} has no post-only orders")
        lev = a.get("leverage")
        if lev is not None and caps.get("integer_leverage") and lev % 1:
            raise Reject("unsupported", f"{caps.get('name')} takes whole-number leverage, not {lev}")

    @staticmethod
    def _short_intent(a: dict[str, Any], position: Decimal) -> None:
        """``sell_short`` means: open or add to a short; a plain ``sell`` on a perp never opens one."""
        if a["market"] != "perp" or a["side"] != "sell" or a["reduce_only"]:
            return
        if a.get("short") and position > 0:
            raise Reject("bad_combination", f"sell_short opens or adds to a short, but the position is long "
                         f"{position}: sell it (reduce) first")
        if not a.get("short") and a["qty"] > max(ZERO, position):
            raise Reject("would_open_short", f"selling {a['qty']} with a position of {position} would open a "
                         "short: use sell_short for that")

    def _trigger(self, a: dict[str, Any], key: MarketKey, rules: MarketRules, mid: Decimal | None) -> Trigger | None:
        kind = a.get("trigger_type")
        if kind is None:
            return None
        now = self.view.trigger_price(key) or mid
        if now is None:
            raise Reject("no_market_data", "no trigger price yet for this symbol")
        if kind == "trailing_stop":
            trig = Trigger(kind, distance=a.get("trail_distance"), percent=a.get("trail_percent"))
            from wispd.execution.contingent import follow

            follow(trig, a["side"], now)
            return trig
        price = a["trigger_price"]
        if price % rules.tick != 0:
            raise Reject("price_tick", f"trigger price {price} is not on the tick grid {rules.tick}")
        if wrong_side(a["side"], kind, price, now):
            raise Reject("trigger_side", f"a {a['side']} {kind} at {price} would fire at once (the price is {now})")
        if a["price"] is not None and (a["price"] < price if a["side"] == "buy" and kind == "stop" else False):
            raise Reject("bad_combination", f"a buy stop-limit's limit ({a['price']}) is below its trigger ({price})")
        if a["price"] is not None and a["side"] == "sell" and kind == "stop" and a["price"] > price:
            raise Reject("bad_combination", f"a sell stop-limit's limit ({a['price']}) is above its trigger ({price})")
        return Trigger(kind, price=price)

    def _funds(self, strategy: str, need: tuple[str, Decimal] | None, t: Tentative) -> None:
        if need is None:
            return
        asset, amount = need
        have = t.available(strategy, asset)
        if amount > have:
            held = self.view.available(strategy, asset)
            raise Reject("insufficient_funds", f"needs {amount.normalize():f} {asset}; the strategy has "
                         f"{max(ZERO, have).normalize():f} available"
                         + (f" ({held.normalize():f} before this signal's earlier actions)" if held != have else ""))

    def _exits(self, sig: dict[str, Any], index: int, a: dict[str, Any], entry: WorkingOrder, rules: MarketRules,
               mid: Decimal | None, t: Tentative) -> list[NewOrder]:
        sl, tp = a.get("stop_loss"), a.get("take_profit")
        if sl is None and tp is None:
            return []
        ref = a["price"] if a["price"] is not None else mid
        assert ref is not None
        side = "sell" if a["side"] == "buy" else "buy"
        legs: list[NewOrder] = []
        for leg, price in (("sl", sl), ("tp", tp)):
            if price is None:
                continue
            if price % rules.tick != 0:
                raise Reject("price_tick", f"{'stop loss' if leg == 'sl' else 'take profit'} {price} is not on "
                             f"the tick grid {rules.tick}")
            should_be_below = (leg == "sl") == (a["side"] == "buy")  # a long's stop is below, its target above
            if price == ref or (price < ref) != should_be_below:
                raise Reject("bracket_side", f"the {'stop loss' if leg == 'sl' else 'take profit'} {price} is on "
                             f"the wrong side of the {a['side']} price {ref}")
            limit = a.get("stop_loss_limit") if leg == "sl" else (price if a["take_profit_type"] == "limit" else None)
            if leg == "sl" and limit is not None:
                if limit % rules.tick != 0 or (limit > price if side == "sell" else limit < price):
                    raise Reject("bad_combination", f"the stop-limit price {limit} must be on the tick grid and "
                                 f"{'at or below' if side == 'sell' else 'at or above'} the stop {price}")
            trigger = None if (leg == "tp" and limit is not None) else Trigger(
                "stop" if leg == "sl" else "take_profit", price=price)
            cid = client_order_id(entry.strategy, sig["id"], f"{index}.{leg}")
            order = WorkingOrder(cid, entry.strategy, entry.exchange, entry.market, entry.symbol, side, ZERO, limit,
                                 "GTC" if limit is not None else "IOC", False, reduce_only=True, trigger=trigger,
                                 parent=entry.client_id, leg=leg, leverage=entry.leverage, step=rules.step)
            flags = {"post_only": False, "reduce_only": True, "short": False, "leverage": str(entry.leverage),
                     "parent": entry.client_id, "leg": leg}
            if trigger is not None:
                flags["trigger"] = trigger.wire()
            legs.append(NewOrder(index, order, _intent(order, sig["id"], index, rules,
                                                       "market" if limit is None else "limit", flags), None))
            t.opened += 1
        return legs
