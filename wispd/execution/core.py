"""The execution core of one account: everything an executor decides, and nothing about sockets.

It owns the journal, the funds and positions, the working orders (on a venue, or armed here), the market
rules and marks, and the venue (the paper engine, or the live engine of a ccxt account). The executor
process feeds it signals, market data and commands and sends what it returns; a backtest drives the same
core in virtual time. The order of work that keeps money safe lives here:

1. a signal is planned whole (``planner.py``): every action checked against the account as the earlier
   ones leave it; a failure rejects the signal, naming the action, and nothing of it is kept;
2. the plan's orders are journaled (``intent``; bracket exits and triggered orders ``armed``), their funds
   reserved, its cancels applied;
3. ``commit()`` makes that durable, and only then ``send()`` hands the orders to the venue;
4. what the venue says (fills, acknowledgements, ends) is journaled and applied to positions, funds,
   brackets and the strategy's reports; reports go out after the commit that recorded them.

Triggers (stops, take-profits, trailing stops, bracket exits) are evaluated on every trigger-price
update; a fired one goes through steps 2-4 like a new order (``contingent.py``).
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from wispd import clock
from wispd.execution.checks import MarketRules, Reject, RiskLimits, parse_signal
from wispd.execution.contingent import fires
from wispd.execution.funds import Allocation, Funds
from wispd.execution.journal import FINAL_STATES, OPEN_STATES, Journal, client_order_id, now_ms
from wispd.execution.ledger import Ledger, PositionState, margin_key, split_symbol
from wispd.execution.orders import Done, Event, Fill, WorkingOrder, order_from_row, row_flags
from wispd.execution.planner import CancelOrders, NewOrder, Plan, Planner, reserve_need
from wispd.execution.working import WorkingOrders
from wispd.logs import LimitedLog
from wispd.metrics.registry import Registry
from wispd.protocol import dec_str
from wispd.ratelimit import KeyedBuckets

ZERO = Decimal(0)
MarketKey = tuple[str, str, str]
MAX_CLOCK_AHEAD_MS = 60_000  # a signal stamped further in the future than this is refused
BAD_SIGNAL_RATE, BAD_SIGNAL_BURST = 20.0, 100.0
MARK_SAVE_S = 5.0
DUST, DRIFT_TOLERANCE = Decimal("1e-8"), Decimal("1e-6")  # balance differences below these are rounding
IMMEDIATE = ("IOC", "FOK")

# What each venue can be asked for (anything else is refused before it is sent: never silently changed).
CAPABILITIES: dict[str, dict[str, Any]] = {
    "paper": {"name": "the paper engine", "tif": ("GTC", "IOC", "FOK"), "post_only": True},
    "binance": {"name": "Binance spot", "tif": ("GTC", "IOC", "FOK"), "post_only": True,
                "native_triggers": {"stop": ("GTC", "IOC", "FOK"), "take_profit": ("GTC", "IOC", "FOK")},
                "trigger_types": {("stop", False): "STOP_LOSS", ("stop", True): "STOP_LOSS_LIMIT",
                                  ("take_profit", False): "TAKE_PROFIT", ("take_profit", True): "TAKE_PROFIT_LIMIT"}},
    "hyperliquid": {"name": "Hyperliquid", "tif": ("GTC", "IOC"), "post_only": True, "integer_leverage": True,
                    "native_triggers": {"stop": ("GTC",), "take_profit": ("GTC",)}},
}
# native_triggers: trigger kinds the venue holds itself, and the time-in-force its limit form can have (a
# market trigger is always possible); trigger_types: the names of those order types where a market lists
# the types it takes (Binance's orderTypes). Trailing stops and bracket exits are held by the executor everywhere:
# docs/execution.md says why.


@dataclass
class PendingReport:
    """A report to send once the commit that recorded what it says is done."""

    client_id: str  # the order it is about ("" for an action without one: a cancel_all that matched nothing)
    status: str
    reason: str = ""
    signal_id: str | None = None  # None: the order's own signal
    code: str = ""
    action: int | None = None  # None: the order's own action index
    strategy: str = ""  # for reports without an order


class Sink(Protocol):
    def publish(self, strategy: str, kind: str, body: dict[str, Any]) -> None: ...


RulesSource = Callable[[MarketKey], MarketRules]  # raises Reject (unknown symbol, ingestor down)


class ExecutionCore:
    def __init__(self, account: str, mode: str, journal: Journal, engine: Any, limits: RiskLimits,
                 strategies: dict[str, Allocation], capital: dict[str, Decimal], rules_source: RulesSource,
                 sink: Sink, log: Any, exchanges: list[str], driver: str | None = None,
                 fee_override: tuple[Any, Any] = (None, None)) -> None:
        self.account, self.mode, self.journal, self.engine = account, mode, journal, engine
        self.limits, self.log, self.sink = limits, log, sink
        self.exchanges = set(exchanges)
        self.driver = driver
        self.rules_source = rules_source
        self.fee_override = fee_override
        self.allocations: dict[str, Allocation] = dict(strategies)
        self.strategies: set[str] = set(strategies)
        self.funds = Funds(capital)
        self.ledger = Ledger(self.funds)
        self.rules: dict[MarketKey, MarketRules] = {}
        self.marks: dict[MarketKey, Decimal] = {}  # last known mark per market (book mid, or the journal's)
        self.trigger_px: dict[MarketKey, Decimal] = {}  # last trade (spot) / mark (perp)
        self.perp_marks: set[MarketKey] = set()  # markets with a venue mark (their trades do not trigger)
        self.orders = WorkingOrders()  # every working order: on the venue, or armed here
        self.exit_fills: dict[str, Decimal] = {}  # bracket entry -> what its exits have closed
        self.halted_account = False
        self.halted_strategies: dict[str, str] = {}  # strategy -> why (wispctl halt NAME, a kill switch)
        self.outbox: list[tuple[WorkingOrder, float]] = []  # journaled, to send after the next commit
        self.pending_reports: list[PendingReport] = []
        self.pending_rejections: list[tuple[str, str, Reject]] = []
        self.cancel_requests: dict[str, tuple[str, str, int]] = {}  # order -> (strategy, cancel signal, action)
        self.bad_signals = KeyedBuckets(BAD_SIGNAL_RATE, BAD_SIGNAL_BURST)
        self.limited = LimitedLog(log)
        self.rejects: Counter[str] = Counter()
        self.outcomes: Counter[str] = Counter()
        self.fills = 0
        self.fired = 0
        self.acks = 0  # acknowledgements seen (the test hook that pauses between an ack and its commit)
        self.reg = Registry()
        self.submitted_at: dict[str, float] = {}
        self.current_ttl = 0.0
        self._last_mark_save = 0.0
        self.planner = Planner(self)
        self.live_cfg: dict[str, Any] = {}
        self.foreign_orders = 0
        self.funding_state: dict[MarketKey, tuple[Decimal, int, Decimal]] = {}  # rate, next time, mark (paper)
        self._last_drift: dict[str, Decimal] = {}
        self._fills_at_read = 0

    # ------------------------------------------------------------------ the planner's view (planner.View)
    def halted(self, strategy: str) -> str | None:
        if not self.journal.healthy:
            return f"the journal cannot be written ({self.journal.fault}); no new orders until it can"
        if self.halted_account:
            return "trading is halted on this account (wispctl resume lifts it)"
        reason = self.halted_strategies.get(strategy)
        return f"{strategy} is halted: {reason}" if reason else None

    def has_exchange(self, exchange: str) -> bool:
        return exchange in self.exchanges

    def market_rules(self, key: MarketKey) -> MarketRules:
        rules = self.rules.get(key)
        if rules is None:
            rules = self.rules[key] = self.rules_source(key)
        return rules

    def mid(self, key: MarketKey) -> Decimal | None:
        return self.engine.mid(key)

    def trigger_price(self, key: MarketKey) -> Decimal | None:
        return self.trigger_px.get(key)

    def position_of(self, strategy: str, key: MarketKey) -> PositionState | None:
        return self.ledger.positions.get((strategy, *key))

    def working(self, client_id: str) -> WorkingOrder | None:
        return self.orders.get(client_id)

    def working_of(self, strategy: str) -> list[WorkingOrder]:
        return self.orders.of_strategy(strategy)

    def final_status(self, client_id: str, strategy: str) -> str | None:
        row = self.journal.order(client_id)
        if row is None or row["strategy"] != strategy:
            return None
        return str(row["status"]) if row["status"] in FINAL_STATES else None

    def open_count(self) -> int:
        return len(self.orders)

    def exposure(self, strategy: str) -> Decimal:
        return self.ledger.exposure(strategy, self.marks)

    def available(self, strategy: str, asset: str) -> Decimal:
        return self.funds.available(strategy, asset)

    def reservation(self, client_id: str) -> tuple[str, Decimal] | None:
        held = self.funds.holds.get(client_id)
        return (held[1], held[2]) if held else None

    def capabilities(self) -> dict[str, Any]:
        return CAPABILITIES.get(self.driver or "paper", CAPABILITIES["paper"])

    def venue_holds(self, order: WorkingOrder) -> bool:
        """Whether this (standalone) trigger order goes to the venue as its own trigger order: live, with
        ``triggers = "venue"``, a kind the venue holds, a time-in-force its limit form can have, and an order
        type the market lists (Binance markets name theirs)."""
        if self.mode != "live" or self.live_cfg.get("triggers", "venue") != "venue" or order.trigger is None:
            return False
        caps = self.capabilities()
        tifs = caps.get("native_triggers", {}).get(order.trigger.kind)
        if tifs is None or order.parent is not None or (order.price is not None and order.tif not in tifs):
            return False
        listed = getattr(self.engine, "order_types", lambda key: None)(order.book_key)
        wanted = caps.get("trigger_types", {}).get((order.trigger.kind, order.price is not None))
        return listed is None or wanted is None or wanted in listed

    def fees(self, exchange: str, symbol: str) -> tuple[Decimal, Decimal]:
        rules = next((r for (ex, _, sym), r in self.rules.items() if ex == exchange and sym == symbol), None)
        maker = Decimal(self.fee_override[0]) if self.fee_override[0] else (rules.maker_fee if rules else ZERO)
        taker = Decimal(self.fee_override[1]) if self.fee_override[1] else (rules.taker_fee if rules else ZERO)
        return maker, taker

    # ------------------------------------------------------------------ restore (start)
    def restore(self) -> None:
        """Positions, sub-ledgers, marks and market rules from the journal; fund new strategies."""
        for r in self.journal.positions():
            pos = self.ledger.position((r["strategy"], r["exchange"], r["market"], r["symbol"]))
            pos.qty, pos.avg, pos.realized, pos.fees = (Decimal(r[k]) for k in ("qty", "avg_price", "realized",
                                                                                 "fees"))
        rows = self.journal.subledgers()
        if rows:  # the journal knows the split already: it is the truth, whatever the configured capital
            self.funds.unassigned = {}
            for r in rows:
                held, funded = Decimal(r["held"]), Decimal(r["funded"])
                if r["strategy"] == "":
                    self.funds.unassigned[r["asset"]] = held
                else:
                    self.funds.held[r["strategy"]][r["asset"]] = held
                    self.funds.funded[r["strategy"]][r["asset"]] = funded
        for key, price in self.journal.marks().items():
            self.marks.setdefault(key, price)
        for row in self.journal.orders(OPEN_STATES):
            rules = (row_flags(row).get("rules") or {})
            if rules:
                self.rules.setdefault((row["exchange"], row["market"], row["symbol"]), MarketRules.from_wire(rules))
        for key, pos in self.ledger.positions.items():
            if key[2] == "perp" and pos.qty:
                self.funds.reserve(margin_key(key), key[0], split_symbol(key[3])[1], pos.margin)
            elif key[2] == "spot" and pos.qty > 0 and not rows:  # a journal from before sub-ledgers existed:
                base = split_symbol(key[3])[0]  # what a strategy bought is its own
                take = min(pos.qty, max(ZERO, self.funds.unassigned.get(base, ZERO)))
                self.funds.unassigned[base] = self.funds.unassigned.get(base, ZERO) - take
                self.funds.held[key[0]][base] = self.funds.held[key[0]].get(base, ZERO) + take

    def venue_balances(self, balances: dict[str, Decimal]) -> None:
        """A live account's balances as the exchange reports them at reconciliation (after the fills made
        while the executor was away are in): the first time they are the capital; later, what the
        sub-ledgers do not explain (deposits, withdrawals, trades made outside wispd, funding) moves the
        unassigned funds, and is logged."""
        if not self.journal.subledgers() and not self.journal.meta("capital"):
            self.funds.unassigned = dict(balances)
            return
        self._absorb(self._drift(balances))

    def venue_update(self, balances: dict[str, Decimal]) -> None:
        """A later balance read (every ``live.account_poll_s``). A read can be ahead of the fills the executor
        has seen (a trade on its way), so a difference counts only when two reads in a row show the same
        one with no fill in between: then it is money that moved outside wispd, and the unassigned funds
        take it."""
        drift = self._drift(balances)
        quiet = self.fills == self._fills_at_read
        stable = {a: d for a, d in drift.items() if quiet and self._last_drift.get(a) == d}
        self._last_drift = {a: d for a, d in drift.items() if a not in stable}
        self._fills_at_read = self.fills
        self._absorb(stable)

    def _drift(self, balances: dict[str, Decimal]) -> dict[str, Decimal]:
        account = self.funds.account()
        out = {}
        for asset in set(balances) | set(account):
            have, ours = balances.get(asset, ZERO), account.get(asset, ZERO)
            if abs(have - ours) > max(DUST, abs(ours) * DRIFT_TOLERANCE):  # below that: rounding, not money
                out[asset] = have - ours
        return out

    def _absorb(self, drift: dict[str, Decimal]) -> None:
        if not drift:
            return
        account = self.funds.account()
        for asset, delta in sorted(drift.items()):
            self.funds.unassigned[asset] = self.funds.unassigned.get(asset, ZERO) + delta
            self.log.warning("balance_drift", asset=asset, exchange=str(account.get(asset, ZERO) + delta),
                             journal=str(account.get(asset, ZERO)), moved=str(delta),
                             unassigned_now=str(self.funds.unassigned[asset]),
                             note="money moved outside wispd: the unassigned funds take the difference")
            if self.funds.unassigned[asset] < 0:
                self.log.error("balance_short", asset=asset, short=str(-self.funds.unassigned[asset]),
                               note="the exchange holds less than the strategies' sub-ledgers say")
            self.reg.inc("wispd_balance_drifts_total", account=self.account, asset=asset)
        self._save_funds()

    def fund(self) -> None:
        capital = self._capital()
        moved = self.funds.fund(sorted(self.strategies), self.allocations, capital)
        for strategy, assets in moved.items():
            self.log.info("strategy_funded", strategy=strategy, **{a: str(v) for a, v in assets.items()})
        if moved:
            self._save_funds()

    def _capital(self) -> dict[str, Decimal]:
        """What allocations are shares of: the account's balances when it was first opened (journaled)."""
        raw = self.journal.meta("capital")
        if raw:
            import orjson

            return {k: Decimal(v) for k, v in orjson.loads(raw).items()}
        capital = self.funds.account()
        import orjson

        self.journal.meta("capital", orjson.dumps({k: str(v) for k, v in capital.items()}).decode())
        return capital

    def _save_funds(self, strategy: str | None = None, assets: tuple[str, ...] | None = None) -> None:
        """Journal the sub-ledgers (of one strategy's assets after a fill; all of them after funding)."""
        if strategy is None:
            for asset, amount in self.funds.unassigned.items():
                self.journal.save_subledger("", asset, amount, ZERO)
        for strat, held in self.funds.held.items():
            if strategy is not None and strat != strategy:
                continue
            for asset, amount in held.items():
                if assets is None or asset in assets:
                    self.journal.save_subledger(strat, asset, amount, self.funds.funded[strat].get(asset, ZERO))
        account = self.funds.account()
        for asset in assets if assets is not None else tuple(account):
            self.journal.save_balance(asset, account.get(asset, ZERO))

    def adopt(self, order: WorkingOrder) -> None:
        """A working order restored at start (or found on the exchange): the core follows it again."""
        self.orders[order.client_id] = order
        self._rereserve(order)

    # ------------------------------------------------------------------ signals
    def signal(self, msg: dict[str, Any] | None) -> None:
        """Validate, dedupe, plan and journal one decoded signal (the caller guards and savepoints it)."""
        strategy = msg.get("strategy") if msg and isinstance(msg.get("strategy"), str) else None
        signal_id = msg.get("id") if msg and isinstance(msg.get("id"), str) else None
        known = strategy if strategy in self.strategies else None
        if known and self.bad_signals.get(known).empty:
            self.reject(known, signal_id, Reject("throttled", "too many rejected signals from this strategy; "
                                                 "its signals are refused until the rate drops"))
            return
        try:
            sig = parse_signal(msg)
        except Reject as rej:
            self.reject(known, signal_id, rej)
            return
        strategy, signal_id = sig["strategy"], sig["id"]
        if strategy not in self.strategies:
            self.reject(None, None, Reject("unknown_strategy", f"{strategy!r} does not trade on {self.account}"))
            return
        if not self.journal.healthy:
            self.reject(strategy, signal_id, Reject("journal_unavailable", "the journal cannot be written "
                                                    f"({self.journal.fault}); no new orders until it can"))
            return
        # journaled as accepted at once (one statement, not an insert and an update): a refusal below rewrites
        # it, and a signal that fails half-way is rolled back whole with its savepoint, so no other status of
        # this row is ever committed
        if not self.journal.record_signal(strategy, signal_id, "accepted", "", msg):
            self.reject(strategy, signal_id, Reject("duplicate", f"signal {signal_id} was already received"))
            return
        now = now_ms()
        if sig["ts"] > now + MAX_CLOCK_AHEAD_MS:
            return self._refuse(sig, Reject("bad_timestamp", "the signal's ts is more than 60 s ahead of the "
                                            "executor's clock (its TTL would never run out)"))
        if now > sig["ts"] + sig["ttl_ms"]:
            return self._refuse(sig, Reject("expired", "the signal's TTL passed before it arrived"))
        try:
            plan = self.planner.plan(sig)
        except Reject as rej:
            return self._refuse(sig, rej)
        self._carry_out(plan)

    def guarded_signal(self, msg: dict[str, Any] | None) -> Exception | None:
        """``signal`` under its own journal savepoint and exception guard: whatever one frame does, the
        account goes on with the next, and a signal that fails half-way leaves nothing in the journal (it is
        rejected as ``internal_error``). Returns the exception, for the caller to count and log."""
        self.journal.savepoint()
        outbox, pending = len(self.outbox), len(self.pending_reports)
        try:
            self.signal(msg)
            self.journal.release_savepoint()
            return None
        except Exception as exc:  # noqa: BLE001 - one bad frame never takes the account down
            self.journal.rollback_to_savepoint()
            del self.outbox[outbox:]
            del self.pending_reports[pending:]
            self.reg.inc("wispd_internal_errors_total", account=self.account, kind=type(exc).__name__)
            strategy = msg.get("strategy") if msg else None
            signal_id = msg.get("id") if msg else None
            if isinstance(strategy, str) and strategy in self.strategies and isinstance(signal_id, str):
                self.reject(strategy, signal_id[:64], Reject(
                    "internal_error", f"the executor could not process this signal ({type(exc).__name__})"))
            return exc

    def _refuse(self, sig: dict[str, Any], rej: Reject) -> None:
        self.journal.set_signal_status(sig["strategy"], sig["id"], "rejected", rej.code)
        self.reject(sig["strategy"], sig["id"], rej)

    def reject(self, strategy: str | None, signal_id: str | None, rej: Reject) -> None:
        """Count, log (rate-limited) and report a rejection once the pass's commit is done."""
        self.rejects[rej.code] += 1
        self.reg.inc("wispd_rejects_total", account=self.account, reason=rej.code)
        self.limited("info", "signal_rejected", kind=f"{strategy}:{rej.code}", strategy=strategy,
                     signal_id=signal_id, code=rej.code, reason=rej.message)
        if strategy and signal_id:
            self.pending_rejections.append((strategy, signal_id, rej))
            if rej.code not in ("throttled", "duplicate"):
                self.bad_signals.take(strategy)

    def _carry_out(self, plan: Plan) -> None:
        sig = plan.signal
        expires = sig["ts"] + sig["ttl_ms"]
        self.current_ttl = sig["ttl_ms"]
        for step in plan.steps:
            if isinstance(step, CancelOrders):
                for cid in step.client_ids:
                    self.cancel_requests[cid] = (sig["strategy"], sig["id"], step.index)
                    self.cancel(cid, "cancelled by strategy")
                if not step.client_ids:
                    self.pending_reports.append(PendingReport("", "cancelled", "cancel_all: no working order "
                                                              "matched", sig["id"], "", step.index, sig["strategy"]))
                continue
            self._place(step, expires)

    def _place(self, step: NewOrder, expires: float) -> None:
        order = step.order
        self.journal.record_intent(step.intent)
        order.extra["expires"] = expires
        order.extra["signal_ts"] = expires - self.current_ttl
        if order.trigger is not None and not order.extra.get("native"):
            self._arm(order)
        else:  # a plain order, or a trigger the venue holds (it rests there until it fires)
            self.orders[order.client_id] = order
            self.outbox.append((order, expires))
        if step.reserve is not None:
            self.funds.reserve(order.client_id, order.strategy, *step.reserve)
        for leg in step.exits:
            self.journal.record_intent(leg.intent)
            leg.order.extra["expires"] = expires
            self._arm(leg.order)

    def _arm(self, order: WorkingOrder) -> None:
        """Held here until its trigger fires (or, for a bracket's exits, until its entry fills)."""
        order.status = "armed"
        self.orders[order.client_id] = order
        self.journal.update_order(order.client_id, status="armed")
        self.pending_reports.append(PendingReport(order.client_id, "accepted", "armed"))

    # ------------------------------------------------------------------ sending (after the commit)
    def send(self) -> list[Event]:
        """Hand every journaled order of the outbox to the venue; returns what it said at once."""
        events: list[Event] = []
        outbox, self.outbox = self.outbox, []
        for order, expires in outbox:
            if order.client_id not in self.orders:
                continue  # cancelled before it could leave (an OCO sibling filled meanwhile)
            sent = now_ms()
            self.submitted_at[order.client_id] = sent
            if order.replaces and order.replaces in self.orders:
                events += self.engine.amend(order.replaces, order, sent, expires)
            else:
                events += self.engine.submit(order, sent, expires)
            if self.mode == "paper":
                self.journal.update_order(order.client_id, status="accepted")
            self.reg.inc("wispd_orders_total", account=self.account)
            if "signal_ts" in order.extra and not order.extra.get("fired"):
                self.reg.observe("wispd_signal_to_order_seconds", max(0.0, sent - order.extra["signal_ts"]) / 1000,
                                 account=self.account)
        return events

    def cancel(self, client_id: str, reason: str) -> None:
        order = self.orders.get(client_id)
        if order is None:
            return
        waiting = [item for item in self.outbox if item[0] is order]
        if order.status == "armed" or waiting:  # held here, or not sent yet: it ends here, never leaves
            self.outbox = [item for item in self.outbox if item[0] is not order]
            self.apply_events([Done(order, "cancelled", reason)])
        else:
            self.apply_events(self.engine.cancel(client_id, reason))

    # ------------------------------------------------------------------ what the venue says
    def apply_events(self, events: list[Event]) -> None:
        for ev in events:
            order = ev.order
            sent_at = self.submitted_at.pop(order.client_id, None)
            if sent_at is not None:
                took = max(0.0, now_ms() - sent_at)
                self.reg.observe("wispd_order_to_ack_seconds", took / 1000, account=self.account)
                if self.mode == "live":  # what a venue really takes, for backtests to replay
                    self.journal.record_ack(order.client_id, order.exchange, took)
            if isinstance(ev, Fill):
                self._fill(ev)
            elif isinstance(ev, Done):
                self._done(ev)

    def _fill(self, ev: Fill) -> None:
        order = ev.order
        key = (order.strategy, order.exchange, order.market, order.symbol)
        pos = self.ledger.position(key)
        realized = PositionState(pos.qty, pos.avg, pos.realized, pos.fees).apply(order.side, ev.qty, ev.price, ev.fee)
        row = self.journal.order(order.client_id) or {}
        if not self.journal.record_fill(order.client_id, ev.price, ev.qty, ev.fee, ev.liquidity, ev.trade_id,
                                        realized=realized, order=row):
            return  # this exchange trade is journaled already
        self.ledger.apply_fill(key, order.side, ev.qty, ev.price, ev.fee, order.leverage)
        self.journal.save_position(*key, pos.qty, pos.avg, pos.realized, pos.fees)
        self._save_funds(order.strategy, split_symbol(order.symbol))
        fees = Decimal(row.get("fees") or "0") + ev.fee
        status = row.get("status") if row.get("status") in FINAL_STATES else \
            "filled" if order.remaining <= 0 else "partially_filled"  # a late fill keeps a final status
        self.journal.update_order(order.client_id, filled=dec_str(order.filled), avg_price=dec_str(order.avg_price),
                                  fees=dec_str(fees), status=status)
        self.fills += 1
        self.reg.inc("wispd_fills_total", account=self.account)
        if order.parent is not None:
            self.exit_fills[order.parent] = self._exits_filled(order.parent) + ev.qty
        self._rereserve(order)
        if order.market == "perp":  # what a perp order needs depends on the position it would reduce
            for other in self.orders.on_book(order.book_key):
                if other is not order and other.strategy == order.strategy:
                    self._rereserve(other)
                    self._fit_held_reduce_only(other, pos.qty)
        if order.remaining > 0 and status == "partially_filled":
            self.report_order(order.client_id, "partially_filled")
        self._after_fill(order)

    def _done(self, ev: Done) -> None:
        order = ev.order
        self.acks += ev.status == "open"
        status = "accepted" if ev.status == "open" else ev.status
        fields: dict[str, Any] = {"status": "open" if ev.status == "open" else ev.status, "reason": ev.reason}
        if order.exchange_id:
            fields["exchange_id"] = order.exchange_id
        if ev.status == "open" and order.filled > 0:
            fields["status"] = "partially_filled"
        self.journal.update_order(order.client_id, **fields)
        if ev.status != "open":
            self.orders.pop(order.client_id, None)
            self.funds.release(order.client_id)
        self.report_order(order.client_id, status, ev.reason, ev.code)
        if ev.code and self.mode == "live":
            self.reg.inc("wispd_exchange_errors_total", account=self.account, code=ev.code)
        if ev.status != "open" and order.client_id in self.cancel_requests:
            _, signal_id, index = self.cancel_requests.pop(order.client_id)
            if ev.status == "cancelled":
                self.pending_reports.append(PendingReport(order.client_id, "cancelled", ev.reason, signal_id, "",
                                                          index))
            else:
                self.pending_reports.append(PendingReport(order.client_id, "rejected", f"the order was {ev.status} "
                                                          "before the cancel took effect", signal_id, "too_late",
                                                          index))
        if ev.status != "open":
            self._after_done(order)
        elif order.reduce_only and order.extra.get("native"):
            pos = self.ledger.positions.get((order.strategy, order.exchange, order.market, order.symbol))
            self._fit_held_reduce_only(order, pos.qty if pos else ZERO)

    def report_order(self, client_id: str, status: str, reason: str = "", code: str = "") -> None:
        self.pending_reports.append(PendingReport(client_id, status, reason, None, code))

    def _rereserve(self, order: WorkingOrder) -> None:
        if order.client_id not in self.orders or order.status in FINAL_STATES:
            self.funds.release(order.client_id)
            return
        pos = self.ledger.positions.get((order.strategy, order.exchange, order.market, order.symbol))
        _, taker = self.fees(order.exchange, order.symbol)
        need = reserve_need(order, taker, pos.qty if pos else ZERO)
        if need is None:
            self.funds.release(order.client_id)
        else:
            self.funds.reserve(order.client_id, order.strategy, *need)

    def _fit_held_reduce_only(self, order: WorkingOrder, position: Decimal) -> None:
        """A reduce-only trigger the venue holds reduces the account's position when it fires, not this
        strategy's: it is kept no larger than the strategy's position, and cancelled when that is closed, so
        it can never sell what another strategy on the account holds."""
        if not (order.reduce_only and order.extra.get("native")) or order.client_id not in self.orders or \
                (order.replaces and order.replaces in self.orders) or \
                any(o.replaces == order.client_id for o in self.orders.values()):
            return  # (a resize in flight: it is fitted again once the venue has acknowledged it)
        reducible = max(ZERO, -position if order.side == "buy" else position)
        if order.remaining > reducible:
            self._resize_resting(order, reducible, "the position this reduce-only order protects is closed")

    # ------------------------------------------------------------------ brackets
    def _legs(self, entry_id: str) -> list[WorkingOrder]:
        return self.orders.legs(entry_id)

    def entry_of(self, entry_id: str) -> WorkingOrder | None:
        """A bracket's entry: working, or rebuilt from its (final) journal row."""
        entry = self.orders.get(entry_id)
        if entry is None:
            row = self.journal.order(entry_id)
            entry = order_from_row(row) if row else None
        return entry

    def _after_fill(self, order: WorkingOrder) -> None:
        if order.parent is None and self._legs(order.client_id):
            self.refresh_bracket(order)
        elif order.parent is not None:
            entry = self.entry_of(order.parent)
            if entry is not None:
                self.refresh_bracket(entry)

    def _after_done(self, order: WorkingOrder) -> None:
        if order.parent is None:
            if self._legs(order.client_id):
                self.refresh_bracket(order)
        else:
            entry = self.entry_of(order.parent)
            if entry is not None:
                self.refresh_bracket(entry)

    def _exits_filled(self, entry_id: str) -> Decimal:
        """What the exits of a bracket have closed so far, working or finished (counted as they fill;
        from the journal on restart)."""
        total = self.exit_fills.get(entry_id)
        if total is None:
            total = self.exit_fills[entry_id] = sum((Decimal(r["filled"] or "0")
                                                     for r in self.journal.children(entry_id)), ZERO)
        return total

    def refresh_bracket(self, entry: WorkingOrder) -> None:
        """The exits' size follows the entry's fills minus what the exits closed; at zero with the entry done,
        the rest of them is cancelled; the bracket reserves the inventory its exits would sell (spot)."""
        legs = self._legs(entry.client_id)
        size = max(ZERO, entry.filled - self._exits_filled(entry.client_id))
        entry_done = entry.client_id not in self.orders
        base = split_symbol(entry.symbol)[0]
        bracket_key = f"bracket:{entry.client_id}"
        if entry.market == "spot" and legs:
            self.funds.reserve(bracket_key, entry.strategy, base, size)
        else:
            self.funds.release(bracket_key)
        for leg in legs:
            if size <= 0 and entry_done:
                self.cancel(leg.client_id, "bracket closed: nothing left to protect")
                continue
            if leg.status == "armed":
                if leg.qty != size:
                    leg.qty = size + leg.filled
                    self.journal.update_order(leg.client_id, qty=dec_str(leg.qty))
                if leg.leg == "tp" and leg.trigger is None and size > 0:
                    self._fire(leg, "take-profit limit placed for the filled entry")  # a resting limit now
            elif leg.remaining != size and leg.price is not None and leg.leg == "tp":
                self._resize_resting(leg, size, "bracket closed: nothing left to take profit on")
        if not legs:
            self.funds.release(bracket_key)

    def _resize_resting(self, leg: WorkingOrder, size: Decimal, why: str) -> None:
        """A resting order's remaining size follows what it protects (a bracket's take-profit: the bracket's
        size; a reduce-only trigger the venue holds: the position). Paper resizes in place; a venue gets an
        amend (a replacement with its own client id)."""
        if size <= 0:
            self.cancel(leg.client_id, why)
            return
        new_qty = leg.filled + size
        if hasattr(self.engine, "resize"):
            self.engine.resize(leg.client_id, new_qty)
            leg.qty = new_qty
            self.journal.update_order(leg.client_id, qty=dec_str(new_qty))
            return
        n = int(leg.extra.get("version", 0)) + 1
        replacement = WorkingOrder(client_order_id(leg.strategy, leg.client_id, f"resize.{n}"), leg.strategy,
                                   leg.exchange, leg.market, leg.symbol, leg.side, size, leg.price, leg.tif, False,
                                   reduce_only=True, parent=leg.parent, leg=leg.leg, leverage=leg.leverage,
                                   step=leg.step, replaces=leg.client_id, trigger=copy.copy(leg.trigger),
                                   max_cost=leg.max_cost)
        replacement.extra["version"] = n
        if leg.extra.get("native"):
            replacement.extra["native"] = True
        row = self.journal.order(leg.client_id) or {}
        flags = row_flags(row)
        self.journal.record_intent({"client_id": replacement.client_id, "strategy": leg.strategy,
                                    "signal_id": row.get("signal_id", ""), "action": row.get("action", 0),
                                    "exchange": leg.exchange, "market": leg.market, "symbol": leg.symbol,
                                    "side": leg.side, "order_type": "limit" if leg.price is not None else "market",
                                    "qty": dec_str(size), "price": dec_str(leg.price) if leg.price is not None
                                    else None, "tif": leg.tif, "flags": {**flags, "replaces": leg.client_id}})
        self.orders[replacement.client_id] = replacement
        self.outbox.append((replacement, leg.extra.get("expires") or now_ms() + 3_600_000))

    # ------------------------------------------------------------------ triggers
    def on_trigger_price(self, key: MarketKey, price: Decimal) -> None:
        """A trigger-price update: evaluate every armed order of this market (and the trailing ones follow)."""
        self.trigger_px[key] = price
        for order in [o for o in self.orders.on_book(key) if o.status == "armed"]:
            if order.trigger is None:
                continue
            if order.parent is not None and order.qty - order.filled <= 0:
                continue  # a bracket exit with nothing to protect yet
            was = order.trigger.price
            if fires(order.trigger, order.side, price):
                self._fire(order, f"{order.trigger.kind} at {order.trigger.price} (price {price})")
            elif order.trigger.price != was:  # a trailing stop moved: journal where it is now
                flags = row_flags(self.journal.order(order.client_id) or {})
                flags["trigger"] = order.trigger.wire()
                import orjson

                self.journal.update_order(order.client_id, flags=orjson.dumps(flags))

    def _fire(self, order: WorkingOrder, why: str) -> None:
        """The trigger fired: the order becomes a market (or limit) order with the same client id; its row
        moves to ``intent`` now and the order leaves after the commit: once."""
        if order.parent is not None and order.leg == "sl":
            for sibling in self._legs(order.parent):  # one-cancels-other: the stop takes the whole size
                if sibling is not order and sibling.status != "armed":
                    self.cancel(sibling.client_id, "bracket: the stop loss fired")
        pos = self.ledger.positions.get((order.strategy, order.exchange, order.market, order.symbol))
        if order.reduce_only and (pos is None or pos.qty == 0 or (pos.qty > 0) == (order.side == "buy")):
            self.cancel(order.client_id, f"{why}: nothing left to reduce")
            return
        if order.reduce_only and pos is not None and order.remaining > abs(pos.qty):
            order.qty = order.filled + abs(pos.qty)  # never more than the position it reduces
        order.status = "pending"
        order.trigger = None  # from here it is a plain order (its row keeps what the trigger was)
        order.extra["fired"] = True
        self.fired += 1
        self.journal.update_order(order.client_id, status="intent", qty=dec_str(order.qty), reason=why)
        self._rereserve(order)
        self.outbox.append((order, order.extra.get("expires") or now_ms() + 3_600_000))
        self.log.info("trigger_fired", client_id=order.client_id, strategy=order.strategy, why=why)

    # ------------------------------------------------------------------ market data
    def on_book(self, key: MarketKey, bids: Any, asks: Any, now: float) -> None:
        self.apply_events(self.engine.on_book(key, bids, asks, now))
        mid = self.engine.mid(key)
        if mid is not None:
            self.marks[key] = mid

    def on_trades(self, key: MarketKey, trades: list[tuple[Decimal, Decimal]], now: float) -> None:
        self.apply_events(self.engine.on_trades(key, trades, now))
        if trades and key not in self.perp_marks:
            self.on_trigger_price(key, trades[-1][0])

    def on_mark(self, key: MarketKey, mark: Decimal) -> None:
        """A perp's mark price (from the venue's funding stream): its trigger price from now on."""
        self.perp_marks.add(key)
        self.on_trigger_price(key, mark)

    def on_market(self, parsed: Any, now: float) -> None:
        """A parsed batch of market data (``market.parse_frames``), in the one order that is the same live and
        in a backtest: trades, then books, then marks, then funding."""
        for key, batch in parsed.trades:
            self.on_trades(key, batch, now)
        for key, (bids, asks) in parsed.books.items():
            self.on_book(key, bids, asks, now)
        for key, mark in parsed.marks.items():
            self.on_mark(key, mark)
        for key, (rate, next_ts, mark) in parsed.funding.items():
            self.on_funding(key, rate, next_ts, mark)

    def on_funding(self, key: MarketKey, rate: Decimal, next_ts: int, mark: Decimal) -> None:
        """A perp's funding stream. In paper mode, when a funding time passes (the stream moves on to the next
        one), every position in the market pays ``qty x mark x rate`` at the rate and mark last stated for it
        (a long pays a positive rate, a short receives it): journaled once per position and time, booked to
        realized PnL and the quote sub-ledger. Live, the venue pays it and the balances show it."""
        if self.mode != "paper":
            return
        prev = self.funding_state.get(key)
        self.funding_state[key] = (rate, next_ts, mark)
        if prev is None or next_ts <= prev[1]:
            return
        p_rate, p_time, p_mark = prev
        for (strategy, ex, market, symbol), pos in list(self.ledger.positions.items()):
            if (ex, market, symbol) != key or not pos.qty:
                continue
            amount = pos.qty * p_mark * p_rate
            if self.journal.record_funding(strategy, ex, market, symbol, p_time, p_rate, p_mark, pos.qty, amount):
                self.ledger.apply_funding((strategy, ex, market, symbol), amount)
                self.journal.save_position(strategy, ex, market, symbol, pos.qty, pos.avg, pos.realized, pos.fees)
                self._save_funds(strategy, split_symbol(symbol))
                self.log.info("funding_paid", strategy=strategy, market=":".join(key), rate=str(p_rate),
                              amount=str(amount), funding_ts=p_time)

    def tick(self, now: float) -> None:
        self.apply_events(self.engine.tick(now))
        account = self.engine.take_account() if self.mode == "live" else None
        if account is not None:
            self.venue_update(account.balances)
        if clock.monotonic() - self._last_mark_save >= MARK_SAVE_S and self.marks:
            self._last_mark_save = clock.monotonic()
            for key, price in self.marks.items():
                if any(k[1:] == key for k, p in self.ledger.positions.items() if p.qty):
                    self.journal.save_mark(key, price, now)

    # ------------------------------------------------------------------ commands
    def halt(self, strategy: str | None, reason: str) -> None:
        if strategy is None:
            self.halted_account = True
        else:
            self.halted_strategies[strategy] = reason

    def resume(self, strategy: str | None) -> None:
        if strategy is None:
            self.halted_account = False
        else:
            self.halted_strategies.pop(strategy, None)

    def cancel_all_of(self, strategy: str | None, reason: str) -> int:
        ids = [cid for cid, o in self.orders.items() if strategy is None or o.strategy == strategy]
        for cid in ids:
            self.cancel(cid, reason)
        return len(ids)

    def flatten(self, strategy: str | None, reason: str) -> int:
        """Close positions (of one strategy, or all) with reduce-only market orders; returns how many."""
        made = 0
        stamp = int(now_ms())
        for (strat, ex, market, symbol), pos in list(self.ledger.positions.items()):
            if pos.qty == 0 or (strategy is not None and strat != strategy) or ex not in self.exchanges:
                continue
            key = (ex, market, symbol)
            try:
                rules = self.market_rules(key)
            except Reject:
                self.log.error("flatten_failed", strategy=strat, symbol=symbol, reason="no market rules")
                continue
            signal_id = f"op-close-{stamp}"
            cid = client_order_id(strat, signal_id, f"{ex}:{market}:{symbol}")
            if cid in self.orders or self.journal.order(cid):
                continue
            side = "sell" if pos.qty > 0 else "buy"
            mid = self.engine.mid(key) or self.marks.get(key) or pos.avg
            worst = mid * (1 + self.limits.price_collar_pct / 100)
            _, taker = self.fees(ex, symbol)
            order = WorkingOrder(cid, strat, ex, market, symbol, side, abs(pos.qty), None, "IOC", False,
                                 reduce_only=True, ref_price=mid, leverage=pos.leverage, step=rules.step,
                                 max_cost=abs(pos.qty) * worst * (1 + max(ZERO, taker)) if side == "buy" else None)
            self.journal.record_signal(strat, signal_id, "accepted", reason, {"op": "close", "reason": reason})
            self.journal.record_intent({"client_id": cid, "strategy": strat, "signal_id": signal_id, "action": 0,
                                        "exchange": ex, "market": market, "symbol": symbol, "side": side,
                                        "order_type": "market", "qty": dec_str(order.qty), "price": None,
                                        "tif": "IOC", "flags": {"reduce_only": True, "rules": rules.wire(),
                                                                "reason": reason}})
            self.orders[cid] = order
            self._rereserve(order)
            self.outbox.append((order, now_ms() + 60_000))
            made += 1
        return made

    def set_strategies(self, strategies: dict[str, Allocation], removed: dict[str, str]) -> dict[str, Any]:
        """The strategy set changed (reload): fund the new ones, and for each removed one cancel its working
        orders (``on_remove = "cancel"``) or leave them (``"keep"``); its positions become orphans."""
        added = sorted(set(strategies) - self.strategies)
        gone = sorted(set(removed) & self.strategies)
        self.allocations = dict(strategies)
        self.strategies = set(strategies)
        cancelled = 0
        for name in gone:
            if removed[name] == "cancel":
                cancelled += self.cancel_all_of(name, "the strategy was removed from the config")
            keep: dict[str, Decimal] = {}
            for (strat, _, market, symbol), pos in self.ledger.positions.items():
                if strat == name and market == "spot" and pos.qty > 0:
                    base = split_symbol(symbol)[0]
                    keep[base] = keep.get(base, ZERO) + pos.qty
            back = self.funds.release_strategy(name, keep)  # what it holds free goes back to the account
            if back:
                self.log.info("strategy_defunded", strategy=name, **{a: str(v) for a, v in back.items()})
        self._save_funds()
        self.fund()
        return {"added": added, "removed": gone, "cancelled": cancelled}

    def keys_of_interest(self) -> set[MarketKey]:
        """Markets the executor must follow: every open position (its mark) and every working order."""
        keys = {k[1:] for k, p in self.ledger.positions.items() if p.qty != 0}
        keys |= {o.book_key for o in self.orders.values()}
        return {k for k in keys if k[0] in self.exchanges}

    def orphans(self) -> list[tuple[str, str, str, str]]:
        """Positions whose strategy no longer trades on this account (nothing manages them)."""
        return [k for k, p in self.ledger.positions.items() if p.qty != 0 and k[0] not in self.strategies]

    # ------------------------------------------------------------------ commit and reports
    def commit(self) -> float:
        """Commit the batch; fsynced when orders wait in the outbox (their intents must be on disk before
        they leave), a plain WAL commit otherwise (it survives a crash of this process; see journal.py)."""
        took = self.journal.commit(durable=bool(self.outbox))
        if took:
            self.reg.observe("wispd_journal_commit_seconds", took, account=self.account)
        return took

    def flush_reports(self, order_doc: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        """Reports go out after the journal commit that recorded what they report (held while the journal
        cannot be written: what they say is not durable yet). Rejections are sent at once: nothing of
        theirs happened."""
        for strategy, signal_id, rej in self.pending_rejections:
            self._send_report(strategy, signal_id, "rejected", rej.message, rej.code, None, rej.action)
        self.pending_rejections = []
        if not self.journal.healthy:
            return
        for r in self.pending_reports:
            if not r.client_id:  # about an action without an order (a cancel_all that matched nothing)
                self._send_report(r.strategy, r.signal_id or "", r.status, r.reason, r.code, None, r.action)
                continue
            row = self.journal.order(r.client_id)
            if row is not None:
                self._send_report(row["strategy"], r.signal_id or row["signal_id"], r.status, r.reason, r.code,
                                  order_doc(row), row["action"] if r.action is None else r.action)
        self.pending_reports = []

    def _send_report(self, strategy: str, signal_id: str, status: str, reason: str, code: str,
                     order: dict[str, Any] | None, action: int | None) -> None:
        self.outcomes[status] += 1
        self.reg.inc("wispd_signals_total", account=self.account, strategy=strategy, outcome=status)
        self.sink.publish(strategy, "report", {"signal_id": signal_id, "status": status, "reason": reason,
                                               "code": code, "order": order, "action": action})
