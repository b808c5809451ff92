"""A loopback Bybit v5 (spot and linear perps): REST instruments-info, kline, tickers, time; public
WebSockets per category with {"op": "subscribe"} acks, orderbook snapshots, publicTrade, kline and
pongs, in the formats ccxt.pro parses. Paths keep the real host first (host-in-path redirect)."""

from __future__ import annotations

import json
import random
import time
from typing import Any

from aiohttp import web

from tests.fakes.base import FakeExchange, main

COINS = {"BTC": 60000.0, "ETH": 3000.0}
API = "/api.bybit.com/v5"
WS = "/stream.bybit.com/v5/public"
INTERVALS = {"1": 60_000, "5": 300_000, "60": 3_600_000}


def ok(result: Any) -> dict[str, Any]:
    return {"retCode": 0, "retMsg": "OK", "result": result, "retExtInfo": {}, "time": int(time.time() * 1000)}


class FakeBybit(FakeExchange):
    def __init__(self) -> None:
        super().__init__()
        self.mid = dict(COINS)
        self.subs: dict[web.WebSocketResponse, set[str]] = {}
        self.seq = 1000
        self.trade = 0
        self.rng = random.Random(2)
        self.app.router.add_get(API + "/market/instruments-info", self.instruments)
        self.app.router.add_get(API + "/market/kline", self.kline)
        self.app.router.add_get(API + "/market/tickers", self.tickers)
        self.app.router.add_get(API + "/market/time", self.server_time)
        self.app.router.add_get(WS + "/{category}", self.ws)

    async def server_time(self, request: web.Request) -> web.Response:
        self.record(request)
        now = time.time()
        return web.json_response(ok({"timeSecond": str(int(now)), "timeNano": str(int(now * 1e9))}))

    async def instruments(self, request: web.Request) -> web.Response:
        self.record(request)
        category = request.query.get("category", "spot")
        rows = []
        for coin in COINS:
            if category == "spot":
                rows.append({"symbol": f"{coin}USDT", "baseCoin": coin, "quoteCoin": "USDT", "innovation": "0",
                             "status": "Trading", "marginTrading": "none",
                             "lotSizeFilter": {"basePrecision": "0.00001", "quotePrecision": "0.00000001",
                                               "minOrderQty": "0.00001", "maxOrderQty": "100", "minOrderAmt": "1",
                                               "maxOrderAmt": "2000000"},
                             "priceFilter": {"tickSize": "0.01"}})
            elif category == "linear":
                rows.append({"symbol": f"{coin}USDT", "contractType": "LinearPerpetual", "status": "Trading",
                             "baseCoin": coin, "quoteCoin": "USDT", "settleCoin": "USDT", "launchTime": "1585526400000",
                             "deliveryTime": "0", "deliveryFeeRate": "", "priceScale": "2",
                             "leverageFilter": {"minLeverage": "1", "maxLeverage": "100.00", "leverageStep": "0.01"},
                             "priceFilter": {"minPrice": "0.10", "maxPrice": "1999999.80", "tickSize": "0.10"},
                             "lotSizeFilter": {"maxOrderQty": "100.000", "minOrderQty": "0.001", "qtyStep": "0.001",
                                               "postOnlyMaxOrderQty": "100.000", "maxMktOrderQty": "100.000",
                                               "minNotionalValue": "5"},
                             "unifiedMarginTrade": True, "fundingInterval": 480, "copyTrading": "both",
                             "upperFundingRate": "0.00375", "lowerFundingRate": "-0.00375"})
        return web.json_response(ok({"category": category, "list": rows, "nextPageCursor": ""}))

    async def kline(self, request: web.Request) -> web.Response:
        self.record(request)
        step = INTERVALS[request.query["interval"]]
        limit = int(request.query.get("limit", 200))
        now = int(time.time() * 1000)
        mid = self.mid[request.query["symbol"][:-4]]
        rows = [[str(t), f"{mid:.2f}", f"{mid + 10:.2f}", f"{mid - 10:.2f}", f"{mid + 1:.2f}", "3.5", "210000"]
                for t in range(now // step * step, now - limit * step, -step)]  # newest first, as Bybit does
        return web.json_response(ok({"category": request.query.get("category"), "symbol": request.query["symbol"],
                                     "list": rows}))

    async def tickers(self, request: web.Request) -> web.Response:
        self.record(request)
        symbol = request.query.get("symbol", "BTCUSDT")
        mid = self.mid[symbol[:-4]]
        row = {"symbol": symbol, "lastPrice": f"{mid:.2f}", "markPrice": f"{mid:.2f}", "indexPrice": f"{mid:.2f}",
               "fundingRate": "0.0001", "nextFundingTime": str((int(time.time()) // 28800 + 1) * 28_800_000),
               "bid1Price": f"{mid - 0.5:.2f}", "ask1Price": f"{mid + 0.5:.2f}", "volume24h": "100",
               "turnover24h": "6000000", "openInterest": "10"}
        return web.json_response(ok({"category": request.query.get("category"), "list": [row]}))

    async def ws(self, request: web.Request) -> web.WebSocketResponse:
        async def on_message(ws: web.WebSocketResponse, data: str) -> None:
            msg = json.loads(data)
            op = msg.get("op")
            if op == "ping":
                await ws.send_str(json.dumps({"success": True, "ret_msg": "pong", "conn_id": "fake", "op": "ping"}))
            elif op in ("subscribe", "unsubscribe"):
                topics = self.subs.setdefault(ws, set())
                (topics.update if op == "subscribe" else topics.difference_update)(msg.get("args") or [])
                await ws.send_str(json.dumps({"success": True, "ret_msg": "", "conn_id": "fake", "req_id":
                                              msg.get("req_id", ""), "op": op}))

        return await self.websocket(request, on_message)

    def tick(self) -> None:
        for coin in self.mid:
            self.mid[coin] += self.rng.choice((-0.5, 0.0, 0.5))

    def frame(self, topic: str) -> Any:
        kind, *rest = topic.split(".")
        symbol, now = rest[-1], int(time.time() * 1000)
        mid = self.mid.get(symbol[:-4])
        if mid is None:
            return None
        if kind == "orderbook":
            self.seq += 1
            depth = int(rest[0])
            return {"topic": topic, "type": "snapshot", "ts": now, "cts": now, "data": {
                "s": symbol, "u": self.seq, "seq": self.seq,
                "b": [[f"{mid - 0.5 - i:.2f}", "0.5"] for i in range(depth)],
                "a": [[f"{mid + 0.5 + i:.2f}", "0.5"] for i in range(depth)]}}
        if kind == "publicTrade":
            self.trade += 1
            return {"topic": topic, "type": "snapshot", "ts": now, "data": [
                {"T": now, "s": symbol, "S": "Buy", "v": "0.01", "p": f"{mid:.2f}", "L": "PlusTick",
                 "i": str(self.trade), "BT": False}]}
        if kind == "kline":
            step = INTERVALS[rest[0]]
            t = now // step * step
            return {"topic": topic, "type": "snapshot", "ts": now, "data": [
                {"start": t, "end": t + step - 1, "interval": rest[0], "open": f"{mid:.2f}", "close": f"{mid:.2f}",
                 "high": f"{mid + 1:.2f}", "low": f"{mid - 1:.2f}", "volume": "1.0", "turnover": "60000",
                 "confirm": False, "timestamp": now}]}
        return None


if __name__ == "__main__":
    main(FakeBybit)
