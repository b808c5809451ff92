"""Property-based: random sequences of signals (entries, brackets, stops, amends, cancels of known and
unknown ids, multi-action signals), market moves with partial fills, and kill -9 of the executor at
random points (before a commit, between a commit and the send, between a fill and its commit), against
the paper engine. After every step:

- no spot balance below zero, in any strategy's sub-ledger;
- no reservation leak: what is reserved equals what the working orders, brackets and positions need;
- no orphan: every working order has a journal row that says it works, and every such row is followed;
- the ledger equals the sum of the fills (positions and balances);
- no order is sent twice (an armed exit fires, i.e. reaches the book, at most once). For a paper account
  the journal is the exchange: a submission whose acknowledgement and fills were never committed did not
  happen once the process is gone, so only submissions that outlive the next commit are counted.

CI runs a short, seeded form (``PROPERTY_EXAMPLES``); ``pytest -m slow`` the long one.
"""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from decimal import Decimal as D
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from tests.execution.core_harness import PERP, SPOT, Harness, cancel, order
from wispd.execution.funds import reservation
from wispd.execution.journal import OPEN_STATES
from wispd.execution.ledger import margin_key, split_symbol
from wispd.execution.planner import reserve_need

EXAMPLES = int(os.environ.get("PROPERTY_EXAMPLES", "30"))
ZERO = D(0)

prices = st.integers(min_value=-300, max_value=300).map(lambda bp: D("60000") * (1 + D(bp) / 10000))


def tick(p: D) -> str:
    return str((p / D("0.1")).to_integral_value() * D("0.1"))


class Account(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="wt-prop-"))
        self.h = Harness(self.dir / "journal-acct.sqlite")
        self.sent: Counter[str] = Counter()
        self.n = 0  # signal ids are numbered, so a replayed example makes the same client ids
        self._watch()
        self.mid = D("60000")
        self.h.book("60000", "60001")

    def _watch(self) -> None:
        """Count every order handed to the venue whose handing-over became durable, across restarts (a
        second one would be a duplicate)."""
        submit, commit = self.h.engine.submit, self.h.journal.commit
        self.pending: list[str] = []

        def counted(o, now, expires=None):  # noqa: ANN001, ANN202
            # an order leaves only after an fsynced commit: its intent survives a power loss, not only a kill
            assert not self.h.journal._unsynced and not self.h.journal._in_tx, "sent before a durable commit"
            self.pending.append(o.client_id)
            return submit(o, now, expires)

        def committed(durable: bool = True) -> float:
            took = commit(durable=durable)
            if self.h.journal.healthy:
                for cid in self.pending:
                    self.sent[cid] += 1
                self.pending = []
            return took

        self.h.engine.submit = counted
        self.h.journal.commit = committed

    def teardown(self) -> None:
        import shutil

        self.h.close()
        shutil.rmtree(self.dir, ignore_errors=True)  # one journal per example: 30 a run were left in /tmp

    # ------------------------------------------------------------------ actions
    def _known_ids(self) -> list[str]:
        return list(self.h.core.orders)

    def _signal(self, strategy: str, *actions: dict) -> None:
        self.n += 1
        self.h.signal(strategy, *actions, sid=f"s{self.n}")

    @rule(strategy=st.sampled_from(["a", "b"]), side=st.sampled_from(["buy", "sell"]),
          qty=st.sampled_from(["0.001", "0.01", "0.05", "0.2"]), limit=st.booleans(), off=prices,
          tif=st.sampled_from([None, "IOC", "FOK"]), bracket=st.booleans(), perp=st.booleans())
    def entry(self, strategy, side, qty, limit, off, tif, bracket, perp):  # noqa: ANN001
        key = PERP if perp else SPOT
        price = tick(off) if limit else None
        extra = {}
        if tif and (price is not None or tif != "GTC"):
            extra["tif"] = tif
        if perp and side == "sell":
            extra["short"] = True
        if bracket and price is not None:
            ref = D(price)
            extra["stop_loss"] = tick(ref * (D("0.98") if side == "buy" else D("1.02")))
            extra["take_profit"] = tick(ref * (D("1.02") if side == "buy" else D("0.98")))
        self._signal(strategy, order(side, qty, price, key=key, **extra))

    @rule(strategy=st.sampled_from(["a", "b"]), kind=st.sampled_from(["stop", "take_profit", "trailing_stop"]),
          side=st.sampled_from(["buy", "sell"]), away=st.integers(10, 200))
    def contingent(self, strategy, kind, side, away):  # noqa: ANN001
        last = self.h.core.trigger_px.get(SPOT) or self.mid
        up = (kind == "stop") == (side == "buy")
        if kind == "trailing_stop":
            extra = {"trigger_type": kind, "trail_distance": str(D(away) * 5)}
        else:
            extra = {"trigger_type": kind, "trigger_price": tick(last * (1 + D(away if up else -away) / 10000))}
        self._signal(strategy, order(side, "0.01", **extra))

    @rule(data=st.data())
    def multi(self, data):  # noqa: ANN001
        """Several actions in one signal: cancels of known and unknown ids, amends, orders, cancel_all."""
        ids = self._known_ids()
        actions = []
        for _ in range(data.draw(st.integers(1, 4))):
            kind = data.draw(st.sampled_from(["cancel", "cancel_unknown", "amend", "order", "cancel_all"]))
            if kind == "cancel" and ids:
                actions.append(cancel(data.draw(st.sampled_from(ids))))
            elif kind == "cancel_unknown":
                actions.append(cancel("wd" + data.draw(st.text("0123456789abcdef", min_size=30, max_size=30))))
            elif kind == "amend" and ids:
                actions.append({"type": "amend", "client_id": data.draw(st.sampled_from(ids)),
                                "price": tick(data.draw(prices)), "qty": None})
            elif kind == "cancel_all":
                actions.append({"type": "cancel_all"})
            else:
                actions.append(order(data.draw(st.sampled_from(["buy", "sell"])), "0.01", tick(data.draw(prices))))
        self._signal(data.draw(st.sampled_from(["a", "b"])), *actions)

    @rule(move=st.integers(-150, 150), size=st.sampled_from(["0.005", "0.05", "1"]), trade=st.booleans())
    def market(self, move, size, trade):  # noqa: ANN001
        self.mid = max(D("50000"), min(D("70000"), self.mid * (1 + D(move) / 10000)))
        bid = (self.mid / D("0.1")).to_integral_value() * D("0.1")
        self.h.book(str(bid), str(bid + D("0.1")), size)
        self.h.book(str(bid), str(bid + D("0.1")), size, key=PERP)
        if trade:
            self.h.trade(str(bid), size)
            self.h.mark(str(bid))

    @rule(point=st.sampled_from(["before_commit", "after_commit", "after_send"]),
          side=st.sampled_from(["buy", "sell"]), move=st.integers(-150, 150))
    def kill9(self, point, side, move):  # noqa: ANN001
        """An executor killed mid-pass: a signal journaled but not committed, committed but not sent, or sent
        (and filled) with the fills not committed yet; or a market move that fires triggers, then death."""
        h = self.h
        if point == "before_commit" or move % 2:
            self.n += 1
            h.core.signal({"v": 1, "id": f"k{self.n}", "strategy": "a", "ts": h.now,
                           "ttl_ms": 60_000, "actions": [order(side, "0.01")]})
        else:
            h.core.on_trades(SPOT, [(self.mid * (1 + D(move) / 10000), D("1"))], h.now)
        if point in ("after_commit", "after_send"):
            h.core.commit()
        if point == "after_send":
            h.core.apply_events(h.core.send())
        h.crash()
        self._watch()
        h.book(str((self.mid / D("0.1")).to_integral_value() * D("0.1")),
               str((self.mid / D("0.1")).to_integral_value() * D("0.1") + D("0.1")))

    # ------------------------------------------------------------------ invariants
    @invariant()
    def spot_balances_never_negative(self):
        for strategy, assets in self.h.core.funds.held.items():
            for asset in ("BTC", "USDT"):
                assert assets.get(asset, ZERO) >= 0, (strategy, asset, assets)

    @invariant()
    def reserved_is_what_working_orders_can_consume(self):
        core = self.h.core
        expected: Counter[tuple[str, str]] = Counter()
        for o in core.orders.values():
            pos = core.ledger.positions.get((o.strategy, *o.book_key))
            need = reserve_need(o, core.fees(o.exchange, o.symbol)[1], pos.qty if pos else ZERO)
            if need is not None:
                expected[(o.strategy, need[0])] += reservation(need[1])
        entries = {o.parent for o in core.orders.values() if o.parent}
        for entry_id in entries:
            entry = core.entry_of(entry_id)
            if entry is not None and entry.market == "spot":
                size = max(ZERO, entry.filled - core._exits_filled(entry_id))
                expected[(entry.strategy, split_symbol(entry.symbol)[0])] += reservation(size)
        for key, pos in core.ledger.positions.items():
            if key[2] == "perp" and pos.qty:
                assert core.funds.holds[margin_key(key)][2] == reservation(pos.margin)
                expected[(key[0], split_symbol(key[3])[1])] += reservation(pos.margin)
        actual = {(s, a): v for s, assets in core.funds.reserved.items() for a, v in assets.items() if v}
        assert {k: v for k, v in expected.items() if v} == actual

    @invariant()
    def no_orphan_working_order(self):
        core, journal = self.h.core, self.h.journal
        rows = {r["client_id"]: r["status"] for r in journal.orders(OPEN_STATES)}
        assert set(rows) == set(core.orders), (set(rows) ^ set(core.orders))
        assert set(self.h.engine.orders) <= set(core.orders)
        for cid, o in core.orders.items():
            assert (o.status == "armed") == (rows[cid] == "armed"), (cid, o.status, rows[cid])

    @invariant()
    def ledger_is_the_sum_of_the_fills(self):
        db = self.h.journal.db
        qty: Counter[tuple[str, ...]] = Counter()
        cash: Counter[tuple[str, str]] = Counter()
        for r in db.execute("SELECT o.strategy, o.exchange, o.market, o.symbol, o.side, f.qty, f.price, f.fee "
                            "FROM fills f JOIN orders o ON o.client_id = f.client_id"):
            sign = 1 if r[4] == "buy" else -1
            q, p, fee = D(r[5]), D(r[6]), D(r[7])
            qty[(r[0], r[1], r[2], r[3])] += sign * q
            if r[2] == "spot":
                base, quote = split_symbol(r[3])
                cash[(r[0], base)] += sign * q
                cash[(r[0], quote)] -= sign * q * p + fee
        for key, pos in self.h.core.ledger.positions.items():
            assert pos.qty == qty[key], (key, pos.qty, qty[key])
        funds = self.h.core.funds
        for (strategy, asset), delta in cash.items():
            assert funds.held[strategy].get(asset, ZERO) == funds.funded[strategy].get(asset, ZERO) + delta

    @invariant()
    def every_signal_row_is_final_and_a_refused_one_placed_nothing(self):
        """A journaled signal is accepted or rejected, never left at another status (its row is written
        accepted and rewritten by a refusal in the same savepoint), and a rejected one has no order."""
        db = self.h.journal.db
        self.h.journal.orders()  # (flushes held updates)
        statuses = dict(db.execute("SELECT status, COUNT(*) FROM signals GROUP BY status").fetchall())
        assert set(statuses) <= {"accepted", "rejected"}, statuses
        placed = db.execute("SELECT COUNT(*) FROM orders o JOIN signals s ON s.signal_id = o.signal_id AND "
                            "s.strategy = o.strategy WHERE s.status = 'rejected'").fetchone()[0]
        assert placed == 0, placed

    @invariant()
    def nothing_is_sent_twice(self):
        assert all(n == 1 for n in self.sent.values()), [c for c, n in self.sent.items() if n > 1]


Account.TestCase.settings = settings(max_examples=EXAMPLES, stateful_step_count=40, deadline=None,
                                     derandomize=True, database=None,
                                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
test_random_sequences_keep_every_invariant = Account.TestCase


class LongAccount(Account):
    pass


LongAccount.TestCase.settings = settings(Account.TestCase.settings, max_examples=EXAMPLES * 20,
                                         stateful_step_count=80)
test_random_sequences_keep_every_invariant_long = pytest.mark.slow(LongAccount.TestCase)
_ = precondition
