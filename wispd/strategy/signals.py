"""Signals: the fluent builder a strategy author writes, the immutable Signal it builds, and the Handle
that ``emit`` returns.

    sig = (signal("rsi-entry")
           .buy(pair("BTC", "USDT"), "sim", "0.01").limit("59000").post_only()
           .stop_loss("57000").take_profit("63000")
           .build())

Modifiers apply to the action just added. ``build`` validates everything (clear ``SignalError``s at the
author's desk, not at the exchange) and returns an immutable ``Signal`` with a unique id and a
time-to-live: an executor rejects a signal that arrives after its TTL instead of executing it late.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from wispd.protocol import dec_str
from wispd.strategy.types import D, Order, Pair, Position

DEFAULT_TTL = 5.0
TIFS = ("GTC", "IOC", "FOK")
TERMINAL = ("rejected", "filled", "cancelled", "timeout")


class SignalError(ValueError):
    """A signal that cannot be valid; raised by the builder."""


@dataclass(frozen=True)
class OrderAction:
    side: str  # buy | sell
    exchange: str
    market: str  # spot | perp
    symbol: str
    qty: Decimal
    price: Decimal | None = None  # None = market order
    tif: str = "GTC"
    post_only: bool = False
    reduce_only: bool = False
    short: bool = False  # sell_short: opening or adding to a short, never a plain sale
    leverage: Decimal | None = None
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None

    def wire(self) -> dict[str, Any]:
        return {"type": "order", "side": self.side, "exchange": self.exchange, "market": self.market,
                "symbol": self.symbol, "qty": dec_str(self.qty),
                "price": dec_str(self.price) if self.price is not None else None,
                "order_type": "market" if self.price is None else "limit", "tif": self.tif,
                "post_only": self.post_only, "reduce_only": self.reduce_only, "short": self.short,
                "leverage": dec_str(self.leverage) if self.leverage is not None else None,
                "stop_loss": dec_str(self.stop_loss) if self.stop_loss is not None else None,
                "take_profit": dec_str(self.take_profit) if self.take_profit is not None else None}


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
class CloseAction:
    exchange: str
    market: str
    symbol: str

    def wire(self) -> dict[str, Any]:
        return {"type": "close", "exchange": self.exchange, "market": self.market, "symbol": self.symbol}


Action = OrderAction | CancelAction | AmendAction | CloseAction


@dataclass(frozen=True)
class Signal:
    name: str
    id: str
    actions: tuple[Action, ...]
    ttl: float
    created: float  # wall clock, seconds

    @property
    def expires(self) -> float:
        return self.created + self.ttl

    def wire(self, strategy: str) -> dict[str, Any]:
        return {"v": 1, "id": self.id, "name": self.name, "strategy": strategy, "ts": self.created * 1000,
                "ttl_ms": int(self.ttl * 1000), "actions": [a.wire() for a in self.actions]}


class SignalBuilder:
    def __init__(self, name: str) -> None:
        if not name or not isinstance(name, str):
            raise SignalError("a signal needs a name, e.g. signal('rsi-entry')")
        self._name = name
        self._actions: list[Action] = []
        self._ttl = DEFAULT_TTL
        self._id: str | None = None

    # ------------------------------------------------------------------ actions
    def _order(self, side: str, p: Pair | str, exchange: str, qty: Any, market: str, short: bool) -> SignalBuilder:
        if market not in ("spot", "perp"):
            raise SignalError(f"market must be 'spot' or 'perp', got {market!r}")
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

    def buy(self, p: Pair | str, exchange: str, qty: Any, market: str = "spot") -> SignalBuilder:
        return self._order("buy", p, exchange, qty, market, False)

    def sell(self, p: Pair | str, exchange: str, qty: Any, market: str = "spot") -> SignalBuilder:
        return self._order("sell", p, exchange, qty, market, False)

    def sell_short(self, p: Pair | str, exchange: str, qty: Any, market: str = "perp") -> SignalBuilder:
        return self._order("sell", p, exchange, qty, market, True)

    def cancel(self, order: Order | str) -> SignalBuilder:
        client_id = order.client_id if isinstance(order, Order) else order
        if not client_id:
            raise SignalError("cancel needs an order or its client id")
        self._actions.append(CancelAction(client_id))
        return self

    def amend(self, order: Order | str, price: Any = None, qty: Any = None) -> SignalBuilder:
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

    def limit(self, price: Any) -> SignalBuilder:
        return self._set("limit", price=self._price("limit price", price))

    def market(self) -> SignalBuilder:
        return self._set("market", price=None)

    def post_only(self, value: bool = True) -> SignalBuilder:
        return self._set("post_only", post_only=value)

    def reduce_only(self, value: bool = True) -> SignalBuilder:
        return self._set("reduce_only", reduce_only=value)

    def tif(self, value: str) -> SignalBuilder:
        if value.upper() not in TIFS:
            raise SignalError(f"time in force must be one of {', '.join(TIFS)}, got {value!r}")
        return self._set("tif", tif=value.upper())

    def leverage(self, value: Any) -> SignalBuilder:
        lev = self._price("leverage", value)
        if self._last("leverage").market != "perp":
            raise SignalError("leverage applies to perp orders only")
        return self._set("leverage", leverage=lev)

    def stop_loss(self, price: Any) -> SignalBuilder:
        return self._set("stop_loss", stop_loss=self._price("stop loss", price))

    def take_profit(self, price: Any) -> SignalBuilder:
        return self._set("take_profit", take_profit=self._price("take profit", price))

    def ttl(self, seconds: float) -> SignalBuilder:
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
    def build(self) -> Signal:
        if not self._actions:
            raise SignalError(f"signal {self._name!r} has no action (buy, sell, sell_short, cancel or close)")
        for a in self._actions:
            if not isinstance(a, OrderAction):
                continue
            if a.post_only and a.price is None:
                raise SignalError("post_only needs a limit price (a market order always takes)")
            if a.post_only and a.tif != "GTC":
                raise SignalError("post_only orders rest on the book: time in force must be GTC")
            if a.short and a.market != "perp":
                raise SignalError("sell_short needs market='perp' (spot cannot go short)")
            ref = a.price
            if ref is not None and a.stop_loss is not None and \
                    (a.stop_loss >= ref if a.side == "buy" else a.stop_loss <= ref):
                raise SignalError(f"stop loss {a.stop_loss} is on the wrong side of the {a.side} price {ref}")
            if ref is not None and a.take_profit is not None and \
                    (a.take_profit <= ref if a.side == "buy" else a.take_profit >= ref):
                raise SignalError(f"take profit {a.take_profit} is on the wrong side of the {a.side} price {ref}")
        return Signal(self._name, self._id or uuid.uuid4().hex, tuple(self._actions), self._ttl, time.time())


def signal(name: str) -> SignalBuilder:
    return SignalBuilder(name)


@dataclass
class Report:
    """What the executor said about a signal (or why none came)."""

    status: str  # accepted | rejected | partially_filled | filled | cancelled | timeout
    reason: str = ""
    orders: list[dict[str, Any]] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def code(self) -> str:
        """The machine-readable reason of a rejection (the executor's code, or no_executor)."""
        return str(self.raw.get("code") or "")

    @property
    def ok(self) -> bool:
        return self.status not in ("rejected", "timeout")


class Handle:
    """Returned by ``emit``. ``wait(timeout)`` returns the first outcome (accepted and resting, filled,
    rejected with a reason, cancelled); ``result()`` is the latest report so far, ``updates`` all of them.
    If no executor took the signal before its TTL, it resolves as ``rejected`` (code ``no_executor``); if
    one took it but no report came, as ``timeout``.
    """

    GRACE = 2.0  # after the TTL, how long a sent signal may still be reported on

    def __init__(self, sig: Signal) -> None:
        self.signal = sig
        self.sent = False
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._report: Report | None = None
        self.updates: list[Report] = []
        self._idle: Callable[[], None] | None = None  # keeps the strategy's heartbeat going while it waits
        self._idle_thread: threading.Thread | None = None

    def _resolve(self, report: Report) -> None:
        with self._lock:
            self.updates.append(report)
            if self._report is None or self._report.status not in TERMINAL:
                self._report = report
            if report.status != "partially_filled":
                self._event.set()

    def _deadline(self) -> float:
        return self.signal.expires + (self.GRACE if self.sent else 0.0)

    def _check_expiry(self) -> None:
        if not self._event.is_set() and self._report is None and time.time() >= self._deadline():
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
        end = time.time() + (timeout if timeout is not None else 1e9)
        while not self._event.is_set():
            left = min(end, self._deadline()) - time.time()
            if left <= 0:
                self._check_expiry()
                break
            self._event.wait(min(left, 0.1))
            if self._idle is not None and threading.current_thread() is self._idle_thread:
                self._idle()
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
