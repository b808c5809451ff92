"""The executor-side face of a live account: the same surface as the paper engine.

``submit``/``cancel``/``amend`` hand the work to the exchange thread and return at once; what the
exchange says comes back as messages, which ``tick`` turns into ``Fill``/``Done`` events here, on the
executor thread, where all order state lives:

- the first sign of life of an order (its acknowledgement, an update, or even a trade that overtook the
  REST answer) is a ``Done(open)``: the executor journals the exchange id and reports ``accepted``;
- fills come from trades, once per exchange trade id (the journal's unique index is the backstop);
- an order the exchange reports filled is final once its trades are in (a trade fetch is requested if
  the trade stream is behind); cancelled, expired and rejected are final at once.
"""

from __future__ import annotations

import os
import queue
import time
from collections import OrderedDict
from decimal import Decimal
from typing import Any

from wispd.execution.journal import Journal
from wispd.execution.live.connection import ExchangeThread, wake_pipe
from wispd.execution.live.messages import AccountMsg, FailMsg, Msg, OrderMsg, StreamMsg, TradeMsg
from wispd.execution.orders import Done, Event, Fill, WorkingOrder, order_from_row
from wispd.execution.paper import Book, Levels
from wispd.ingest.ccxt_source import ccxt_symbol
from wispd.logs import EventLogger

ORPHAN_TTL_S = 60.0  # trades of orders we cannot place yet (their ack is behind): kept this long
FINISHED_KEEP = 10_000


class LiveEngine:
    def __init__(self, driver: str, venue: dict[str, Any], live: dict[str, Any], creds: dict[str, str],
                 journal: Journal, log: EventLogger) -> None:
        self.driver, self.journal, self.log = driver, journal, log
        self.books: dict[tuple[str, str, str], Book] = {}
        self.orders: dict[str, WorkingOrder] = {}  # not final
        self.finished: OrderedDict[str, WorkingOrder] = OrderedDict()
        self.by_exchange_id: dict[str, str] = {}
        self.seen_trades = journal.trade_ids(time.time() * 1000 - 7 * 86_400_000)
        self.orphans: list[tuple[float, TradeMsg]] = []  # trades not matched to an order yet (once a second)
        self.orphans_tried = 0.0
        self.expires: dict[str, float] = {}
        self.inbox: queue.SimpleQueue[Msg] = queue.SimpleQueue()
        self.wake_r, self.wake_w = wake_pipe()
        self.conn = ExchangeThread(driver, venue, live, creds, self._post, log)
        self.stream_up = False
        self.account: AccountMsg | None = None
        self.account_fresh = False
        self.errors: dict[str, int] = {}
        self.cancel_reasons: dict[str, str] = {}  # orders we asked to cancel or replace: why, for the report

    def _post(self, msg: Msg) -> None:  # exchange thread
        self.inbox.put(msg)
        try:
            os.write(self.wake_w, b"!")
        except BlockingIOError:
            pass  # the pipe is full of wake-ups already

    # ------------------------------------------------------------------ market data (for collars and refs)
    def mid(self, key: tuple[str, str, str]) -> Decimal | None:
        book = self.books.get(key)
        if book is None or not book.bids or not book.asks:
            return None
        return (book.bids[0][0] + book.asks[0][0]) / 2

    def on_book(self, key: tuple[str, str, str], bids: Levels, asks: Levels, now_ms: float) -> list[Event]:
        self.books[key] = Book(bids, asks)
        return []

    def set_book(self, key: tuple[str, str, str], bids: Levels, asks: Levels) -> None:
        self.books[key] = Book(bids, asks)

    def on_trades(self, key: tuple[str, str, str], trades: list[tuple[Decimal, Decimal]],
                  now_ms: float) -> list[Event]:
        return []

    # ------------------------------------------------------------------ order entry
    def ccxt_symbol(self, market: str, symbol: str) -> str:
        return ccxt_symbol(market, symbol, self.conn.ex.markets if self.conn.ex else None)

    def order_types(self, key: tuple[str, str, str]) -> set[str] | None:
        """The order types the market lists (Binance's ``orderTypes``); None when the venue lists none."""
        markets = self.conn.ex.markets if self.conn.ex else None
        market = (markets or {}).get(self.ccxt_symbol(key[1], key[2])) or {}
        types = (market.get("info") or {}).get("orderTypes")
        return {str(t) for t in types} if isinstance(types, list) else None

    def symbol(self, order: WorkingOrder) -> str:
        return self.ccxt_symbol(order.market, order.symbol)

    def submit(self, order: WorkingOrder, now_ms: float, expires_ms: float | None = None) -> list[Event]:
        order.ref_price = order.ref_price or self.mid(order.book_key)
        self.orders[order.client_id] = order
        self.conn.spawn(self.conn.create(order, self.symbol(order), expires_ms or now_ms + 10_000))
        return []

    def cancel(self, client_id: str, reason: str = "cancelled by strategy") -> list[Event]:
        order = self.orders.get(client_id)
        if order is not None:
            self.cancel_reasons[client_id] = reason
            self.conn.spawn(self.conn.cancel(order, self.symbol(order)))
        return []

    def amend(self, old_client_id: str, new: WorkingOrder, now_ms: float,
              expires_ms: float | None = None) -> list[Event]:
        old = self.orders.get(old_client_id)
        if old is None:
            return [Done(new, "rejected", "the order to amend is no longer open", "unknown_order")]
        self.orders[new.client_id] = new
        self.cancel_reasons[old_client_id] = f"replaced by {new.client_id}"
        self.conn.spawn(self.conn.amend(old, new, self.symbol(new), expires_ms or now_ms + 10_000))
        return []

    def adopt(self, order: WorkingOrder) -> None:
        """An order found on the exchange during reconciliation becomes a working order again."""
        self.orders[order.client_id] = order
        if order.exchange_id:
            self.by_exchange_id[order.exchange_id] = order.client_id
        self.conn.tracked[order.client_id] = self.symbol(order)

    # ------------------------------------------------------------------ what the exchange said
    def tick(self, now_ms: float) -> list[Event]:
        try:
            while os.read(self.wake_r, 4096):
                pass
        except BlockingIOError:
            pass
        events: list[Event] = []
        while True:
            try:
                msg = self.inbox.get_nowait()
            except queue.Empty:
                break
            events += self._handle(msg)
        if self.orphans and time.monotonic() - self.orphans_tried >= 1.0:
            self.orphans_tried = time.monotonic()
            waiting, self.orphans = self.orphans, []
            for since, trade in waiting:
                if time.monotonic() - since < ORPHAN_TTL_S:
                    events += self._trade(trade, since)
        return events

    def _handle(self, msg: Msg) -> list[Event]:
        if isinstance(msg, OrderMsg):
            return self._order(msg)
        if isinstance(msg, TradeMsg):
            return self._trade(msg, time.monotonic())
        if isinstance(msg, FailMsg):
            self.errors[msg.code] = self.errors.get(msg.code, 0) + 1
            order = self.orders.get(msg.client_id)
            return self._final(order, "rejected", msg.reason, msg.code) if order else []
        if isinstance(msg, AccountMsg):
            self.account, self.account_fresh = msg, True
        elif isinstance(msg, StreamMsg):
            self.stream_up = msg.up
        return []

    def _ack(self, order: WorkingOrder, exchange_id: str | None) -> list[Event]:
        if exchange_id and not order.exchange_id:
            order.exchange_id = exchange_id
        if order.exchange_id and order.exchange_id not in self.by_exchange_id:
            self.by_exchange_id[order.exchange_id] = order.client_id
            self.orphans_tried = 0.0  # a new mapping: trades waiting for it are matched on this tick
        if order.status != "pending":
            return []
        order.status = "open"
        return [Done(order, "open")]

    def _order(self, msg: OrderMsg) -> list[Event]:
        cid = msg.client_id or (self.by_exchange_id.get(msg.exchange_id) if msg.exchange_id else None)
        order = self.orders.get(cid) if cid else None
        if order is None:
            return []  # a finished order's late echo, or an order wispd did not place
        events = self._ack(order, msg.exchange_id)
        if msg.status == "closed":
            if order.remaining <= 0:
                events += self._final(order, "filled")
            else:
                order.exchange_done = "filled"
                self.conn.spawn(self.conn.fetch_trades(msg.symbol or self.symbol(order)))
        elif msg.status in ("canceled", "expired"):
            reason = self.cancel_reasons.get(order.client_id) or msg.reason or f"{msg.status} by the exchange"
            events += self._final(order, "cancelled", reason)
        elif msg.status == "rejected":
            events += self._final(order, "rejected", msg.reason or "rejected by the exchange", "exchange_rejected")
        return events

    def _trade(self, msg: TradeMsg, since: float) -> list[Event]:
        if msg.trade_id in self.seen_trades or self.journal.has_trade(msg.trade_id):
            return []  # (a stream's snapshot can replay fills older than the preloaded week)
        cid = msg.client_id or (self.by_exchange_id.get(msg.exchange_id) if msg.exchange_id else None) or \
            (self.journal.client_id_of(msg.exchange_id) if msg.exchange_id else None)
        order = self.orders.get(cid) or self.finished.get(cid) if cid else None
        if order is None and cid:
            row = self.journal.order(cid)
            order = order_from_row(row) if row else None
        if order is None:
            self.orphans.append((since, msg))  # its order's acknowledgement has not been read yet
            return []
        self.seen_trades.add(msg.trade_id)
        events = self._ack(order, msg.exchange_id) if cid in self.orders else []
        order.filled += msg.qty
        order.cost += msg.qty * msg.price
        events.append(Fill(order, msg.price, msg.qty, msg.fee, msg.liquidity, msg.trade_id))
        if cid in self.orders and order.remaining <= 0:
            events += self._final(order, "filled")
        return events

    def _final(self, order: WorkingOrder, status: str, reason: str = "", code: str = "") -> list[Event]:
        self.orders.pop(order.client_id, None)
        self.cancel_reasons.pop(order.client_id, None)
        order.status = status
        self.finished[order.client_id] = order
        while len(self.finished) > FINISHED_KEEP:
            self.finished.popitem(last=False)
        return [Done(order, status, reason, code)]

    def take_account(self) -> AccountMsg | None:
        """The latest balance read, once (the core compares it with the sub-ledgers)."""
        if not self.account_fresh:
            return None
        self.account_fresh = False
        return self.account

    def close(self) -> None:
        self.conn.stop()
        os.close(self.wake_r)
        os.close(self.wake_w)
