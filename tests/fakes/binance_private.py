"""The private half of the Binance spot fake: signed REST (order, cancel, cancelReplace, order lookup,
openOrders, myTrades, account, time) and the WebSocket API user-data stream
(``userDataStream.subscribe.signature``, then ``executionReport`` events), in the formats ccxt parses.

Every signed request is verified exactly as Binance does (HMAC-SHA256 of the query or form body with the
secret, the key in ``X-MBX-APIKEY``, a fresh timestamp), so a test that passes here sent real requests.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from aiohttp import web

from tests.fakes.account import Account, Order, Trade
from tests.fakes.binance import ORDER_TYPES, SYMBOLS

if TYPE_CHECKING:
    from tests.fakes.binance import FakeBinance

API_KEY = "fake-binance-key"
API_SECRET = "fake-binance-secret"
API = "/api.binance.com/api/v3"
WS_API = "/ws-api.binance.com/ws-api/v3"
FAILURES = {
    "insufficient_funds": (400, -2010, "Account has insufficient balance for requested action."),
    "invalid_order": (400, -1013, "Filter failure: PRICE_FILTER"),
    "rate_limited": (429, -1003, "Too many requests; current limit is 6000 request weight per 1 MINUTE."),
    "auth": (401, -2015, "Invalid API-key, IP, or permissions for action."),
}
STATUS = {"open": "NEW", "filled": "FILLED", "canceled": "CANCELED", "rejected": "REJECTED"}
TYPES = {"LIMIT": ("limit", None), "LIMIT_MAKER": ("limit", None), "MARKET": ("market", None),
         "STOP_LOSS": ("market", "stop"), "STOP_LOSS_LIMIT": ("limit", "stop"),
         "TAKE_PROFIT": ("market", "take_profit"), "TAKE_PROFIT_LIMIT": ("limit", "take_profit")}


def error(status: int, code: int, msg: str) -> web.Response:
    return web.json_response({"code": code, "msg": msg}, status=status)


def f8(x: float) -> str:
    return f"{x:.8f}"


def order_json(o: Order) -> dict[str, Any]:
    status = "PARTIALLY_FILLED" if o.status == "open" and o.filled else STATUS[o.status]
    return {"symbol": o.symbol, "orderId": o.id, "orderListId": -1, "clientOrderId": o.cid, "price": f8(o.price),
            "origQty": f8(o.qty), "executedQty": f8(o.filled), "cummulativeQuoteQty": f8(o.cost), "status": status,
            "timeInForce": o.tif, "type": o.venue_type or o.kind.upper(), "side": o.side.upper(),
            "stopPrice": f8(o.trigger_px),
            "icebergQty": "0.00000000", "time": o.ts, "updateTime": int(time.time() * 1000),
            "isWorking": o.status == "open", "workingTime": o.ts, "origQuoteOrderQty": "0.00000000",
            "selfTradePreventionMode": "NONE"}


def install(fake: FakeBinance) -> None:
    account = Account({"USDT": 100000.0, "BTC": 10.0, "ETH": 100.0})
    fake.account = account  # type: ignore[attr-defined]

    def settle(o: Order, t: Trade) -> None:  # spot: base against quote; the commission is charged in USDT
        base, quote, _ = SYMBOLS[o.symbol]
        sign = 1 if o.side == "buy" else -1
        account.balances[base] = round(account.balances.get(base, 0.0) + sign * t.qty, 10)
        account.balances[quote] = round(account.balances.get(quote, 0.0) - sign * t.qty * t.price - t.fee, 10)

    account.settle = settle
    streams: set[web.WebSocketResponse] = set()

    def signed(request: web.Request, payload: str) -> web.Response | dict[str, str]:
        fake.log.append({"method": request.method, "host": request.host, "path": request.path, "signed": payload,
                         "headers": {k: v for k, v in request.headers.items() if k.lower() != "x-mbx-apikey"}})
        if "&signature=" not in payload:
            return error(400, -1102, "Mandatory parameter 'signature' was not sent.")
        unsigned, sig = payload.rsplit("&signature=", 1)
        if request.headers.get("X-MBX-APIKEY") != API_KEY:
            return error(401, -2015, "Invalid API-key, IP, or permissions for action.")
        if sig != hmac.new(API_SECRET.encode(), unsigned.encode(), hashlib.sha256).hexdigest():
            return error(400, -1022, "Signature for this request is not valid.")
        params = {k: v[0] for k, v in parse_qs(unsigned).items()}
        if abs(time.time() * 1000 - int(params.get("timestamp", 0))) > int(params.get("recvWindow", 5000)):
            return error(400, -1021, "Timestamp for this request is outside of the recvWindow.")
        return params

    async def params_of(request: web.Request) -> web.Response | dict[str, str]:
        payload = (await request.text()) if request.method == "POST" else request.query_string
        return signed(request, payload)

    def best(symbol: str) -> tuple[float, float]:
        book = fake.books[symbol]
        return max(book.bids), min(book.asks)

    async def new_order(p: dict[str, str]) -> web.Response:
        failure = account.take_failure()
        if failure in FAILURES:
            return error(*FAILURES[failure])
        if p["symbol"] not in fake.books:
            return error(400, -1121, "Invalid symbol.")
        cid = p.get("newClientOrderId") or f"fake-{account.next_id}"
        if any(o.cid == cid and o.status == "open" for o in account.orders.values()):
            return error(400, -2010, "Duplicate order sent.")
        if p["type"] not in TYPES:
            return error(400, -1116, "Invalid orderType.")
        if p["type"] not in ORDER_TYPES.get(p["symbol"], []):
            return error(400, -1013, f"{p['type']} orders are not supported for this symbol.")
        kind, trigger = TYPES[p["type"]]
        if trigger and "stopPrice" not in p:
            return error(400, -1102, "Mandatory parameter 'stopPrice' was not sent, was empty/null, or malformed.")
        if kind == "limit" and ("price" not in p or (p["type"] != "LIMIT_MAKER" and "timeInForce" not in p)):
            return error(400, -1102, "Mandatory parameter 'price' or 'timeInForce' was not sent.")
        bid, ask = best(p["symbol"])
        price = float(p.get("price") or (ask if p["side"] == "BUY" else bid))
        order = account.place(cid, p["symbol"], p["side"].lower(), kind, float(p["quantity"]), price,
                              p.get("timeInForce", "GTC"), trigger=trigger, trigger_px=float(p.get("stopPrice", 0)))
        order.venue_type = p["type"]
        if trigger and account.fires(order, (bid + ask) / 2):
            order.status = "rejected"
            return error(400, -2010, "Stop price would trigger immediately.")
        await account.held()  # placed, but nothing is said about it (neither answer nor stream) for a while
        if not await account.after_place(order, bid, ask, post_only=p["type"] == "LIMIT_MAKER"):
            return error(400, -2010, "Order would immediately match and take.")
        if failure == "lost_response":
            await asyncio.sleep(30)  # the client has given up long before: an unknown outcome
        return web.json_response({**order_json(order), "transactTime": int(time.time() * 1000), "fills": []})

    async def order(request: web.Request) -> web.Response:
        p = await params_of(request)
        if isinstance(p, web.Response):
            return p
        if request.method == "POST":
            return await new_order(p)
        o = account.find(oid=p.get("orderId"), cid=p.get("origClientOrderId"))
        if o is None or o.symbol != p.get("symbol"):
            return error(400, -2013 if request.method == "GET" else -2011,
                         "Order does not exist." if request.method == "GET" else "Unknown order sent.")
        if request.method == "DELETE":
            if o.status != "open":
                return error(400, -2011, "Unknown order sent.")
            await account.cancel(o)
        return web.json_response(order_json(o))

    async def cancel_replace(request: web.Request) -> web.Response:
        p = await params_of(request)
        if isinstance(p, web.Response):
            return p
        old = account.find(oid=p.get("cancelOrderId"), cid=p.get("cancelOrigClientOrderId"))
        if old is None or old.status != "open":
            return error(400, -2022, "Order cancel-replace failed.")
        await account.cancel(old)
        reply = await new_order(p)
        if reply.status != 200:
            return reply
        return web.json_response({"cancelResult": "SUCCESS", "newOrderResult": "SUCCESS",
                                  "cancelResponse": order_json(old), "newOrderResponse": json.loads(reply.text or "{}")})

    async def open_orders(request: web.Request) -> web.Response:
        p = await params_of(request)
        if isinstance(p, web.Response):
            return p
        return web.json_response([order_json(o) for o in account.orders.values()
                                  if o.status == "open" and p.get("symbol") in (None, o.symbol)])

    async def my_trades(request: web.Request) -> web.Response:
        p = await params_of(request)
        if isinstance(p, web.Response):
            return p
        since = int(p.get("startTime", 0))
        return web.json_response([
            {"symbol": t.order.symbol, "id": t.id, "orderId": t.order.id, "orderListId": -1, "price": f8(t.price),
             "qty": f8(t.qty), "quoteQty": f8(t.price * t.qty), "commission": f8(t.fee), "commissionAsset": "USDT",
             "time": t.ts, "isBuyer": t.order.side == "buy", "isMaker": t.maker, "isBestMatch": True}
            for t in account.trades if t.order.symbol == p.get("symbol") and t.ts >= since])

    async def balances(request: web.Request) -> web.Response:
        p = await params_of(request)
        if isinstance(p, web.Response):
            return p
        return web.json_response({"makerCommission": 10, "takerCommission": 10, "canTrade": True,
                                  "accountType": "SPOT", "updateTime": int(time.time() * 1000),
                                  "balances": [{"asset": a, "free": f8(v), "locked": "0.00000000"}
                                               for a, v in account.balances.items()], "permissions": ["SPOT"]})

    async def server_time(request: web.Request) -> web.Response:
        fake.record(request)
        return web.json_response({"serverTime": int(time.time() * 1000)})

    async def user_stream(request: web.Request) -> web.WebSocketResponse:
        async def on_message(ws: web.WebSocketResponse, data: str) -> None:
            msg = json.loads(data)
            if msg.get("method") == "userDataStream.subscribe.signature":
                prm = dict(msg.get("params") or {})
                sig = prm.pop("signature", "")
                unsigned = "&".join(f"{k}={v}" for k, v in sorted(prm.items()))
                ok = prm.get("apiKey") == API_KEY and \
                    sig == hmac.new(API_SECRET.encode(), unsigned.encode(), hashlib.sha256).hexdigest()
                if not ok:
                    await ws.send_str(json.dumps({"id": msg.get("id"), "status": 401,
                                                  "error": {"code": -2015, "msg": "Invalid API-key"}}))
                    return
                streams.add(ws)
                await ws.send_str(json.dumps({"id": msg.get("id"), "status": 200, "result": {"subscriptionId": 0}}))

        try:
            return await fake.websocket(request, on_message)
        finally:
            streams.difference_update({w for w in streams if w.closed})

    async def on_event(o: Order, t: Trade | None) -> None:
        now = int(time.time() * 1000)
        status = "PARTIALLY_FILLED" if o.status == "open" and o.filled else STATUS[o.status]
        event = {"e": "executionReport", "E": now, "s": o.symbol, "c": o.cid, "S": o.side.upper(),
                 "o": o.venue_type or o.kind.upper(), "f": o.tif, "q": f8(o.qty), "p": f8(o.price), "P": f8(o.trigger_px),
                 "F": "0.00000000", "g": -1, "C": "", "x": "TRADE" if t else STATUS[o.status] if o.status != "open"
                 else "NEW", "X": status, "r": "NONE", "i": o.id, "l": f8(t.qty if t else 0),
                 "z": f8(o.filled), "L": f8(t.price if t else 0), "n": f8(t.fee if t else 0),
                 "N": "USDT" if t else None, "T": now, "t": t.id if t else -1, "I": 1, "w": o.status == "open",
                 "m": bool(t and t.maker), "M": False, "O": o.ts, "Z": f8(o.cost),
                 "Y": f8(t.price * t.qty if t else 0), "Q": "0.00000000"}
        for ws in list(streams):
            await fake.push(ws, {"subscriptionId": 0, "event": event})

    def foreign() -> Order:
        bid, _ = best("BTCUSDT")
        return account.place("manual-order-1", "BTCUSDT", "buy", "limit", 0.001, round(bid - 1000, 2), "GTC")

    account.listeners.append(on_event)
    account.install(fake.app, foreign)
    fake.app.router.add_route("*", API + "/order", order)
    fake.app.router.add_post(API + "/order/cancelReplace", cancel_replace)
    fake.app.router.add_get(API + "/openOrders", open_orders)
    fake.app.router.add_get(API + "/myTrades", my_trades)
    fake.app.router.add_get(API + "/account", balances)
    fake.app.router.add_get(API + "/time", server_time)
    fake.app.router.add_get(WS_API, user_stream)
