"""The executor's durable journal: SQLite in WAL mode in the state directory.

Rules it exists to enforce (brief section 7):
- a signal id is recorded once per strategy; a replayed signal is a duplicate, never a second order;
- an order's intent row, with its deterministic client order id, is committed before the order is sent;
- every acknowledgement, update and fill is recorded, so after a crash the journal can be matched against
  the exchange (or the paper book) and nothing is sent twice.

Writes of one poll batch share one transaction (``commit``), so bursts cost one fsync, not one per signal.

Which commits are synced (measured in docs/BENCHMARKS.md): a commit is fsynced only when something is about
to leave (``commit(durable=True)``: the executor asks for it when its outbox holds orders), which is what
the money-safety rule needs: an intent durable before its order is sent. Every other commit (fills,
acknowledgements, statuses) is a WAL commit without fsync: it survives kill -9 of the executor (the WAL is
in the page cache), and only a power loss could take the last ones back, which the next durable commit
(its fsync covers the whole WAL) or reconciliation against the venue (fills by trade id) makes good. The
connection runs ``synchronous=NORMAL`` and a durable commit fsyncs the WAL file itself, which is what
``synchronous=FULL`` does at every commit.

Rows written many times per batch (positions, balances, sub-ledgers, marks) and an order's successive
updates are kept and written once per key when the batch commits (``_defer``): a burst on one pair writes
its position once, and an order's accepted/filled/done updates are one UPDATE. Every read of those
tables writes them out first, and a signal's savepoint undoes its deferred writes too.

A journal that cannot be written (disk full, read-only, I/O error) does not crash its executor: the write
that failed and every later one are kept in order in memory (the *backlog*) and replayed in one
transaction as soon as a commit succeeds again (``healthy`` tells the executor, which halts its account
meanwhile). The executor's memory already holds what the backlog says, so a replay makes the file agree
with it again; nothing is reported before the commit that records it.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import sqlite3
import struct
import time
from collections import OrderedDict
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

from wispd import clock

# Every B-tree a commit touches is a 4 KB page in the WAL, written, fsynced and later copied back: the small
# keyed tables (positions, balances, sub-ledgers, marks, meta) are WITHOUT ROWID (one B-tree, not a table
# and its key index), fills take the plain INTEGER PRIMARY KEY (AUTOINCREMENT wrote sqlite_sequence at every
# fill; fills are never deleted, so ids still only grow) and the orders' optional columns have partial
# indexes. A signal filled at once wrote 18.1 WAL pages, now 12.0 (bench/order_stages.py counts them).
# Journals created before keep their tables as they are: the same columns, the same statements.
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
    id INTEGER PRIMARY KEY, client_id TEXT NOT NULL, ts_ms REAL NOT NULL, price TEXT NOT NULL,
    qty TEXT NOT NULL, fee TEXT NOT NULL, liquidity TEXT NOT NULL, trade_id TEXT);
CREATE TABLE IF NOT EXISTS positions (
    strategy TEXT NOT NULL, exchange TEXT NOT NULL, market TEXT NOT NULL, symbol TEXT NOT NULL,
    qty TEXT NOT NULL, avg_price TEXT NOT NULL, realized TEXT NOT NULL, fees TEXT NOT NULL,
    PRIMARY KEY (strategy, exchange, market, symbol)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS balances (asset TEXT PRIMARY KEY, amount TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS subledgers (
    strategy TEXT NOT NULL, asset TEXT NOT NULL, held TEXT NOT NULL, funded TEXT NOT NULL,
    PRIMARY KEY (strategy, asset)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS marks (
    exchange TEXT NOT NULL, market TEXT NOT NULL, symbol TEXT NOT NULL, price TEXT NOT NULL, ts_ms REAL NOT NULL,
    PRIMARY KEY (exchange, market, symbol)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS acks (
    client_id TEXT PRIMARY KEY, exchange TEXT NOT NULL, ts_ms REAL NOT NULL, latency_ms REAL NOT NULL);
CREATE TABLE IF NOT EXISTS funding (
    strategy TEXT NOT NULL, exchange TEXT NOT NULL, market TEXT NOT NULL, symbol TEXT NOT NULL,
    funding_ts INTEGER NOT NULL, ts_ms REAL NOT NULL, rate TEXT NOT NULL, mark TEXT NOT NULL, qty TEXT NOT NULL,
    amount TEXT NOT NULL, PRIMARY KEY (strategy, exchange, market, symbol, funding_ts));
"""

OPEN_STATES = ("armed", "intent", "accepted", "open", "partially_filled")
FINAL_STATES = ("filled", "cancelled", "rejected")
RETRY_S = 1.0  # a faulted journal tries to replay its backlog at most this often
ORDER_COLUMNS = ("client_id", "strategy", "signal_id", "action", "exchange", "market", "symbol", "side", "order_type",
                 "qty", "price", "tif")
ROW_CACHE = 10_000
# Checkpoints (the WAL copied back into the database file, with an fsync of each) run where no signal waits
# for them: ``checkpoint_if_due`` at the end of the executor's pass, once its reports are out, when the WAL
# holds this many pages, as SQLite's own would. That one ran inside whichever commit crossed 1,000 pages (an
# intents commit too, between a signal and its order): it stays only as the backstop, at BACKSTOP_PAGES.
CHECKPOINT_PAGES = 1000
BACKSTOP_PAGES = 4000


def client_order_id(strategy: str, signal_id: str, action: int | str) -> str:
    """Deterministic from (strategy, signal id, action index): a replayed signal maps to the same order.

    32 characters of [0-9a-z], accepted as a client id by every exchange wispd talks to (Binance allows
    36, Bybit 36); exchanges that need another form derive it from this one.
    """
    digest = hashlib.sha256(f"{strategy}\x1f{signal_id}\x1f{action}".encode()).hexdigest()
    return "wd" + digest[:30]


def wal_frames(path: Path) -> int:
    """Frames (pages) in a journal's WAL since it was last rewound, read without a checkpoint (asking SQLite
    through a connection would run one)."""
    fd = os.open(f"{path}-shm", os.O_RDONLY | os.O_CLOEXEC)
    try:
        return _wal_frames(fd)
    finally:
        os.close(fd)


def _wal_frames(shm_fd: int) -> int:
    """``mxFrame`` of the wal-index header: byte 16 of the -shm file (https://www.sqlite.org/walformat.html),
    in the machine's byte order. Read while the writer may change it: good for deciding when to checkpoint,
    which is all it is used for."""
    return int(struct.unpack_from("=I", os.pread(shm_fd, 48, 0), 16)[0])


def now_ms() -> float:
    return clock.now_ms()


class JournalLocked(RuntimeError):
    """Another process holds this journal: two writers would make two orders of one intent."""


def lock_journal(path: Path) -> int:
    """An exclusive flock on ``<journal>.lock`` for as long as this process lives (a lock dies with its
    holder, so a killed executor never leaves a stale one)."""
    lock = path.with_name(path.name + ".lock")
    fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
        os.close(fd)
        raise JournalLocked(f"journal {path} is in use by another executor (pid {holder})") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


class Journal:
    def __init__(self, path: Path, power_safe: bool = True, hold_commits: int = 0) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.power_safe = power_safe  # False in a backtest: nothing there is real money, so no fsync
        # A backtest's journal is only read once the run is over: its commits are held until this many
        # writes are waiting (or it is closed), the same rows in a few large transactions. 0: every commit.
        self.hold_commits = hold_commits
        self._lock_fd = lock_journal(path)
        self.db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")  # a durable commit fsyncs the WAL itself (see above)
        self.db.execute(f"PRAGMA wal_autocheckpoint={BACKSTOP_PAGES}")  # (see CHECKPOINT_PAGES)
        if hold_commits:  # a held transaction stays in memory (up to 64 MB) instead of spilling pages mid-way
            self.db.execute("PRAGMA cache_size=-65536")
        self.db.executescript(SCHEMA)
        self._migrate()
        for suffix in ("", "-wal", "-shm", ".lock"):
            try:
                os.chmod(f"{path}{suffix}", 0o600)  # journals hold what every strategy did: owner only
            except OSError:
                pass
        self.db.row_factory = sqlite3.Row
        self._in_tx = False
        self._ops: list[tuple[str, tuple[Any, ...]]] = []  # this transaction's writes, in order
        self.backlog: list[tuple[str, tuple[Any, ...]]] = []  # writes not yet durable because the file failed
        self.fault: str | None = None  # why the journal cannot be written right now
        self._next_retry = 0.0
        self._undo: list[tuple[str, dict[str, Any] | None]] | None = None  # cache changes since the savepoint
        self._mark = 0
        self._rows: OrderedDict[str, dict[str, Any]] = OrderedDict()  # write-through cache of order rows
        self.open_rows: dict[str, dict[str, Any]] = {  # every order that is not final, kept current here
            r["client_id"]: dict(r) for r in self.db.execute(
                f"SELECT * FROM orders WHERE status IN ({','.join('?' * len(OPEN_STATES))}) ORDER BY created_ms",
                OPEN_STATES)}
        self.commits = 0
        self.syncs = 0
        self.checkpoints = 0
        self._committed_since_checkpoint = False
        self._shm_fd: int | None = None  # the wal-index, read to see how full the WAL is
        self.commit_seconds: list[float] = []
        self._deferred: dict[tuple[Any, ...], tuple[str, Any]] = {}  # key -> (sql, params) or ("order", fields)
        self._deferred_undo: list[tuple[tuple[Any, ...], tuple[str, Any] | None]] | None = None
        self._unsynced = False  # a commit since the last fsync of the WAL
        self._closing = False
        self._wal_fd: int | None = None

    def children(self, parent: str) -> list[dict[str, Any]]:
        """The exit legs of a bracket entry, working or finished."""
        self._flush_deferred()
        rows = self.db.execute("SELECT * FROM orders WHERE parent=?", (parent,)).fetchall()
        out = {r["client_id"]: dict(r) for r in rows}
        for cid, row in self.open_rows.items():  # what this pass wrote and did not commit yet
            if row.get("parent") == parent:
                out[cid] = dict(row)
        for cid, row in self._rows.items():
            if row.get("parent") == parent:
                out[cid] = dict(row)
        return list(out.values())

    def _migrate(self) -> None:
        """Journals written by earlier versions lack some fill columns (the trade id: NULL for paper fills;
        what a fill realised and whose it was, for ``wispctl trades``); add them."""
        cols = {r[1] for r in self.db.execute("PRAGMA table_info(fills)")}
        for col in ("trade_id", "realized", "strategy", "exchange", "market", "symbol", "side"):
            if col not in cols:
                self.db.execute(f"ALTER TABLE fills ADD COLUMN {col} TEXT")
        self.db.execute("CREATE UNIQUE INDEX IF NOT EXISTS fills_trade ON fills(trade_id) WHERE trade_id IS NOT NULL")
        # Only orders that have one are indexed (paper orders have no exchange id, and only a bracket's exit
        # legs have a parent): an order's insert then touches two index pages fewer. Journals written before
        # keep their rows; their full indexes are replaced once.
        self.db.execute("DROP INDEX IF EXISTS orders_exchange_id")
        self.db.execute("CREATE INDEX IF NOT EXISTS orders_exchange_id_set ON orders(exchange_id)"
                        " WHERE exchange_id IS NOT NULL")
        if "parent" not in {r[1] for r in self.db.execute("PRAGMA table_info(orders)")}:
            self.db.execute("ALTER TABLE orders ADD COLUMN parent TEXT")
        self.db.execute("DROP INDEX IF EXISTS orders_parent")
        self.db.execute("CREATE INDEX IF NOT EXISTS orders_parent_set ON orders(parent) WHERE parent IS NOT NULL")

    # ------------------------------------------------------------------ writes and transactions
    @property
    def healthy(self) -> bool:
        return self.fault is None

    def _failed(self, exc: Exception) -> None:
        """The file refused a write or a commit: keep this transaction's writes for the replay."""
        if self.fault is None:
            self.fault = f"{type(exc).__name__}: {exc}"
        if self._in_tx:
            try:
                self.db.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            self._in_tx = False
        self._mark += len(self.backlog)  # an open savepoint now starts inside the backlog
        self.backlog += self._ops
        self._ops = []
        self._next_retry = time.monotonic() + RETRY_S

    def _write(self, sql: str, params: tuple[Any, ...]) -> None:
        if self.fault is not None:
            self.backlog.append((sql, params))
            return
        try:
            if not self._in_tx:
                self.db.execute("BEGIN IMMEDIATE")
                self._in_tx = True
            self.db.execute(sql, params)
        except sqlite3.IntegrityError:
            raise
        except sqlite3.Error as exc:
            self._failed(exc)
            self.backlog.append((sql, params))
            return
        self._ops.append((sql, params))

    def _defer(self, key: tuple[Any, ...], entry: tuple[str, Any]) -> None:
        if self._deferred_undo is not None:
            self._deferred_undo.append((key, self._deferred.get(key)))
        self._deferred[key] = entry

    def _flush_deferred(self) -> None:
        """Write what was deferred, one statement per key, into the open transaction."""
        if not self._deferred:
            return
        deferred, self._deferred = self._deferred, {}
        for key, (sql, params) in deferred.items():
            if sql == "order":
                cols = ", ".join(f"{k}=?" for k in params)
                self._write(f"UPDATE orders SET {cols} WHERE client_id=?", (*params.values(), key[1]))
            else:
                self._write(sql, params)

    def commit(self, durable: bool = True) -> float:
        """Commit everything written since the last commit; with ``durable`` also fsync the WAL (so it
        survives a power loss, not only a crash of this process). Returns the seconds it took.

        While faulted, this is where the backlog is replayed (at most once per ``RETRY_S``). A journal that
        holds its commits (a backtest) holds its deferred row updates too: an order's later updates, and a
        position's or balance's, merge into one statement each (anything reading the file flushes them)."""
        if self.hold_commits and not self._closing and self.fault is None and \
                len(self._ops) + len(self._deferred) < self.hold_commits:
            return 0.0
        self._flush_deferred()
        if self.fault is not None:
            return self._replay()
        if not self._in_tx:
            return self._sync() if durable and self._unsynced and self.power_safe else 0.0
        t0 = time.perf_counter()
        try:
            self.db.execute("COMMIT")
        except sqlite3.Error as exc:
            self._failed(exc)
            return 0.0
        self._in_tx = False
        self._committed_since_checkpoint = True
        self._ops = []
        self._mark = 0
        self._unsynced = True
        if durable and self.power_safe:
            self._sync()
        took = time.perf_counter() - t0
        self.commits += 1
        self.commit_seconds.append(took)
        del self.commit_seconds[:-1000]
        return took

    def checkpoint_if_due(self) -> bool:
        """Copy the WAL back into the database file if it holds ``CHECKPOINT_PAGES`` (PASSIVE: it never waits
        for a reader); the next commit then rewinds it. The caller picks the moment: between passes, with
        nothing waiting on it. A failed checkpoint loses nothing (the WAL keeps every frame) and is tried again
        after the next commit."""
        if not self._committed_since_checkpoint or self._in_tx or self.fault is not None:
            return False
        try:
            if self._shm_fd is None:
                self._shm_fd = os.open(f"{self.path}-shm", os.O_RDONLY | os.O_CLOEXEC)
            if _wal_frames(self._shm_fd) < CHECKPOINT_PAGES:
                return False
        except OSError:
            return False
        self._committed_since_checkpoint = False
        try:
            self.db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error:
            return False
        self.checkpoints += 1
        return True

    def _sync(self) -> float:
        """fsync the WAL file: every commit so far is then on disk. A failed fsync is a journal fault (the
        executor halts the account: nothing leaves whose intent may not be on disk).

        ``fdatasync``, as SQLite itself syncs on Linux: the data and what is needed to read it back (the
        file's size when it grew), without the modification time, whose inode update was an extra journal
        write of the file system on every sync (this machine, 48 KB written then synced: p90 230-240 against
        309-331 us)."""
        t0 = time.perf_counter()
        wal = f"{self.path}-wal"
        try:
            if self._wal_fd is not None and os.fstat(self._wal_fd).st_ino != os.stat(wal).st_ino:
                os.close(self._wal_fd)
                self._wal_fd = None
            if self._wal_fd is None:
                self._wal_fd = os.open(wal, os.O_RDONLY | os.O_CLOEXEC)
            os.fdatasync(self._wal_fd)
        except FileNotFoundError:  # no WAL yet: nothing was ever committed to one
            pass
        except OSError as exc:
            if self.fault is None:
                self.fault = f"fsync failed: {exc}"
            self._next_retry = time.monotonic() + RETRY_S
            return 0.0
        self._unsynced = False
        self.syncs += 1
        return time.perf_counter() - t0

    def _replay(self) -> float:
        if time.monotonic() < self._next_retry:
            return 0.0
        self._next_retry = time.monotonic() + RETRY_S
        t0 = time.perf_counter()
        try:
            self.db.execute("BEGIN IMMEDIATE")
            for sql, params in self.backlog:
                try:
                    self.db.execute(sql, params)
                except sqlite3.IntegrityError:
                    pass  # already there (a row the failed commit did write): the file agrees already
            self.db.execute("COMMIT")
        except sqlite3.Error as exc:
            try:
                self.db.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            self.fault = f"{type(exc).__name__}: {exc}"
            return 0.0
        self.backlog, self.fault = [], None
        self.commits += 1
        self._sync()  # a replayed backlog holds intents: on disk before anything leaves again
        return time.perf_counter() - t0

    def savepoint(self) -> None:
        """Start one signal's writes: ``rollback_to_savepoint`` undoes exactly those (file and caches).

        No SQL here: every write of the open transaction is in ``_ops`` (the list a failed commit is
        replayed from), so a rollback rolls the transaction back and writes again what came before the
        mark. That costs something only when a signal fails half-way (an internal error), instead of two
        statements (SAVEPOINT, RELEASE) for every signal."""
        self._mark = len(self.backlog) if self.fault is not None else len(self._ops)
        self._undo = []
        self._deferred_undo = []

    def release_savepoint(self) -> None:
        self._undo = None
        self._deferred_undo = None

    def rollback_to_savepoint(self) -> None:
        if self.fault is None and self._in_tx:
            keep, self._ops = self._ops[:self._mark], []
            try:
                self.db.execute("ROLLBACK")
            except sqlite3.Error:
                pass  # no transaction left to undo: the same outcome
            self._in_tx = False
            self._ops = keep
            if keep:
                try:
                    self.db.execute("BEGIN IMMEDIATE")
                    self._in_tx = True
                    for sql, params in keep:
                        self.db.execute(sql, params)
                except sqlite3.Error as exc:  # a journal fault: the backlog keeps them all
                    self._failed(exc)
        elif self.fault is not None:
            del self.backlog[self._mark:]
        for client_id, before in reversed(self._undo or []):
            if before is None:
                self._rows.pop(client_id, None)
                self.open_rows.pop(client_id, None)
            else:
                self._cache(before)
        self._undo = None
        for key, entry in reversed(self._deferred_undo or []):
            if entry is None:
                self._deferred.pop(key, None)
            else:
                self._deferred[key] = entry
        self._deferred_undo = None

    def close(self) -> None:
        self._closing = True
        if self._in_tx or self._deferred or self.fault is not None:  # nothing written or deferred is lost
            self._next_retry = 0.0
            self.commit()
        self._sync()
        for fd in (self._wal_fd, self._shm_fd):
            if fd is not None:
                os.close(fd)
        self._wal_fd = self._shm_fd = None
        self.db.close()
        os.close(self._lock_fd)

    # ------------------------------------------------------------------ signals
    def record_signal(self, strategy: str, signal_id: str, status: str, reason: str, payload: Any) -> bool:
        """False if this (strategy, signal id) was seen before: a duplicate, never executed again."""
        if self.fault is not None and self.has_signal(strategy, signal_id):
            return False  # (healthy, the primary key says so)
        try:
            self._write("INSERT INTO signals VALUES (?,?,?,?,?,?)",
                        (strategy, signal_id, now_ms(), status, reason[:500], orjson.dumps(payload)))
        except sqlite3.IntegrityError:
            return False
        return True

    def has_signal(self, strategy: str, signal_id: str) -> bool:
        return self.db.execute("SELECT 1 FROM signals WHERE strategy=? AND signal_id=?",
                               (strategy, signal_id)).fetchone() is not None

    def set_signal_status(self, strategy: str, signal_id: str, status: str, reason: str = "") -> None:
        self._write("UPDATE signals SET status=?, reason=? WHERE strategy=? AND signal_id=?",
                    (status, reason[:500], strategy, signal_id))

    def signal_payload(self, strategy: str, signal_id: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT payload FROM signals WHERE strategy=? AND signal_id=?",
                              (strategy, signal_id)).fetchone()
        return orjson.loads(row[0]) if row and row[0] else None

    # ------------------------------------------------------------------ orders
    def _cache(self, row: dict[str, Any]) -> None:
        cid = row["client_id"]
        self._rows[cid] = row
        self._rows.move_to_end(cid)
        if len(self._rows) > ROW_CACHE:
            self._rows.popitem(last=False)
        if row["status"] in OPEN_STATES:
            self.open_rows[cid] = row
        else:
            self.open_rows.pop(cid, None)

    def _remember_undo(self, client_id: str) -> None:
        if self._undo is not None:
            before = self._rows.get(client_id) or self.open_rows.get(client_id)
            self._undo.append((client_id, dict(before) if before is not None else None))

    def record_intent(self, o: dict[str, Any]) -> None:
        t = now_ms()
        flags = orjson.dumps(o.get("flags") or {})
        parent = (o.get("flags") or {}).get("parent")
        self._write(
            "INSERT INTO orders (client_id, strategy, signal_id, action, exchange, market, symbol, side, order_type,"
            " qty, price, tif, flags, status, created_ms, updated_ms, parent)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (o["client_id"], o["strategy"], o["signal_id"], o["action"], o["exchange"], o["market"], o["symbol"],
             o["side"], o["order_type"], o["qty"], o["price"], o["tif"], flags, "intent", t, t, parent))
        self._remember_undo(o["client_id"])
        self._cache({**{k: o[k] for k in ORDER_COLUMNS if k in o}, "flags": flags, "status": "intent",
                     "filled": "0", "avg_price": None, "fees": "0", "exchange_id": None, "reason": "",
                     "created_ms": t, "updated_ms": t, "parent": parent})

    def update_order(self, client_id: str, **fields: Any) -> None:
        fields["updated_ms"] = now_ms()
        if isinstance(fields.get("reason"), str):
            fields["reason"] = fields["reason"][:500]
        key = ("order", client_id)
        before = self._deferred.get(key)
        self._defer(key, ("order", {**(before[1] if before else {}), **fields}))
        row = self.order(client_id)
        if row is not None:
            self._remember_undo(client_id)
            self._cache({**row, **fields})

    def record_fill(self, client_id: str, price: Decimal, qty: Decimal, fee: Decimal, liquidity: str,
                    trade_id: str | None = None, realized: Decimal | None = None,
                    order: dict[str, Any] | None = None) -> bool:
        """False if this exchange trade id is already journaled (a replayed fill is never counted twice)."""
        if trade_id is not None and self.fault is not None and (self.has_trade(trade_id) or any(
                sql.startswith("INSERT INTO fills") and params[6] == trade_id for sql, params in self.backlog)):
            return False  # (healthy, the unique index says so)
        o = order or {}
        try:
            self._write("INSERT INTO fills (client_id, ts_ms, price, qty, fee, liquidity, trade_id, realized, strategy,"
                        " exchange, market, symbol, side) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                        (client_id, now_ms(), str(price), str(qty), str(fee), liquidity, trade_id,
                         str(realized) if realized is not None else None, o.get("strategy"), o.get("exchange"),
                         o.get("market"), o.get("symbol"), o.get("side")))
        except sqlite3.IntegrityError:
            return False
        return True

    def record_ack(self, client_id: str, exchange: str, latency_ms: float) -> None:
        """How long a live order took from leaving to the venue's first answer (the distribution a backtest can
        use as its order latency: ``wispctl backtest --latency journal:FILE``)."""
        self._write("INSERT OR IGNORE INTO acks VALUES (?,?,?,?)", (client_id, exchange, now_ms(), latency_ms))

    def ack_latencies(self, exchange: str | None = None) -> list[float]:
        self._flush_deferred()
        sql = "SELECT latency_ms FROM acks" + (" WHERE exchange = ?" if exchange else "") + " ORDER BY ts_ms"
        return [float(r[0]) for r in self.db.execute(sql, (exchange,) if exchange else ())]

    def record_funding(self, strategy: str, exchange: str, market: str, symbol: str, funding_ts: int, rate: Decimal,
                       mark: Decimal, qty: Decimal, amount: Decimal) -> bool:
        """A perp funding payment of a paper position (``amount`` > 0: paid). False if it is journaled already
        (one payment per position and funding time, whatever replays)."""
        try:
            self._write("INSERT INTO funding VALUES (?,?,?,?,?,?,?,?,?,?)",
                        (strategy, exchange, market, symbol, funding_ts, now_ms(), str(rate), str(mark), str(qty),
                         str(amount)))
        except sqlite3.IntegrityError:
            return False
        return True

    def trade_ids(self, since_ms: float = 0) -> set[str]:
        rows = self.db.execute("SELECT trade_id FROM fills WHERE trade_id IS NOT NULL AND ts_ms >= ?", (since_ms,))
        return {r[0] for r in rows}

    def has_trade(self, trade_id: str) -> bool:
        return self.db.execute("SELECT 1 FROM fills WHERE trade_id=?", (trade_id,)).fetchone() is not None

    def client_id_of(self, exchange_id: str) -> str | None:
        for row in self.open_rows.values():
            if row.get("exchange_id") == exchange_id:
                return str(row["client_id"])
        self._flush_deferred()
        row = self.db.execute("SELECT client_id FROM orders WHERE exchange_id=?", (exchange_id,)).fetchone()
        return row[0] if row else None

    def order(self, client_id: str) -> dict[str, Any] | None:
        """The order's row (from the write-through cache when this process wrote or read it recently)."""
        cached = self._rows.get(client_id) or self.open_rows.get(client_id)
        if cached is not None:
            return dict(cached)
        self._flush_deferred()
        row = self.db.execute("SELECT * FROM orders WHERE client_id=?", (client_id,)).fetchone()
        if row is None:
            return None
        self._cache(dict(row))
        return dict(row)

    def orders(self, states: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
        """Rows by status; open ones come from memory (current even while the file cannot be written)."""
        if states is not None and set(states) <= set(OPEN_STATES):
            return [dict(r) for r in self.open_rows.values() if r["status"] in states]
        self._flush_deferred()
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
        self._defer(("positions", strategy, exchange, market, symbol),
                    ("INSERT OR REPLACE INTO positions VALUES (?,?,?,?,?,?,?,?)",
                     (strategy, exchange, market, symbol, str(qty), str(avg), str(realized), str(fees))))

    def positions(self) -> list[dict[str, Any]]:
        self._flush_deferred()
        return [dict(r) for r in self.db.execute("SELECT * FROM positions").fetchall()]

    def save_balance(self, asset: str, amount: Decimal) -> None:
        self._defer(("balances", asset), ("INSERT OR REPLACE INTO balances VALUES (?,?)", (asset, str(amount))))

    def balances(self) -> dict[str, Decimal]:
        self._flush_deferred()
        return {r["asset"]: Decimal(r["amount"]) for r in self.db.execute("SELECT * FROM balances").fetchall()}

    def save_subledger(self, strategy: str, asset: str, held: Decimal, funded: Decimal) -> None:
        self._defer(("subledgers", strategy, asset), ("INSERT OR REPLACE INTO subledgers VALUES (?,?,?,?)",
                                                      (strategy, asset, str(held), str(funded))))

    def subledgers(self) -> list[dict[str, Any]]:
        self._flush_deferred()
        return [dict(r) for r in self.db.execute("SELECT * FROM subledgers").fetchall()]

    def save_mark(self, key: tuple[str, str, str], price: Decimal, ts_ms: float) -> None:
        self._defer(("marks", *key), ("INSERT OR REPLACE INTO marks VALUES (?,?,?,?,?)", (*key, str(price), ts_ms)))

    def marks(self) -> dict[tuple[str, str, str], Decimal]:
        self._flush_deferred()
        return {(r["exchange"], r["market"], r["symbol"]): Decimal(r["price"])
                for r in self.db.execute("SELECT * FROM marks").fetchall()}

    def meta(self, key: str, value: str | None = None) -> str | None:
        if value is not None:
            self._write("INSERT OR REPLACE INTO meta VALUES (?,?)", (key, value))
            return value
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None
