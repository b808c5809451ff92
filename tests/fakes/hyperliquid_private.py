"""The private half of the Hyperliquid fake: POST /exchange (order, cancel, cancelByCloid, batchModify,
and a record of approveBuilderFee/setReferrer should anything send them), POST /info (orderStatus,
frontendOpenOrders, userFillsByTime, clearinghouseState, userAbstraction) and the user WebSocket
channels (orderUpdates, userFills), in the formats ccxt parses. Signatures are not verified (EIP-712
recovery would add a dependency); the log keeps every action for assertions."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from aiohttp import web

from tests.fakes.account import Account, Order, Trade

if TYPE_CHECKING:
    from tests.fakes.hyperliquid import FakeHyperliquid

ERRORS = {
    "insufficient_funds": "Insufficient margin to place order. asset=0",
    "invalid_order": "Order has invalid size.",
    "auth": "User or API Wallet 0xabababababababababababababababababababab does not exist.",
}
STATUS = {"open": "open", "filled": "filled", "canceled": "canceled", "rejected": "rejected"}


def ok(kind: str, statuses: list[Any]) -> web.Response:
    return web.json_response({"status": "ok", "response": {"type": kind, "data": {"statuses": statuses}}})


class Private:
    def __init__(self, fake: FakeHyperliquid) -> None:
        self.fake = fake
        self.account = Account({"USDC": 100000.0})
        self.coins = list(fake.mid)
        self.streams: dict[web.WebSocketResponse, set[str]] = {}
        self.leverage: dict[str, tuple[int, bool]] = {}  # coin -> (leverage, cross) as updateLeverage set it
        self.positions: dict[str, tuple[float, float]] = {}  # coin -> (signed size, entry price)
        self.account.settle = self.settle
        self.account.listeners.append(self.on_event)
        self.account.install(fake.app, self.foreign)
        fake.app.router.add_post("/api.hyperliquid.xyz/exchange", self.exchange)

    def settle(self, o: Order, t: Trade) -> None:
        """Perps: the cash balance moves by realised PnL and fees; the position keeps its entry price."""
        qty, entry = self.positions.get(o.symbol, (0.0, 0.0))
        delta = t.qty if o.side == "buy" else -t.qty
        realized = 0.0
        if qty and (qty > 0) != (delta > 0):  # reducing (and maybe flipping)
            closed = min(abs(qty), abs(delta))
            realized = closed * (t.price - entry) * (1 if qty > 0 else -1)
            rest = qty + delta
            entry = entry if abs(rest) > 0 and (rest > 0) == (qty > 0) else t.price
            qty = rest
        else:
            entry = (abs(qty) * entry + abs(delta) * t.price) / (abs(qty) + abs(delta))
            qty += delta
        self.positions[o.symbol] = (round(qty, 10), entry)
        self.account.balances["USDC"] = round(self.account.balances["USDC"] + realized - t.fee, 8)

    # ------------------------------------------------------------------ wire formats
    def order_json(self, o: Order) -> dict[str, Any]:
        return {"coin": o.symbol, "side": "B" if o.side == "buy" else "A", "limitPx": f"{o.price:.1f}",
                "sz": f"{o.remaining:.5f}", "oid": o.id, "timestamp": o.ts, "origSz": f"{o.qty:.5f}",
                "cloid": o.cid if o.cid.startswith("0x") else None, "orderType": self.order_type(o), "tif": o.tif,
                "reduceOnly": o.reduce_only, "isTrigger": bool(o.trigger) and not o.triggered,
                "triggerPx": f"{o.trigger_px:.1f}" if o.trigger else "0.0",
                "triggerCondition": f"Price {'above' if (o.trigger == 'stop') == (o.side == 'buy') else 'below'} "
                f"{o.trigger_px:.1f}" if o.trigger else "N/A"}

    @staticmethod
    def order_type(o: Order) -> str:
        if not o.trigger:
            return "Limit"
        return f"{'Stop' if o.trigger == 'stop' else 'Take Profit'} {'Market' if o.kind == 'market' else 'Limit'}"

    def fill_json(self, t: Trade) -> dict[str, Any]:
        o = t.order
        return {"coin": o.symbol, "px": f"{t.price:.1f}", "sz": f"{t.qty:.5f}", "side": "B" if o.side == "buy" else "A",
                "time": t.ts, "startPosition": "0.0", "dir": "Open Long" if o.side == "buy" else "Open Short",
                "closedPnl": "0.0", "hash": "0x" + "0" * 64, "oid": o.id, "crossed": not t.maker,
                "fee": f"{t.fee:.6f}", "tid": t.id, "feeToken": "USDC", "cloid": o.cid if o.cid.startswith("0x")
                else None}

    # ------------------------------------------------------------------ REST
    async def exchange(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.fake.record(request, body=body)
        action = body.get("action") or {}
        kind = action.get("type")
        if kind == "order":
            return await self.place(action["orders"])
        if kind in ("cancel", "cancelByCloid"):
            statuses: list[Any] = []
            for c in action.get("cancels") or []:
                o = self.account.find(oid=c["o"]) if kind == "cancel" else self.account.find(cid=c["cloid"])
                if o is None or o.status != "open":
                    statuses.append({"error": "Order was never placed, already canceled, or filled. asset=0"})
                else:
                    await self.account.cancel(o)
                    statuses.append("success")
            return ok("cancel", statuses)
        if kind == "batchModify":
            out = []
            for m in action["modifies"]:
                oid = m["oid"]
                old = self.account.find(cid=oid) if isinstance(oid, str) else self.account.find(oid=oid)
                if old is None or old.status != "open":
                    out.append({"error": "Cannot modify canceled or filled order"})
                    continue
                await self.account.cancel(old)
                reply = await self.place([m["order"]], raw=True)
                out += reply
            return ok("batchModify", out)
        if kind == "updateLeverage":
            self.leverage[self.coins[int(action["asset"])]] = (int(action["leverage"]), bool(action["isCross"]))
            return web.json_response({"status": "ok", "response": {"type": "default"}})
        return web.json_response({"status": "err", "response": f"fake: unhandled action {kind}"})

    async def place(self, orders: list[dict[str, Any]], raw: bool = False) -> Any:
        statuses: list[Any] = []
        failure = self.account.take_failure()
        if failure == "rate_limited":
            return web.Response(status=429, text="null")
        for w in orders:
            if failure in ERRORS:
                statuses.append({"error": ERRORS[failure]})
                continue
            coin = self.coins[int(w["a"])]
            cid = w.get("c") or f"fake-{self.account.next_id}"
            if any(o.cid == cid for o in self.account.orders.values()):
                statuses.append({"error": "Duplicate cloid"})
                continue
            if "trigger" in w["t"]:  # held until the mark crosses triggerPx; then a market (IOC within p) or limit
                trig = w["t"]["trigger"]
                tif, kind = ("Ioc", "market") if trig["isMarket"] else ("Gtc", "limit")
                o = self.account.place(cid, coin, "buy" if w["b"] else "sell", kind, float(w["s"]), float(w["p"]),
                                       tif, bool(w.get("r")), trigger="stop" if trig["tpsl"] == "sl" else "take_profit",
                                       trigger_px=float(trig["triggerPx"]))
            else:
                tif = w["t"]["limit"]["tif"]
                o = self.account.place(cid, coin, "buy" if w["b"] else "sell", "limit", float(w["s"]), float(w["p"]),
                                       tif, bool(w.get("r")))
            await self.account.held()  # placed, but nothing is said about it for a while
            mid = self.fake.mid[coin]
            if not await self.account.after_place(o, mid - 1, mid + 1, post_only=tif == "Alo"):
                statuses.append({"error": "Post only order would have immediately matched, bbo was 1. asset=0"})
                continue
            if o.status == "filled":
                statuses.append({"filled": {"totalSz": f"{o.filled:.5f}", "avgPx": f"{o.cost / o.filled:.1f}",
                                            "oid": o.id, "cloid": w.get("c")}})
            elif o.status == "canceled":
                statuses.append({"error": "Order could not immediately match against any resting orders. asset=0"})
            elif o.trigger and not o.triggered:
                statuses.append("waitingForTrigger")  # what Hyperliquid answers for a trigger order (no oid)
            else:
                statuses.append({"resting": {"oid": o.id, "cloid": w.get("c")}})
        if failure == "lost_response":
            await asyncio.sleep(30)
        return statuses if raw else ok("order", statuses)

    async def info(self, body: dict[str, Any]) -> web.Response | None:
        kind = body.get("type")
        if kind == "userAbstraction":
            return web.json_response("default")
        if kind == "orderStatus":
            oid = body["oid"]
            o = self.account.find(cid=oid) if isinstance(oid, str) else self.account.find(oid=oid)
            if o is None:
                return web.json_response({"status": "unknownOid"})
            return web.json_response({"status": "order", "order": {"order": self.order_json(o),
                                                                   "status": STATUS[o.status],
                                                                   "statusTimestamp": int(time.time() * 1000)}})
        if kind in ("frontendOpenOrders", "openOrders"):
            return web.json_response([self.order_json(o) for o in self.account.orders.values() if o.status == "open"])
        if kind in ("userFillsByTime", "userFills"):
            since = int(body.get("startTime") or 0)
            return web.json_response([self.fill_json(t) for t in self.account.trades if t.ts >= since])
        if kind == "clearinghouseState":
            open_ = {c: (q, e) for c, (q, e) in self.positions.items() if round(q, 8) != 0}
            upnl = {c: (self.fake.mid[c] - e) * q for c, (q, e) in open_.items()}
            cash = self.account.balances["USDC"]
            value = f"{cash + sum(upnl.values()):.6f}"  # Hyperliquid's account value includes unrealised PnL
            summary = {"accountValue": value, "totalNtlPos": "0.0", "totalRawUsd": value, "totalMarginUsed": "0.0"}
            return web.json_response({
                "marginSummary": summary, "crossMarginSummary": summary, "crossMaintenanceMarginUsed": "0.0",
                "withdrawable": value, "time": int(time.time() * 1000),
                "assetPositions": [{"type": "oneWay", "position": {
                    "coin": c, "szi": f"{q:.5f}", "entryPx": f"{e:.6f}", "positionValue": "0.0",
                    "unrealizedPnl": f"{upnl[c]:.6f}", "returnOnEquity": "0.0", "liquidationPx": None, "marginUsed": "0.0",
                    "maxLeverage": 50, "leverage": {"type": "cross", "value": 20},
                    "cumFunding": {"allTime": "0.0", "sinceChange": "0.0", "sinceOpen": "0.0"}}}
                    for c, (q, e) in open_.items()]})
        return None

    # ------------------------------------------------------------------ WebSocket user channels
    async def subscribe(self, ws: web.WebSocketResponse, sub: dict[str, Any]) -> bool:
        if sub.get("type") not in ("orderUpdates", "userFills"):
            return False
        self.streams.setdefault(ws, set()).add(sub["type"])
        if sub["type"] == "userFills":
            await self.fake.push(ws, {"channel": "userFills", "data": {"isSnapshot": True, "user": sub.get("user"),
                                                                      "fills": []}})
        return True

    async def on_event(self, o: Order, t: Trade | None) -> None:
        for ws, kinds in list(self.streams.items()):
            if ws.closed:
                self.streams.pop(ws, None)
                continue
            if "orderUpdates" in kinds:
                await self.fake.push(ws, {"channel": "orderUpdates", "data": [
                    {"order": self.order_json(o), "status": STATUS[o.status],
                     "statusTimestamp": int(time.time() * 1000)}]})
            if t is not None and "userFills" in kinds:
                await self.fake.push(ws, {"channel": "userFills", "data": {"user": "0x" + "ab" * 20,
                                                                          "fills": [self.fill_json(t)]}})

    def foreign(self) -> Order:
        return self.account.place("manual-order-1", "BTC", "buy", "limit", 0.001,
                                  round(self.fake.mid["BTC"] - 1000, 1), "Gtc")


def install(fake: FakeHyperliquid) -> Private:
    return Private(fake)
