"""An execution core in-process, as the executor process drives it (journal, paper engine, reports),
with a book and trades the test sets: fast enough for property-based tests, and the same code."""

from __future__ import annotations

import os
import time
import uuid
from decimal import Decimal as D
from pathlib import Path
from typing import Any

from wispd.execution.checks import MarketRules, Reject, RiskLimits
from wispd.execution.core import ExecutionCore
from wispd.execution.funds import Allocation
from wispd.execution.journal import Journal
from wispd.execution.paper import PaperEngine
from wispd.execution.reconcile import reconcile_paper
from wispd.execution.snapshots import settle, state_doc
from wispd.logs import get_logger

SPOT = ("sim", "spot", "BTC-USDT")
PERP = ("sim", "perp", "BTC-USDC")
RULES = MarketRules(D("0.1"), D("0.001"), D("0.001"), D("1"), D("0.0002"), D("0.0005"))
LIMITS = RiskLimits(D("1000000"), D("10000000"), 1000, D("100000000"), {}, D("10"), D("20"))


class Sink:
    def __init__(self) -> None:
        self.reports: list[tuple[str, dict[str, Any]]] = []
        self.states: list[tuple[str, dict[str, Any]]] = []

    def publish(self, strategy: str, kind: str, body: dict[str, Any]) -> None:
        (self.reports if kind == "report" else self.states).append((strategy, body))

    def of(self, signal_id: str) -> list[dict[str, Any]]:
        return [b for _, b in self.reports if b["signal_id"] == signal_id]


class Harness:
    def __init__(self, path: Path, capital: dict[str, str] | None = None,
                 strategies: dict[str, Allocation] | None = None, known: tuple[Any, ...] = (SPOT, PERP)) -> None:
        self.path = path
        self.capital = {k: D(v) for k, v in (capital or {"USDT": "100000", "USDC": "100000", "BTC": "1"}).items()}
        self.allocations = strategies or {"a": Allocation(), "b": Allocation()}
        self.known = known
        self.open()

    @property
    def now(self) -> float:
        return time.time() * 1000

    def open(self) -> None:
        self.journal = Journal(self.path)
        self.sink = Sink()
        self.engine = PaperEngine(lambda ex, sym: self.core.fees(ex, sym), 0.0)
        capital = self.journal.balances() or dict(self.capital)
        self.core = ExecutionCore("acct", "paper", self.journal, self.engine, LIMITS, dict(self.allocations), capital,
                                  self.rules, self.sink, get_logger("test"), ["sim"])
        self.core.restore()
        self.summary = reconcile_paper(self.core)
        self.core.fund()
        self.settle()

    def rules(self, key: tuple[str, str, str]) -> MarketRules:
        if key not in self.known:
            raise Reject("unknown_symbol", f"no {key}")
        return RULES

    # ------------------------------------------------------------------ driving it like the executor loop
    def settle(self) -> None:
        """commit -> send -> commit -> reports, as the executor's pass does (until nothing is left)."""
        settle(self.core)

    def signal(self, strategy: str, *actions: dict[str, Any], sid: str | None = None) -> str:
        sid = sid or uuid.uuid4().hex
        msg = {"v": 1, "id": sid, "strategy": strategy, "ts": self.now, "ttl_ms": 60_000, "actions": list(actions)}
        self.journal.savepoint()
        try:
            self.core.signal(msg)
            self.journal.release_savepoint()
        except Exception:
            self.journal.rollback_to_savepoint()
            raise
        self.settle()
        return sid

    def book(self, bid: str, ask: str, size: str = "10", key: tuple[str, str, str] = SPOT) -> None:
        b, a = D(bid), D(ask)
        self.core.on_book(key, [(b, D(size)), (b - D("1"), D(size))], [(a, D(size)), (a + D("1"), D(size))], self.now)
        self.settle()

    def trade(self, price: str, qty: str = "1", key: tuple[str, str, str] = SPOT) -> None:
        self.core.on_trades(key, [(D(price), D(qty))], self.now)
        self.settle()

    def mark(self, price: str, key: tuple[str, str, str] = PERP) -> None:
        self.core.on_mark(key, D(price))
        self.settle()

    def crash(self) -> None:
        """kill -9: the process vanishes, whatever was not committed is lost; then a new executor starts."""
        self.journal.db.close()  # no COMMIT: SQLite drops the open transaction, as after a crash
        os.close(self.journal._lock_fd)
        for fd in (self.journal._wal_fd, self.journal._shm_fd):  # the kernel closes every descriptor of a
            if fd is not None:                                      # killed process
                os.close(fd)
        self.open()

    def close(self) -> None:
        self.journal.close()

    # ------------------------------------------------------------------ reading it
    def state(self, strategy: str | None = None) -> dict[str, Any]:
        return state_doc(self.core, strategy)

    def working(self, strategy: str | None = None) -> dict[str, Any]:
        return {cid: o for cid, o in self.core.orders.items() if strategy is None or o.strategy == strategy}

    def last(self, sid: str) -> dict[str, Any]:
        reports = self.sink.of(sid)
        assert reports, f"no report for {sid}"
        return reports[-1]


def order(side: str = "buy", qty: str = "0.01", price: str | None = None, key: tuple[str, str, str] = SPOT,
          **extra: Any) -> dict[str, Any]:
    out = {"type": "order", "side": side, "exchange": key[0], "market": key[1], "symbol": key[2], "qty": qty,
           "price": price, "order_type": "limit" if price else "market"}
    out.update(extra)
    return out


def cancel(client_id: str) -> dict[str, Any]:
    return {"type": "cancel", "client_id": client_id}
