"""A loopback Binance spot: REST exchangeInfo / depth / klines and WebSocket streams (SUBSCRIBE + ack,
depthUpdate diffs with U/u sequence numbers consistent with the REST snapshot's lastUpdateId, trades,
klines), in the formats ccxt.pro parses. Paths keep the real host first (host-in-path redirect).

The private API (``binance_private``) checks Binance's HMAC-SHA256 signature on every signed call."""

from __future__ import annotations

import json
import random
import time
from typing import Any

from aiohttp import web

from tests.fakes.base import FakeExchange, main

SYMBOLS = {"BTCUSDT": ("BTC", "USDT", 60000.0), "ETHUSDT": ("ETH", "USDT", 3000.0)}
API = "/api.binance.com/api/v3"
WS = "/stream.binance.com/ws"


class Book:
    def __init__(self, mid: float) -> None:
        self.bids = {round(mid - 0.5 - i, 2): 1.0 for i in range(30)}
        self.asks = {round(mid + 0.5 + i, 2): 1.0 for i in range(30)}
        self.last_id = 1000


# BTCUSDT has every spot order type Binance has today; ETHUSDT only the older set (no stop-market or
# take-profit-market), so both paths of "the venue holds it where it can" are exercised.
ORDER_TYPES = {"BTCUSDT": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT",
                           "TAKE_PROFIT_LIMIT"]}
ORDER_TYPES = {s: ORDER_TYPES.get(s, ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"])
               for s in SYMBOLS}


class FakeBinance(FakeExchange):
    def __init__(self) -> None:
        super().__init__()
        self.books = {s: Book(p) for s, (_, _, p) in SYMBOLS.items()}
        self.subs: dict[web.WebSocketResponse, set[str]] = {}
        self.updates: dict[str, Any] = {}
        self.trade_id = 0
        self.rng = random.Random(9)
        self.app.router.add_get(API + "/exchangeInfo", self.exchange_info)
        self.app.router.add_get(API + "/depth", self.depth)
        self.app.router.add_get(API + "/klines", self.klines)
        self.app.router.add_get(API + "/aggTrades", self.agg_trades)
        self.app.router.add_get(WS, self.ws)
        self.app.router.add_get(WS + "/{idx}", self.ws)
        from tests.fakes.binance_private import install

        install(self)

    async def exchange_info(self, request: web.Request) -> web.Response:
        self.record(request)
        symbols = [{"symbol": s, "status": "TRADING", "baseAsset": b, "baseAssetPrecision": 8, "quoteAsset": q,
                    "quotePrecision": 8, "quoteAssetPrecision": 8, "orderTypes": ORDER_TYPES[s],
                    "isSpotTradingAllowed": True, "isMarginTradingAllowed": False, "permissions": [],
                    "permissionSets": [["SPOT"]],
                    "filters": [{"filterType": "PRICE_FILTER", "minPrice": "0.01", "maxPrice": "1000000",
                                 "tickSize": "0.01"},
                                {"filterType": "LOT_SIZE", "minQty": "0.00001", "maxQty": "9000",
                                 "stepSize": "0.00001"},
                                {"filterType": "NOTIONAL", "minNotional": "5", "applyMinToMarket": True,
                                 "maxNotional": "9000000", "applyMaxToMarket": False, "avgPriceMins": 5}]}
                   for s, (b, q, _) in SYMBOLS.items()]
        return web.json_response({"timezone": "UTC", "serverTime": int(time.time() * 1000), "rateLimits": [],
                                  "exchangeFilters": [], "symbols": symbols})

    async def depth(self, request: web.Request) -> web.Response:
        self.record(request)
        book = self.books[request.query["symbol"]]
        return web.json_response({
            "lastUpdateId": book.last_id,
            "bids": [[f"{p:.2f}", f"{q:.5f}"] for p, q in sorted(book.bids.items(), reverse=True)],
            "asks": [[f"{p:.2f}", f"{q:.5f}"] for p, q in sorted(book.asks.items())]})

    async def klines(self, request: web.Request) -> web.Response:
        self.record(request)
        step = {"1m": 60_000, "5m": 300_000, "1h": 3_600_000}[request.query["interval"]]
        limit = int(request.query.get("limit", 500))
        now = int(time.time() * 1000)
        start = int(request.query.get("startTime", now - limit * step)) // step * step
        mid = SYMBOLS[request.query["symbol"]][2]
        rows = [[t, f"{mid:.2f}", f"{mid + 10:.2f}", f"{mid - 10:.2f}", f"{mid + 1:.2f}", "12.5", t + step - 1,
                 "750000", 100, "6", "360000", "0"] for t in range(start, now, step)][:limit]
        return web.json_response(rows)

    async def agg_trades(self, request: web.Request) -> web.Response:
        """Public trade history: one trade every 10 s at the symbol's price +/- a few ticks (deterministic)."""
        self.record(request)
        now = int(time.time() * 1000)
        limit = min(int(request.query.get("limit", 500)), 1000)
        start = int(request.query.get("startTime", now - 3_600_000))
        end = min(int(request.query.get("endTime", now)), now)
        mid = SYMBOLS[request.query["symbol"]][2]
        first = (start + 9_999) // 10_000 * 10_000
        rows = [{"a": t // 10_000, "p": f"{mid + (t // 10_000) % 7 - 3:.2f}", "q": "0.01250", "f": t // 10_000,
                 "l": t // 10_000, "T": t, "m": bool((t // 10_000) % 2), "M": True}
                for t in range(first, end + 1, 10_000)][:limit]
        return web.json_response(rows)

    async def ws(self, request: web.Request) -> web.WebSocketResponse:
        async def on_message(ws: web.WebSocketResponse, data: str) -> None:
            msg = json.loads(data)
            if msg.get("method") == "SUBSCRIBE":
                self.subs.setdefault(ws, set()).update(msg.get("params") or [])
                await ws.send_str(json.dumps({"result": None, "id": msg.get("id")}))
            elif msg.get("method") == "UNSUBSCRIBE":
                self.subs.get(ws, set()).difference_update(msg.get("params") or [])
                await ws.send_str(json.dumps({"result": None, "id": msg.get("id")}))

        return await self.websocket(request, on_message)

    def step_book(self, symbol: str) -> dict[str, Any]:
        book = self.books[symbol]
        bid_best, ask_best = max(book.bids), min(book.asks)
        changes_b, changes_a = [], []
        price = round(bid_best - self.rng.randint(0, 5), 2)
        qty = round(self.rng.uniform(0.1, 2.0), 5)
        book.bids[price] = qty
        changes_b.append([f"{price:.2f}", f"{qty:.5f}"])
        price = round(ask_best + self.rng.randint(0, 5), 2)
        qty = round(self.rng.uniform(0.1, 2.0), 5)
        book.asks[price] = qty
        changes_a.append([f"{price:.2f}", f"{qty:.5f}"])
        book.last_id += 1
        return {"e": "depthUpdate", "E": int(time.time() * 1000), "s": symbol, "U": book.last_id,
                "u": book.last_id, "b": changes_b, "a": changes_a}

    def tick(self) -> None:
        self.updates = {s: self.step_book(s) for s in SYMBOLS}  # the book moves whether or not anyone watches

    def move(self, by: float) -> None:
        for book in self.books.values():
            book.bids = {round(p + by, 2): q for p, q in book.bids.items()}
            book.asks = {round(p + by, 2): q for p, q in book.asks.items()}
            book.last_id += 1000  # a jump: subscribers resync from a fresh snapshot

    async def moved(self) -> None:
        account = getattr(self, "account", None)
        for symbol, book in self.books.items():
            if account is not None and book.bids and book.asks:
                bid, ask = max(book.bids), min(book.asks)
                await account.on_price(symbol, (bid + ask) / 2, bid, ask)

    def frame(self, stream: str) -> Any:
        name, _, kind = stream.partition("@")
        symbol, now = name.upper(), int(time.time() * 1000)
        if symbol not in SYMBOLS:
            return None
        if kind.startswith("depth"):
            return self.updates[symbol]
        if kind == "trade":
            self.trade_id += 1
            return {"e": "trade", "E": now, "s": symbol, "t": self.trade_id, "p": f"{max(self.books[symbol].bids):.2f}",
                    "q": "0.01000", "T": now, "m": True, "M": True}
        if kind.startswith("kline_"):
            t, mid = now // 60_000 * 60_000, max(self.books[symbol].bids)
            return {"e": "kline", "E": now, "s": symbol, "k": {
                "t": t, "T": t + 59_999, "s": symbol, "i": kind[6:], "f": 1, "L": 2, "o": f"{mid:.2f}",
                "c": f"{mid:.2f}", "h": f"{mid + 1:.2f}", "l": f"{mid - 1:.2f}", "v": "1.0", "n": 2, "x": False,
                "q": "60000", "V": "0.5", "Q": "30000", "B": "0"}}
        return None


if __name__ == "__main__":
    main(FakeBinance)
