"""The built-in simulated exchange: no network, no keys, reproducible.

Each symbol's mid price follows a seeded geometric random walk (one RNG per symbol, seeded from the
configured seed and the symbol, so the same seed gives the same path step by step). Around it: a
multi-level book on the tick grid (1-2 tick spread, sizes growing with depth), Poisson trades at the best
bid or ask, candles of any interval built from those trades, a ticker, and for perps a funding rate. The
history endpoint backfills candles from a separate seeded walk that ends at the starting price, so a
strategy has indicator values at once. The last mid of each symbol is kept in the state directory, so an
ingestor restart continues the price path instead of jumping back to the start price.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import random
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

from wispd.protocol import Topic, dec_str

SECONDS_PER_YEAR = 365 * 24 * 3600
INTERVAL_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "M": 2592000}


def interval_seconds(interval: str) -> int:
    return int(interval[:-1]) * INTERVAL_SECONDS[interval[-1]]


def _seed(seed: int, *parts: str) -> int:
    digest = hashlib.sha256(":".join([str(seed), *parts]).encode()).digest()
    return int.from_bytes(digest[:8], "big")


def default_tick(price: float) -> Decimal:
    """A tick about 1e-5 of the price, rounded down to a power of ten (60000 -> 0.1, 3000 -> 0.01)."""
    exp = math.floor(math.log10(price * 1e-5)) if price > 0 else -2
    return Decimal(1).scaleb(exp)


class Candle:
    __slots__ = ("t", "o", "h", "l", "c", "v")

    def __init__(self, t: int, price: Decimal) -> None:
        self.t, self.o, self.h, self.l, self.c, self.v = t, price, price, price, price, Decimal(0)

    def add(self, price: Decimal, qty: Decimal) -> None:
        self.h, self.l, self.c = max(self.h, price), min(self.l, price), price
        self.v += qty

    def body(self, interval: str, closed: bool) -> dict[str, Any]:
        return {"interval": interval, "t": self.t, "o": dec_str(self.o), "h": dec_str(self.h), "l": dec_str(self.l),
                "c": dec_str(self.c), "v": dec_str(self.v), "closed": closed}


class SimSymbol:
    """One simulated instrument; ``step`` advances it by ``dt`` seconds and returns what happened."""

    def __init__(self, symbol: str, market: str, price: float, tick: Decimal, step_size: Decimal, levels: int,
                 volatility: float, trade_rate: float, seed: int) -> None:
        self.symbol, self.market = symbol, market
        self.rng = random.Random(_seed(seed, market, symbol))
        self.mid = price
        self.tick, self.step_size, self.levels = tick, step_size, levels
        self.sigma = volatility / math.sqrt(SECONDS_PER_YEAR)
        self.trade_rate = trade_rate
        self.trade_id = 0
        self.volume = Decimal(0)
        self.funding = 0.0001

    def _q(self, price: float, up: bool) -> Decimal:
        ticks = price / float(self.tick)
        return (Decimal(math.ceil(ticks)) if up else Decimal(math.floor(ticks))) * self.tick

    def _size(self, depth: int) -> Decimal:
        raw = self.rng.lognormvariate(0, 0.6) * (1 + depth * 0.35) * float(self.step_size) * 2000
        steps = max(1, int(raw / float(self.step_size)))
        return self.step_size * steps

    def step(self, dt: float) -> dict[str, Any]:
        shock = self.rng.gauss(0.0, 1.0)
        self.mid *= math.exp(self.sigma * math.sqrt(dt) * shock - 0.5 * self.sigma ** 2 * dt)
        spread_ticks = 1 if self.rng.random() < 0.7 else 2
        best_bid = self._q(self.mid, up=False) - (spread_ticks - 1) * self.tick
        best_ask = best_bid + spread_ticks * self.tick
        bids = [[best_bid - i * self.tick, self._size(i)] for i in range(self.levels)]
        asks = [[best_ask + i * self.tick, self._size(i)] for i in range(self.levels)]
        trades = []
        for _ in range(self._poisson(self.trade_rate * dt)):
            buy = self.rng.random() < 0.5
            qty = self.step_size * max(1, int(self.rng.expovariate(1.0) * 200))
            self.trade_id += 1
            self.volume += qty
            trades.append({"id": str(self.trade_id), "px": best_ask if buy else best_bid, "qty": qty,
                           "side": "buy" if buy else "sell"})
        if self.market == "perp":
            self.funding = max(-0.0075, min(0.0075, self.funding + self.rng.gauss(0, 0.000002)))
        return {"bids": bids, "asks": asks, "trades": trades}

    def _poisson(self, lam: float) -> int:
        if lam <= 0:
            return 0
        n, p, limit = 0, 1.0, math.exp(-lam)
        while True:
            p *= self.rng.random()
            if p <= limit:
                return n
            n += 1

    def history(self, interval: str, limit: int, end_ms: int, seed: int) -> list[dict[str, Any]]:
        """``limit`` closed candles ending before ``end_ms``, from a seeded walk that ends at today's mid."""
        secs = interval_seconds(interval)
        rng = random.Random(_seed(seed, self.market, self.symbol, interval))
        sigma = self.sigma * math.sqrt(secs)
        closes = [self.mid]
        for _ in range(limit):
            closes.append(closes[-1] / math.exp(sigma * rng.gauss(0, 1)))
        closes.reverse()
        start = (end_ms // (secs * 1000) - limit) * secs * 1000
        out = []
        for i in range(limit):
            o, c = closes[i], closes[i + 1]
            wiggle = abs(rng.gauss(0, sigma / 2))
            h, low = max(o, c) * (1 + wiggle), min(o, c) * (1 - wiggle)
            q = [self._q(x, up=False) for x in (o, h, low, c)]
            vol = self.step_size * max(1, int(rng.expovariate(1.0) * 2000 * max(1, secs // 60)))
            out.append({"interval": interval, "t": start + i * secs * 1000, "o": dec_str(q[0]), "h": dec_str(q[1]),
                        "l": dec_str(q[2]), "c": dec_str(q[3]), "v": dec_str(vol), "closed": True})
        return out


class SimSource:
    """The ``Source`` interface (see ``ingest/source.py``) backed by SimSymbol engines."""

    name = "sim"

    def __init__(self, exchange: str, options: dict[str, Any], depth: int, state_dir: Path) -> None:
        self.exchange = exchange
        self.opts = options
        self.depth = depth
        self.seed = int(options.get("seed", 1))
        self.update_hz = float(options.get("update_hz", 5.0))
        self.state_path = state_dir / f"sim-{exchange}.json"
        self.symbols: dict[tuple[str, str], SimSymbol] = {}
        self.listeners: dict[tuple[str, str], dict[str, set[asyncio.Queue[Any]]]] = {}
        self.engines: dict[tuple[str, str], asyncio.Task[None]] = {}
        self.candles: dict[tuple[str, str, str], Candle] = {}
        self._saved = self._load_state()

    def _load_state(self) -> dict[str, float]:
        try:
            doc = orjson.loads(self.state_path.read_bytes())
            return {k: float(v) for k, v in doc.items() if isinstance(v, int | float) and v > 0}
        except (OSError, orjson.JSONDecodeError, AttributeError):
            return {}

    def _save_state(self) -> None:
        doc = {f"{m}:{s}": sym.mid for (m, s), sym in self.symbols.items()}
        tmp = self.state_path.with_suffix(".tmp")
        try:
            tmp.write_bytes(orjson.dumps(doc))
            tmp.replace(self.state_path)
        except OSError:
            pass

    def symbol(self, market: str, symbol: str) -> SimSymbol:
        key = (market, symbol)
        if key not in self.symbols:
            prices = self.opts.get("prices") or {}
            start = float(prices.get(symbol, 100.0))
            ticks = self.opts.get("ticks") or {}
            tick = Decimal(str(ticks[symbol])) if symbol in ticks else default_tick(start)
            step = Decimal(str((self.opts.get("steps") or {}).get(symbol, "0.0001")))
            self.symbols[key] = SimSymbol(symbol, market, self._saved.get(f"{market}:{symbol}", start), tick, step,
                                          max(self.depth, int(self.opts.get("levels", 20))),
                                          float(self.opts.get("volatility", 0.8)),
                                          float(self.opts.get("trade_rate", 2.0)), self.seed)
        return self.symbols[key]

    async def connect(self) -> None:
        return None

    async def close(self) -> None:
        for task in self.engines.values():
            task.cancel()
        self._save_state()

    async def markets(self, wanted: list[tuple[str, str]]) -> dict[str, Any]:
        out = {}
        for market, symbol in wanted:
            self.symbol(market, symbol)  # any well-formed symbol exists on the sim exchange
        for (market, symbol), sym in self.symbols.items():
            out[f"{market}:{symbol}"] = {"market": market, "symbol": symbol, "tick": dec_str(sym.tick),
                                         "step": dec_str(sym.step_size), "min_qty": dec_str(sym.step_size),
                                         "min_notional": "1", "maker_fee": "0.0002", "taker_fee": "0.0005"}
        return out

    async def history(self, topic: Topic, limit: int) -> list[dict[str, Any]]:
        sym = self.symbol(topic.market, topic.symbol)
        interval = topic.interval or "1m"
        return sym.history(interval, limit, int(time.time() * 1000), self.seed)

    async def stream(self, topic: Topic) -> AsyncIterator[tuple[str, dict[str, Any], float | None]]:
        key = (topic.market, topic.symbol)
        self.symbol(*key)
        queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=1000)
        self.listeners.setdefault(key, {}).setdefault(topic.channel, set()).add(queue)
        if key not in self.engines or self.engines[key].done():
            self.engines[key] = asyncio.get_running_loop().create_task(self._engine(key))
        try:
            while True:
                yield await queue.get()
        finally:
            self.listeners[key][topic.channel].discard(queue)
            if not any(self.listeners[key].values()):
                self.engines.pop(key).cancel()

    def _emit(self, key: tuple[str, str], channel: str, item: tuple[str, dict[str, Any], float | None]) -> None:
        for queue in self.listeners.get(key, {}).get(channel, ()):
            if queue.full():
                queue.get_nowait()  # conflate: a slow consumer gets the newest, and the drop is counted upstream
            queue.put_nowait(item)

    async def _engine(self, key: tuple[str, str]) -> None:
        sym = self.symbols[key]
        dt = 1.0 / self.update_hz
        next_t = time.monotonic()
        last_save = last_funding = 0.0
        while True:
            now_ms = time.time() * 1000
            ev = sym.step(dt)
            book = {"bids": [[dec_str(p), dec_str(q)] for p, q in ev["bids"][:self.depth]],
                    "asks": [[dec_str(p), dec_str(q)] for p, q in ev["asks"][:self.depth]]}
            self._emit(key, "book", ("book", book, now_ms))
            if ev["trades"]:
                trades = [{"id": t["id"], "px": dec_str(t["px"]), "qty": dec_str(t["qty"]), "side": t["side"],
                           "ts": now_ms} for t in ev["trades"]]
                self._emit(key, "trades", ("trades", {"trades": trades}, now_ms))
                self._update_candles(key, ev["trades"], int(now_ms))
            self._emit(key, "ticker", ("ticker", {"bid": book["bids"][0][0], "ask": book["asks"][0][0],
                                                  "last": book["bids"][0][0], "volume": dec_str(sym.volume)}, now_ms))
            mono = time.monotonic()
            if sym.market == "perp" and mono - last_funding >= 1.0:
                last_funding = mono
                nxt = (int(now_ms) // 28_800_000 + 1) * 28_800_000
                self._emit(key, "funding", ("funding", {"rate": dec_str(round(sym.funding, 8)),
                                                        "next_ts": nxt, "mark": book["bids"][0][0]}, now_ms))
            if mono - last_save >= 5.0:
                last_save = mono
                self._save_state()
            next_t += dt
            await asyncio.sleep(max(0.0, next_t - time.monotonic()))

    def _update_candles(self, key: tuple[str, str], trades: list[dict[str, Any]], now_ms: int) -> None:
        for channel in list(self.listeners.get(key, {})):
            if not channel.startswith("kline.") or not self.listeners[key][channel]:
                continue
            interval = channel[6:]
            span = interval_seconds(interval) * 1000
            bucket = now_ms // span * span
            ckey = (key[0], key[1], interval)
            candle = self.candles.get(ckey)
            if candle is not None and candle.t != bucket:
                self._emit(key, channel, ("kline", candle.body(interval, True), now_ms))
                candle = None
            if candle is None:
                candle = self.candles[ckey] = Candle(bucket, trades[0]["px"])
            for t in trades:
                candle.add(t["px"], t["qty"])
            self._emit(key, channel, ("kline", candle.body(interval, False), now_ms))
