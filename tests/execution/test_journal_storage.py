"""How the journal lies on disk: its tables and indexes (what each commit writes into the WAL), and when the
WAL is copied back into the database file (between passes, not inside a signal's commits)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.execution.core_harness import Harness, order
from wispd.execution import journal as journal_module
from wispd.execution.journal import BACKSTOP_PAGES, Journal, wal_frames

ROOT = Path(__file__).resolve().parents[2]

# The journal's tables and indexes as wispd wrote them before the small tables went WITHOUT ROWID, fills
# lost AUTOINCREMENT and the orders' optional columns got partial indexes: such files are in users' state
# directories and must open and trade as they are.
EARLIER = """
CREATE TABLE signals (strategy TEXT NOT NULL, signal_id TEXT NOT NULL, received_ms REAL NOT NULL,
    status TEXT NOT NULL, reason TEXT NOT NULL DEFAULT '', payload BLOB, PRIMARY KEY (strategy, signal_id));
CREATE TABLE orders (client_id TEXT PRIMARY KEY, strategy TEXT NOT NULL, signal_id TEXT NOT NULL,
    action INTEGER NOT NULL, exchange TEXT NOT NULL, market TEXT NOT NULL, symbol TEXT NOT NULL, side TEXT NOT NULL,
    order_type TEXT NOT NULL, qty TEXT NOT NULL, price TEXT, tif TEXT NOT NULL, flags BLOB, status TEXT NOT NULL,
    filled TEXT NOT NULL DEFAULT '0', avg_price TEXT, fees TEXT NOT NULL DEFAULT '0', exchange_id TEXT,
    reason TEXT NOT NULL DEFAULT '', created_ms REAL NOT NULL, updated_ms REAL NOT NULL, parent TEXT);
CREATE INDEX orders_status ON orders(status);
CREATE INDEX orders_exchange_id ON orders(exchange_id);
CREATE INDEX orders_parent ON orders(parent);
CREATE TABLE fills (id INTEGER PRIMARY KEY AUTOINCREMENT, client_id TEXT NOT NULL, ts_ms REAL NOT NULL,
    price TEXT NOT NULL, qty TEXT NOT NULL, fee TEXT NOT NULL, liquidity TEXT NOT NULL, trade_id TEXT);
CREATE TABLE positions (strategy TEXT NOT NULL, exchange TEXT NOT NULL, market TEXT NOT NULL, symbol TEXT NOT NULL,
    qty TEXT NOT NULL, avg_price TEXT NOT NULL, realized TEXT NOT NULL, fees TEXT NOT NULL,
    PRIMARY KEY (strategy, exchange, market, symbol));
CREATE TABLE balances (asset TEXT PRIMARY KEY, amount TEXT NOT NULL);
CREATE TABLE subledgers (strategy TEXT NOT NULL, asset TEXT NOT NULL, held TEXT NOT NULL, funded TEXT NOT NULL,
    PRIMARY KEY (strategy, asset));
CREATE TABLE marks (exchange TEXT NOT NULL, market TEXT NOT NULL, symbol TEXT NOT NULL, price TEXT NOT NULL,
    ts_ms REAL NOT NULL, PRIMARY KEY (exchange, market, symbol));
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def _indexes(path: Path) -> dict[str, str]:
    db = sqlite3.connect(path)
    try:
        return {name: sql for name, sql in db.execute("SELECT name, sql FROM sqlite_master WHERE type='index' "
                                                      "AND sql IS NOT NULL")}
    finally:
        db.close()


def test_a_journal_written_before_opens_replaces_its_full_indexes_and_trades(tmp_path):
    path = tmp_path / "journal.sqlite"
    db = sqlite3.connect(path)
    db.executescript(EARLIER)
    db.execute("INSERT INTO orders (client_id, strategy, signal_id, action, exchange, market, symbol, side, order_type,"
               " qty, tif, status, exchange_id, created_ms, updated_ms, parent) VALUES"
               " ('c1','a','s1',0,'sim','spot','BTC-USDT','buy','limit','1','GTC','filled','X-1',1,1,NULL),"
               " ('c2','a','s1',0,'sim','spot','BTC-USDT','sell','market','1','IOC','cancelled',NULL,1,1,'c1')")
    db.commit()
    db.close()
    h = Harness(path, capital={"USDT": "100000", "BTC": "1"})
    indexes = _indexes(path)
    assert "orders_exchange_id" not in indexes and "orders_parent" not in indexes
    assert "WHERE exchange_id IS NOT NULL" in indexes["orders_exchange_id_set"]
    assert "WHERE parent IS NOT NULL" in indexes["orders_parent_set"]
    assert h.journal.client_id_of("X-1") == "c1"  # the rows written before, through the new indexes
    assert [r["client_id"] for r in h.journal.children("c1")] == ["c2"]
    h.book("60000", "60001")
    sid = h.signal("a", order("buy", "0.01"))
    assert [r["status"] for r in h.sink.of(sid)] == ["filled"]
    fills = h.journal.db.execute("SELECT id, client_id FROM fills").fetchall()
    h.close()
    again = Harness(path, capital={"USDT": "100000", "BTC": "1"})  # and it reopens with what it traded
    assert [tuple(r) for r in again.journal.db.execute("SELECT id, client_id FROM fills")] == [tuple(r) for r in fills]
    assert any(p["symbol"] == "BTC-USDT" and p["qty"] == "0.01" for p in again.journal.positions())
    again.close()


def test_the_wal_is_checkpointed_between_passes_and_stays_bounded(tmp_path, monkeypatch):
    """The journal's own connection checkpoints only past the backstop; ``settle`` (the executor's pass)
    checkpoints once enough was written, so the WAL is rewound and stays small. Without the explicit
    checkpoint, 300 signals leave ~3,600 frames in the WAL (under the backstop): this fails."""
    monkeypatch.setattr(journal_module, "CHECKPOINT_PAGES", 100)
    h = Harness(tmp_path / "journal.sqlite", capital={"USDT": "100000000", "BTC": "1000"})
    assert h.journal.db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == BACKSTOP_PAGES
    h.book("60000", "60001", size="100000")
    most = 0
    for i in range(300):
        h.signal("a", order("buy" if i % 2 == 0 else "sell", "0.001"))
        most = max(most, wal_frames(h.path))
    assert h.journal.checkpoints >= 25  # ~12 pages a signal, one checkpoint per 100
    assert most <= 130, most  # rewound after each checkpoint: at most one pass past 100
    h.close()


def test_a_checkpoint_waits_for_a_full_wal_and_never_runs_inside_a_transaction(tmp_path, monkeypatch):
    j = Journal(tmp_path / "journal.sqlite")
    j.meta("a", "1")
    j.commit(durable=False)
    full = wal_frames(j.path) + 3  # (creating the tables wrote some)
    monkeypatch.setattr(journal_module, "CHECKPOINT_PAGES", full)
    assert not j.checkpoint_if_due()  # one small commit: not full yet
    for i in range(3):
        j.meta(f"b{i}", "x" * 3000)  # each its own page or more
    assert not j.checkpoint_if_due()  # the transaction is still open
    j.commit(durable=False)
    assert wal_frames(j.path) >= full and j.checkpoint_if_due() and j.checkpoints == 1
    assert not j.checkpoint_if_due()  # nothing committed since (the WAL is rewound at the next commit)
    j.meta("c", "1")
    j.commit(durable=False)
    assert wal_frames(j.path) < 3  # rewound: the new commit's pages only
    j.close()


WRITER = r"""
import os, sys
from decimal import Decimal
from pathlib import Path
from wispd.execution import journal as jm
jm.CHECKPOINT_PAGES = 8  # a checkpoint every few commits: most kills land near or inside one
j = jm.Journal(Path(sys.argv[1]))
out = int(sys.argv[2])
for i in range(1, 1_000_000):
    j.record_signal("s", f"sig{i:07d}", "accepted", "", {"i": i, "pad": "x" * 400})
    j.save_balance("USDT", Decimal(i))
    j.commit(durable=i % 3 == 0)
    j.checkpoint_if_due()
    os.write(out, f"{i}\n".encode())  # committed: from here on it must survive anything
"""


@settings(max_examples=6, deadline=None)
@given(after=st.integers(5, 400), extra_ms=st.integers(0, 30))
def test_kill_9_at_any_instant_of_commits_and_checkpoints_loses_no_committed_row(tmp_path_factory, after, extra_ms):
    """A writer commits and checkpoints as fast as it can (a checkpoint every few commits) and is killed with
    SIGKILL at a random instant, often inside a checkpoint: every commit it had finished is in the journal
    when it is opened again, the file is whole, and the journal trades on (the lock died with its holder)."""
    tmp = tmp_path_factory.mktemp("kill9")
    path = tmp / "journal.sqlite"
    r, w = os.pipe()
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(w)], pass_fds=(w,), start_new_session=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    os.close(w)
    done: list[int] = []
    buf = b""
    try:
        deadline = time.monotonic() + 60
        while (not done or done[-1] < after) and time.monotonic() < deadline:
            chunk = os.read(r, 65536)
            if not chunk:
                break
            buf += chunk
            *lines, buf = buf.split(b"\n")
            done += [int(x) for x in lines]
        time.sleep(extra_ms / 1000)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
    while chunk := os.read(r, 65536):  # what it finished before it died
        buf += chunk
    os.close(r)
    done += [int(x) for x in buf.split(b"\n") if x]
    assert done and done[-1] >= after, "the writer never got going"
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        ids = {row[0] for row in db.execute("SELECT signal_id FROM signals")}
        balance = int(db.execute("SELECT amount FROM balances WHERE asset='USDT'").fetchone()[0])
    finally:
        db.close()
    assert {f"sig{i:07d}" for i in done} <= ids  # nothing it had committed is lost
    assert balance >= done[-1]  # (a commit it had not reported yet may be there too)
    j = Journal(path)  # and it opens and writes on
    assert j.record_signal("s", "after", "accepted", "", {}) and j.commit() >= 0
    j.close()
