"""The exchange side of a live account: one ccxt.pro instance on its own asyncio thread.

One instance per account means one rate-limit budget per account (ccxt's leaky bucket): orders, cancels,
amends, lookups, polls and reconciliation all queue on it. The private streams (``watch_orders``,
``watch_my_trades``) reconnect with backoff and jitter; every reconnect is followed by a poll, and a
poll also runs on a timer (faster while a stream is down), so nothing depends on the streams alone.

Nothing here decides what an update means for an order; it posts ``messages`` to the executor thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import random
import threading
import time
from collections.abc import Callable, Coroutine
from decimal import Decimal
from typing import Any

from wispd.execution.live import drivers
from wispd.execution.live.errors import classify, describe
from wispd.execution.live.messages import (
    AccountMsg,
    FailMsg,
    Msg,
    OrderMsg,
    StreamMsg,
    num,
    order_msg,
    trade_msg,
)
from wispd.execution.orders import WorkingOrder
from wispd.ingest.ccxt_source import redirect
from wispd.logs import EventLogger

FINAL = ("closed", "canceled", "expired", "rejected")
UP_AFTER_S = 2.0
LOOKUP_WAITS = (0.3, 1.0, 2.0)  # a lookup that finds nothing is repeated this way before we conclude


class ExchangeThread:
    def __init__(self, driver: str, venue: dict[str, Any], live: dict[str, Any], creds: dict[str, str],
                 post: Callable[[Msg], None], log: EventLogger) -> None:
        self.driver, self.venue, self.cfg, self.creds = driver, venue, live, creds
        self.post, self.log = post, log
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="exchange", daemon=True)
        self.ex: Any = None
        self.tracked: dict[str, str] = {}  # client id -> ccxt symbol, for orders not known to be final
        self.trades_since: dict[str, float] = {}
        self.stream_up = {"orders": False, "trades": False}
        self.tasks: list[asyncio.Future[Any]] = []
        self.closing = False
        self.requests = 0
        self.idle: Callable[[], None] | None = None
        self.leverage: dict[str, int] = {}  # ccxt symbol -> the leverage last set on the venue

    # ------------------------------------------------------------------ thread plumbing
    def start(self) -> None:
        self.thread.start()

    def call(self, coro: Coroutine[Any, Any, Any], timeout: float | None = None) -> Any:
        """Run on the exchange thread and wait for the result (reconciliation). The wait is cut in slices:
        between them ``idle`` runs (the executor's heartbeat, and its stop check, which may raise)."""
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while True:
                try:
                    return future.result(0.1)
                except concurrent.futures.TimeoutError:
                    if deadline is not None and time.monotonic() >= deadline:
                        raise TimeoutError(f"the exchange thread did not finish within {timeout} s") from None
                    if self.idle is not None:
                        self.idle()
        except BaseException:
            future.cancel()
            raise

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        self.tasks.append(asyncio.run_coroutine_threadsafe(coro, self.loop))
        self.tasks = [t for t in self.tasks if not t.done()]

    def stop(self) -> None:
        self.closing = True
        if not self.thread.is_alive():  # never started (stopped before connecting)
            self.loop.close()
            return
        for task in self.tasks:
            task.cancel()
        if self.ex is not None:
            try:
                self.call(self.ex.close(), timeout=5)
            except Exception:  # noqa: BLE001 - closing must not mask why we stop
                pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)

    # ------------------------------------------------------------------ connection
    async def connect(self) -> None:
        cls = drivers.exchange_class(self.driver)
        opts = drivers.options(self.driver, self.venue.get("markets") or ["spot"])
        ex = cls({**self.creds, "enableRateLimit": True, "timeout": int(self.cfg["request_timeout_s"] * 1000),
                  "options": opts,
                  "streaming": {"keepAlive": int(float(self.venue.get("keepalive_s", 15)) * 1000),
                                "maxPingPongMisses": 2}})
        if self.cfg.get("rate_limit_ms"):
            ex.rateLimit = float(self.cfg["rate_limit_ms"])
        if self.venue.get("api_base"):
            redirect(ex, self.venue["api_base"])
        self.ex = ex
        await ex.load_markets()

    def start_streams(self) -> None:
        self.spawn(self._watch("orders"))
        self.spawn(self._watch("trades"))
        self.spawn(self._poll_loop())

    # ------------------------------------------------------------------ orders
    def _price(self, order: WorkingOrder) -> float | None:
        price = order.price
        if price is None and self.driver == "hyperliquid":  # HL bounds a market order's slippage from a price:
            native = order.trigger is not None and order.extra.get("native")  # the trigger's, once it fires
            price = order.trigger.price if native and order.trigger else order.ref_price
        return float(price) if price is not None else None

    async def create(self, order: WorkingOrder, symbol: str, expires_ms: float) -> None:
        kind = "market" if order.price is None else "limit"
        if self.driver == "hyperliquid" and order.market == "perp" and not order.reduce_only:
            if not await self._leverage(order, symbol):
                return
        price, params = self._price(order), drivers.order_params(self.driver, order)
        await self._place(order.client_id, symbol, expires_ms,
                          lambda: self.ex.create_order(symbol, kind, order.side, float(order.qty), price, params))

    async def _leverage(self, order: WorkingOrder, symbol: str) -> bool:
        """Hyperliquid sets leverage per asset, not per order: set it (cross margin) before an order that asks
        for a different one. A refusal fails the order: it is never placed at some other leverage."""
        want = int(order.leverage)
        if self.leverage.get(symbol) == want:
            return True
        try:
            await self.ex.set_leverage(want, symbol, {"marginMode": "cross"})
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001
            outcome = classify(exc)
            self.post(FailMsg(order.client_id, outcome.code if outcome.action == "reject" else "leverage_failed",
                              f"could not set leverage {want}: {describe(exc)}; the order was not placed"))
            return False
        self.leverage[symbol] = want
        return True

    async def amend(self, old: WorkingOrder, new: WorkingOrder, symbol: str, expires_ms: float) -> None:
        old_id = old.exchange_id or drivers.venue_client_id(self.driver, old.client_id)
        kind = "market" if new.price is None else "limit"  # (a held trigger's market form, resized)
        price, params = self._price(new), drivers.order_params(self.driver, new)
        done = await self._place(new.client_id, symbol, expires_ms,
                                 lambda: self.ex.edit_order(old_id, symbol, kind, new.side, float(new.qty), price,
                                                            params))
        if done:
            self.post(OrderMsg(old.client_id, old.exchange_id, "canceled", symbol, None,
                               f"replaced by {new.client_id}"))
            self.tracked.pop(old.client_id, None)
        else:
            await self.refresh(old.client_id, symbol)

    async def _place(self, client_id: str, symbol: str, expires_ms: float,
                     send: Callable[[], Coroutine[Any, Any, dict[str, Any]]]) -> bool:
        """Send, retrying only refusals; an unknown outcome is looked up. True when the order exists."""
        delay = 0.25
        while True:
            self.requests += 1
            try:
                result = await send()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - every exchange error is classified below
                outcome = classify(exc)
                self.log.warning("order_error", client_id=client_id, code=outcome.code, action=outcome.action,
                                 error=describe(exc))
                if outcome.action == "retry" and time.time() * 1000 + delay * 1000 < expires_ms:
                    await asyncio.sleep(delay * random.uniform(0.8, 1.2))
                    delay = min(delay * 2, 5.0)
                    continue
                if outcome.action in ("retry", "reject"):
                    self.post(FailMsg(client_id, outcome.code, describe(exc)))
                    return False
                self.tracked[client_id] = symbol
                found = await self.lookup(client_id, symbol)
                if found is None:
                    self.tracked.pop(client_id, None)
                    self.post(FailMsg(client_id, "not_placed", f"{describe(exc)}; the exchange does not know the "
                                      "order after repeated lookups, so it is not resent"))
                    return False
                self._post_order(found)
                return True
            self.tracked[client_id] = symbol
            msg = order_msg(self.driver, result)
            msg.client_id = msg.client_id or client_id
            msg.symbol = msg.symbol or symbol
            self._post(msg)
            return True

    async def cancel(self, order: WorkingOrder, symbol: str) -> None:
        params = {} if order.exchange_id else drivers.lookup_params(self.driver, order.client_id)
        delay = 0.25
        for _ in range(8):  # a cancel is idempotent: retrying it can never create an order
            try:
                await self.ex.cancel_order(order.exchange_id, symbol, params)
                self._post(OrderMsg(order.client_id, order.exchange_id, "canceled", symbol, None,
                                    "cancelled on request"))
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001
                outcome = classify(exc)
                self.log.warning("cancel_error", client_id=order.client_id, code=outcome.code, error=describe(exc))
                if outcome.action == "reject":
                    break  # typically: already filled or cancelled; the lookup says which
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        await self.refresh(order.client_id, symbol)

    async def lookup(self, client_id: str, symbol: str) -> dict[str, Any] | None:
        """The exchange's view of our order by client id; None only after every lookup said 'not found'.
        Network errors do not count as 'not found': the lookup is repeated until it gets an answer."""
        import ccxt

        misses, delay = 0, 0.5
        while not self.closing:
            try:
                return await self.ex.fetch_order(None, symbol, drivers.lookup_params(self.driver, client_id))
            except asyncio.CancelledError:
                raise
            except ccxt.OrderNotFound:
                if misses >= len(LOOKUP_WAITS):
                    return None
                await asyncio.sleep(LOOKUP_WAITS[misses])
                misses += 1
            except Exception as exc:  # noqa: BLE001
                self.log.warning("lookup_error", client_id=client_id, error=describe(exc))
                await asyncio.sleep(delay * random.uniform(0.8, 1.2))
                delay = min(delay * 2, 10.0)
        return None

    async def refresh(self, client_id: str, symbol: str) -> None:
        found = await self.lookup(client_id, symbol)
        if found is not None:
            self._post_order(found)

    # ------------------------------------------------------------------ updates
    def _post_order(self, o: dict[str, Any]) -> None:
        self._post(order_msg(self.driver, o))

    def _post(self, msg: OrderMsg) -> None:
        if msg.client_id and msg.status in FINAL:
            self.tracked.pop(msg.client_id, None)
        self.post(msg)

    def _post_trades(self, trades: list[dict[str, Any]]) -> None:
        for t in trades:
            msg = trade_msg(self.driver, t, self.ex.markets or {})
            if msg is not None:
                self.post(msg)

    def _mark_up(self, what: str) -> None:
        if not self.stream_up[what]:
            self.stream_up[what] = True
            self.log.info("order_stream_up", stream=what)
            self.post(StreamMsg(all(self.stream_up.values())))
            self.spawn(self.poll())  # whatever happened while the stream was down

    async def _watch(self, what: str) -> None:
        """A private stream is quiet while nothing trades, so "up" means: the subscription has held for
        UP_AFTER_S without an error (a refused, closed or unauthorised stream fails well within that)."""
        delay = 0.5
        while not self.closing:
            call = self.ex.watch_orders() if what == "orders" else self.ex.watch_my_trades()
            task = asyncio.ensure_future(call)
            try:
                done, _ = await asyncio.wait({task}, timeout=UP_AFTER_S)
                if not done:
                    self._mark_up(what)
                items = await task
            except asyncio.CancelledError:
                task.cancel()
                raise
            except Exception as exc:  # noqa: BLE001 - a stream error means: reconnect and poll
                if self.stream_up[what] or delay == 0.5:
                    self.log.warning("order_stream_down", stream=what, error=describe(exc))
                if self.stream_up[what]:
                    self.stream_up[what] = False
                    self.post(StreamMsg(False, f"{what}: {describe(exc)}"))
                await asyncio.sleep(delay * random.uniform(0.8, 1.2))
                delay = min(delay * 2, 30.0)
                continue
            self._mark_up(what)
            delay = 0.5
            if what == "orders":
                for o in items:
                    self._post_order(o)
            else:
                self._post_trades(items)

    async def _poll_loop(self) -> None:
        last_account = 0.0
        while not self.closing:
            healthy = all(self.stream_up.values())
            await asyncio.sleep(self.cfg["poll_interval_s"] if healthy else min(2.0, self.cfg["poll_interval_s"]))
            await self.poll()
            if time.monotonic() - last_account >= self.cfg["account_poll_s"]:
                last_account = time.monotonic()
                await self.account()

    async def poll(self) -> None:
        """The polling fallback: open orders, tracked orders that left the book, and recent trades."""
        for symbol in sorted(set(self.tracked.values())):
            try:
                open_ids = set()
                for o in await self.ex.fetch_open_orders(symbol):
                    msg = order_msg(self.driver, o)
                    open_ids.add(msg.client_id)
                    self._post(msg)
                for cid, sym in list(self.tracked.items()):
                    if sym == symbol and cid not in open_ids:
                        await self.refresh(cid, symbol)
                await self.fetch_trades(symbol)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001
                self.log.warning("poll_error", symbol=symbol, error=describe(exc))

    async def fetch_trades(self, symbol: str, since_ms: float | None = None) -> None:
        now = time.time() * 1000
        since = since_ms if since_ms is not None else self.trades_since.get(symbol, now - 3_600_000)
        trades = await self.ex.fetch_my_trades(symbol, int(since))
        self._post_trades(trades)
        self.trades_since[symbol] = now - 60_000  # overlap: trade ids make replays harmless

    async def account(self, strict: bool = False) -> AccountMsg | None:
        """Balances (and perp positions); ``strict`` raises instead of logging (the first, authenticated call
        of a reconciliation: a refused key must end the start, not hide behind an empty balance)."""
        try:
            bal = await self.ex.fetch_balance()
            balances = {str(k).upper(): d for k, v in (bal.get("total") or {}).items()
                        if (d := num(v)) is not None}
            positions = None
            if self.ex.has.get("fetchPositions") and "perp" in (self.venue.get("markets") or []):
                positions = {}
                for p in await self.ex.fetch_positions():
                    qty = num(p.get("contracts")) or Decimal(0)
                    positions[p["symbol"]] = -qty if p.get("side") == "short" else qty
                cash = drivers.perp_cash(self.driver, bal)
                if cash is not None:
                    balances.update(cash)
            msg = AccountMsg(balances, positions)
            self.post(msg)
            return msg
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001
            if strict:
                raise
            self.log.warning("account_poll_error", error=describe(exc))
            return None

    async def open_orders(self) -> list[dict[str, Any]]:
        return list(await self.ex.fetch_open_orders())


def wake_pipe() -> tuple[int, int]:
    r, w = os.pipe()
    os.set_blocking(r, False)
    os.set_blocking(w, False)
    return r, w
