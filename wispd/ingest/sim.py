"""The built-in simulated exchange: no network, no keys, reproducible.

Each symbol's mid price follows a seeded geometric random walk (one RNG per symbol, seeded from the
configured seed and the symbol, so the same seed gives the same path step by step). Around it: a
multi-level book on the tick grid (1-2 tick spread, sizes growing with depth), Poisson trades at the best
bid or ask, candles of any interval from those trades, a ticker, and for perps a funding rate. Every
candle comes from the sim's recorded path (``sim_path.py``): a closed candle never changes, each opens at
the previous close, history and the live stream agree, and a restart continues the same walk.

Only the configured pairs exist (``serve_any = true`` serves any well-formed pair): a typo is an error
that names the close matches, not a market of its own.
"""
from __future__ import annotations

import asyncio
import difflib
import hashlib
import logging
import math
import random
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

from wispd import clock
from wispd.ingest.sim_path import KlineFeed, PathStore, SymbolPath
from wispd.protocol import Topic, dec_str

SECONDS_PER_YEAR = 365 * 24 * 3600
log = logging.getLogger("wispd.ingest.sim")


def _seed(seed: int, *parts: str) -> int:
    digest = hashlib.sha256(":".join([str(seed), *parts]).encode()).digest()
    return int.from_bytes(digest[:8], "big")


def default_tick(price: float) -> Decimal:
    """A tick about 1e-5 of the price, rounded down to a power of ten (60000 -> 0.1, 3000 -> 0.01)."""
    exp = math.floor(math.log10(price * 1e-5)) if price > 0 else -2
    return Decimal(1).scaleb(exp)


def symbol_sizes(options: dict[str, Any], symbol: str) -> tuple[float, Decimal, Decimal]:
    """Start price, tick and lot step of a sim symbol, from the exchange's ``sim`` options."""
    start = float((options.get("prices") or {}).get(symbol, 100.0))
    ticks = options.get("ticks") or {}
    tick = Decimal(str(ticks[symbol])) if symbol in ticks else default_tick(start)
    step = Decimal(str((options.get("steps") or {}).get(symbol, "0.0001")))
    return start, tick, step


def market_rules(market: str, symbol: str, tick: Decimal, step: Decimal) -> dict[str, Any]:
    """The rules the sim states for one of its markets (what its ingestor's ``markets`` answer carries)."""
    return {"market": market, "symbol": symbol, "tick": dec_str(tick), "step": dec_str(step),
            "min_qty": dec_str(step), "min_notional": "1", "maker_fee": "0.0002", "taker_fee": "0.0005"}


class SimSymbol:
    """One simulated instrument; ``step`` advances it by ``dt`` seconds and returns what happened."""

    def __init__(self, symbol: str, market: str, price: float, tick: Decimal, step_size: Decimal, levels: int,
                 volatility: float, trade_rate: float, seed: int, drift: float = 0.0) -> None:
        self.symbol, self.market = symbol, market
        self.rng = random.Random(_seed(seed, market, symbol))
        self.mid = price
        self.tick, self.step_size, self.levels = tick, step_size, levels
        self.sigma = volatility / math.sqrt(SECONDS_PER_YEAR)
        self.drift = drift / 86_400  # expected log-return per second
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
        self.mid *= math.exp(self.sigma * math.sqrt(dt) * shock + (self.drift - 0.5 * self.sigma ** 2) * dt)
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

    def engine_state(self) -> tuple[float, Any, int, Decimal]:
        return self.mid, self.rng.getstate(), self.trade_id, self.volume

    def restore(self, state: tuple[float, Any, int, Decimal]) -> None:
        self.mid, rng, self.trade_id, self.volume = state
        self.rng.setstate(rng)


class SimSource:
    """The ``Source`` interface (see ``ingest/source.py``) backed by SimSymbol engines."""

    name = "sim"

    def __init__(self, exchange: str, options: dict[str, Any], depth: int, state_dir: Path,
                 pairs: list[tuple[str, str]] | None = None) -> None:
        self.exchange = exchange
        self.opts = options
        self.depth = depth
        self.seed = int(options.get("seed", 1))
        self.update_hz = float(options.get("update_hz", 5.0))
        self.serve_any = bool(options.get("serve_any", False))
        self.pairs = {(m, s) for m, s in pairs or []}
        self.legacy_state = state_dir / f"sim-{exchange}.json"  # before the path store: the last mids
        self.store = PathStore(state_dir / f"sim-{exchange}.sqlite")
        self.symbols: dict[tuple[str, str], SimSymbol] = {}
        self.paths: dict[tuple[str, str], SymbolPath] = {}
        self.feeds: dict[tuple[str, str], dict[str, KlineFeed]] = {}
        self.listeners: dict[tuple[str, str], dict[str, set[asyncio.Queue[Any]]]] = {}
        self.engines: dict[tuple[str, str], asyncio.Task[None]] = {}
        self.last_trade: dict[tuple[str, str], Decimal] = {}
        self._saved = self._load_legacy()

    def _load_legacy(self) -> dict[str, float]:
        try:
            doc = orjson.loads(self.legacy_state.read_bytes())
            return {k: float(v) for k, v in doc.items() if isinstance(v, int | float) and v > 0}
        except (OSError, orjson.JSONDecodeError, AttributeError):
            return {}

    def unknown(self, market: str, symbol: str) -> str | None:
        """Why (market, symbol) is not served here, with the close matches; None when it is."""
        if self.serve_any or (market, symbol) in self.pairs:
            return None
        same = sorted(s for m, s in self.pairs if m == market)
        close = difflib.get_close_matches(symbol, same, n=3, cutoff=0.5)
        return (f"unknown pair {symbol} on {self.exchange} ({market})"
                + (f"; did you mean {' or '.join(close)}?" if close else "")
                + f" (configured: {', '.join(same) or 'none'}; the sim serves the configured pairs, "
                "or any with serve_any = true)")

    def symbol(self, market: str, symbol: str) -> SimSymbol:
        key = (market, symbol)
        if key not in self.symbols:
            start, tick, step = symbol_sizes(self.opts, symbol)
            sym = SimSymbol(symbol, market, self._saved.get(f"{market}:{symbol}", start), tick, step,
                            max(self.depth, int(self.opts.get("levels", 20))),
                            float(self.opts.get("volatility", 0.8)), float(self.opts.get("trade_rate", 2.0)),
                            self.seed, float(self.opts.get("drift", 0.0)))
            path = SymbolPath(self.store, market, symbol)
            saved = path.load_engine()
            if saved is not None:
                sym.restore(saved)  # the same walk, continued
            path.prehistory(sym.mid, sym.sigma, sym.drift, tick, step, float(self.opts.get("history_days", 30.0)),
                            _seed(self.seed, "history", market, symbol), int(clock.now_ms()))
            self.symbols[key], self.paths[key] = sym, path
        return self.symbols[key]

    async def connect(self) -> None:
        return None

    async def close(self) -> None:
        for task in self.engines.values():
            task.cancel()
        self.store.close()

    async def markets(self, wanted: list[tuple[str, str]]) -> dict[str, Any]:
        out = {}
        for market, symbol in wanted:
            if self.unknown(market, symbol) is None:
                self.symbol(market, symbol)
        for (market, symbol), sym in self.symbols.items():
            out[f"{market}:{symbol}"] = market_rules(market, symbol, sym.tick, sym.step_size)
        return out

    async def history(self, topic: Topic, limit: int) -> list[dict[str, Any]]:
        self.symbol(topic.market, topic.symbol)
        path = self.paths[(topic.market, topic.symbol)]
        closed, _ = path.candles(topic.interval or "1m", limit, int(clock.now_ms()))
        return [b.body(topic.interval or "1m", True) for b in closed]

    async def stream(self, topic: Topic) -> AsyncIterator[tuple[str, dict[str, Any], float | None]]:
        key = (topic.market, topic.symbol)
        self.symbol(*key)
        queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=1000)
        self.listeners.setdefault(key, {}).setdefault(topic.channel, set()).add(queue)
        if topic.interval is not None and topic.interval not in self.feeds.setdefault(key, {}):
            self.feeds[key][topic.interval] = KlineFeed(self.paths[key], topic.interval, int(clock.now_ms()))
        if key not in self.engines or self.engines[key].done():
            self.engines[key] = asyncio.get_running_loop().create_task(self._engine(key))
        try:
            while True:
                yield await queue.get()
        finally:
            self.listeners[key][topic.channel].discard(queue)
            if topic.interval is not None and not self.listeners[key][topic.channel]:
                self.feeds[key].pop(topic.interval, None)
            if not any(self.listeners[key].values()):
                self.engines.pop(key).cancel()

    def _emit(self, key: tuple[str, str], channel: str, item: tuple[str, dict[str, Any], float | None]) -> None:
        for queue in self.listeners.get(key, {}).get(channel, ()):
            if queue.full():
                queue.get_nowait()  # conflate: a slow consumer gets the newest, and the drop is counted upstream
            queue.put_nowait(item)

    def advance(self, key: tuple[str, str], now_ms: float, dt: float) -> None:
        """One step of one symbol at ``now_ms``: close the bars whose time is over (recorded first), move
        the price, print its trades, and publish book, trades, ticker and candles."""
        sym, path = self.symbols[key], self.paths[key]
        waiting = bool(path.pending)
        closed_secs, closed_mins = path.roll(int(now_ms), sym.engine_state())
        if bool(path.pending) != waiting:
            if path.pending:
                log.warning("sim path %s:%s cannot be written (disk full or read-only?): kept in memory and "
                            "retried each second", *key)
            else:
                log.info("sim path %s:%s written again", *key)
        ev = sym.step(dt)
        book = {"bids": [[dec_str(p), dec_str(q)] for p, q in ev["bids"][:self.depth]],
                "asks": [[dec_str(p), dec_str(q)] for p, q in ev["asks"][:self.depth]]}
        self._emit(key, "book", ("book", book, now_ms))
        for t in ev["trades"]:
            path.trade(t["px"], t["qty"], int(now_ms))
            self.last_trade[key] = t["px"]
        if ev["trades"]:
            trades = [{"id": t["id"], "px": dec_str(t["px"]), "qty": dec_str(t["qty"]), "side": t["side"],
                       "ts": now_ms} for t in ev["trades"]]
            self._emit(key, "trades", ("trades", {"trades": trades}, now_ms))
        for interval, feed in list(self.feeds.get(key, {}).items()):
            for body in feed.step(int(now_ms), closed_secs, closed_mins):
                self._emit(key, f"kline.{interval}", ("kline", body, now_ms))
            open_candle = feed.open_candle()
            if open_candle is not None:
                self._emit(key, f"kline.{interval}", ("kline", open_candle, now_ms))
        last = self.last_trade.get(key)
        self._emit(key, "ticker", ("ticker", {"bid": book["bids"][0][0], "ask": book["asks"][0][0],
                                              "last": dec_str(last) if last is not None else book["bids"][0][0],
                                              "volume": dec_str(sym.volume)}, now_ms))

    async def _engine(self, key: tuple[str, str]) -> None:
        sym = self.symbols[key]
        dt = 1.0 / self.update_hz
        next_t = time.monotonic()
        last_funding = 0.0
        while True:
            now_ms = time.time() * 1000
            self.advance(key, now_ms, dt)
            mono = time.monotonic()
            if sym.market == "perp" and mono - last_funding >= 1.0:
                last_funding = mono
                nxt = (int(now_ms) // 28_800_000 + 1) * 28_800_000
                self._emit(key, "funding", ("funding", {"rate": dec_str(round(sym.funding, 8)), "next_ts": nxt,
                                                        "mark": dec_str(sym._q(sym.mid, up=False))}, now_ms))
            next_t += dt
            await asyncio.sleep(max(0.0, next_t - time.monotonic()))
