"""A loopback Hyperliquid (perps): POST /info (metaAndAssetCtxs, candleSnapshot) and one WebSocket for
everything (l2Book full snapshots, trades, candles), in the wire formats ccxt.pro parses.
Paths keep the real host as their first segment (the host-in-path redirect used by wispd)."""

from __future__ import annotations

import json
import random
import time
from typing import Any

from aiohttp import web

from tests.fakes.base import FakeExchange, main

COINS = {"BTC": (60000.0, 5), "ETH": (3000.0, 4)}
HOST = "/api.hyperliquid.xyz"


class FakeHyperliquid(FakeExchange):
    def __init__(self) -> None:
        super().__init__()
        self.subs: dict[web.WebSocketResponse, list[dict[str, Any]]] = {}
        self.mid = {c: p for c, (p, _) in COINS.items()}
        self.tid = 0
        self.rng = random.Random(4)
        self.app.router.add_post(HOST + "/info", self.info)
        self.app.router.add_get(HOST + "/ws", self.ws)
        from tests.fakes.hyperliquid_private import install

        self.private = install(self)

    def ctxs(self) -> list[Any]:
        universe = [{"name": c, "szDecimals": d, "maxLeverage": 50, "onlyIsolated": False} for c, (_, d) in COINS.items()]
        ctxs = [{"dayNtlVlm": "1000000", "funding": "0.0000125", "impactPxs": [str(self.mid[c]), str(self.mid[c])],
                 "markPx": f"{self.mid[c]:.1f}", "midPx": f"{self.mid[c]:.1f}", "openInterest": "100",
                 "oraclePx": f"{self.mid[c]:.1f}", "premium": "0.0001", "prevDayPx": f"{self.mid[c]:.1f}"}
                for c in COINS]
        return [{"universe": universe}, ctxs]

    async def info(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.record(request, body=body)
        kind = body.get("type")
        if kind == "metaAndAssetCtxs":
            return web.json_response(self.ctxs())
        if kind == "spotMeta":
            tokens = [{"name": "USDC", "szDecimals": 8, "weiDecimals": 8, "index": 0, "tokenId": "0x" + "0" * 32,
                       "isCanonical": True}]
            return web.json_response({"tokens": tokens, "universe": []})
        if kind == "candleSnapshot":
            req = body["req"]
            step = {"1m": 60_000, "5m": 300_000, "15m": 900_000, "1h": 3_600_000}[req["interval"]]
            end = int(req.get("endTime") or time.time() * 1000)
            start = max(int(req.get("startTime") or end - 100 * step), end - 500 * step)
            out, px = [], self.mid[req["coin"]]
            for t in range(start // step * step, end, step):
                out.append({"t": t, "T": t + step - 1, "s": req["coin"], "i": req["interval"], "o": f"{px:.1f}",
                            "c": f"{px + 5:.1f}", "h": f"{px + 10:.1f}", "l": f"{px - 10:.1f}", "v": "1.5", "n": 3})
            return web.json_response(out)
        handled = await self.private.info(body)
        if handled is not None:
            return handled
        return web.json_response({"error": f"fake: unhandled info type {kind}"}, status=400)

    async def ws(self, request: web.Request) -> web.WebSocketResponse:
        async def on_message(ws: web.WebSocketResponse, data: str) -> None:
            msg = json.loads(data)
            if msg.get("method") == "ping":
                await ws.send_str(json.dumps({"channel": "pong"}))
            elif msg.get("method") == "subscribe":
                await ws.send_str(json.dumps({"channel": "subscriptionResponse", "data": msg}))
                if not await self.private.subscribe(ws, msg["subscription"]):
                    self.subs.setdefault(ws, []).append(msg["subscription"])
            elif msg.get("method") == "unsubscribe":
                subs = self.subs.get(ws, [])
                if msg["subscription"] in subs:
                    subs.remove(msg["subscription"])

        try:
            return await self.websocket(request, on_message)
        finally:
            self.subs.pop(next((w for w in self.subs if w.closed), None), None)

    def book(self, coin: str) -> dict[str, Any]:
        mid = self.mid[coin]
        bids = [{"px": f"{mid - 1 - i:.1f}", "sz": "0.5", "n": 2} for i in range(20)]
        asks = [{"px": f"{mid + 1 + i:.1f}", "sz": "0.5", "n": 2} for i in range(20)]
        return {"channel": "l2Book", "data": {"coin": coin, "time": int(time.time() * 1000), "levels": [bids, asks]}}

    def move(self, by: float) -> None:
        for coin in self.mid:
            self.mid[coin] += by

    async def moved(self) -> None:
        private = getattr(self, "private", None)
        for coin, mid in self.mid.items():
            if private is not None:
                await private.account.on_price(coin, mid, mid - 1, mid + 1)  # Hyperliquid triggers on the mark

    def tick(self) -> None:
        for coin in self.mid:
            self.mid[coin] += self.rng.choice((-1.0, 0.0, 1.0))

    def frame(self, sub: dict[str, Any]) -> Any:
        coin, now = sub.get("coin"), int(time.time() * 1000)
        if coin not in self.mid:
            return None
        if sub["type"] == "l2Book":
            return self.book(coin)
        if sub["type"] == "trades":
            self.tid += 1
            return {"channel": "trades", "data": [{"coin": coin, "side": "B", "px": f"{self.mid[coin]:.1f}",
                                                   "sz": "0.01", "time": now, "hash": "0x" + "0" * 64,
                                                   "tid": self.tid}]}
        if sub["type"] == "candle":
            t, px = now // 60_000 * 60_000, self.mid[coin]
            return {"channel": "candle", "data": {"t": t, "T": t + 59_999, "s": coin, "i": sub["interval"],
                                                  "o": f"{px:.1f}", "c": f"{px:.1f}", "h": f"{px + 2:.1f}",
                                                  "l": f"{px - 2:.1f}", "v": "0.5", "n": 2}}
        return None


if __name__ == "__main__":
    main(FakeHyperliquid)
