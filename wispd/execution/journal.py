"""The executor's durable journal: SQLite in WAL mode in the state directory.

Rules it exists to enforce (brief section 7):
- a signal id is recorded once per strategy; a replayed signal is a duplicate, never a second order;
- an order's intent row, with its deterministic client order id, is committed before the order is sent;
- every acknowledgement, update and fill is recorded, so after a crash the journal can be matched against
  the exchange (or the paper book) and nothing is sent twice.

Writes of one poll batch share one transaction (``commit``), so bursts cost one fsync, not one per signal.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections import OrderedDict
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

SCHEMA = """
CREATE TABLE IF NOT EXISTS signals (
    strategy TEXT NOT NULL, signal_id TEXT NOT NULL, received_ms REAL NOT NULL,
    status TEXT NOT NULL, reason TEXT NOT NULL DEFAULT '', payload BLOB,
    PRIMARY KEY (strategy, signal_id));
CREATE TABLE IF NOT EXISTS orders (
    client_id TEXT PRIMARY KEY, strategy TEXT NOT NULL, signal_id TEXT NOT NULL, action INTEGER NOT NULL,
    exchange TEXT NOT NULL, market TEXT NOT NULL, symbol TEXT NOT NULL, side TEXT NOT NULL,
    order_type TEXT NOT NULL, qty TEXT NOT NULL, price TEXT, tif TEXT NOT NULL, flags BLOB,
    status TEXT NOT NULL, filled TEXT NOT NULL DEFAULT '0', avg_price TEXT, fees TEXT NOT NULL DEFAULT '0',
    exchange_id TEXT, reason TEXT NOT NULL DEFAULT '', created_ms REAL NOT NULL, updated_ms REAL NOT NULL);
CREATE INDEX IF NOT EXISTS orders_status ON orders(status);
CREATE TABLE IF NOT EXISTS fills (
    id INTEGER PRIMARY KEY AUTOINCREMENT, client_id TEXT NOT NULL, ts_ms REAL NOT NULL, price TEXT NOT NULL,
    qty TEXT NOT NULL, fee TEXT NOT NULL, liquidity TEXT NOT NULL, trade_id TEXT);
CREATE TABLE IF NOT EXISTS positions (
    strategy TEXT NOT NULL, exchange TEXT NOT NULL, market TEXT NOT NULL, symbol TEXT NOT NULL,
    qty TEXT NOT NULL, avg_price TEXT NOT NULL, realized TEXT NOT NULL, fees TEXT NOT NULL,
    PRIMARY KEY (strategy, exchange, market, symbol));
CREATE TABLE IF NOT EXISTS balances (asset TEXT PRIMARY KEY, amount TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

OPEN_STATES = ("intent", "accepted", "open", "partially_filled")
ORDER_COLUMNS = ("client_id", "strategy", "signal_id", "action", "exchange", "market", "symbol", "side", "order_type",
                 "qty", "price", "tif")
ROW_CACHE = 10_000


def client_order_id(strategy: str, signal_id: str, action: int) -> str:
    """Deterministic from (strategy, signal id, action index): a replayed signal maps to the same order.

    32 characters of [0-9a-z], accepted as a client id by every exchange wispd talks to (Binance allows
    36, Bybit 36); exchanges that need another form derive it from this one.
    """
    digest = hashlib.sha256(f"{strategy}\x1f{signal_id}\x1f{action}".encode()).hexdigest()
    return "wd" + digest[:30]


def now_ms() -> float:
    return time.time() * 1000


class Journal:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(SCHEMA)
        self._migrate()
        self.db.row_factory = sqlite3.Row
        self._in_tx = False
        self._rows: OrderedDict[str, dict[str, Any]] = OrderedDict()  # write-through cache of order rows
        self.commits = 0
        self.commit_seconds: list[float] = []

    def _migrate(self) -> None:
        """Journals written by earlier versions lack the fills' trade id; add it (NULL for paper fills)."""
        cols = {r[1] for r in self.db.execute("PRAGMA table_info(fills)")}
        if "trade_id" not in cols:
            self.db.execute("ALTER TABLE fills ADD COLUMN trade_id TEXT")
        self.db.execute("CREATE UNIQUE INDEX IF NOT EXISTS fills_trade ON fills(trade_id) WHERE trade_id IS NOT NULL")
        self.db.execute("CREATE INDEX IF NOT EXISTS orders_exchange_id ON orders(exchange_id)")

    # ------------------------------------------------------------------ transactions
    def begin(self) -> None:
        if not self._in_tx:
            self.db.execute("BEGIN IMMEDIATE")
            self._in_tx = True

    def commit(self) -> float:
        """Make everything written since ``begin`` durable; returns the seconds the commit took."""
        if not self._in_tx:
            return 0.0
        t0 = time.perf_counter()
        self.db.execute("COMMIT")
        self._in_tx = False
        took = time.perf_counter() - t0
        self.commits += 1
        self.commit_seconds.append(took)
        del self.commit_seconds[:-1000]
        return took

    def close(self) -> None:
        if self._in_tx:
            self.commit()
        self.db.close()

    # ------------------------------------------------------------------ signals
    def record_signal(self, strategy: str, signal_id: str, status: str, reason: str, payload: Any) -> bool:
        """False if this (strategy, signal id) was seen before: a duplicate, never executed again."""
        self.begin()
        try:
            self.db.execute("INSERT INTO signals VALUES (?,?,?,?,?,?)",
                            (strategy, signal_id, now_ms(), status, reason, orjson.dumps(payload)))
            return True
        except sqlite3.IntegrityError:
            return False

    def set_signal_status(self, strategy: str, signal_id: str, status: str, reason: str = "") -> None:
        self.begin()
        self.db.execute("UPDATE signals SET status=?, reason=? WHERE strategy=? AND signal_id=?",
                        (status, reason, strategy, signal_id))

    def signal_payload(self, strategy: str, signal_id: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT payload FROM signals WHERE strategy=? AND signal_id=?",
                              (strategy, signal_id)).fetchone()
        return orjson.loads(row[0]) if row and row[0] else None

    # ------------------------------------------------------------------ orders
    def _remember(self, row: dict[str, Any]) -> None:
        self._rows[row["client_id"]] = row
        self._rows.move_to_end(row["client_id"])
        if len(self._rows) > ROW_CACHE:
            self._rows.popitem(last=False)

    def record_intent(self, o: dict[str, Any]) -> None:
        self.begin()
        t = now_ms()
        flags = orjson.dumps(o.get("flags") or {})
        self.db.execute(
            "INSERT INTO orders (client_id, strategy, signal_id, action, exchange, market, symbol, side, order_type,"
            " qty, price, tif, flags, status, created_ms, updated_ms) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (o["client_id"], o["strategy"], o["signal_id"], o["action"], o["exchange"], o["market"], o["symbol"],
             o["side"], o["order_type"], o["qty"], o["price"], o["tif"], flags, "intent", t, t))
        self._remember({**{k: o[k] for k in ORDER_COLUMNS if k in o}, "flags": flags, "status": "intent",
                        "filled": "0", "avg_price": None, "fees": "0", "exchange_id": None, "reason": "",
                        "created_ms": t, "updated_ms": t})

    def update_order(self, client_id: str, **fields: Any) -> None:
        self.begin()
        fields["updated_ms"] = now_ms()
        cols = ", ".join(f"{k}=?" for k in fields)
        self.db.execute(f"UPDATE orders SET {cols} WHERE client_id=?", (*fields.values(), client_id))
        cached = self._rows.get(client_id)
        if cached is not None:
            cached.update(fields)

    def record_fill(self, client_id: str, price: Decimal, qty: Decimal, fee: Decimal, liquidity: str,
                    trade_id: str | None = None) -> bool:
        """False if this exchange trade id is already journaled (a replayed fill is never counted twice)."""
        self.begin()
        try:
            self.db.execute("INSERT INTO fills (client_id, ts_ms, price, qty, fee, liquidity, trade_id)"
                            " VALUES (?,?,?,?,?,?,?)",
                            (client_id, now_ms(), str(price), str(qty), str(fee), liquidity, trade_id))
            return True
        except sqlite3.IntegrityError:
            return False

    def trade_ids(self, since_ms: float = 0) -> set[str]:
        rows = self.db.execute("SELECT trade_id FROM fills WHERE trade_id IS NOT NULL AND ts_ms >= ?", (since_ms,))
        return {r[0] for r in rows}

    def has_trade(self, trade_id: str) -> bool:
        return self.db.execute("SELECT 1 FROM fills WHERE trade_id=?", (trade_id,)).fetchone() is not None

    def client_id_of(self, exchange_id: str) -> str | None:
        row = self.db.execute("SELECT client_id FROM orders WHERE exchange_id=?", (exchange_id,)).fetchone()
        return row[0] if row else None

    def order(self, client_id: str) -> dict[str, Any] | None:
        """The order's row (from the write-through cache when this process wrote or read it recently)."""
        cached = self._rows.get(client_id)
        if cached is not None:
            return dict(cached)
        row = self.db.execute("SELECT * FROM orders WHERE client_id=?", (client_id,)).fetchone()
        if row is None:
            return None
        self._remember(dict(row))
        return dict(row)

    def orders(self, states: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
        if states is None:
            rows = self.db.execute("SELECT * FROM orders ORDER BY created_ms").fetchall()
        else:
            marks = ",".join("?" * len(states))
            rows = self.db.execute(f"SELECT * FROM orders WHERE status IN ({marks}) ORDER BY created_ms",
                                   states).fetchall()
        return [dict(r) for r in rows]

    # ------------------------------------------------------------------ positions and balances
    def save_position(self, strategy: str, exchange: str, market: str, symbol: str, qty: Decimal, avg: Decimal,
                      realized: Decimal, fees: Decimal) -> None:
        self.begin()
        self.db.execute("INSERT OR REPLACE INTO positions VALUES (?,?,?,?,?,?,?,?)",
                        (strategy, exchange, market, symbol, str(qty), str(avg), str(realized), str(fees)))

    def positions(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.db.execute("SELECT * FROM positions").fetchall()]

    def save_balance(self, asset: str, amount: Decimal) -> None:
        self.begin()
        self.db.execute("INSERT OR REPLACE INTO balances VALUES (?,?)", (asset, str(amount)))

    def balances(self) -> dict[str, Decimal]:
        return {r["asset"]: Decimal(r["amount"]) for r in self.db.execute("SELECT * FROM balances").fetchall()}

    def meta(self, key: str, value: str | None = None) -> str | None:
        if value is not None:
            self.begin()
            self.db.execute("INSERT OR REPLACE INTO meta VALUES (?,?)", (key, value))
            return value
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None
