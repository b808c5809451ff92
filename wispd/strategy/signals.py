"""Signals: the fluent builder a strategy author writes, the immutable Signal it builds, and the Handle
that ``emit`` returns.

    sig = (signal("rsi-entry")
           .buy(pair("BTC", "USDT"), "sim", "0.01").limit("59000").post_only()
           .stop_loss("57000").take_profit("63000")
           .build())

Modifiers apply to the action just added. ``build`` validates everything (clear ``SignalError``s at the
author's desk, not at the exchange) and returns an immutable ``Signal`` with a unique id and a
time-to-live: an executor rejects a signal that arrives after its TTL instead of executing it late.

All actions of one signal are checked together by the executor: if one cannot be done, none is, and the
report says which action and why. The ``Handle`` keeps a result per action.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from wispd import clock
from wispd.protocol import dec_str
from wispd.strategy import venues
from wispd.strategy.types import Amount, D, Order, Pair, Position

DEFAULT_TTL = 5.0
TIFS = ("GTC", "IOC", "FOK")
TERMINAL = ("rejected", "filled", "cancelled", "timeout")


def _random_id() -> str:
    return uuid.uuid4().hex


# Where a signal without an explicit id gets one: random live (a restarted strategy must never reuse one), a
# counter in a backtest (the same run must make the same ids, hence the same client order ids).
new_signal_id: Callable[[], str] = _random_id



class SignalError(ValueError):
    """A signal that cannot be valid; raised by the builder."""


def _d(value: Decimal | None) -> str | None:
    return dec_str(value) if value is not None else None


@dataclass(frozen=True)
class OrderAction:
    side: str  # buy | sell
    exchange: str
    market: str | None  # spot | perp (None until build resolves it from the exchange: see venues.py)
    symbol: str
    qty: Decimal
    price: Decimal | None = None  # None = market order (or, for a triggered order, market when it fires)
    tif: str | None = None  # None: GTC for a limit, IOC for a market order
    post_only: bool = False
    reduce_only: bool = False
    short: bool = False  # sell_short: opening or adding to a short, never a plain sale
    leverage: Decimal | None = None
    stop_loss: Decimal | None = None  # bracket: a stop exit for what fills
    stop_loss_limit: Decimal | None = None  # ... as a stop-limit at this price
    take_profit: Decimal | None = None  # bracket: a take-profit exit for what fills
    take_profit_market: bool = False  # ... a trigger that sells at market, instead of a resting limit
    trigger_type: str | None = None  # stop | take_profit | trailing_stop: this order waits for its trigger
    trigger_price: Decimal | None = None
    trail_distance: Decimal | None = None
    trail_percent: Decimal | None = None

    def wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": "order", "side": self.side, "exchange": self.exchange, "market": self.market,
            "symbol": self.symbol, "qty": dec_str(self.qty), "price": _d(self.price),
            "order_type": "market" if self.price is None else "limit", "post_only": self.post_only,
            "reduce_only": self.reduce_only, "short": self.short, "leverage": _d(self.leverage),
            "stop_loss": _d(self.stop_loss), "take_profit": _d(self.take_profit)}
        if self.tif is not None:
            out["tif"] = self.tif
        optional = {"stop_loss_limit": _d(self.stop_loss_limit), "trigger_type": self.trigger_type,
                    "trigger_price": _d(self.trigger_price), "trail_distance": _d(self.trail_distance),
                    "trail_percent": _d(self.trail_percent),
                    "take_profit_type": "market" if self.take_profit_market else None}
        out.update({k: v for k, v in optional.items() if v is not None})
        return out


@dataclass(frozen=True)
class CancelAction:
    client_id: str

    def wire(self) -> dict[str, Any]:
        return {"type": "cancel", "client_id": self.client_id}


@dataclass(frozen=True)
class AmendAction:
    """Replace a resting limit order with a new price and/or quantity. The replacement is a new order with
    its own client id (reported under this signal); the old one is reported cancelled, "replaced by ..."."""
    client_id: str
    price: Decimal | None = None
    qty: Decimal | None = None

    def wire(self) -> dict[str, Any]:
        return {"type": "amend", "client_id": self.client_id,
                "price": dec_str(self.price) if self.price is not None else None,
                "qty": dec_str(self.qty) if self.qty is not None else None}


@dataclass(frozen=True)
class CancelAllAction:
    """Cancel every working order of this strategy (armed stops and bracket exits included), optionally only
    on one exchange, market or pair: it cannot fail because one of them just filled."""
    exchange: str | None = None
    market: str | None = None
    symbol: str | None = None

    def wire(self) -> dict[str, Any]:
        return {"type": "cancel_all", **{k: v for k, v in (("exchange", self.exchange), ("market", self.market),
                                                           ("symbol", self.symbol)) if v is not None}}


@dataclass(frozen=True)
class CloseAction:
    exchange: str
    market: str
    symbol: str

    def wire(self) -> dict[str, Any]:
        return {"type": "close", "exchange": self.exchange, "market": self.market, "symbol": self.symbol}


Action = OrderAction | CancelAction | AmendAction | CloseAction | CancelAllAction


@dataclass(frozen=True)
class Signal:
    name: str
    id: str
    actions: tuple[Action, ...]
    ttl: float
    created: float  # wall clock, seconds

    @property
    def expires(self) -> float:
        """When the signal's ttl runs out (monotonic seconds): after it, no executor acts on it."""
        return self.created + self.ttl

    def wire(self, strategy: str, woke: float | None = None) -> dict[str, Any]:
        """The signal as it goes on the wire (``docs/protocol.md``). ``woke`` (seconds) is when the strategy's
        loop last woke before emitting it: the instant its decision was taken in, which can be well before
        ``ts`` (when it was built) if deciding took long; never after ``ts``."""
        out = {"v": 1, "id": self.id, "name": self.name, "strategy": strategy, "ts": self.created * 1000,
               "ttl_ms": int(self.ttl * 1000), "actions": [a.wire() for a in self.actions]}
        if woke is not None:
            out["woke"] = min(woke, self.created) * 1000
        return out


class SignalBuilder:
    """Build a signal action by action. ``market`` binds every order to one market (what
    ``ctx.spot.signal`` and ``ctx.perp.signal`` do); unbound, each order's market is given with
    ``market=`` or resolved from the exchange at ``build`` (an exchange with one market, or a pair
    configured on one market only), and anything ambiguous is a ``SignalError``."""

    def __init__(self, name: str, market: str | None = None) -> None:
        if not name or not isinstance(name, str):
            raise SignalError("a signal needs a name, e.g. signal('rsi-entry')")
        if market not in (None, "spot", "perp"):
            raise SignalError(f"market must be 'spot' or 'perp', got {market!r}")
        self._market = market
        self._name = name
        self._actions: list[Action] = []
        self._ttl = DEFAULT_TTL
        self._id: str | None = None

    # ------------------------------------------------------------------ actions
    def _order(self, side: str, p: Pair | str, exchange: str, qty: Amount, market: str | None,
               short: bool) -> SignalBuilder:
        if market not in (None, "spot", "perp"):
            raise SignalError(f"market must be 'spot' or 'perp', got {market!r}")
        if market is not None and self._market is not None and market != self._market:
            raise SignalError(f"this builder makes {self._market} orders (ctx.{self._market}.signal); a {market} "
                              f"order belongs in ctx.{market}.signal(...)")
        market = market or self._market or ("perp" if short else None)
        if short and market != "perp":
            raise SignalError("sell_short opens a short: perp only (spot cannot go short)")
        try:
            quantity = D(qty)
        except (TypeError, ValueError) as exc:
            raise SignalError(f"quantity: {exc}") from None
        if quantity <= 0:
            raise SignalError(f"quantity must be greater than 0, got {quantity}")
        if not exchange or not isinstance(exchange, str):
            raise SignalError("an order needs the exchange it goes to")
        try:
            symbol = Pair.parse(p).symbol
        except ValueError as exc:
            raise SignalError(str(exc)) from None
        self._actions.append(OrderAction(side, exchange, market, symbol, quantity, short=short))
        return self

    def buy(self, p: Pair | str, exchange: str, qty: Amount, market: str | None = None) -> SignalBuilder:
        """Buy ``qty`` of pair ``p`` on ``exchange`` (at market unless ``.limit()`` follows)."""
        return self._order("buy", p, exchange, qty, market, False)

    def sell(self, p: Pair | str, exchange: str, qty: Amount, market: str | None = None) -> SignalBuilder:
        """Sell ``qty``: spot, what the strategy holds; perp, reduce a long (never opens a short)."""
        return self._order("sell", p, exchange, qty, market, False)

    def sell_short(self, p: Pair | str, exchange: str, qty: Amount, market: str | None = None) -> SignalBuilder:
        """Open or add to a short (perp only)."""
        return self._order("sell", p, exchange, qty, market, True)

    def cancel(self, order: Order | str) -> SignalBuilder:
        """Cancel one of this strategy's working orders (an ``Order`` or its client id)."""
        client_id = order.client_id if isinstance(order, Order) else order
        if not client_id:
            raise SignalError("cancel needs an order or its client id")
        self._actions.append(CancelAction(client_id))
        return self

    def cancel_all(self, p: Pair | str | None = None, exchange: str | None = None,
                   market: str | None = None) -> SignalBuilder:
        """Cancel every working order of this strategy (or only those of pair ``p``, on ``exchange``, of
        ``market``): the safe way to requote, since an order that filled meanwhile is simply not there."""
        symbol = Pair.parse(p).symbol if p is not None else None
        market = market or self._market
        if symbol is not None and exchange is None:
            raise SignalError("cancel_all(pair) also needs exchange= (the pair is only known on one)")
        if symbol is not None and market is None:
            known = venues.current()
            try:
                market = known.market_for(str(exchange), symbol) if known else None
            except LookupError as exc:
                raise SignalError(str(exc)) from None
            if market is None:
                raise SignalError("cancel_all(pair) also needs market= (or use ctx.spot.signal / ctx.perp.signal)")
        if market not in (None, "spot", "perp"):
            raise SignalError(f"market must be 'spot' or 'perp', got {market!r}")
        self._actions.append(CancelAllAction(exchange, market, symbol))
        return self

    def amend(self, order: Order | str, price: Amount | None = None, qty: Amount | None = None) -> SignalBuilder:
        """Replace a resting limit order with one at ``price`` and/or ``qty`` (a new client id; the old one is reported cancelled)."""
        client_id = order.client_id if isinstance(order, Order) else order
        if not client_id:
            raise SignalError("amend needs an order or its client id")
        if price is None and qty is None:
            raise SignalError("amend needs a new price, a new qty, or both")
        new_price = self._price("amend", price) if price is not None else None
        new_qty = self._price("amend qty", qty) if qty is not None else None
        self._actions.append(AmendAction(client_id, new_price, new_qty))
        return self

    def close(self, position: Position) -> SignalBuilder:
        """Close a position with a reduce-only market order of its size, on its own exchange and market."""
        self._actions.append(CloseAction(position.exchange, position.market, position.symbol))
        return self

    # ------------------------------------------------------------------ modifiers of the last order
    def _last(self, what: str) -> OrderAction:
        if not self._actions or not isinstance(self._actions[-1], OrderAction):
            raise SignalError(f"{what}() applies to an order: call buy/sell/sell_short first")
        return self._actions[-1]

    def _set(self, what: str, **changes: Any) -> SignalBuilder:
        self._actions[-1] = replace(self._last(what), **changes)
        return self

    def _price(self, what: str, value: Any) -> Decimal:
        """A positive Decimal (prices, and the quantity of an amend)."""
        try:
            price = D(value)
        except (TypeError, ValueError) as exc:
            raise SignalError(f"{what}: {exc}") from None
        if price <= 0:
            raise SignalError(f"{what} must be greater than 0, got {price}")
        return price

    def limit(self, price: Amount) -> SignalBuilder:
        """Make the last order a limit order at ``price`` (on the market's tick; GTC unless ``.tif``)."""
        return self._set("limit", price=self._price("limit price", price))

    def market(self) -> SignalBuilder:
        """Make the last order a market order (IOC; the executor's price collar still applies)."""
        return self._set("market", price=None)

    def post_only(self, value: bool = True) -> SignalBuilder:
        """Only ever rest (GTC limits): an order that would take liquidity is rejected, never filled as a taker."""
        return self._set("post_only", post_only=value)

    def reduce_only(self, value: bool = True) -> SignalBuilder:
        """Only ever reduce this strategy's position; never larger than it when it executes."""
        return self._set("reduce_only", reduce_only=value)

    def tif(self, value: str) -> SignalBuilder:
        """Time in force: GTC, IOC or FOK (a venue without it refuses the order)."""
        if value.upper() not in TIFS:
            raise SignalError(f"time in force must be one of {', '.join(TIFS)}, got {value!r}")
        return self._set("tif", tif=value.upper())

    def leverage(self, value: Amount) -> SignalBuilder:
        """Perp only: reserve notional / ``value`` as margin and set it on the venue."""
        lev = self._price("leverage", value)
        if self._last("leverage").market == "spot":
            raise SignalError("leverage applies to perp orders only")
        return self._set("leverage", leverage=lev)

    def stop_loss(self, price: Amount, limit: Amount | None = None) -> SignalBuilder:
        """Bracket: when this entry fills, arm a reduce-only stop exit (market, or stop-limit at ``limit``)
        sized to what actually filled; linked one-cancels-other with a take-profit."""
        return self._set("stop_loss", stop_loss=self._price("stop loss", price),
                         stop_loss_limit=self._price("stop-limit price", limit) if limit is not None else None)

    def take_profit(self, price: Amount, market: bool = False) -> SignalBuilder:
        """Bracket: when this entry fills, rest a reduce-only limit exit at ``price`` sized to what filled
        (``market=True``: a take-profit trigger that exits at market instead)."""
        return self._set("take_profit", take_profit=self._price("take profit", price), take_profit_market=market)

    def stop(self, trigger: Amount) -> SignalBuilder:
        """Make this a stop order: it waits until the price reaches ``trigger`` (rises to it for a buy, falls
        to it for a sell), then goes out at market, or at its ``.limit()`` price (stop-limit)."""
        return self._set("stop", trigger_type="stop", trigger_price=self._price("stop trigger", trigger))

    def take_profit_at(self, trigger: Amount) -> SignalBuilder:
        """Make this a take-profit (if-touched) order: a sell waits for the price to rise to ``trigger``, a
        buy for it to fall to it; then at market, or at its ``.limit()`` price."""
        return self._set("take_profit_at", trigger_type="take_profit",
                         trigger_price=self._price("take-profit trigger", trigger))

    def trailing_stop(self, distance: Amount | None = None, percent: Amount | None = None) -> SignalBuilder:
        """Make this a trailing stop: it follows the best price seen by ``distance`` (price units) or
        ``percent``, and goes out at market when the price comes back that far."""
        if (distance is None) == (percent is None):
            raise SignalError("trailing_stop takes exactly one of distance= or percent=")
        if percent is not None and not 0 < self._price("trailing percent", percent) < 100:
            raise SignalError("trailing_stop percent must be between 0 and 100")
        return self._set("trailing_stop", trigger_type="trailing_stop",
                         trail_distance=self._price("trailing distance", distance) if distance is not None else None,
                         trail_percent=D(percent) if percent is not None else None)

    def ttl(self, seconds: float) -> SignalBuilder:
        """How long the signal may wait for an executor (default 5 s, up to 3600): never acted on later."""
        if not isinstance(seconds, int | float) or seconds <= 0 or seconds > 3600:
            raise SignalError(f"ttl must be between 0 and 3600 seconds, got {seconds!r}")
        self._ttl = float(seconds)
        return self

    def id(self, signal_id: str) -> SignalBuilder:
        """Set the id yourself (e.g. derived from a candle time) to make a re-emitted signal a duplicate."""
        if not signal_id or len(signal_id) > 64 or not signal_id.replace("-", "").replace("_", "").isalnum():
            raise SignalError("a signal id is 1-64 letters, digits, '-' or '_'")
        self._id = signal_id
        return self

    # ------------------------------------------------------------------ build
    def _resolve_markets(self) -> None:
        """Every order gets its market (or a SignalError that says how to give it), and no order goes to a
        market its exchange does not have."""
        known = venues.current()
        for i, a in enumerate(self._actions):
            if not isinstance(a, OrderAction | CloseAction | CancelAllAction):
                continue
            try:
                if isinstance(a, OrderAction) and a.market is None:
                    if known is None:
                        raise LookupError(f"which market is this {a.side} of {a.symbol} on {a.exchange} for? use "
                                          "ctx.spot.signal(...) / ctx.perp.signal(...) or market='spot'|'perp'")
                    a = self._actions[i] = replace(a, market=known.market_for(a.exchange, a.symbol))
                if known is not None and a.exchange is not None:
                    if a.market is not None:
                        known.check(a.exchange, a.market)
                    else:
                        known.venue(a.exchange)
            except LookupError as exc:
                raise SignalError(str(exc).strip('"')) from None

    def build(self) -> Signal:
        """Check everything (``SignalError`` says what is wrong) and return the immutable ``Signal``; ``ctx.emit`` builds for you."""
        if not self._actions:
            raise SignalError(f"signal {self._name!r} has no action (buy, sell, sell_short, cancel or close)")
        self._resolve_markets()
        for a in self._actions:
            if not isinstance(a, OrderAction):
                continue
            if a.leverage is not None and a.market != "perp":
                raise SignalError("leverage applies to perp orders only")
            if a.post_only and a.price is None:
                raise SignalError("post_only needs a limit price (a market order always takes)")
            if a.post_only and a.tif not in (None, "GTC"):
                raise SignalError("post_only orders rest on the book: time in force must be GTC")
            if a.price is None and a.tif == "GTC":
                raise SignalError("a market order cannot rest: its time in force is IOC (the default) or FOK")
            if a.trigger_type is not None and (a.stop_loss is not None or a.take_profit is not None):
                raise SignalError("stop_loss/take_profit protect an entry, not a stop or trailing order")
            if a.trigger_type == "trailing_stop" and a.price is not None:
                raise SignalError("a trailing stop goes out at market when it fires (no limit price)")
            if a.reduce_only and a.market == "spot" and a.side == "buy":
                raise SignalError("a spot buy cannot be reduce-only (spot positions are never short)")
            if a.short and a.market != "perp":
                raise SignalError("sell_short needs market='perp' (spot cannot go short)")
            ref = a.price
            if ref is not None and a.stop_loss is not None and \
                    (a.stop_loss >= ref if a.side == "buy" else a.stop_loss <= ref):
                raise SignalError(f"stop loss {a.stop_loss} is on the wrong side of the {a.side} price {ref}")
            if ref is not None and a.take_profit is not None and \
                    (a.take_profit <= ref if a.side == "buy" else a.take_profit >= ref):
                raise SignalError(f"take profit {a.take_profit} is on the wrong side of the {a.side} price {ref}")
        return Signal(self._name, self._id or new_signal_id(), tuple(self._actions), self._ttl, clock.now())


def signal(name: str, market: str | None = None) -> SignalBuilder:
    """Start a signal. Prefer ``ctx.spot.signal(name)`` / ``ctx.perp.signal(name)``, which say the market
    once; here, each order's market is ``market=``, or resolved from its exchange at build."""
    return SignalBuilder(name, market)


@dataclass
class Report:
    """What the executor said about a signal, or one of its actions (or why nothing came)."""

    status: str  # accepted | rejected | partially_filled | filled | cancelled | timeout
    reason: str = ""
    orders: list[dict[str, Any]] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def code(self) -> str:
        """The machine-readable reason of a rejection (the executor's code, or no_executor)."""
        return str(self.raw.get("code") or "")

    @property
    def action(self) -> int | None:
        """Which action of the signal this is about (None: the signal as a whole)."""
        value = self.raw.get("action")
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    @property
    def exit_leg(self) -> bool:
        """A report about a bracket's exit (its stop loss or take profit), not the entry itself."""
        return any(isinstance(o, dict) and o.get("parent") for o in self.orders)

    @property
    def ok(self) -> bool:
        """True unless the report is a rejection."""
        return self.status not in ("rejected", "timeout")


class Handle:
    """Returned by ``emit``. ``wait(timeout)`` returns once every action has an outcome (accepted and
    resting, filled, rejected with a reason, cancelled); ``actions`` is the latest report of each action,
    ``exits`` the reports of bracket exits, ``updates`` everything in order, ``result()`` one report for the
    whole signal: ``rejected`` if any action was, ``filled``/``cancelled`` if every action was, else
    ``accepted`` (or ``partially_filled`` while one still fills). If no executor took the signal before its
    TTL, it resolves as ``rejected`` (code ``no_executor``); if one took it but no report came, as ``timeout``.
    """

    GRACE = 2.0  # after the TTL, how long a sent signal may still be reported on

    def __init__(self, sig: Signal) -> None:
        self.signal = sig
        self.sent = False
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._report: Report | None = None
        self.updates: list[Report] = []
        self.actions: list[Report | None] = [None] * len(sig.actions)
        self.exits: list[Report] = []
        self._idle: Callable[[], None] | None = None  # keeps the strategy's heartbeat going while it waits
        self._idle_thread: threading.Thread | None = None
        self._on_wake: Callable[[], None] | None = None  # the strategy's loop wakes when a wait returns
        self._vwait: Callable[[float], bool] | None = None  # a backtest's wait in virtual time (True: stopping)

    def _resolve(self, report: Report) -> None:
        with self._lock:
            self.updates.append(report)
            if report.exit_leg:
                self.exits.append(report)
                return
            index = report.action
            if index is None or not 0 <= index < len(self.actions):  # about the signal as a whole
                self.actions = [report] * len(self.actions)
            else:
                held = self.actions[index]
                if held is None or held.status not in TERMINAL or report.status in TERMINAL:
                    self.actions[index] = report
            self._report = self._summary(report)
            if all(a is not None and a.status != "partially_filled" for a in self.actions):
                self._event.set()

    def _summary(self, latest: Report) -> Report:
        known = [a for a in self.actions if a is not None]
        if len(self.actions) == 1:
            return known[0] if known else latest
        statuses = {a.status for a in known}
        if "rejected" in statuses or "timeout" in statuses:
            bad = next(a for a in known if a.status in ("rejected", "timeout"))
            return bad
        if len(known) == len(self.actions) and len(statuses) == 1:
            status = statuses.pop()
        else:
            status = "partially_filled" if "partially_filled" in statuses else "accepted"
        return Report(status, latest.reason, [o for a in known for o in a.orders], latest.raw)

    def _deadline(self) -> float:
        return self.signal.expires + (self.GRACE if self.sent else 0.0)

    def _check_expiry(self) -> None:
        if not self._event.is_set() and self._report is None and clock.now() >= self._deadline():
            if self.sent:
                self._resolve(Report("timeout", "no execution report before the signal's TTL"))
            else:
                self._resolve(Report("rejected", "no executor reachable before the signal's TTL",
                                     raw={"code": "no_executor"}))

    def done(self) -> bool:
        """True once an outcome is known (see ``result()`` for which)."""
        self._check_expiry()
        return self._event.is_set()

    def wait(self, timeout: float | None = None) -> Report | None:
        """Block up to ``timeout`` seconds (or until the TTL) for the outcome; None if still unknown."""
        end = clock.now() + (timeout if timeout is not None else 1e9)
        while not self._event.is_set():
            left = min(end, self._deadline()) - clock.now()
            if left <= 0:
                self._check_expiry()
                break
            if self._vwait is not None:  # a backtest: virtual time moves while we wait
                if self._vwait(clock.now() + left) and not self._event.is_set():
                    break  # the strategy is being stopped
                continue
            self._event.wait(min(left, 0.1))
            if self._idle is not None and threading.current_thread() is self._idle_thread:
                self._idle()
        if self._on_wake is not None and threading.current_thread() is self._idle_thread:
            self._on_wake()
        return self._report if self._event.is_set() else None

    def result(self) -> Report | None:
        """The latest report so far (None if nothing has been heard yet)."""
        self._check_expiry()
        return self._report

    def client_ids(self) -> list[str]:
        """Client order ids of the orders this signal created (from the reports so far)."""
        seen: list[str] = []
        for r in self.updates:
            for o in r.orders:
                if isinstance(o, dict) and o.get("client_id") and o["client_id"] not in seen:
                    seen.append(o["client_id"])
        return seen
