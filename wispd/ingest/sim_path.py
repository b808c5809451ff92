"""The sim exchange's recorded path: every candle it ever showed, from the trades it printed.

Why: a simulated market is only useful for testing strategies if it behaves like a recorded one. A closed
candle never changes, every candle opens at the previous close, history and the live stream agree, a
restart of the sim continues where it stopped, and the same seed gives the same series. So the sim keeps
its path in SQLite (``<state_dir>/sim-<exchange>.sqlite``):

- ``bars``: closed one-minute bars (open, high, low, close, volume) per symbol; every longer interval is
  folded from them (buckets aligned to the epoch; weeks to Monday 00:00 UTC; "1M" is 30 days);
- ``secs``: closed one-second bars of the last ``SECOND_BARS_KEEP_S`` seconds, for intervals under a minute;
- ``engine``: each symbol's price, random-generator state and trade counter, saved with every second bar
  in the same transaction, so a restart (even after kill -9) resumes the same random walk.

A bar is written before it is shown as closed. Minutes in which the sim did not run (it was stopped) are
flat bars at the previous close with no volume. On first use of a symbol the path records its origin (time,
starting price, seed); the ``history_days`` of minute bars before it are derived from that record (a walk
seeded by (seed, market, symbol) that ends at the starting price), so indicators have values at once and
the file holds only what the sim actually printed.
"""

from __future__ import annotations

import json
import math
import pickle
import random
import sqlite3
from array import array
from decimal import Decimal
from pathlib import Path
from typing import Any

from wispd.protocol import dec_str, interval_seconds

WEEK_OFFSET_MS = 4 * 86_400_000  # the epoch was a Thursday; weeks start on Monday
SECOND_BARS_KEEP_S = 6 * 3600
MINUTE_MS = 60_000

SCHEMA = """
CREATE TABLE IF NOT EXISTS bars (market TEXT, symbol TEXT, t INTEGER, o TEXT, h TEXT, l TEXT, c TEXT, v TEXT,
                                 PRIMARY KEY (market, symbol, t));
CREATE TABLE IF NOT EXISTS secs (market TEXT, symbol TEXT, t INTEGER, o TEXT, h TEXT, l TEXT, c TEXT, v TEXT,
                                 PRIMARY KEY (market, symbol, t));
CREATE TABLE IF NOT EXISTS origin (market TEXT, symbol TEXT, t0 INTEGER, n INTEGER, start TEXT, seed TEXT, walk TEXT,
                                   PRIMARY KEY (market, symbol));
CREATE TABLE IF NOT EXISTS engine (market TEXT, symbol TEXT, mid REAL, rng BLOB, trade_id INTEGER, volume TEXT,
                                   PRIMARY KEY (market, symbol));
"""


def bucket(t_ms: int, span_ms: int) -> int:
    offset = WEEK_OFFSET_MS if span_ms % 604_800_000 == 0 else 0
    return (t_ms - offset) // span_ms * span_ms + offset


class Bar:
    __slots__ = ("t", "o", "h", "l", "c", "v")

    def __init__(self, t: int, o: Decimal, h: Decimal | None = None, low: Decimal | None = None,
                 c: Decimal | None = None, v: Decimal = Decimal(0)) -> None:
        self.t, self.o = t, o
        self.h, self.l, self.c, self.v = h if h is not None else o, low if low is not None else o, \
            c if c is not None else o, v

    def add(self, price: Decimal, qty: Decimal) -> None:
        self.h, self.l, self.c = max(self.h, price), min(self.l, price), price
        self.v += qty

    def fold(self, other: Bar) -> None:
        """Extend this bar by a later one (its open is this bar's close by construction)."""
        self.h, self.l, self.c, self.v = max(self.h, other.h), min(self.l, other.l), other.c, self.v + other.v

    def body(self, interval: str, closed: bool) -> dict[str, Any]:
        return {"interval": interval, "t": self.t, "o": dec_str(self.o), "h": dec_str(self.h), "l": dec_str(self.l),
                "c": dec_str(self.c), "v": dec_str(self.v), "closed": closed}

    def row(self) -> tuple[int, str, str, str, str, str]:
        return self.t, str(self.o), str(self.h), str(self.l), str(self.c), str(self.v)

    @classmethod
    def from_row(cls, r: tuple[Any, ...]) -> Bar:
        return cls(int(r[0]), Decimal(r[1]), Decimal(r[2]), Decimal(r[3]), Decimal(r[4]), Decimal(r[5]))


class PathStore:
    """The SQLite file behind every symbol's path of one sim exchange."""

    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")  # a sim's path, not money: survives kill -9 (WAL)
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        self.db.close()


class Prehistory:
    """The ``n`` minute bars before the path's origin, derived (never stored) from the seed, the origin
    time and the starting price, all three recorded: so they are the same on every read and every restart,
    and a sim's file stays small (the recorded path only)."""

    def __init__(self, t0: int, n: int, start: float, sigma_per_s: float, drift_per_s: float, tick: Decimal,
                 step: Decimal, seed: int) -> None:
        self.t0, self.n, self.tick, self.step = t0, n, tick, step
        self.start_ms = t0 - n * MINUTE_MS
        rng = random.Random(seed)
        sigma = sigma_per_s * math.sqrt(60)
        mu = drift_per_s * 60 - 0.5 * sigma ** 2
        closes = array("d", [start])
        for _ in range(n):
            closes.append(closes[-1] / math.exp(mu + sigma * rng.gauss(0, 1)))
        closes.reverse()
        self.closes = closes  # closes[i] opens bar i, closes[i + 1] closes it; closes[n] is the origin price
        self.highs, self.lows, self.vols = array("d"), array("d"), array("d")
        for i in range(n):
            wiggle = abs(rng.gauss(0, sigma / 2))
            self.highs.append(max(closes[i], closes[i + 1]) * (1 + wiggle))
            self.lows.append(min(closes[i], closes[i + 1]) * (1 - wiggle))
            self.vols.append(max(1, int(rng.expovariate(1.0) * 2000)))

    def q(self, x: float) -> Decimal:
        return Decimal(math.floor(x / float(self.tick))) * self.tick

    @property
    def last_close(self) -> Decimal:
        return self.q(self.closes[self.n])

    def close_before(self, t_ms: int) -> Decimal | None:
        """The close of the last bar starting before ``t_ms`` (None before the first)."""
        i = min(self.n, (t_ms - self.start_ms + MINUTE_MS - 1) // MINUTE_MS)
        return self.q(self.closes[i]) if i > 0 else None

    def bars(self, since_ms: int, span_ms: int) -> list[Bar]:
        """The pre-history from ``since_ms`` to the origin, folded into ``span_ms`` buckets."""
        out: list[Bar] = []
        i = max(0, (since_ms - self.start_ms) // MINUTE_MS)
        while i < self.n:
            t = bucket(self.start_ms + i * MINUTE_MS, span_ms)
            j = min(self.n, (t + span_ms - self.start_ms) // MINUTE_MS)
            out.append(Bar(t, self.q(self.closes[i]), self.q(max(self.highs[i:j])), self.q(min(self.lows[i:j])),
                           self.q(self.closes[j]), self.step * int(sum(self.vols[i:j]))))
            i = j
        return out


class SymbolPath:
    """One symbol's bars: the current second and minute being built, and what is recorded.

    Writes that fail (a full disk) are kept and retried with the next bar: the sim keeps running, its
    reads include what is waiting to be written, and nothing is lost unless the process dies before the
    disk comes back."""

    def __init__(self, store: PathStore, market: str, symbol: str) -> None:
        self.db, self.market, self.symbol = store.db, market, symbol
        self.sec: Bar | None = None
        self.minute: Bar | None = None
        self.pre: Prehistory | None = None
        self.pending: list[tuple[str, tuple[Any, ...]]] = []
        self.write_errors = 0
        last = self.db.execute("SELECT t, o, h, l, c, v FROM bars WHERE market=? AND symbol=? ORDER BY t DESC "
                               "LIMIT 1", (market, symbol)).fetchone()
        self.last_minute = Bar.from_row(last) if last else None
        last_sec = self.db.execute("SELECT t, o, h, l, c, v FROM secs WHERE market=? AND symbol=? ORDER BY t DESC "
                                   "LIMIT 1", (market, symbol)).fetchone()
        self.last_close = (Bar.from_row(last_sec).c if last_sec else None) or \
            (self.last_minute.c if self.last_minute else None)
        if last_sec is not None:  # the minute being built when the sim stopped: from its second bars
            start = bucket(int(last_sec[0]), MINUTE_MS)
            if self.last_minute is None or self.last_minute.t < start:
                for b in self._recorded("secs", start):
                    if self.minute is None:
                        self.minute = Bar(start, self.last_minute.c if self.last_minute else b.o)
                    self.minute.fold(b)

    # ------------------------------------------------------------------ engine state
    def load_engine(self) -> tuple[float, Any, int, Decimal] | None:
        row = self.db.execute("SELECT mid, rng, trade_id, volume FROM engine WHERE market=? AND symbol=?",
                              (self.market, self.symbol)).fetchone()
        if row is None:
            return None
        return float(row[0]), pickle.loads(row[1]), int(row[2]), Decimal(row[3])  # noqa: S301 - our own file

    def prehistory(self, start_price: float, sigma_per_s: float, drift_per_s: float, tick: Decimal,
                   step: Decimal, days: float, seed: int, now_ms: int) -> None:
        """``days`` of minute bars before the path's origin, ending at ``start_price``. The origin and the
        walk's parameters are recorded on first use, so a later change of the sim's volatility, drift or
        tick moves the future, never the past (a path recorded before any origin has no pre-history)."""
        row = self.db.execute("SELECT t0, n, start, seed, walk FROM origin WHERE market=? AND symbol=?",
                              (self.market, self.symbol)).fetchone()
        if row is None:
            if self.last_minute is not None or self.last_close is not None or days <= 0:
                return
            walk = json.dumps({"sigma": sigma_per_s, "drift": drift_per_s, "tick": str(tick), "step": str(step)})
            row = (bucket(now_ms, MINUTE_MS), int(days * 1440), repr(start_price), str(seed), walk)
            self._write([("origin", (self.market, self.symbol, *row))])
        w = json.loads(row[4])
        self.pre = Prehistory(int(row[0]), int(row[1]), float(row[2]), float(w["sigma"]), float(w["drift"]),
                              Decimal(w["tick"]), Decimal(w["step"]), int(row[3]))
        if self.last_close is None:
            self.last_close = self.pre.last_close

    # ------------------------------------------------------------------ live
    def trade(self, price: Decimal, qty: Decimal, now_ms: int) -> None:
        self._open(now_ms)
        assert self.sec is not None and self.minute is not None
        self.sec.add(price, qty)
        self.minute.add(price, qty)

    def _open(self, now_ms: int) -> None:
        if self.sec is None:
            self.sec = Bar(bucket(now_ms, 1000), self.last_close or Decimal(0))
        if self.minute is None:
            self.minute = Bar(bucket(now_ms, MINUTE_MS), self.last_close or Decimal(0))

    def roll(self, now_ms: int, engine: tuple[float, Any, int, Decimal]) -> tuple[list[Bar], list[Bar]]:
        """Close the bars whose time is over (recording them and the engine state first, in one
        transaction); returns (closed second bars, closed minute bars), oldest first."""
        if self.last_close is None:
            return [], []
        self._open(now_ms)
        assert self.sec is not None and self.minute is not None
        secs: list[Bar] = []
        mins: list[Bar] = []
        if self.sec.t < bucket(now_ms, 1000):
            secs.append(self.sec)
            self.last_close = self.sec.c
            self.sec = Bar(bucket(now_ms, 1000), self.last_close)
        if self.minute.t < bucket(now_ms, MINUTE_MS):
            mins.append(self.minute)
            self.minute = Bar(bucket(now_ms, MINUTE_MS), self.minute.c)
        if secs or mins:
            mid, rng, trade_id, volume = engine
            rows: list[tuple[str, tuple[Any, ...]]] = [("secs", (self.market, self.symbol, *b.row())) for b in secs]
            rows += [("bars", (self.market, self.symbol, *b.row())) for b in mins]
            rows.append(("engine", (self.market, self.symbol, mid, pickle.dumps(rng), trade_id, str(volume))))
            self._write(rows, prune_before=now_ms - SECOND_BARS_KEEP_S * 1000 if mins else None)
            if mins:
                self.last_minute = mins[-1]
        return secs, mins

    def _write(self, rows: list[tuple[str, tuple[Any, ...]]], prune_before: int | None = None) -> None:
        """Everything waiting and ``rows`` in one transaction; on failure all of it waits for the next."""
        todo = [r for r in self.pending if r[0] != "engine" or not any(x[0] == "engine" for x in rows)] + rows
        try:
            with self.db:
                self.db.execute("BEGIN")
                for table, row in todo:
                    marks = ",".join("?" * len(row))
                    self.db.execute(f"INSERT OR REPLACE INTO {table} VALUES ({marks})", row)  # noqa: S608
                if prune_before is not None:
                    self.db.execute("DELETE FROM secs WHERE market=? AND symbol=? AND t < ?",
                                    (self.market, self.symbol, prune_before))
        except sqlite3.Error:
            self.pending = todo
            self.write_errors += 1
            return
        self.pending = []

    # ------------------------------------------------------------------ reading
    def _recorded(self, table: str, since_ms: int) -> list[Bar]:
        rows = self.db.execute(f"SELECT t, o, h, l, c, v FROM {table} WHERE market=? AND symbol=? AND t >= ? "  # noqa: S608
                               "ORDER BY t", (self.market, self.symbol, since_ms)).fetchall()
        waiting = [r[2:] for t, r in self.pending if t == table and r[2] >= since_ms]
        return [Bar.from_row(r) for r in rows] + [Bar.from_row(r) for r in waiting]

    def _close_before(self, table: str, since_ms: int) -> Decimal | None:
        waiting = [r for t, r in self.pending if t == table and r[2] < since_ms]
        if waiting:
            return Decimal(waiting[-1][6])
        row = self.db.execute(f"SELECT c FROM {table} WHERE market=? AND symbol=? AND t < ? ORDER BY t DESC "  # noqa: S608
                              "LIMIT 1", (self.market, self.symbol, since_ms)).fetchone()
        if row:
            return Decimal(row[0])
        if self.pre is not None:
            return self.pre.close_before(since_ms)
        return None

    def candles(self, interval: str, limit: int, now_ms: int,
                include_current: bool = True) -> tuple[list[Bar], Bar | None]:
        """The last ``limit`` closed candles of ``interval`` and the open one (None before any data); the
        open one without the bar still being built when ``include_current`` is False."""
        secs = interval_seconds(interval)
        span = secs * 1000
        table = "secs" if secs < 60 else "bars"
        current = (self.sec if secs < 60 else self.minute) if include_current else None
        now_bucket = bucket(now_ms, span)
        since = now_bucket - limit * span
        bars = self._recorded(table, since)
        if table == "bars" and self.pre is not None and since < self.pre.t0:
            bars = self.pre.bars(since, span) + bars
        out: list[Bar] = []
        open_: Bar | None = None
        prev_close = self._close_before(table, since)
        for b in bars + ([current] if current is not None else []):
            if prev_close is not None:  # flat bars for the minutes the sim did not run
                gap = out[-1].t + span if out else None
                while gap is not None and gap < bucket(b.t, span):
                    out.append(Bar(gap, prev_close))
                    gap += span
            t = bucket(b.t, span)
            if out and out[-1].t == t:
                out[-1].fold(b)
            else:
                out.append(Bar(t, prev_close if prev_close is not None else b.o, b.h, b.l, b.c, b.v))
                if prev_close is not None:
                    out[-1].h, out[-1].l = max(out[-1].h, prev_close), min(out[-1].l, prev_close)
            prev_close = out[-1].c
        if out and out[-1].t == now_bucket:
            open_ = out.pop()
        elif prev_close is not None:
            while out and out[-1].t + span < now_bucket:  # the sim was stopped until now: flat to here
                out.append(Bar(out[-1].t + span, prev_close))
            open_ = Bar(now_bucket, prev_close)
        return out[-limit:], open_


class KlineFeed:
    """The live candles of one interval of one symbol, folded from the same bars history is read from, so
    a candle shown open and then closed is exactly the one history returns afterwards."""

    def __init__(self, path: SymbolPath, interval: str, now_ms: int) -> None:
        self.path, self.interval = path, interval
        self.secs = interval_seconds(interval)
        self.span = self.secs * 1000
        _, acc = path.candles(interval, 1, now_ms, include_current=False)
        self.acc = acc  # the open candle from closed base bars only

    def step(self, now_ms: int, closed_secs: list[Bar], closed_mins: list[Bar]) -> list[dict[str, Any]]:
        """After a roll: the candle bodies to publish (closed ones first, then the open one)."""
        out: list[dict[str, Any]] = []
        if self.acc is None:
            _, self.acc = self.path.candles(self.interval, 1, now_ms, include_current=False)
            if self.acc is None:
                return out
        for b in closed_secs if self.secs < 60 else closed_mins:
            while bucket(b.t, self.span) > self.acc.t:
                out.append(self.acc.body(self.interval, True))
                self.acc = Bar(self.acc.t + self.span, self.acc.c)
            self.acc.fold(b)
        while bucket(now_ms, self.span) > self.acc.t:
            out.append(self.acc.body(self.interval, True))
            self.acc = Bar(self.acc.t + self.span, self.acc.c)
        return out

    def open_candle(self) -> dict[str, Any] | None:
        if self.acc is None:
            return None
        candle = Bar(self.acc.t, self.acc.o, self.acc.h, self.acc.l, self.acc.c, self.acc.v)
        current = self.path.sec if self.secs < 60 else self.path.minute
        if current is not None and bucket(current.t, self.span) == candle.t:
            candle.fold(current)
        return candle.body(self.interval, False)
