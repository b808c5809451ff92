"""``wispctl data download``: OHLCV and public trades history of a configured exchange, through ccxt.

It uses the exchange exactly as its ingestor does (the same ccxt.pro class, options and, in tests, the
same loopback redirect), public endpoints only, no keys. Candles land as the importers' bars do (closed
kline frames at each bar's close plus the intrabar books, see ``importers.py``); trades as ``trades``
frames at their exchange time. The market rules the exchange states (tick, lot, fees) are the segments'
meta record, so a backtest of downloaded data checks orders against the real rules.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from wispd.data.importers import Writer, write_bar
from wispd.protocol import Topic, interval_seconds

PAGE = 1000


async def _download(args: dict[str, Any], root: Path, exchange: str, pairs: list[tuple[str, str]], interval: str | None,
                    trades: bool, t_from_ms: int, t_to_ms: int, progress: Any) -> dict[str, Any]:
    from wispd.ingest.ccxt_source import CcxtSource, ccxt_symbol

    src = CcxtSource(args)
    await src.connect()
    try:
        rules = await src.markets(pairs)
        missing = [f"{m} {s}" for m, s in pairs if f"{m}:{s}" not in rules]
        if missing:
            raise ValueError(f"{exchange} has no {', '.join(missing)}")
        out: dict[str, Any] = {"bars": 0, "trades": 0, "segments": []}
        for market, symbol in pairs:
            sym = ccxt_symbol(market, symbol, src.ex.markets)
            if interval:
                w = Writer(root, exchange, "download")
                w.markets = rules
                span = interval_seconds(interval) * 1000
                book, kline = (Topic(exchange, market, symbol, "book").encode(),
                               Topic(exchange, market, symbol, f"kline.{interval}").encode())
                since = t_from_ms // span * span
                while since < t_to_ms:
                    rows = await src.ex.fetch_ohlcv(sym, interval, since=since, limit=PAGE)
                    rows = [r for r in rows if since <= r[0] < t_to_ms and r[0] + span <= t_to_ms]
                    if not rows:
                        break
                    for r in rows:
                        bar = src._kline(r, interval, True)
                        write_bar(w, book, kline, interval, span, rules[f"{market}:{symbol}"], bar["t"], bar["o"],
                                  bar["h"], bar["l"], bar["c"], bar["v"])
                    out["bars"] += len(rows)
                    progress(f"{symbol} {interval}: {out['bars']} bars")
                    since = rows[-1][0] + span
                w.flush()
                out["segments"] += [str(p) for p in w.written]
            if trades:
                w = Writer(root, exchange, "download")
                w.markets = rules
                topic = Topic(exchange, market, symbol, "trades").encode()
                since, seen = t_from_ms, set()
                while since < t_to_ms:
                    page = await src.ex.fetch_trades(sym, since=since, limit=PAGE)
                    page = [t for t in page if t.get("timestamp") is not None and since <= t["timestamp"] < t_to_ms
                            and (t.get("id") not in seen)]
                    if not page:
                        break
                    by_ts: dict[int, list[dict[str, Any]]] = {}
                    for t in page:
                        seen.add(t.get("id"))
                        by_ts.setdefault(int(t["timestamp"]), []).append(
                            {"id": str(t.get("id")), "px": _text(t["price"]), "qty": _text(t["amount"]),
                             "side": t.get("side") or "unknown", "ts": float(t["timestamp"])})
                    for ts in sorted(by_ts):
                        w.frame(ts * 1000, topic, "trades", {"trades": by_ts[ts]}, float(ts))
                    out["trades"] += len(page)
                    progress(f"{symbol} trades: {out['trades']}")
                    since = max(by_ts) + (0 if len(page) >= PAGE else 1)
                    if len(page) < PAGE and since >= t_to_ms:
                        break
                w.flush()
                out["segments"] += [str(p) for p in w.written]
        return out
    finally:
        await src.close()


def _text(value: Any) -> str:
    from wispd.protocol import dec_str

    return dec_str(value)


def download(args: dict[str, Any], root: Path, exchange: str, pairs: list[tuple[str, str]], interval: str | None,
             trades: bool, t_from_ms: int, t_to_ms: int, progress: Any = print) -> dict[str, Any]:
    return asyncio.run(_download(args, root, exchange, pairs, interval, trades, t_from_ms, t_to_ms, progress))
