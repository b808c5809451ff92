"""Exchanges through ccxt.pro: the ``Source`` interface over watch_order_book / watch_trades / watch_ohlcv.

Public market data only: no credentials are ever given to this instance. ccxt.pro does not reconnect
or resubscribe by itself; the ingestor's stream loops call ``stream`` again after any error, which calls
``watch_*`` again, which re-dials and resubscribes. The ticker is derived from this source's own book and
trades (one subscription fewer per pair, and the same on every exchange); funding is polled (REST).

``api_base`` (tests, or a local gateway) rewrites every URL of the instance to ``http(s)://127.0.0.1:port``
keeping the real host as the first path segment, and a guard then refuses any request to another host.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from typing import Any

from wispd.protocol import Topic, dec_str

TIMEFRAME_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000, "M": 2_592_000_000}
FUNDING_POLL_S = 10.0
_URL = re.compile(r"^(https?|wss?)://([^/]+)(.*)$")
LOOPBACK = ("http://127.0.0.1:", "ws://127.0.0.1:")


def market_types(driver: str, markets: set[str]) -> list[str]:
    if driver in ("binance", "bybit"):
        return [{"spot": "spot", "perp": "linear"}[m] for m in sorted(markets)]
    return [{"spot": "spot", "perp": "swap"}[m] for m in sorted(markets)]


def driver_options(driver: str, markets: set[str]) -> dict[str, Any]:
    """Options that keep ccxt to public, relevant endpoints (no margin or currency calls, no extra markets)."""
    opts: dict[str, Any] = {"fetchMarkets": {"types": market_types(driver, markets)}}
    if driver == "binance":
        opts.update({"fetchMargins": False, "fetchCurrencies": False, "adjustForTimeDifference": False})
    if driver == "paradex":
        opts["sbe"] = False  # JSON frames; SBE is Paradex's optional binary encoding of the same data
    return opts


def ccxt_symbol(market: str, symbol: str, markets: dict[str, Any] | None = None) -> str:
    """wispd's BASE-QUOTE on spot or perp -> ccxt's unified symbol, found among the loaded markets when given
    (a perp's settlement currency is not always its quote: Paradex's BTC-USD perp settles in USDC)."""
    base, quote = symbol.split("-", 1)
    if markets:
        for name, m in markets.items():
            if m.get("base") == base and m.get("quote") == quote and \
                    (m.get("spot") if market == "spot" else (m.get("swap") and m.get("linear", True))):
                return name
    return f"{base}/{quote}" if market == "spot" else f"{base}/{quote}:{quote}"


def _walk(node: Any, fn: Any) -> Any:
    if isinstance(node, dict):
        return {k: _walk(v, fn) for k, v in node.items()}
    if isinstance(node, list):
        return [_walk(v, fn) for v in node]
    return fn(node) if isinstance(node, str) else node


def redirect(ex: Any, api_base: str) -> None:
    """Point every URL of ``ex`` at ``api_base`` (http://127.0.0.1:port), real host kept as first path part."""
    ws_base = "ws" + api_base[len("http"):]
    hostname = getattr(ex, "hostname", None) or ""

    def rewrite(url: str) -> str:
        url = url.replace("{hostname}", hostname)
        match = _URL.match(url)
        if not match:
            return url
        scheme, host, rest = match.groups()
        base = ws_base if scheme.startswith("ws") else api_base
        return f"{base}/{host.split(':')[0]}{rest}"

    for key in ("api", "test", "demo", "demotrading", "apiBackup"):
        if key in ex.urls:
            ex.urls[key] = _walk(ex.urls[key], rewrite)
    leftover: list[str] = []
    _walk(ex.urls.get("api"), lambda u: leftover.append(u) if u.startswith(("http", "ws")) and
          not u.startswith(LOOPBACK) else u)
    if leftover:
        raise RuntimeError(f"URLs left pointing off loopback after redirect: {leftover[:3]}")
    fetch = ex.fetch

    async def guarded(url: str, method: str = "GET", headers: Any = None, body: Any = None) -> Any:
        if not url.startswith(LOOPBACK):
            raise RuntimeError(f"refused non-loopback request {method} {url}")
        return await fetch(url, method, headers, body)

    ex.fetch = guarded


class CcxtSource:
    name = "ccxt"
    # Channels that are polled rather than pushed: silence shorter than 3 polls is normal for them.
    intervals = {"funding": FUNDING_POLL_S}

    def __init__(self, args: dict[str, Any]) -> None:
        self.driver: str = args["driver"]
        self.depth = int(args.get("book_depth", 10))
        self.api_base: str | None = args.get("api_base")
        self.keepalive_ms = int(float(args.get("keepalive_s", 15.0)) * 1000)
        markets = {m for m, _ in args.get("pairs") or []} | {args.get("market", "spot")}
        self.markets_wanted = markets
        self.ex: Any = None
        self.last_trade: dict[tuple[str, str], str] = {}

    async def connect(self) -> None:
        if self.ex is None:
            import ccxt.pro  # only ingestors and executors ever import ccxt

            cls = getattr(ccxt.pro, self.driver)
            self.ex = cls({"options": driver_options(self.driver, self.markets_wanted),
                           "streaming": {"keepAlive": self.keepalive_ms, "maxPingPongMisses": 2}})
            if self.api_base:
                redirect(self.ex, self.api_base)
        await self.ex.load_markets()

    async def close(self) -> None:
        if self.ex is not None:
            try:
                await self.ex.close()
            except Exception:  # noqa: BLE001 - closing must not mask the reason we stop
                pass

    def unknown(self, market: str, symbol: str) -> str | None:
        if self.ex is None or not self.ex.markets:
            return None  # not connected yet: the stream will say
        if ccxt_symbol(market, symbol, self.ex.markets) in self.ex.markets:
            return None
        import difflib

        same = sorted({f"{m.get('base')}-{m.get('quote')}" for m in self.ex.markets.values()
                       if (m.get("spot") if market == "spot" else m.get("swap"))})
        close = difflib.get_close_matches(symbol, same, n=3, cutoff=0.5)
        return f"{self.driver} has no {market} pair {symbol}" + (f"; did you mean {' or '.join(close)}?" if close else "")

    async def stream(self, topic: Topic) -> AsyncIterator[tuple[str, dict[str, Any], float | None]]:
        if self.ex is None or not self.ex.markets:
            await self.connect()
        sym = ccxt_symbol(topic.market, topic.symbol, self.ex.markets)
        if sym not in self.ex.markets:
            raise ValueError(f"{self.driver} has no market {sym}")
        channel = topic.channel
        if channel in ("book", "ticker"):
            while True:
                ob = await self.ex.watch_order_book(sym)
                bids = [[dec_str(p), dec_str(q)] for p, q, *_ in ob["bids"][: self.depth]]
                asks = [[dec_str(p), dec_str(q)] for p, q, *_ in ob["asks"][: self.depth]]
                if channel == "book":
                    yield "book", {"bids": bids, "asks": asks}, ob.get("timestamp")
                elif bids and asks:
                    yield "ticker", {"bid": bids[0][0], "ask": asks[0][0],
                                     "last": self.last_trade.get((topic.market, topic.symbol)), "volume": None}, \
                        ob.get("timestamp")
        elif channel == "trades":
            while True:
                trades = await self.ex.watch_trades(sym)
                out = [{"id": str(t.get("id")), "px": dec_str(t["price"]), "qty": dec_str(t["amount"]),
                        "side": t.get("side") or "", "ts": t.get("timestamp")} for t in trades]
                if out:
                    self.last_trade[(topic.market, topic.symbol)] = out[-1]["px"]
                    yield "trades", {"trades": out}, trades[-1].get("timestamp")
        elif topic.interval is not None:
            klines = self._klines if self.ex.has.get("watchOHLCV") else self._klines_from_trades
            async for item in klines(sym, topic.interval):
                yield item
        elif channel == "funding":
            while True:
                fr = await self.ex.fetch_funding_rate(sym)
                yield "funding", {"rate": dec_str(fr.get("fundingRate") or 0), "next_ts": fr.get("fundingTimestamp"),
                                  "mark": dec_str(fr["markPrice"]) if fr.get("markPrice") else None}, fr.get("timestamp")
                await asyncio.sleep(FUNDING_POLL_S)
        else:
            raise ValueError(f"unsupported channel {channel}")

    async def _klines(self, sym: str, interval: str) -> AsyncIterator[tuple[str, dict[str, Any], float | None]]:
        last: list[Any] | None = None
        while True:
            candles = await self.ex.watch_ohlcv(sym, interval)
            for c in candles:
                if last is not None and c[0] > last[0]:
                    yield "kline", self._kline(last, interval, True), None
                last = c
                yield "kline", self._kline(c, interval, False), None

    async def _klines_from_trades(self, sym: str, interval: str) -> AsyncIterator[tuple[str, dict[str, Any],
                                                                                       float | None]]:
        """For exchanges without a candle stream (Paradex): candles built from the public trades."""
        step = int(interval[:-1]) * TIMEFRAME_MS[interval[-1]]
        candle: list[Any] | None = None
        while True:
            for t in await self.ex.watch_trades(sym):
                ts, px, qty = int(t.get("timestamp") or time.time() * 1000), t["price"], t["amount"]
                bucket = ts // step * step
                if candle is not None and bucket > candle[0]:
                    yield "kline", self._kline(candle, interval, True), None
                    candle = None
                if candle is None:
                    candle = [bucket, px, px, px, px, 0.0]
                candle[2], candle[3], candle[4] = max(candle[2], px), min(candle[3], px), px
                candle[5] += qty
                yield "kline", self._kline(candle, interval, False), None

    @staticmethod
    def _kline(c: list[Any], interval: str, closed: bool) -> dict[str, Any]:
        t, o, h, low, close, v = c[:6]
        return {"interval": interval, "t": int(t), "o": dec_str(o), "h": dec_str(h), "l": dec_str(low),
                "c": dec_str(close), "v": dec_str(v or 0), "closed": closed}

    async def history(self, topic: Topic, limit: int) -> list[dict[str, Any]]:
        if self.ex is None or not self.ex.markets:
            await self.connect()
        interval = topic.interval or "1m"
        step = int(interval[:-1]) * TIMEFRAME_MS[interval[-1]]
        now = int(time.time() * 1000)
        sym = ccxt_symbol(topic.market, topic.symbol, self.ex.markets)
        rows = await self.ex.fetch_ohlcv(sym, interval, since=now - (limit + 1) * step, limit=limit + 1)
        closed = [r for r in rows if r[0] + step <= now]
        return [self._kline(r, interval, True) for r in closed[-limit:]]

    async def markets(self, wanted: list[tuple[str, str]]) -> dict[str, Any]:
        if self.ex is None or not self.ex.markets:
            await self.connect()
        out = {}
        for market, symbol in wanted:
            m = self.ex.markets.get(ccxt_symbol(market, symbol, self.ex.markets))
            if m is None:
                continue
            prec, limits = m.get("precision") or {}, m.get("limits") or {}
            out[f"{market}:{symbol}"] = {
                "market": market, "symbol": symbol, "tick": dec_str(prec.get("price") or "0.01"),
                "step": dec_str(prec.get("amount") or "0.0001"),
                "min_qty": dec_str((limits.get("amount") or {}).get("min") or 0),
                "min_notional": dec_str((limits.get("cost") or {}).get("min") or 0),
                "maker_fee": dec_str(m.get("maker") or 0), "taker_fee": dec_str(m.get("taker") or 0)}
        return out
