"""Order latency for a backtest taken from reality: the live acknowledgement latencies a journal recorded.

``wispctl backtest --latency journal:FILE``: every live order the executor sent was journaled with how long
the venue took to answer it (table ``acks``). A backtest's paper order then goes live after a latency drawn
from that distribution: of the order's exchange (of all exchanges when that one has none), the draw seeded
by the order's client id, so the same run draws the same latencies every time.
"""

from __future__ import annotations

import hashlib
import random
import sqlite3
from pathlib import Path
from typing import Any


class JournalLatency:
    def __init__(self, path: Path) -> None:
        self.path = path
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            rows = db.execute("SELECT exchange, latency_ms FROM acks ORDER BY ts_ms").fetchall()
        except sqlite3.OperationalError as exc:
            raise ValueError(f"{path} is not a wispd journal with acknowledgement latencies ({exc})") from None
        finally:
            db.close()
        if not rows:
            raise ValueError(f"{path} holds no live acknowledgement latencies (only live orders record them)")
        self.all = sorted(float(r[1]) for r in rows)
        self.by_exchange: dict[str, list[float]] = {}
        for exchange, ms in rows:
            self.by_exchange.setdefault(exchange, []).append(float(ms))

    def __call__(self, order: Any) -> float:
        pool = self.by_exchange.get(order.exchange) or self.all
        seed = int.from_bytes(hashlib.sha256(order.client_id.encode()).digest()[:8], "big")
        return pool[random.Random(seed).randrange(len(pool))]

    def describe(self) -> dict[str, Any]:
        n = len(self.all)
        return {"source": str(self.path), "acks": n, "p50_ms": self.all[n // 2], "p99_ms": self.all[min(n - 1, int(n * 0.99))],
                "exchanges": sorted(self.by_exchange)}


def parse(text: str | None) -> float | JournalLatency | None:
    """``--latency``: milliseconds, or ``journal:FILE``."""
    if text is None:
        return None
    if text.startswith("journal:"):
        return JournalLatency(Path(text[len("journal:"):]).expanduser())
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"--latency {text!r}: milliseconds (e.g. 20) or journal:FILE") from None
    if not 0 <= value <= 60_000:
        raise ValueError(f"--latency {text!r}: milliseconds from 0 to 60000")
    return value
