"""``wispctl data export``: recorded data as Parquet tables, for pandas, polars, DuckDB or another backtester.

One file per kind of message, under the output directory:

- ``books.parquet``: recv_us, exchange, market, symbol, seq, ts_exch, bids, asks (levels as JSON text:
  prices and sizes stay exact decimal strings);
- ``trades.parquet``: recv_us, exchange, market, symbol, id, price, qty (decimal strings), side, ts;
- ``klines.parquet``: the closed candles, in freqtrade's columns (date, open, high, low, close, volume, as
  float64) plus exchange, market, symbol, interval;
- ``other.parquet``: tickers, funding and stale flags: recv_us, topic, kind, body (JSON text).

Needs pyarrow (``pip install 'wispd[data]'``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from wispd import protocol
from wispd.data import store
from wispd.data.segments import T_FRAME


def export_parquet(root: Path, out: Path, t_from_us: int | None = None, t_to_us: int | None = None,
                   topics: list[str] | None = None) -> dict[str, int]:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ModuleNotFoundError:
        raise RuntimeError("exporting Parquet needs pyarrow: pip install 'wispd[data]'") from None
    cols: dict[str, dict[str, list[Any]]] = {
        "books": {k: [] for k in ("recv_us", "exchange", "market", "symbol", "seq", "ts_exch", "bids", "asks")},
        "trades": {k: [] for k in ("recv_us", "exchange", "market", "symbol", "id", "price", "qty", "side", "ts")},
        "klines": {k: [] for k in ("date", "open", "high", "low", "close", "volume", "exchange", "market", "symbol",
                                   "interval")},
        "other": {k: [] for k in ("recv_us", "topic", "kind", "body")},
    }
    wanted = tuple(t.encode() for t in topics) if topics else None
    for rec in store.replay(root, t_from_us, t_to_us):
        if rec.type != T_FRAME or (wanted and not rec.data.startswith(wanted)):
            continue
        parsed = protocol.parse_md_frame(rec.data)
        topic = protocol.parse_topic(parsed[0]) if parsed else None
        if parsed is None or topic is None:
            continue
        env, body = parsed[1], parsed[1]["body"]
        if env["kind"] == "book":
            c = cols["books"]
            for k, v in (("recv_us", rec.recv_us), ("exchange", topic.exchange), ("market", topic.market),
                         ("symbol", topic.symbol), ("seq", env["seq"]), ("ts_exch", env.get("ts_exch")),
                         ("bids", orjson.dumps(body.get("bids")).decode()),
                         ("asks", orjson.dumps(body.get("asks")).decode())):
                c[k].append(v)
        elif env["kind"] == "trades":
            c = cols["trades"]
            for t in body.get("trades") or []:
                for k, v in (("recv_us", rec.recv_us), ("exchange", topic.exchange), ("market", topic.market),
                             ("symbol", topic.symbol), ("id", str(t.get("id"))), ("price", str(t.get("px"))),
                             ("qty", str(t.get("qty"))), ("side", str(t.get("side"))), ("ts", t.get("ts"))):
                    c[k].append(v)
        elif env["kind"] == "kline":
            if not body.get("closed"):
                continue
            c = cols["klines"]
            for k, v in (("date", body.get("t")), ("open", float(body["o"])), ("high", float(body["h"])),
                         ("low", float(body["l"])), ("close", float(body["c"])), ("volume", float(body["v"])),
                         ("exchange", topic.exchange), ("market", topic.market), ("symbol", topic.symbol),
                         ("interval", topic.interval)):
                c[k].append(v)
        else:
            c = cols["other"]
            for k, v in (("recv_us", rec.recv_us), ("topic", parsed[0].decode()), ("kind", env["kind"]),
                         ("body", orjson.dumps(body).decode())):
                c[k].append(v)
    out.mkdir(parents=True, exist_ok=True)
    counts = {}
    for name, data in cols.items():
        n = len(next(iter(data.values())))
        counts[name] = n
        if not n:
            continue
        table = pa.table(data)
        if name == "klines":
            table = table.set_column(0, "date", pa.array(data["date"], pa.int64()).cast(pa.timestamp("ms", tz="UTC")))
        pq.write_table(table, out / f"{name}.parquet")
    return counts
