"""The executor process: PULL signals -> validate -> dedupe -> risk -> journal intent (commit) -> order.

One thread, one poller. Per poll batch: every signal's checks and intent rows go into one transaction,
which is committed before any of the batch's orders is sent (durable intent first, one fsync per burst).
Fills and order updates are journaled the same way before their reports go out. Execution reports go to
the emitting strategy on ``exec.<strategy>``; a state snapshot (positions, balances, PnL, open orders) goes
to each strategy every second and to the supervisor for ``wispctl positions``/``orders``.
"""

from __future__ import annotations

import os
import time
import traceback
from collections import Counter
from decimal import Decimal
from typing import Any

import zmq

from wispd import protocol
from wispd.auth import ZapHandler, user_id
from wispd.execution.checks import MarketRules, Reject, RiskLimits, check_risk, check_rules, parse_signal
from wispd.execution.journal import OPEN_STATES, Journal, client_order_id, now_ms
from wispd.execution.ledger import Ledger
from wispd.execution.market import MarketData, MarketKey
from wispd.execution.orders import Done, Event, Fill, WorkingOrder
from wispd.execution.paper import PaperEngine
from wispd.execution.reconcile import reconcile_paper, restore_positions
from wispd.execution.reports import ReportPublisher
from wispd.execution.snapshots import metric_series, order_doc, state_doc
from wispd.logs import LimitedLog
from wispd.metrics.registry import Registry
from wispd.protocol import dec_str
from wispd.ratelimit import KeyedBuckets
from wispd.runtime.context import ChildContext
from wispd.transport import bind, limits, unlink_ipc

PAUSE_ENV = "WISPD_TEST_PAUSE_AFTER_INTENT"  # test hook: seconds to sleep between commit and send
PAUSE_ACK_ENV = "WISPD_TEST_PAUSE_AFTER_ACK"  # test hook: seconds to sleep between an ack and its commit
FINAL_STATES = ("filled", "cancelled", "rejected")
MD_MAX_BYTES = 16 * 1024 * 1024  # a market-data frame from an ingestor (a coalesced burst of trades)
MAX_SIGNAL_BYTES = 64 * 1024  # a signal of 20 actions is ~8 KB; a bigger frame drops its connection
SIGNALS_PER_PASS = 1000
MAX_CLOCK_AHEAD_MS = 60_000  # a signal stamped further in the future than this is refused
# A strategy whose signals keep being rejected is throttled (its next signals are refused at once, nothing
# journaled) until the bucket refills: bad input costs its sender, never the account's other strategies.
BAD_SIGNAL_RATE, BAD_SIGNAL_BURST = 20.0, 100.0


class Stopping(Exception):
    """A stop was requested while the executor waited on something (reconciliation)."""


class Executor(MarketData):
    def __init__(self, ctx: ChildContext, args: dict[str, Any], journal: Journal | None = None) -> None:
        self.ctx, self.args, self.log = ctx, args, ctx.log
        self.account = args["account"]
        self.strategies = set(args.get("strategies") or [])
        self.exchanges: dict[str, dict[str, str]] = args["exchanges"]
        self.limits = RiskLimits.from_config(args["risk"])
        paper = args.get("paper") or {}
        self.fee_override = (paper.get("maker_fee"), paper.get("taker_fee"))
        self.journal = journal or Journal(ctx.state_dir / f"journal-{self.account}.sqlite")
        start = {k.upper(): Decimal(v) for k, v in (paper.get("balances") or {}).items()}
        self.ledger = Ledger(self.journal.balances() or start)
        self.mode = args.get("mode", "paper")
        self.live_cfg: dict[str, Any] = args.get("live") or {}
        self.foreign_orders = 0
        self.cancel_requests: dict[str, tuple[str, str]] = {}  # order client id -> (strategy, cancel signal id)
        self.engine: Any = self._live_engine(args) if self.mode == "live" else \
            PaperEngine(self._fees, float(paper.get("latency_ms", 20.0)))
        self.rules: dict[MarketKey, MarketRules] = {}
        self.halted = False
        self.rejects: Counter[str] = Counter()
        self.outcomes: Counter[str] = Counter()
        self.fills = 0
        self.bad_frames = 0
        self.internal_errors = 0
        self.limited = LimitedLog(self.log)
        self.bad_signals = KeyedBuckets(BAD_SIGNAL_RATE, BAD_SIGNAL_BURST)
        self._pending_reports: list[tuple[str, str, str, str | None, str]] = []
        self._pending_rejections: list[tuple[str, str, Reject]] = []
        self.reg = Registry()  # counters and histograms since this process started
        self.submitted_at: dict[str, float] = {}  # client id -> when sent, until its first acknowledgement
        self.zctx = zmq.Context()
        # Strategies authenticate (docs/security.md): the ZAP handler accepts this account's strategies only,
        # and every signal and subscription carries the name of the connection it came from.
        self.zap = ZapHandler(self.zctx, lambda _d, _a, mech, creds: ctx.server_keys.verify(mech, creds,
                                                                                             self.strategies))
        self.pull = self.zctx.socket(zmq.PULL)
        limits(self.pull, max_msg=MAX_SIGNAL_BYTES, rcvhwm=100_000)
        ctx.server_keys.server(self.pull, args["signals_endpoint"])
        bind(self.pull, args["signals_endpoint"])
        self.reports = ReportPublisher(self.zctx, args["reports_endpoint"], ctx.name, ctx.server_keys)
        self.subs: dict[str, zmq.Socket] = {}
        for name, eps in self.exchanges.items():
            sub = limits(self.zctx.socket(zmq.SUB), max_msg=MD_MAX_BYTES, rcvhwm=100_000)
            ctx.credentials.client(sub, eps["pub"], plain=False)
            sub.connect(eps["pub"])
            self.subs[name] = sub

    def _live_engine(self, args: dict[str, Any]) -> Any:
        from wispd.execution.live.drivers import CredentialError, load_credentials
        from wispd.execution.live.engine import LiveEngine

        venue = args["venue"]
        try:
            creds = load_credentials(venue["driver"], args["credentials"], self.ctx.secrets)
            self.ctx.secrets.clear()  # read once; the ccxt instance holds them from here
        except (CredentialError, OSError) as exc:
            self.log.error("credentials_unavailable", error=str(exc))
            self.ctx.exiting(f"credentials unavailable: {exc}")
            raise SystemExit(78) from exc
        return LiveEngine(venue["driver"], venue, self.live_cfg, creds, self.journal, self.log)

    # ------------------------------------------------------------------ reports
    def _publish(self, strategy: str, kind: str, body: dict[str, Any]) -> None:
        self.reports.publish(strategy, kind, body)

    def _report(self, strategy: str, signal_id: str, status: str, reason: str = "", code: str = "",
                order: dict[str, Any] | None = None) -> None:
        self.outcomes[status] += 1
        self.reg.inc("wispd_signals_total", account=self.account, strategy=strategy, outcome=status)
        self._publish(strategy, "report", {"signal_id": signal_id, "status": status, "reason": reason, "code": code,
                                           "order": order})

    def _reject(self, strategy: str | None, signal_id: str | None, rej: Reject) -> None:
        """Count, log (rate-limited) and report a rejection once the batch's commit is done."""
        self.rejects[rej.code] += 1
        self.reg.inc("wispd_rejects_total", account=self.account, reason=rej.code)
        self.limited("info", "signal_rejected", kind=f"{strategy}:{rej.code}", strategy=strategy,
                     signal_id=signal_id, code=rej.code, reason=rej.message)
        if strategy and signal_id:
            self._pending_rejections.append((strategy, signal_id, rej))
            if rej.code not in ("throttled", "duplicate"):
                self.bad_signals.take(strategy)

    # ------------------------------------------------------------------ signals
    def _signals(self) -> list[tuple[WorkingOrder, dict[str, Any]]]:
        """Validate, dedupe, check and journal every queued signal; returns the orders to send after commit.

        Each signal runs under its own journal savepoint and exception guard: whatever one frame does, the
        executor goes on with the next, and a signal that fails half-way leaves nothing in the journal."""
        to_send: list[tuple[WorkingOrder, dict[str, Any]]] = []
        for _ in range(SIGNALS_PER_PASS):
            try:
                frame = self.pull.recv(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                break
            if frame.more:
                while self.pull.getsockopt(zmq.RCVMORE):
                    self.pull.recv(zmq.NOBLOCK)
                self.bad_frames += 1
                self.limited("warning", "bad_frame", kind="multipart", reason="a signal is exactly one frame")
                continue
            msg = protocol.loads_dict(frame.bytes)
            user = user_id(frame)
            if msg is not None and user is not None and msg.get("strategy", user) != user:
                self._reject(user, msg.get("id") if isinstance(msg.get("id"), str) else None,
                             Reject("wrong_strategy", f"this connection is strategy {user!r}; it cannot send "
                                    f"signals as {str(msg.get('strategy'))[:64]!r}"))
                continue
            if msg is not None and user is not None:
                msg["strategy"] = user  # who sent it is the connection's name, never the frame's say-so
            self.journal.savepoint()
            try:
                to_send += self._signal(msg)
                self.journal.release_savepoint()
            except Exception as exc:  # noqa: BLE001 - one bad frame never takes the account down
                self.journal.rollback_to_savepoint()
                self.internal_errors += 1
                self.reg.inc("wispd_internal_errors_total", account=self.account, kind=type(exc).__name__)
                self.limited("error", "signal_failed", kind=type(exc).__name__, error=f"{type(exc).__name__}: {exc}",
                             traceback=traceback.format_exc(limit=8))
                strategy = msg.get("strategy") if msg else None
                signal_id = msg.get("id") if msg else None
                if isinstance(strategy, str) and strategy in self.strategies and isinstance(signal_id, str):
                    self._reject(strategy, signal_id[:64], Reject("internal_error", f"the executor could not "
                                                                   f"process this signal ({type(exc).__name__})"))
        return to_send

    def _signal(self, msg: dict[str, Any] | None) -> list[tuple[WorkingOrder, dict[str, Any]]]:
        strategy = msg.get("strategy") if msg and isinstance(msg.get("strategy"), str) else None
        signal_id = msg.get("id") if msg and isinstance(msg.get("id"), str) else None
        known = strategy if strategy in self.strategies else None
        if known and self.bad_signals.get(known).empty:
            self._reject(known, signal_id, Reject("throttled", "too many rejected signals from this strategy; "
                                                  "its signals are refused until the rate drops"))
            return []
        try:
            sig = parse_signal(msg)
        except Reject as rej:
            self.bad_frames += msg is None
            self._reject(known, signal_id, rej)
            return []
        strategy, signal_id = sig["strategy"], sig["id"]
        if strategy not in self.strategies:
            self._reject(None, None, Reject("unknown_strategy", f"{strategy!r} does not trade on {self.account}"))
            return []
        if not self.journal.healthy:
            self._reject(strategy, signal_id, Reject("journal_unavailable", "the journal cannot be written "
                                                     f"({self.journal.fault}); no new orders until it can"))
            return []
        if not self.journal.record_signal(strategy, signal_id, "received", "", msg):
            self._reject(strategy, signal_id, Reject("duplicate", f"signal {signal_id} was already received"))
            return []
        if sig["ts"] > now_ms() + MAX_CLOCK_AHEAD_MS:
            self.journal.set_signal_status(strategy, signal_id, "rejected", "bad_timestamp")
            self._reject(strategy, signal_id, Reject("bad_timestamp", "the signal's ts is more than 60 s ahead of "
                                                     "the executor's clock (its TTL would never run out)"))
            return []
        if now_ms() > sig["ts"] + sig["ttl_ms"]:
            self.journal.set_signal_status(strategy, signal_id, "rejected", "expired")
            self._reject(strategy, signal_id, Reject("expired", "the signal's TTL passed before it arrived"))
            return []
        try:
            out = self._actions(sig)
            self.journal.set_signal_status(strategy, signal_id, "accepted")
            return out
        except Reject as rej:
            self.journal.set_signal_status(strategy, signal_id, "rejected", rej.code)
            self._reject(strategy, signal_id, rej)
            return []

    def _open_row(self, client_id: str, strategy: str) -> dict[str, Any]:
        row = self.journal.order(client_id)
        if row is None or row["strategy"] != strategy or row["status"] not in OPEN_STATES or \
                client_id not in self.engine.orders:
            raise Reject("unknown_order", f"no open order {client_id} of {strategy}")
        return row

    def _actions(self, sig: dict[str, Any]) -> list[tuple[WorkingOrder, dict[str, Any]]]:
        strategy, out = sig["strategy"], []
        open_count = len(self.engine.orders)
        for idx, action in enumerate(sig["actions"]):
            replaces = None
            if action["type"] == "cancel":
                self._open_row(action["client_id"], strategy)
                self.cancel_requests[action["client_id"]] = (strategy, sig["id"])
                self._apply_events(self.engine.cancel(action["client_id"]))
                continue
            if action["type"] == "amend":
                row = self._open_row(action["client_id"], strategy)
                if row["price"] is None:
                    raise Reject("bad_schema", "only limit orders can be amended")
                flags = protocol.loads_dict(row["flags"] or b"{}") or {}
                replaces, open_count = row["client_id"], open_count - 1
                action = {"type": "order", "exchange": row["exchange"], "market": row["market"],
                          "symbol": row["symbol"], "side": row["side"], "tif": row["tif"],
                          "qty": action["qty"] or Decimal(row["qty"]), "price": action["price"] or Decimal(row["price"]),
                          "post_only": bool(flags.get("post_only")), "reduce_only": bool(flags.get("reduce_only")),
                          "short": False, "leverage": None}
            if action["type"] == "close":
                pos = self.ledger.positions.get((strategy, action["exchange"], action["market"], action["symbol"]))
                if pos is None or pos.qty == 0:
                    raise Reject("no_position", f"no {action['symbol']} position to close")
                action = {**action, "type": "order", "side": "sell" if pos.qty > 0 else "buy", "qty": abs(pos.qty),
                          "price": None, "tif": "IOC", "post_only": False, "reduce_only": True, "short": False}
            key = (action["exchange"], action["market"], action["symbol"])
            if action["exchange"] not in self.exchanges:
                raise Reject("unknown_exchange", f"{self.account} does not trade on {action['exchange']!r}")
            rules = self.ensure_market(key)
            mid = self.engine.mid(key)
            check_rules(action, rules, mid)
            pos = self.ledger.positions.get((strategy, *key))
            check_risk(action, strategy, self.limits, halted=self.halted, mid=mid,
                       position_qty=pos.qty if pos else Decimal(0), open_orders=open_count,
                       strategy_exposure=self.ledger.exposure(strategy, self._marks()))
            self._check_funds(action, key, mid or Decimal(0), rules)
            cid = client_order_id(strategy, sig["id"], idx)
            intent = {"client_id": cid, "strategy": strategy, "signal_id": sig["id"], "action": idx, **dict(zip(
                ("exchange", "market", "symbol"), key, strict=True)), "side": action["side"],
                "order_type": "market" if action["price"] is None else "limit", "qty": dec_str(action["qty"]),
                "price": dec_str(action["price"]) if action["price"] is not None else None, "tif": action["tif"],
                "flags": {**{k: action[k] for k in ("post_only", "reduce_only", "short")},
                          **({"replaces": replaces} if replaces else {})}}
            self.journal.record_intent(intent)
            open_count += 1
            out.append((WorkingOrder(cid, strategy, *key, action["side"], action["qty"], action["price"],
                                     action["tif"], action["post_only"], reduce_only=action["reduce_only"],
                                     ref_price=mid, replaces=replaces), sig))
        return out

    def _check_funds(self, action: dict[str, Any], key: MarketKey, mid: Decimal, rules: MarketRules) -> None:
        base, quote = key[2].split("-", 1)
        px = action["price"] or mid
        if key[1] == "spot" and action["side"] == "sell":
            have = self.ledger.balances.get(base, Decimal(0))
            if action["qty"] > have:
                raise Reject("insufficient_funds", f"selling {action['qty']} {base} but the account has {have}")
        else:
            need = action["qty"] * px * (1 + rules.taker_fee)
            if key[1] == "perp":
                need = need / (action.get("leverage") or Decimal(1))
            have = self.ledger.balances.get(quote, Decimal(0))
            if need > have and not action["reduce_only"]:
                raise Reject("insufficient_funds", f"needs {need:.2f} {quote}, the account has {have}")

    # ------------------------------------------------------------------ order events
    def _apply_events(self, events: list[Event]) -> None:
        for ev in events:
            order = ev.order
            sent_at = self.submitted_at.pop(order.client_id, None)
            if sent_at is not None:
                self.reg.observe("wispd_order_to_ack_seconds", max(0.0, now_ms() - sent_at) / 1000,
                                 account=self.account)
            if isinstance(ev, Fill):
                key = (order.strategy, order.exchange, order.market, order.symbol)
                if not self.journal.record_fill(order.client_id, ev.price, ev.qty, ev.fee, ev.liquidity,
                                                ev.trade_id):
                    continue  # this exchange trade is journaled already
                self.ledger.apply_fill(key, order.side, ev.qty, ev.price, ev.fee)
                pos = self.ledger.positions[key]
                self.journal.save_position(*key, pos.qty, pos.avg, pos.realized, pos.fees)
                for asset in key[3].split("-"):
                    self.journal.save_balance(asset, self.ledger.balances.get(asset, Decimal(0)))
                row = self.journal.order(order.client_id) or {}
                fees = Decimal(row.get("fees") or "0") + ev.fee
                status = row.get("status") if row.get("status") in FINAL_STATES else \
                    "filled" if order.remaining <= 0 else "partially_filled"  # a late fill keeps a final status
                self.journal.update_order(order.client_id, filled=dec_str(order.filled),
                                          avg_price=dec_str(order.avg_price), fees=dec_str(fees), status=status)
                self.fills += 1
                self.reg.inc("wispd_fills_total", account=self.account)
                if order.remaining > 0 and status == "partially_filled":
                    self._report_order(order.client_id, "partially_filled")
            elif isinstance(ev, Done):
                self._done(ev)

    def _done(self, ev: Done) -> None:
        order = ev.order
        status = "accepted" if ev.status == "open" else ev.status
        fields: dict[str, Any] = {"status": "open" if ev.status == "open" else ev.status, "reason": ev.reason}
        if order.exchange_id:
            fields["exchange_id"] = order.exchange_id
        self.journal.update_order(order.client_id, **fields)
        self._report_order(order.client_id, status, ev.reason, ev.code)
        if ev.code and self.mode == "live":
            self.reg.inc("wispd_exchange_errors_total", account=self.account, code=ev.code)
        if ev.status != "open" and order.client_id in self.cancel_requests:
            strategy, signal_id = self.cancel_requests.pop(order.client_id)
            if ev.status == "cancelled":
                self._pending_reports.append((order.client_id, "cancelled", ev.reason, signal_id, ""))
            else:
                self._pending_reports.append((order.client_id, "rejected", f"the order was {ev.status} before the "
                                              "cancel took effect", signal_id, "too_late"))

    def _report_order(self, client_id: str, status: str, reason: str = "", code: str = "") -> None:
        self._pending_reports.append((client_id, status, reason, None, code))

    def _flush_reports(self) -> None:
        """Reports go out after the journal commit that recorded what they report (held while the journal
        cannot be written: what they say is not durable yet)."""
        for strategy, signal_id, rej in self._pending_rejections:
            self._report(strategy, signal_id, "rejected", rej.message, rej.code)
        self._pending_rejections = []
        if not self.journal.healthy:
            return
        for client_id, status, reason, signal_id, code in self._pending_reports:
            row = self.journal.order(client_id)
            if row is not None:
                self._report(row["strategy"], signal_id or row["signal_id"], status, reason, code, order_doc(row))
        self._pending_reports = []

    # ------------------------------------------------------------------ startup reconciliation
    def idle(self) -> None:
        """While reconciling (waits on the exchange or an ingestor): heartbeat, serve the link, stop on request."""
        self.ctx.beat()
        self.ctx.handle_link()
        if self.ctx.stopping:
            raise Stopping()

    def reconcile(self) -> dict[str, int]:
        restore_positions(self)
        if self.mode == "live":
            from wispd.execution.live.reconcile import reconcile_live

            summary = reconcile_live(self, self.engine)
        else:
            summary = reconcile_paper(self)
        self.journal.commit()
        self._flush_reports()
        return summary

    # ------------------------------------------------------------------ state snapshots
    def state(self, strategy: str | None) -> dict[str, Any]:
        return state_doc(self.account, self.halted, self.ledger, self.journal, self._marks(), strategy)

    # ------------------------------------------------------------------ commands from wispctl (via wispd)
    def _commands(self) -> None:
        while self.ctx.commands:
            cmd = self.ctx.commands.pop(0)
            if cmd.get("cmd") == "halt":
                self.halted = True
                self.log.warning("halted", cancel=bool(cmd.get("cancel")))
                if cmd.get("cancel"):
                    for cid in list(self.engine.orders):
                        self._apply_events(self.engine.cancel(cid, "cancelled by wispctl halt --cancel"))
            elif cmd.get("cmd") == "resume":
                self.halted = False
                self.log.warning("resumed")

    # ------------------------------------------------------------------ main loop
    def run(self) -> int:
        # Ready means: journal open, sockets bound, this process is up and will reconcile. Strategies wait for
        # the first state report, which comes only after reconciliation (an unreachable exchange keeps them
        # waiting, with the reason in status, instead of the executor crash-looping on start timeouts).
        self.ctx.ready(mode=self.mode)
        self.ctx.status("reconciling", f"{self.mode}: matching the journal against the "
                        f"{'exchange' if self.mode == 'live' else 'paper book'}")
        try:
            summary = self.reconcile()
        except Stopping:
            self.log.info("executor_stop", reason=self.ctx.stop_reason, during="reconciliation")
            return 0
        self.log.info("reconciled", **summary)
        poller = zmq.Poller()
        poller.register(self.pull, zmq.POLLIN)
        poller.register(self.ctx.link_socket, zmq.POLLIN)
        poller.register(self.reports.sock, zmq.POLLIN)
        poller.register(self.zap.sock, zmq.POLLIN)
        for sub in self.subs.values():
            poller.register(sub, zmq.POLLIN)
        if self.mode == "live":
            poller.register(self.engine.wake_r, zmq.POLLIN)
        pause = float(os.environ.get(PAUSE_ENV, "0") or 0)
        pause_ack = float(os.environ.get(PAUSE_ACK_ENV, "0") or 0)
        last_state = 0.0
        while not self.ctx.stopping:
            events = dict(poller.poll(20))
            if self.zap.sock in events:
                self.zap.handle()
            if self.ctx.link_socket in events:
                self.ctx.handle_link()
            self._commands()
            if self.reports.sock in events or self.reports.held:
                self.reports.subscriptions()
            to_send = self._signals() if self.pull in events else []
            self._commit()  # every intent of the batch is durable before any order leaves
            if to_send and not self.journal.healthy:
                self._not_durable(to_send)
                to_send = []
            self._flush_reports()
            if to_send and pause:
                self.log.warning("test_pause_after_intent", seconds=pause)
                time.sleep(pause)
            evs: list[Event] = []
            for order, sig in to_send:
                sent = now_ms()
                self.submitted_at[order.client_id] = sent
                expires = sig["ts"] + sig["ttl_ms"]
                if order.replaces:
                    evs += self.engine.amend(order.replaces, order, sent, expires)
                else:
                    evs += self.engine.submit(order, sent, expires)
                if self.mode == "paper":
                    self.journal.update_order(order.client_id, status="accepted")
                self.reg.inc("wispd_orders_total", account=self.account)
                self.reg.observe("wispd_signal_to_order_seconds", max(0.0, sent - sig["ts"]) / 1000,
                                 account=self.account)
            for sub in self.subs.values():
                if sub in events:
                    evs += self._market_data(sub)
            evs += self.engine.tick(now_ms())
            self._apply_events(evs)
            if pause_ack and any(isinstance(e, Done) and e.status == "open" for e in evs):
                self.log.warning("test_pause_after_ack", seconds=pause_ack)
                time.sleep(pause_ack)
            self._commit()
            self._flush_reports()
            self.ctx.beat()
            now = time.monotonic()
            if now - last_state >= 1.0:
                last_state = now
                self._periodic()
        self.log.info("executor_stop", reason=self.ctx.stop_reason, open_orders=len(self.engine.orders))
        return 0

    def _commit(self) -> None:
        was = self.journal.fault
        took = self.journal.commit()
        if took:
            self.reg.observe("wispd_journal_commit_seconds", took, account=self.account)
        if self.journal.fault != was:
            if self.journal.fault:
                self.log.error("journal_unavailable", error=self.journal.fault, path=str(self.journal.path),
                               effect="no new orders on this account until a commit succeeds")
            else:
                self.log.warning("journal_recovered", path=str(self.journal.path))
        if self.mode == "paper":
            self.engine.frozen = not self.journal.healthy  # no paper fill that could not be journaled

    def _not_durable(self, to_send: list[tuple[WorkingOrder, dict[str, Any]]]) -> None:
        """The commit of these intents failed: they are never sent, and the journal will say so too."""
        for order, sig in to_send:
            self.journal.update_order(order.client_id, status="rejected", reason="journal_unavailable")
            self.journal.set_signal_status(order.strategy, sig["id"], "rejected", "journal_unavailable")
            rej = Reject("journal_unavailable", f"the intent could not be made durable ({self.journal.fault}); "
                         "not sent")
            if not any(r[1] == sig["id"] for r in self._pending_rejections):
                self._reject(order.strategy, sig["id"], rej)
        self._pending_reports = [r for r in self._pending_reports if r[0] not in {o.client_id for o, _ in to_send}]

    def _periodic(self) -> None:
        users = self.strategies | {k[0] for k in self.ledger.positions}
        for strategy in users:
            self._publish(strategy, "state", self.state(strategy))
        full = self.state(None)
        gauges: dict[str, float] = {}
        note = ""
        if self.mode == "live":
            if self.engine.account is not None:
                self.ledger.balances.update(self.engine.account.balances)
            gauges = {"wispd_order_stream_up": float(self.engine.stream_up),
                      "wispd_unknown_exchange_orders": float(self.foreign_orders)}
            note = "" if self.engine.stream_up else ", order streams down (polling)"
        self.ctx.metrics({"exec": full, "rejects": dict(self.rejects), "outcomes": dict(self.outcomes),
                          "fills": self.fills, "bad_frames": self.bad_frames,
                          "journal_commits": self.journal.commits,
                          "prom": metric_series(self.reg, self.account, full, self.ledger, self._marks(),
                                                len(self.engine.orders), self.bad_frames, gauges)})
        gauges["wispd_journal_healthy"] = float(self.journal.healthy)
        phase = "halted: journal" if not self.journal.healthy else "halted" if self.halted else "trading"
        if not self.journal.healthy:
            note += f"; journal cannot be written: {self.journal.fault}"
        self.ctx.status(phase, f"{self.mode}: {len(self.engine.orders)} open orders, {len(full['positions'])} "
                        f"positions{note}", fills=self.fills, rejects=sum(self.rejects.values()),
                        journal=self.journal.fault or "ok")

    def close(self) -> None:
        if self.mode == "live":
            self.engine.close()
        self.journal.close()
        for sock in [self.pull, self.reports.sock, *self.subs.values()]:
            sock.close()
        self.zap.close()
        self.zctx.term()
        for endpoint in (self.args["signals_endpoint"], self.args["reports_endpoint"]):
            unlink_ipc(endpoint)
