"""Paper matching against the market-data plane's books and trades (any exchange, the sim included).

- Market orders walk the book level by level; what the visible book cannot fill is cancelled.
- Limit orders that cross take liquidity the same way up to their price (taker fee); the rest rests
  (GTC), is cancelled (IOC), or the whole order is cancelled unless it fills at once (FOK). A post-only
  order that would cross is rejected.
- Resting orders fill at their limit price (maker fee) when the market trades through them (a trade
  strictly beyond the price) or the book crosses them, partially when the trade or level is smaller.
- Queue position: an order that comes to rest joins the back of its price level (what the book shows at
  that price is ahead of it). Trades *at* its price eat the queue ahead first; only what is left of them
  fills it. A level that shrinks below what is ahead moves us up to its size (cancellations ahead of us);
  a level that disappears puts us first.
- Liquidity consumption: what our own fills took from a level is not there for the next order, until the
  data shows that level with another size (the venue's own update).
- Orders become live ``latency_ms`` after submission (a number, or a function of the order: a backtest
  draws it from the live acknowledgement latencies in a journal).
- A market buy never spends more than its reservation (``max_cost``): what the book would cost beyond it
  is not taken, so a paper balance cannot go negative.
- A resting order can be resized in place (a bracket's take-profit follows its entry's fills).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from wispd.execution.orders import Done, Event, Fill, WorkingOrder
from wispd.execution.working import WorkingOrders
from wispd.levels import Levels as WireLevels

ZERO = Decimal(0)
ACTIVATION_SLACK_MS = 0.001  # an order is live at its instant to the microsecond (float ms carry ~0.25 us error)
RECENT_BOOKS = 16  # per market: enough to find the book of any instant within a busy loop's lag
Levels = Sequence[tuple[Decimal, Decimal]]  # one side, best first (``wispd.levels.Levels`` from the wire)


FeeRates = Callable[[str, str], tuple[Decimal, Decimal]]  # (exchange, symbol) -> (maker, taker)


@dataclass
class Book:
    bids: Levels = field(default_factory=list)
    asks: Levels = field(default_factory=list)


def parse_levels(raw: Any) -> Levels:
    """Book levels from the wire: bounded decimals (``protocol.to_decimal``), positive, anything else skipped;
    converted as far as matching reads them (a market order walks two levels of twenty)."""
    return WireLevels(raw if isinstance(raw, list) else [])


def size_at(levels: Levels, side: str, price: Decimal) -> Decimal | None:
    """The size of the level at ``price`` on a side kept best first (bids falling, asks rising), reading no
    further than that price."""
    for p, s in levels:
        if p == price:
            return s
        if (p < price) if side == "bids" else (p > price):
            return None
    return None


class PaperEngine:
    def __init__(self, fees: FeeRates, latency_ms: float | Callable[[WorkingOrder], float]) -> None:
        self.fees = fees
        self.latency_ms = latency_ms
        self.books: dict[tuple[str, str, str], Book] = {}
        self.orders = WorkingOrders()  # every order not yet final
        self.waiting: dict[str, WorkingOrder] = {}  # submitted, their latency not yet over (in submit order)
        self.frozen = False  # the journal cannot be written: books are followed, nothing is matched
        self.recent: dict[tuple[str, str, str], deque[tuple[float, Book]]] = {}  # (received ms, book), newest last
        self.ahead: dict[str, Decimal] = {}  # resting order -> size queued before it at its price
        self.consumed: dict[tuple[tuple[str, str, str], str, Decimal], tuple[Decimal, Decimal]] = {}
        # (market, side of the book, price) -> (what our fills took, the level's size when they did)

    def mid(self, key: tuple[str, str, str]) -> Decimal | None:
        book = self.books.get(key)
        if book is None or not book.bids or not book.asks:
            return None
        return (book.bids[0][0] + book.asks[0][0]) / 2

    # ------------------------------------------------------------------ order entry
    def submit(self, order: WorkingOrder, now_ms: float, expires_ms: float | None = None) -> list[Event]:
        latency = self.latency_ms(order) if callable(self.latency_ms) else self.latency_ms
        order.active_at = now_ms + latency
        self.orders[order.client_id] = order
        self.waiting[order.client_id] = order
        if latency > 0:
            return []
        events = self._activate(order)
        if order.status != "pending":  # (a fired stop without a book stays pending: the next tick retries)
            self.waiting.pop(order.client_id, None)
        return events

    def resize(self, client_id: str, qty: Decimal) -> None:
        """Change a resting order's total quantity (never below what it has filled)."""
        order = self.orders.get(client_id)
        if order is not None:
            order.qty = max(qty, order.filled)

    def cancel(self, client_id: str, reason: str = "cancelled by strategy") -> list[Event]:
        order = self.orders.pop(client_id, None)
        if order is None:
            return []
        self.waiting.pop(client_id, None)
        order.status = "cancelled"
        return [Done(order, "cancelled", reason)]

    def amend(self, old_client_id: str, new: WorkingOrder, now_ms: float,
              expires_ms: float | None = None) -> list[Event]:
        """Replace a resting order: the old one is cancelled, the new one (its own client id) is submitted
        and goes through the same latency and matching; queue priority is lost, as on most exchanges."""
        return self.cancel(old_client_id, f"replaced by {new.client_id}") + self.submit(new, now_ms)

    def next_activation(self) -> float | None:
        """When the next submitted order goes live (ms), so the executor can wake for it exactly."""
        times = [o.active_at for o in self.waiting.values() if o.status == "pending"]
        return min(times) if times else None

    def tick(self, now_ms: float) -> list[Event]:
        """Activate orders whose latency has passed."""
        if self.frozen:
            return []
        events: list[Event] = []
        for cid, order in list(self.waiting.items()):
            if order.status != "pending" or self.orders.get(cid) is not order:
                self.waiting.pop(cid, None)  # cancelled or replaced while it waited
            elif order.active_at <= now_ms + ACTIVATION_SLACK_MS:
                events += self._activate(order)
                if order.status != "pending":
                    self.waiting.pop(cid, None)
        return events

    def _book_at(self, key: tuple[str, str, str], t_ms: float) -> Book | None:
        """The book the venue had at ``t_ms``: the newest one received by then (an order whose latency ended
        before the executor got round to it meets the book of that instant, not a later one)."""
        for at, book in reversed(self.recent.get(key, ())):
            if at <= t_ms:
                return book
        return self.books.get(key)

    def _activate(self, order: WorkingOrder) -> list[Event]:
        book = self._book_at(order.book_key, order.active_at)
        current = self.books.get(order.book_key)
        events = self._match_on(order, book)
        if current is not None and book is not current and order.status in ("open", "partially_filled"):
            events += self._cross(order, order.book_key, current.bids, current.asks)  # the books since
        return events

    def _match_on(self, order: WorkingOrder, book: Book | None) -> list[Event]:
        if book is None or (not book.bids and not book.asks):
            if order.extra.get("fired"):
                return []  # a stop that fired waits for a book (after a restart, the first one is on its way)
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
            why = "market order: its reserved funds are spent" if order.extra.get("budget_hit") else \
                "market order: book depth exhausted"
            return events + self._final(order, "cancelled", why)
        if order.tif in ("IOC", "FOK"):
            return events + self._final(order, "cancelled", f"{order.tif}: remainder cancelled")
        order.status = "partially_filled" if order.filled else "open"
        same = book.bids if order.side == "buy" else book.asks
        self.ahead[order.client_id] = next((size for price, size in same if price == order.price), ZERO)
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
        spent = order.cost * (1 + max(ZERO, taker)) if order.max_cost is not None else ZERO
        for price, size in levels:
            if order.remaining <= 0 or (order.price is not None and not self._better_or_equal(order, price)):
                break
            size = self._left(order.book_key, "asks" if order.side == "buy" else "bids", price, size)
            if size <= 0:
                continue
            qty = min(order.remaining, size)
            if order.max_cost is not None and order.side == "buy" and order.market == "spot":
                unit = price * (1 + max(ZERO, taker))
                affordable = (order.max_cost - spent) / unit
                if affordable < qty:
                    qty = affordable if order.step is None else (affordable // order.step) * order.step
                    order.extra["budget_hit"] = True
                if qty <= 0:
                    break
                spent += qty * unit
            events.append(self._fill(order, price, qty, taker, "taker"))
            self._consume(order.book_key, "asks" if order.side == "buy" else "bids", price, size, qty)
            if order.extra.get("budget_hit"):
                break
        return events

    def _fill(self, order: WorkingOrder, price: Decimal, qty: Decimal, rate: Decimal, liquidity: str) -> Fill:
        order.filled += qty
        order.cost += qty * price
        order.status = "filled" if order.remaining <= 0 else "partially_filled"
        return Fill(order, price, qty, qty * price * rate, liquidity)

    def _left(self, key: tuple[str, str, str], side: str, price: Decimal, size: Decimal) -> Decimal:
        """What a level still offers after our own earlier fills on it."""
        taken = self.consumed.get((key, side, price))
        return size - taken[0] if taken is not None and taken[1] == size else size

    def _consume(self, key: tuple[str, str, str], side: str, price: Decimal, level: Decimal, qty: Decimal) -> None:
        taken = self.consumed.get((key, side, price))
        before = taken[0] if taken is not None and taken[1] == level else ZERO
        self.consumed[(key, side, price)] = (before + qty, level)

    def _refresh(self, key: tuple[str, str, str], bids: Levels, asks: Levels) -> None:
        """A new book: consumption is forgotten where the level changed; queues shrink with their level."""
        for k, (_, level) in list(self.consumed.items()):
            if k[0] == key and size_at(bids if k[1] == "bids" else asks, k[1], k[2]) != level:
                del self.consumed[k]
        for cid, ahead in list(self.ahead.items()):
            order = self.orders.get(cid)
            if order is None:
                del self.ahead[cid]
                continue
            if order.book_key != key or not ahead:
                continue
            assert order.price is not None  # only resting limits queue
            side = "bids" if order.side == "buy" else "asks"
            level = size_at(bids if side == "bids" else asks, side, order.price) or ZERO
            if level < ahead:
                self.ahead[cid] = level

    def _final(self, order: WorkingOrder, status: str, reason: str = "") -> list[Event]:
        order.status = status
        self.ahead.pop(order.client_id, None)
        self.orders.pop(order.client_id, None)
        self.waiting.pop(order.client_id, None)
        return [Done(order, status, reason)]

    def set_book(self, key: tuple[str, str, str], bids: Levels, asks: Levels) -> None:
        """Store a book without matching (a first snapshot, taken while a signal is being checked)."""
        book = self.books[key] = Book(bids, asks)
        self.recent[key] = deque([(float("-inf"), book)], maxlen=RECENT_BOOKS)  # the book until a newer one

    def on_book(self, key: tuple[str, str, str], bids: Levels, asks: Levels, now_ms: float) -> list[Event]:
        book = self.books[key] = Book(bids, asks)
        recent = self.recent.get(key)
        if recent is None:
            recent = self.recent[key] = deque(maxlen=RECENT_BOOKS)
        recent.append((now_ms, book))
        self._refresh(key, bids, asks)
        if self.frozen:
            return []
        events = self.tick(now_ms)
        for order in self.orders.on_book(key):
            if order.status in ("open", "partially_filled") and order.price is not None:
                events += self._cross(order, key, bids, asks)
        return events

    def _cross(self, order: WorkingOrder, key: tuple[str, str, str], bids: Levels, asks: Levels) -> list[Event]:
        """A resting order against a book: filled at its price by every level strictly through it."""
        events: list[Event] = []
        opposite = asks if order.side == "buy" else bids
        for price, size in opposite:
            if order.remaining <= 0 or price == order.price or not self._better_or_equal(order, price):
                break
            side = "asks" if order.side == "buy" else "bids"
            left = self._left(key, side, price, size)
            if left <= 0:
                continue
            maker, _ = self.fees(order.exchange, order.symbol)
            qty = min(order.remaining, left)
            events.append(self._fill(order, order.price, qty, maker, "maker"))  # type: ignore[arg-type]
            self._consume(key, side, price, size, qty)
        if order.remaining <= 0:
            events += self._final(order, "filled")
        return events

    def on_trades(self, key: tuple[str, str, str], trades: list[tuple[Decimal, Decimal]], now_ms: float) -> list[Event]:
        if self.frozen:
            return []
        events = self.tick(now_ms)
        for order in self.orders.on_book(key):
            if order.status not in ("open", "partially_filled") or order.price is None:
                continue
            maker, _ = self.fees(order.exchange, order.symbol)
            for price, qty in trades:
                through = price < order.price if order.side == "buy" else price > order.price
                if price == order.price and order.remaining > 0:  # at our level: the queue ahead goes first
                    ahead = self.ahead.get(order.client_id, ZERO)
                    self.ahead[order.client_id] = max(ZERO, ahead - qty)
                    qty -= min(ahead, qty)
                    through = qty > 0
                if through and order.remaining > 0:
                    events.append(self._fill(order, order.price, min(order.remaining, qty), maker, "maker"))
            if order.remaining <= 0:
                events += self._final(order, "filled")
        return events
