"""Paper matching against the market-data plane's books and trades (any exchange, the sim included).

- Market orders walk the book level by level; what the visible book cannot fill is cancelled.
- Limit orders that cross take liquidity the same way up to their price (taker fee); the rest rests
  (GTC), is cancelled (IOC), or the whole order is cancelled unless it fills at once (FOK). A post-only
  order that would cross is rejected.
- Resting orders fill at their limit price (maker fee) when the market trades through them (a trade
  strictly beyond the price) or the book crosses them, partially when the trade or level is smaller.
- Orders become live ``latency_ms`` after submission.
Simplification, documented: our fills do not remove liquidity from the ingested book, so two orders
taking the same level in the same instant both see it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from wispd.execution.orders import Done, Event, Fill, WorkingOrder

ZERO = Decimal(0)
Levels = list[tuple[Decimal, Decimal]]


FeeRates = Callable[[str, str], tuple[Decimal, Decimal]]  # (exchange, symbol) -> (maker, taker)


@dataclass
class Book:
    bids: Levels = field(default_factory=list)
    asks: Levels = field(default_factory=list)


def parse_levels(raw: Any) -> Levels:
    out = []
    for lv in raw or []:
        try:
            out.append((Decimal(lv[0]), Decimal(lv[1])))
        except (ArithmeticError, TypeError, ValueError, IndexError):
            continue
    return out


class PaperEngine:
    def __init__(self, fees: FeeRates, latency_ms: float) -> None:
        self.fees = fees
        self.latency_ms = latency_ms
        self.books: dict[tuple[str, str, str], Book] = {}
        self.orders: dict[str, WorkingOrder] = {}  # every order not yet final
        self.frozen = False  # the journal cannot be written: books are followed, nothing is matched

    def mid(self, key: tuple[str, str, str]) -> Decimal | None:
        book = self.books.get(key)
        if book is None or not book.bids or not book.asks:
            return None
        return (book.bids[0][0] + book.asks[0][0]) / 2

    # ------------------------------------------------------------------ order entry
    def submit(self, order: WorkingOrder, now_ms: float, expires_ms: float | None = None) -> list[Event]:
        order.active_at = now_ms + self.latency_ms
        self.orders[order.client_id] = order
        return self._activate(order) if self.latency_ms <= 0 else []

    def cancel(self, client_id: str, reason: str = "cancelled by strategy") -> list[Event]:
        order = self.orders.pop(client_id, None)
        if order is None:
            return []
        order.status = "cancelled"
        return [Done(order, "cancelled", reason)]

    def amend(self, old_client_id: str, new: WorkingOrder, now_ms: float,
              expires_ms: float | None = None) -> list[Event]:
        """Replace a resting order: the old one is cancelled, the new one (its own client id) is submitted
        and goes through the same latency and matching; queue priority is lost, as on most exchanges."""
        return self.cancel(old_client_id, f"replaced by {new.client_id}") + self.submit(new, now_ms)

    def tick(self, now_ms: float) -> list[Event]:
        """Activate orders whose latency has passed."""
        if self.frozen:
            return []
        events: list[Event] = []
        for order in list(self.orders.values()):
            if order.status == "pending" and order.active_at <= now_ms:
                events += self._activate(order)
        return events

    def _activate(self, order: WorkingOrder) -> list[Event]:
        book = self.books.get(order.book_key)
        if book is None or (not book.bids and not book.asks):
            return self._final(order, "rejected", "no order book for this symbol yet")
        opposite = book.asks if order.side == "buy" else book.bids
        crosses = bool(opposite) and (order.price is None or self._better_or_equal(order, opposite[0][0]))
        if order.post_only and crosses:
            return self._final(order, "rejected", "post-only order would take liquidity")
        if order.tif == "FOK" and self._fillable(order, opposite) < order.qty:
            return self._final(order, "cancelled", "fill-or-kill: not enough liquidity at the price")
        events: list[Event] = self._take(order, opposite) if crosses else []
        if order.remaining <= 0:
            return events + self._final(order, "filled")
        if order.price is None:
            return events + self._final(order, "cancelled", "market order: book depth exhausted")
        if order.tif in ("IOC", "FOK"):
            return events + self._final(order, "cancelled", f"{order.tif}: remainder cancelled")
        order.status = "partially_filled" if order.filled else "open"
        return events + [Done(order, "open")]

    # ------------------------------------------------------------------ matching
    @staticmethod
    def _better_or_equal(order: WorkingOrder, level_price: Decimal) -> bool:
        assert order.price is not None
        return level_price <= order.price if order.side == "buy" else level_price >= order.price

    def _fillable(self, order: WorkingOrder, levels: Levels) -> Decimal:
        return sum((size for price, size in levels if order.price is None or self._better_or_equal(order, price)),
                   ZERO)

    def _take(self, order: WorkingOrder, levels: Levels) -> list[Event]:
        _, taker = self.fees(order.exchange, order.symbol)
        events: list[Event] = []
        for price, size in levels:
            if order.remaining <= 0 or (order.price is not None and not self._better_or_equal(order, price)):
                break
            qty = min(order.remaining, size)
            events.append(self._fill(order, price, qty, taker, "taker"))
        return events

    def _fill(self, order: WorkingOrder, price: Decimal, qty: Decimal, rate: Decimal, liquidity: str) -> Fill:
        order.filled += qty
        order.cost += qty * price
        order.status = "filled" if order.remaining <= 0 else "partially_filled"
        return Fill(order, price, qty, qty * price * rate, liquidity)

    def _final(self, order: WorkingOrder, status: str, reason: str = "") -> list[Event]:
        order.status = status
        self.orders.pop(order.client_id, None)
        return [Done(order, status, reason)]

    def on_book(self, key: tuple[str, str, str], bids: Levels, asks: Levels, now_ms: float) -> list[Event]:
        self.books[key] = Book(bids, asks)
        if self.frozen:
            return []
        events = self.tick(now_ms)
        for order in list(self.orders.values()):
            if order.book_key != key or order.status not in ("open", "partially_filled") or order.price is None:
                continue
            opposite = asks if order.side == "buy" else bids
            for price, size in opposite:
                if order.remaining <= 0 or price == order.price or not self._better_or_equal(order, price):
                    break
                maker, _ = self.fees(order.exchange, order.symbol)
                events.append(self._fill(order, order.price, min(order.remaining, size), maker, "maker"))
            if order.remaining <= 0:
                events += self._final(order, "filled")
        return events

    def on_trades(self, key: tuple[str, str, str], trades: list[tuple[Decimal, Decimal]], now_ms: float) -> list[Event]:
        if self.frozen:
            return []
        events = self.tick(now_ms)
        for order in list(self.orders.values()):
            if order.book_key != key or order.status not in ("open", "partially_filled") or order.price is None:
                continue
            maker, _ = self.fees(order.exchange, order.symbol)
            for price, qty in trades:
                through = price < order.price if order.side == "buy" else price > order.price
                if through and order.remaining > 0:
                    events.append(self._fill(order, order.price, min(order.remaining, qty), maker, "maker"))
            if order.remaining <= 0:
                events += self._final(order, "filled")
        return events
