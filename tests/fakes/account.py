"""The private side shared by the loopback fakes: one trading account with orders, trades and balances.

Each fake renders these in its own exchange's wire format; this module only keeps the book-keeping and
the test controls:
  POST /_ctl/fail?kind=K&n=N   the next N order placements fail as K: insufficient_funds, invalid_order,
                               rate_limited, auth, or lost_response (placed, but the answer comes after
                               the client's timeout: an unknown outcome)
  POST /_ctl/hold?s=S          the next placement is made, then its answer is held S seconds
  POST /_ctl/fill?cid=C&qty=Q  fill a resting order (client id as the exchange sees it) at its price
  POST /_ctl/foreign           place an order with a client id wispd did not make
  GET  /_ctl/orders            every order ever placed, for assertions
  POST /_ctl/deposit?asset=A&amount=X   money arrives (or leaves, negative) outside any trade
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Order:
    id: int
    cid: str
    symbol: str
    side: str  # buy | sell
    kind: str  # limit | market
    qty: float
    price: float
    tif: str = "GTC"
    reduce_only: bool = False
    filled: float = 0.0
    cost: float = 0.0
    status: str = "open"  # open | filled | canceled
    ts: int = field(default_factory=lambda: int(time.time() * 1000))
    trigger: str | None = None  # stop | take_profit: held by the exchange until the price crosses trigger_px
    trigger_px: float = 0.0
    triggered: bool = False
    venue_type: str = ""  # the exchange's own name for the order type, for its wire format

    @property
    def remaining(self) -> float:
        return round(self.qty - self.filled, 10)


@dataclass
class Trade:
    id: int
    order: Order
    price: float
    qty: float
    fee: float
    maker: bool
    ts: int = field(default_factory=lambda: int(time.time() * 1000))


Listener = Callable[[Order, Trade | None], Awaitable[None]]


class Account:
    FEE = 0.001

    def __init__(self, balances: dict[str, float]) -> None:
        self.orders: dict[int, Order] = {}
        self.trades: list[Trade] = []
        self.balances = dict(balances)
        self.next_id = 1000
        self.next_trade = 5000
        self.failures: list[str] = []
        self.hold_s = 0.0
        self.listeners: list[Listener] = []
        self.settle: Callable[[Order, Trade], None] | None = None  # each fake: how a fill moves its balances

    def install(self, app: web.Application, make_foreign: Callable[[], Order]) -> None:
        async def fail(request: web.Request) -> web.Response:
            self.failures += [request.query["kind"]] * int(request.query.get("n", "1"))
            return web.json_response({"failures": self.failures})

        async def hold(request: web.Request) -> web.Response:
            self.hold_s = float(request.query["s"])
            return web.json_response({"hold": self.hold_s})

        async def fill(request: web.Request) -> web.Response:
            order = self.find(cid=request.query["cid"])
            if order is None or order.status != "open":
                return web.json_response({"error": "no such open order"}, status=404)
            qty = float(request.query.get("qty") or order.remaining)
            trade = await self.execute(order, order.price, qty, maker=True)
            return web.json_response({"trade": trade.id})

        async def foreign(request: web.Request) -> web.Response:
            order = make_foreign()
            await self.notify(order, None)
            return web.json_response({"id": order.id})

        async def orders(request: web.Request) -> web.Response:
            return web.json_response([asdict(o) for o in self.orders.values()])

        async def deposit(request: web.Request) -> web.Response:
            asset = request.query["asset"]
            self.balances[asset] = self.balances.get(asset, 0.0) + float(request.query["amount"])
            return web.json_response({asset: self.balances[asset]})

        app.router.add_post("/_ctl/fail", fail)
        app.router.add_post("/_ctl/hold", hold)
        app.router.add_post("/_ctl/fill", fill)
        app.router.add_post("/_ctl/foreign", foreign)
        app.router.add_get("/_ctl/orders", orders)
        app.router.add_post("/_ctl/deposit", deposit)

    def find(self, oid: Any = None, cid: str | None = None) -> Order | None:
        if oid is not None:
            return self.orders.get(int(oid))
        return next((o for o in self.orders.values() if o.cid == cid), None)

    def take_failure(self) -> str | None:
        return self.failures.pop(0) if self.failures else None

    async def notify(self, order: Order, trade: Trade | None) -> None:
        for listener in list(self.listeners):
            await listener(order, trade)

    def place(self, cid: str, symbol: str, side: str, kind: str, qty: float, price: float, tif: str,
              reduce_only: bool = False, trigger: str | None = None, trigger_px: float = 0.0) -> Order:
        self.next_id += 1
        order = Order(self.next_id, cid, symbol, side, kind, qty, price, tif, reduce_only, trigger=trigger,
                      trigger_px=trigger_px)
        self.orders[order.id] = order
        return order

    @staticmethod
    def fires(order: Order, price: float) -> bool:
        """A stop buys when the price rises to its trigger and sells when it falls to it; a take-profit the
        other way round."""
        rising = (order.trigger == "stop") == (order.side == "buy")
        return price >= order.trigger_px if rising else price <= order.trigger_px

    async def on_price(self, symbol: str, price: float, best_bid: float, best_ask: float) -> None:
        """The trigger price moved: fire the held trigger orders it crosses, then treat them as new orders
        (a market order takes liquidity; a limit order takes what it crosses and rests the rest)."""
        for order in [o for o in self.orders.values() if o.symbol == symbol and o.status == "open" and o.trigger
                      and not o.triggered]:
            if self.fires(order, price):
                order.triggered = True
                await self.after_place(order, best_bid, best_ask)

    async def after_place(self, order: Order, best_bid: float, best_ask: float, post_only: bool = False) -> bool:
        """Announce the new order, then take liquidity if it crosses (market orders always do). A post-only
        order that would cross is refused (False), as the exchanges do."""
        if order.trigger and not order.triggered:
            await self.notify(order, None)  # held until its trigger price is crossed
            return True
        crosses = order.kind == "market" or (order.side == "buy" and order.price >= best_ask) or \
            (order.side == "sell" and order.price <= best_bid)
        if post_only and crosses:
            order.status = "rejected"
            return False
        await self.notify(order, None)
        if crosses:
            px = best_ask if order.side == "buy" else best_bid
            await self.execute(order, px if order.kind == "market" else order.price, order.remaining, maker=False)
        elif order.tif.upper() in ("IOC", "FOK") or order.kind == "market":
            await self.cancel(order)
        return True

    async def execute(self, order: Order, price: float, qty: float, maker: bool) -> Trade:
        self.next_trade += 1
        qty = min(qty, order.remaining)
        trade = Trade(self.next_trade, order, price, qty, round(price * qty * self.FEE, 6), maker)
        order.filled = round(order.filled + qty, 10)
        order.cost += price * qty
        if order.remaining <= 0:
            order.status = "filled"
        self.trades.append(trade)
        if self.settle is not None:
            self.settle(order, trade)
        await self.notify(order, trade)
        return trade

    async def cancel(self, order: Order) -> None:
        order.status = "canceled"
        await self.notify(order, None)

    async def held(self) -> None:
        """Sleep for a held answer (set by /_ctl/hold, consumed by one placement)."""
        hold, self.hold_s = self.hold_s, 0.0
        if hold:
            await asyncio.sleep(hold)
