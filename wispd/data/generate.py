"""Recorded sim data without waiting for it: the sim exchange's own engine, stepped in virtual time.

``wispctl data generate`` runs the same ``SimSource`` an ingestor runs (the same seeded walk, books,
trades, tickers, funding and candles from its recorded path), at its configured update rate, but as fast
as the CPU allows, and writes the frames an ingestor would have published into hourly segments, as a
recorder would have. A day of default-config data takes about a minute instead of a day, which is what the
test suite and the benches replay.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from wispd import clock, protocol
from wispd.data import store
from wispd.data.segments import T_FRAME, Record, write_segment
from wispd.ingest.sim import SimSource
from wispd.ingest.sim_path import KlineFeed
from wispd.protocol import Topic

HOUR_US = 3_600_000_000
HISTORY_CANDLES = 1000  # per interval and pair, at the start of every segment (what klines() may ask for)


def generate(root: Path, exchange: str, options: dict[str, Any], pairs: list[tuple[str, str]], t_from_us: int,
             t_to_us: int, depth: int = 10, intervals: tuple[str, ...] = ("1m",), origin: str = "generated",
             on_hour: Any = None) -> dict[str, int]:
    """Write sim frames for ``pairs`` over [from, to) under ``root``; returns records per segment written."""
    vc = clock.VirtualClock(t_from_us / 1e6)
    clock.install(vc)
    written: dict[str, int] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="wispd-gen-") as tmp:
            sim = SimSource(exchange, options, depth, Path(tmp), pairs=pairs)
            out: list[Record] = []
            seq: dict[bytes, int] = {}
            epoch = t_from_us // 1000 * 1000

            def emit(key: tuple[str, str], channel: str, item: tuple[str, dict[str, Any], float | None]) -> None:
                kind, body, ts_exch = item
                topic = Topic(exchange, key[0], key[1], channel).encode()
                n = seq[topic] = seq.get(topic, 0) + 1
                frame = protocol.md_frame(topic, kind, f"ingestor.{exchange}", epoch, n, ts_exch, body)
                out.append(Record(int(vc.t * 1e6), T_FRAME, frame))

            sim._emit = emit  # type: ignore[method-assign]  # what the ingestor would publish, collected
            for market, symbol in pairs:
                sim.symbol(market, symbol)
                for interval in intervals:
                    sim.feeds.setdefault((market, symbol), {})[interval] = KlineFeed(
                        sim.paths[(market, symbol)], interval, int(vc.t * 1000))
            markets = _markets(sim, pairs)
            dt_us = int(1e6 / sim.update_hz)
            t = t_from_us
            hour_start = t
            last_funding = -10**18
            out.append(store.meta_record(t, {"exchange": exchange, "markets": markets, "recorder": origin}))
            out += _history(sim, exchange, pairs, intervals, t)
            while t < t_to_us:
                vc.t = t / 1e6
                for key in pairs:
                    sim.advance(key, t / 1000, dt_us / 1e6)
                    sym = sim.symbols[key]
                    if sym.market == "perp" and t - last_funding >= 1_000_000:
                        nxt = (t // 1000 // 28_800_000 + 1) * 28_800_000
                        emit(key, "funding", ("funding", {"rate": protocol.dec_str(round(sym.funding, 8)),
                                                          "next_ts": nxt,
                                                          "mark": protocol.dec_str(sym._q(sym.mid, up=False))},
                                              t / 1000))
                if any(sim.symbols[k].market == "perp" for k in pairs) and t - last_funding >= 1_000_000:
                    last_funding = t
                t += dt_us
                if t - hour_start >= HOUR_US or t >= t_to_us:
                    path = store.segment_path(root, exchange, hour_start, origin)
                    write_segment(path, out)
                    written[str(path)] = len(out)
                    if on_hour is not None:
                        on_hour(path, len(out))
                    out = [store.meta_record(t, {"exchange": exchange, "markets": markets, "recorder": origin}),
                           *_history(sim, exchange, pairs, intervals, t)]
                    hour_start = t
            sim.store.close()
    finally:
        clock.install(None)
    return written


def _history(sim: SimSource, exchange: str, pairs: list[tuple[str, str]], intervals: tuple[str, ...],
             t_us: int) -> list[Record]:
    """The candle history the sim's ingestor would serve at ``t_us`` (as the recorder stores it)."""
    import asyncio

    out = []
    for market, symbol in pairs:
        for interval in intervals:
            topic = Topic(exchange, market, symbol, f"kline.{interval}")
            candles = asyncio.run(sim.history(topic, HISTORY_CANDLES))
            out.append(store.history_record(t_us, topic.encode(), candles))
    return out


def _markets(sim: SimSource, pairs: list[tuple[str, str]]) -> dict[str, Any]:
    import asyncio

    return asyncio.run(sim.markets(pairs))
