"""One executor account in a backtest: the live executor's core, checks, journal and paper engine.

Nothing here decides anything the live executor does not: signals go through ``ExecutionCore``
(validation, risk limits, kill switches, the durable intent before the paper order), fills come from the
same ``PaperEngine`` walking the same recorded books, reports and state documents are built by the same
functions. What differs is only what feeds it: frames from the replayer instead of a SUB socket, the
virtual clock instead of the wall clock, and no fsync (nothing in a backtest is money).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from wispd import clock
from wispd.execution.checks import MarketRules, Reject, RiskLimits
from wispd.execution.core import ExecutionCore, MarketKey
from wispd.execution.executor import allocations
from wispd.execution.journal import Journal
from wispd.execution.killswitch import KillSwitch
from wispd.execution.market import parse_frames
from wispd.execution.paper import PaperEngine
from wispd.execution.reconcile import reconcile_paper
from wispd.execution.reports import report_frame
from wispd.execution.snapshots import settle, state_doc

HELD_WRITES = 50_000  # journal writes per transaction in a backtest (nothing reads the file until the end)
Deliver = Callable[[str, bytes], None]  # (strategy, report frame): the replayer schedules its arrival


class Sink:
    def __init__(self, source: str, deliver: Deliver) -> None:
        self.source, self.deliver, self.seq = source, deliver, 0

    def publish(self, strategy: str, kind: str, body: dict[str, Any]) -> None:
        self.seq += 1
        self.deliver(strategy, report_frame(self.source, self.seq, strategy, kind, body))


class Account:
    def __init__(self, args: dict[str, Any], journal_path: Path, rules: Callable[[MarketKey], dict[str, Any] | None],
                 latest_book: Callable[[MarketKey], bytes | None], deliver: Deliver, log: Any,
                 latency_ms: float | Callable[[Any], float] | None = None) -> None:
        self.name = args["account"]
        paper = args.get("paper") or {}
        self.latency_ms: float | Callable[[Any], float] = \
            float(paper.get("latency_ms", 20.0)) if latency_ms is None else latency_ms
        for suffix in ("", "-wal", "-shm"):
            Path(f"{journal_path}{suffix}").unlink(missing_ok=True)  # every run starts from nothing
        self.journal = Journal(journal_path, power_safe=False, hold_commits=HELD_WRITES)
        self.engine = PaperEngine(lambda ex, sym: self.core.fees(ex, sym), self.latency_ms)
        self._rules, self._latest_book = rules, latest_book
        self.followed: set[MarketKey] = set()
        self.raw_books: dict[MarketKey, bytes] = {}
        self.exchanges = list(args.get("exchanges") or {})
        capital = {k.upper(): Decimal(v) for k, v in (paper.get("balances") or {}).items()}
        self.sink = Sink(f"executor.{self.name}", deliver)
        self.core = ExecutionCore(self.name, "paper", self.journal, self.engine, RiskLimits.from_config(args["risk"]),
                                  allocations(args.get("strategies")), capital, self.rules_of, self.sink, log,
                                  self.exchanges, fee_override=(paper.get("maker_fee"), paper.get("taker_fee")))
        self.kill = KillSwitch(self.core, args.get("kill_switch") or {}, log)
        self.internal_errors = 0
        self.state_seq = 0
        self.tick_at = 0  # when the replayer will next wake this account for a paper order going live (us)
        self.log = log
        self.core.restore()
        reconcile_paper(self.core)
        self.core.fund()
        self.settle()

    @property
    def strategies(self) -> set[str]:
        return self.core.strategies

    def rules_of(self, key: MarketKey) -> MarketRules:
        exchange, market, symbol = key
        if exchange not in self.exchanges:
            raise Reject("unknown_exchange", f"this account does not trade on {exchange!r}")
        raw = self._rules(key)
        if raw is None:
            raise Reject("unknown_symbol", f"{exchange} has no {market} market {symbol} in the backtest's data "
                         "(no market rules recorded for it)")
        if key not in self.followed:
            self.followed.add(key)
            frame = self._latest_book(key)
            if frame is not None:
                for k, (bids, asks) in parse_frames([frame]).books.items():
                    self.engine.set_book(k, bids, asks)
        return MarketRules.from_wire(raw)

    def follows(self, key: MarketKey) -> bool:
        return key in self.followed

    def _working_on(self, key: MarketKey) -> bool:
        return self.core.orders.has_book(key)

    def _materialize(self) -> None:
        """Apply the books kept raw (see ``market_frame``) before anything reads books or marks."""
        if not self.raw_books:
            return
        pending, self.raw_books = self.raw_books, {}
        now = clock.now_ms()
        for frame in pending.values():
            for key, (bids, asks) in parse_frames([frame]).books.items():
                self.core.on_book(key, bids, asks, now)

    # ------------------------------------------------------------------ what the replayer feeds
    def signal(self, msg: dict[str, Any] | None) -> None:
        self._materialize()
        exc = self.core.guarded_signal(msg)
        if exc is not None:
            self.internal_errors += 1
            self.log.error("signal_failed", kind=type(exc).__name__, error=f"{type(exc).__name__}: {exc}")
        self.settle()

    def market_frame(self, frame: bytes, key: MarketKey, kind: bytes) -> bool:
        """One frame of a followed market; False if it was only kept. A book of a market where this account
        has no working order cannot fill or fire anything: it is kept raw and decoded only when something
        reads it (a signal, a second's state, the next order), which is the same result for a fraction of the
        work (and nothing about its orders changed)."""
        if kind == b"book" and not self._working_on(key):
            self.raw_books[key] = frame
            return False
        self._materialize()
        now = clock.now_ms()
        self.core.on_market(parse_frames([frame]), now)
        self.core.tick(now)
        self.settle()
        return True

    def tick(self) -> None:
        self._materialize()
        self.core.tick(clock.now_ms())
        self.settle()

    def settle(self) -> None:
        settle(self.core)

    def periodic(self) -> None:
        """Once a second of virtual time, as the live executor does: kill switches, then each strategy's state."""
        self._materialize()
        self.kill.check()
        self.settle()
        for strategy in sorted(self.core.strategies):
            self.publish_state(strategy)

    def publish_state(self, strategy: str) -> None:
        self._materialize()
        doc = state_doc(self.core, strategy)
        self.state_seq += 1
        doc["seq"] = self.state_seq
        self.sink.publish(strategy, "state", doc)

    def close(self) -> None:
        self.core.commit()
        self.journal.close()
