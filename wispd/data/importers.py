"""Other people's market data into segments: Tardis CSV (``incremental_book_L2``, ``trades``) and OHLCV
files in freqtrade's layout (CSV, feather, parquet).

Everything becomes the frames our own ingestors publish, so a backtest cannot tell an imported day from
a recorded one:

- Tardis book deltas: rows are grouped into venue messages by ``local_timestamp`` (the capture time, which
  becomes the receive time); a snapshot after deltas clears the book; amount 0 removes a level; after each
  message the top ``depth`` levels go out as one ``book`` frame (our books are full top-N snapshots).
- Tardis trades: one ``trades`` frame per capture instant.
- OHLCV bars (candle-only data): each bar becomes its closed ``kline`` frame at the bar's close (never
  before: a strategy cannot see a bar it could not have seen live) and, so that orders can fill, four book
  frames walking the bar (the intrabar model): open at the bar's start, then the low and the high (low
  first on an up bar, high first on a down bar, each at a quarter of the bar), then the close at three
  quarters. Each book is one tick wide, with the bar's volume / 4 on each side: the bid at the price (the
  ask one tick above), except at the low, where the ask is at the low. Fills are therefore at prices the
  bar really traded at (a market buy pays one tick over, as across a spread), and a limit order fills
  when the bar reached its price.

Prices and sizes are copied as text (never through a float). Market rules (tick, lot step) are inferred
from the most decimal places seen unless given; fees default to 0.02 % maker / 0.05 % taker, or are given.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

from wispd import protocol
from wispd.data import store
from wispd.data.segments import T_FRAME, Record, write_segment
from wispd.protocol import Topic, dec_str, interval_seconds

QUOTES = ("USDT", "USDC", "FDUSD", "BUSD", "TUSD", "USD", "EUR", "BTC", "ETH", "BNB", "DAI")
HOUR_US = 3_600_000_000


class ImportError_(ValueError):
    """A file that cannot be imported: names the file, the row and what was expected."""


def our_symbol(raw: str) -> str:
    """``BTCUSDT``, ``BTC/USDT``, ``BTC_USDT``, ``BTC-USDT`` or ``BTC-PERPETUAL`` -> ``BTC-USDT`` style."""
    s = raw.upper().replace("/", "-").replace("_", "-").split(":")[0]
    if s.endswith("-PERPETUAL"):
        return s[: -len("-PERPETUAL")] + "-USD"
    if "-" in s:
        return s
    for q in QUOTES:
        if s.endswith(q) and len(s) > len(q):
            return f"{s[:-len(q)]}-{q}"
    raise ImportError_(f"cannot tell base from quote in symbol {raw!r}; give --symbol BASE-QUOTE")


def _places(text: str) -> int:
    return len(text.split(".", 1)[1].rstrip("0")) if "." in text else 0


class Sizes:
    """The finest price and size increments seen (for the inferred tick and lot step)."""

    def __init__(self) -> None:
        self.price, self.qty = 0, 0

    def see(self, price: str, qty: str) -> None:
        self.price, self.qty = max(self.price, _places(price)), max(self.qty, _places(qty))

    def rules(self, market: str, symbol: str, tick: str | None, step: str | None, maker: str, taker: str) -> dict[str, Any]:
        t = Decimal(tick) if tick else Decimal(1).scaleb(-self.price)
        s = Decimal(step) if step else Decimal(1).scaleb(-self.qty)
        return {"market": market, "symbol": symbol, "tick": dec_str(t), "step": dec_str(s), "min_qty": dec_str(s),
                "min_notional": "0", "maker_fee": maker, "taker_fee": taker}


class Writer:
    """Frames of one topic family into hourly segments (with the meta record of market rules first)."""

    def __init__(self, root: Path, exchange: str, origin: str) -> None:
        self.root, self.exchange, self.origin = root, exchange, origin
        self.records: list[Record] = []
        self.seq: dict[bytes, int] = {}
        self.epoch = 0
        self.hour: int | None = None
        self.written: list[Path] = []
        self.count = 0
        self.markets: dict[str, Any] = {}

    def frame(self, t_us: int, topic: bytes, kind: str, body: dict[str, Any], ts_exch: float | None) -> None:
        hour = t_us // HOUR_US
        if self.hour is not None and hour != self.hour:
            self.flush()
        self.hour = hour
        if not self.epoch:
            self.epoch = t_us // 1000 * 1000
        n = self.seq[topic] = self.seq.get(topic, 0) + 1
        env = {"v": protocol.SCHEMA_VERSION, "kind": kind, "src": f"import.{self.origin}", "epoch": self.epoch,
               "seq": n, "ts_exch": ts_exch, "ts_ingest": t_us / 1000, "body": body}
        self.records.append(Record(t_us, T_FRAME, topic + b" " + protocol.dumps(env)))
        self.count += 1

    def flush(self) -> None:
        if not self.records:
            return
        t0 = self.records[0].recv_us
        records = [store.meta_record(t0, {"exchange": self.exchange, "markets": self.markets,
                                          "recorder": self.origin})] + self.records
        path = store.segment_path(self.root, self.exchange, t0, self.origin)
        write_segment(path, records)
        self.written.append(path)
        self.records = []


def _rows(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        yield from enumerate(reader, start=2)


def _need(path: Path, n: int, row: dict[str, str], cols: tuple[str, ...]) -> None:
    missing = [c for c in cols if row.get(c) in (None, "")]
    if missing:
        raise ImportError_(f"{path}:{n}: missing {', '.join(missing)} (a Tardis file has columns "
                           f"{', '.join(cols)})")


def tardis_book(path: Path, root: Path, exchange: str, market: str, symbol: str | None = None, depth: int = 20,
                tick: str | None = None, step: str | None = None, maker: str = "0.0002",
                taker: str = "0.0005") -> dict[str, Any]:
    cols = ("exchange", "symbol", "timestamp", "local_timestamp", "is_snapshot", "side", "price", "amount")
    w = Writer(root, exchange, "tardis")
    books: dict[str, tuple[dict[Decimal, str], dict[Decimal, str]]] = {}
    texts: dict[Decimal, str] = {}
    sizes: dict[str, Sizes] = {}
    last_snapshot: dict[str, bool] = {}
    pending: tuple[int, str, float] | None = None

    def emit(local_us: int, sym: str, ts_ms: float) -> None:
        bids, asks = books[sym]
        body = {"bids": [[texts[p], bids[p]] for p in sorted(bids, reverse=True)[:depth]],
                "asks": [[texts[p], asks[p]] for p in sorted(asks)[:depth]]}
        w.frame(local_us, Topic(exchange, market, sym, "book").encode(), "book", body, ts_ms)

    for n, row in _rows(path):
        _need(path, n, row, cols)
        sym = symbol or our_symbol(row["symbol"])
        local_us, ts_ms = int(row["local_timestamp"]), int(row["timestamp"]) / 1000
        if pending is not None and (pending[0] != local_us or pending[1] != sym):
            emit(*pending)
        snap = row["is_snapshot"].strip().lower() == "true"
        if snap and not last_snapshot.get(sym, False):
            books[sym] = ({}, {})  # a snapshot after deltas: a new book
        last_snapshot[sym] = snap
        bids, asks = books.setdefault(sym, ({}, {}))
        side = row["side"].strip().lower()
        if side not in ("bid", "ask"):
            raise ImportError_(f"{path}:{n}: side {row['side']!r} (expected bid or ask)")
        try:
            price = Decimal(row["price"])
            amount = Decimal(row["amount"])
        except ArithmeticError:
            raise ImportError_(f"{path}:{n}: price {row['price']!r} / amount {row['amount']!r} are not numbers") from None
        levels = bids if side == "bid" else asks
        if amount == 0:
            levels.pop(price, None)
        else:
            texts.setdefault(price, row["price"])
            levels[price] = row["amount"]
        sizes.setdefault(sym, Sizes()).see(row["price"], row["amount"])
        pending = (local_us, sym, ts_ms)
    if pending is not None:
        emit(*pending)
    w.markets = {f"{market}:{s}": z.rules(market, s, tick, step, maker, taker) for s, z in sizes.items()}
    w.flush()
    return {"frames": w.count, "segments": [str(p) for p in w.written], "symbols": sorted(sizes)}


def tardis_trades(path: Path, root: Path, exchange: str, market: str, symbol: str | None = None,
                  tick: str | None = None, step: str | None = None, maker: str = "0.0002",
                  taker: str = "0.0005") -> dict[str, Any]:
    cols = ("exchange", "symbol", "timestamp", "local_timestamp", "id", "side", "price", "amount")
    w = Writer(root, exchange, "tardis")
    sizes: dict[str, Sizes] = {}
    batch: list[dict[str, Any]] = []
    key: tuple[int, str] | None = None

    def emit() -> None:
        if key is not None and batch:
            w.frame(key[0], Topic(exchange, market, key[1], "trades").encode(), "trades", {"trades": list(batch)},
                    batch[-1]["ts"])
        batch.clear()

    for n, row in _rows(path):
        _need(path, n, row, cols)
        sym = symbol or our_symbol(row["symbol"])
        local_us = int(row["local_timestamp"])
        if key != (local_us, sym):
            emit()
            key = (local_us, sym)
        side = row["side"].strip().lower()
        if side not in ("buy", "sell", "unknown"):
            raise ImportError_(f"{path}:{n}: side {row['side']!r} (expected buy, sell or unknown)")
        for col in ("price", "amount"):
            if protocol.to_decimal(row[col]) is None:
                raise ImportError_(f"{path}:{n}: {col} {row[col]!r} is not a number")
        batch.append({"id": row["id"], "px": row["price"], "qty": row["amount"], "side": side,
                      "ts": int(row["timestamp"]) / 1000})
        sizes.setdefault(sym, Sizes()).see(row["price"], row["amount"])
    emit()
    w.markets = {f"{market}:{s}": z.rules(market, s, tick, step, maker, taker) for s, z in sizes.items()}
    w.flush()
    return {"frames": w.count, "segments": [str(p) for p in w.written], "symbols": sorted(sizes)}


_FREQTRADE = re.compile(r"^(?P<pair>[A-Za-z0-9]+_[A-Za-z0-9]+)(?:_[A-Za-z0-9]+)?-(?P<tf>\d+[smhdwM])(?:-\w+)?\.(?:feather|parquet|csv|json)$")


def ohlcv_rows(path: Path) -> list[tuple[int, str, str, str, str, str]]:
    """(open time ms, o, h, l, c, v) from a freqtrade-style CSV, feather or parquet file."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        out = []
        for n, row in _rows(path):
            if not all(row.get(c) for c in ("date", "open", "high", "low", "close", "volume")):
                raise ImportError_(f"{path}:{n}: expected columns date,open,high,low,close,volume")
            out.append((_date_ms(row["date"], path, n), row["open"], row["high"], row["low"], row["close"],
                        row["volume"]))
        return out
    if suffix in (".feather", ".parquet"):
        try:
            import pyarrow.feather as feather
            import pyarrow.parquet as parquet
        except ModuleNotFoundError:
            raise ImportError_(f"{path}: reading {suffix} files needs pyarrow (pip install 'wispd[data]')") from None
        table = feather.read_table(path) if suffix == ".feather" else parquet.read_table(path)
        cols = table.column_names
        if not all(c in cols for c in ("date", "open", "high", "low", "close", "volume")):
            raise ImportError_(f"{path}: expected columns date,open,high,low,close,volume (has {', '.join(cols)})")
        data = table.to_pydict()
        out = []
        for i, d in enumerate(data["date"]):
            ms = int(d.timestamp() * 1000) if hasattr(d, "timestamp") else int(d)
            out.append((ms, *(repr(float(data[c][i])) if isinstance(data[c][i], float) else str(data[c][i])
                              for c in ("open", "high", "low", "close", "volume"))))
        return out  # type: ignore[return-value]
    raise ImportError_(f"{path}: expected a .csv, .feather or .parquet OHLCV file")


def _date_ms(text: str, path: Path, n: int) -> int:
    import calendar
    import time

    text = text.strip()
    if re.fullmatch(r"\d{10,13}", text):
        return int(text) if len(text) == 13 else int(text) * 1000
    for fmt in ("%Y-%m-%d %H:%M:%S%z", "%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S"):
        try:
            t = time.strptime(text.replace("+00:00", "+0000").replace("Z", "+0000"), fmt)
            return calendar.timegm(t) * 1000
        except ValueError:
            continue
    raise ImportError_(f"{path}:{n}: date {text!r} (expected epoch ms or YYYY-MM-DD HH:MM:SS[+00:00])")


def ohlcv(path: Path, root: Path, exchange: str, market: str, symbol: str | None = None,
          interval: str | None = None, tick: str | None = None, step: str | None = None, maker: str = "0.0002",
          taker: str = "0.0005") -> dict[str, Any]:
    named = _FREQTRADE.match(path.name)
    sym = symbol or (our_symbol(named.group("pair")) if named else None)
    tf = interval or (named.group("tf") if named else None)
    if sym is None or tf is None:
        raise ImportError_(f"{path}: give --symbol and --interval (or name the file as freqtrade does, "
                           "BTC_USDT-1m.feather)")
    span_ms = interval_seconds(tf) * 1000
    rows = sorted(ohlcv_rows(path))
    w = Writer(root, exchange, "ohlcv")
    sizes = Sizes()
    book_topic = Topic(exchange, market, sym, "book").encode()
    kline_topic = Topic(exchange, market, sym, f"kline.{tf}").encode()
    for t, o, h, low, c, v in rows:
        for x in (o, h, low, c):
            if protocol.to_decimal(x) is None:
                raise ImportError_(f"{path}: bar at {t}: {x!r} is not a price")
        sizes.see(o, v)
        for x in (h, low, c):
            sizes.see(x, "0")
    rules = sizes.rules(market, sym, tick, step, maker, taker)
    for t, o, h, low, c, v in rows:
        write_bar(w, book_topic, kline_topic, tf, span_ms, rules, t, o, h, low, c, v)
    w.markets = {f"{market}:{sym}": rules}
    w.flush()
    return {"frames": w.count, "segments": [str(p) for p in w.written], "symbols": [sym], "bars": len(rows)}


def write_bar(w: Writer, book_topic: bytes, kline_topic: bytes, tf: str, span_ms: int, rules: dict[str, Any],
              t: int, o: str, h: str, low: str, c: str, v: str) -> None:
    """One bar as the intrabar model's four books and its closed kline at the close (module docstring)."""
    tick_d = Decimal(rules["tick"])
    up = Decimal(c) >= Decimal(o)
    walk = [(o, ""), (low, "low"), (h, "high"), (c, "")] if up else [(o, ""), (h, "high"), (low, "low"), (c, "")]
    size = dec_str(max(Decimal(rules["step"]), Decimal(v) / 4)) if protocol.to_decimal(v) else rules["step"]
    for k, (price, where) in enumerate(walk):
        p = Decimal(price)  # at the low the ask touches it (a buy limit there fills), at the high the bid
        bid, ask = (p - tick_d, p) if where == "low" else (p, p + tick_d)
        body = {"bids": [[dec_str(bid), size]], "asks": [[dec_str(ask), size]]}
        w.frame((t + k * span_ms // 4) * 1000, book_topic, "book", body, float(t + k * span_ms // 4))
    w.frame((t + span_ms) * 1000 - 1, kline_topic, "kline",
            {"interval": tf, "t": t, "o": o, "h": h, "l": low, "c": c, "v": v, "closed": True}, float(t + span_ms))
