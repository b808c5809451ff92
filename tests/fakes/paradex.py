"""A loopback Paradex (perps): REST /v1/markets, /v1/markets/summary, /v1/markets/klines, and a JSON-RPC
WebSocket (subscribe + result, order_book snapshots, trades) in the formats ccxt.pro parses (JSON
frames; wispd turns Paradex's binary SBE encoding off). Paths keep the real host first."""

from __future__ import annotations

import json
import random
import time
from typing import Any

from aiohttp import web

from tests.fakes.base import FakeExchange, main

MARKETS = {"BTC-USD-PERP": 60000.0, "ETH-USD-PERP": 3000.0}
API = "/api.prod.paradex.trade/v1"
WS = "/ws.api.prod.paradex.trade/v1"


class FakeParadex(FakeExchange):
    def __init__(self) -> None:
        super().__init__()
        self.mid = dict(MARKETS)
        self.subs: dict[web.WebSocketResponse, set[str]] = {}
        self.seq = 1
        self.trade = 0
        self.rng = random.Random(3)
        self.app.router.add_get(API + "/markets", self.markets)
        self.app.router.add_get(API + "/markets/summary", self.summary)
        self.app.router.add_get(API + "/markets/klines", self.klines)
        self.app.router.add_get(WS, self.ws)

    async def markets(self, request: web.Request) -> web.Response:
        self.record(request)
        rows = [{"symbol": m, "base_currency": m.split("-")[0], "quote_currency": "USD",
                 "settlement_currency": "USDC", "order_size_increment": "0.001", "price_tick_size": "0.1",
                 "min_notional": "10", "open_at": 1717065600000, "expiry_at": 0, "asset_kind": "PERP",
                 "position_limit": "1000", "price_bands_width": "0.05", "max_open_orders": 100,
                 "max_funding_rate": "0.05", "max_order_size": "100", "max_funding_rate_change": "0.0005",
                 "max_tob_spread": "0.2", "delta1_cross_margin_params": {"imf_base": "0.11", "imf_shift": "10",
                                                                         "imf_factor": "0", "mmf_factor": "0.51"}}
                for m in MARKETS]
        return web.json_response({"results": rows})

    async def summary(self, request: web.Request) -> web.Response:
        self.record(request)
        wanted = request.query.get("market")
        rows = [{"symbol": m, "oracle_price": f"{p:.1f}", "mark_price": f"{p:.1f}", "last_traded_price": f"{p:.1f}",
                 "bid": f"{p - 0.5:.1f}", "ask": f"{p + 0.5:.1f}", "volume_24h": "1000", "total_volume": "100000",
                 "created_at": int(time.time() * 1000), "underlying_price": f"{p:.1f}", "open_interest": "10",
                 "funding_rate": "0.0002", "price_change_rate_24h": "0.01"}
                for m, p in self.mid.items() if wanted in (None, "ALL", m)]
        return web.json_response({"results": rows})

    async def klines(self, request: web.Request) -> web.Response:
        self.record(request)
        step = int(request.query["resolution"]) * 60_000
        start, end = int(request.query["start_at"]), int(request.query["end_at"])
        mid = self.mid[request.query["symbol"]]
        rows = [[t, mid, mid + 10, mid - 10, mid + 1, 2.5] for t in range(start // step * step, end, step)]
        return web.json_response({"results": rows})

    async def ws(self, request: web.Request) -> web.WebSocketResponse:
        async def on_message(ws: web.WebSocketResponse, data: str) -> None:
            msg = json.loads(data)
            if msg.get("method") == "subscribe":
                channel = msg["params"]["channel"]
                self.subs.setdefault(ws, set()).add(channel)
                await ws.send_str(json.dumps({"jsonrpc": "2.0", "result": {"channel": channel}, "id": msg.get("id")}))
            elif msg.get("method") == "unsubscribe":
                self.subs.get(ws, set()).discard(msg["params"]["channel"])

        return await self.websocket(request, on_message)

    def tick(self) -> None:
        for m in self.mid:
            self.mid[m] += self.rng.choice((-0.5, 0.0, 0.5))

    def frame(self, channel: str) -> Any:
        kind, _, rest = channel.partition(".")
        market, now = rest.split(".")[0], int(time.time() * 1000)
        if market not in self.mid:
            return None
        mid = self.mid[market]
        if kind == "order_book":
            self.seq += 1
            inserts = [{"side": "BUY", "price": f"{mid - 0.5 - i:.1f}", "size": "0.5"} for i in range(15)]
            inserts += [{"side": "SELL", "price": f"{mid + 0.5 + i:.1f}", "size": "0.5"} for i in range(15)]
            data: Any = {"seq_no": self.seq, "market": market, "last_updated_at": now, "update_type": "s",
                         "inserts": inserts, "updates": [], "deletes": []}
        elif kind == "trades":
            self.trade += 1
            data = {"id": str(self.trade), "market": market, "side": "BUY", "size": "0.01", "price": f"{mid:.1f}",
                    "created_at": now, "trade_type": "FILL"}
        else:
            return None
        return {"jsonrpc": "2.0", "method": "subscription", "params": {"channel": channel, "data": data}}


if __name__ == "__main__":
    main(FakeParadex)
