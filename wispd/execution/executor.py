"""The executor process: sockets and a loop around the execution core (``core.py``).

One thread, one poller. Per pass: read every queued signal (each under its own journal savepoint and
exception guard), commit (every intent of the batch is durable before any order leaves), send; then
market data (books, trades, marks: matching and triggers), the venue's news, a commit, and the reports
of what was committed; then, if due, a WAL checkpoint (no signal of the pass waits for it). A state report
goes to each strategy every second and at once when it (re)subscribes: its positions, balances, working
orders and allocation, before it decides anything.
"""

from __future__ import annotations

import os
import time
import traceback
from decimal import Decimal
from typing import Any

import zmq

from wispd import protocol
from wispd.auth import ZapHandler, user_id
from wispd.execution.checks import Reject, RiskLimits
from wispd.execution.core import ExecutionCore
from wispd.execution.funds import Allocation
from wispd.execution.journal import Journal, now_ms
from wispd.execution.killswitch import KillSwitch
from wispd.execution.market import MarketFeed
from wispd.execution.paper import PaperEngine
from wispd.execution.reconcile import reconcile_paper
from wispd.execution.reports import ReportPublisher
from wispd.execution.snapshots import Formats, metric_series, row_doc, state_doc
from wispd.logs import LimitedLog
from wispd.runtime.context import ChildContext
from wispd.transport import bind, limits, unlink_ipc

PAUSE_ENV = "WISPD_TEST_PAUSE_AFTER_INTENT"  # test hook: seconds to sleep between commit and send
PAUSE_ACK_ENV = "WISPD_TEST_PAUSE_AFTER_ACK"  # test hook: seconds to sleep between an ack and its commit
MAX_SIGNAL_BYTES = 64 * 1024  # a signal of 20 actions is ~8 KB; a bigger frame drops its connection
SIGNALS_PER_PASS = 1000


class Stopping(Exception):
    """A stop was requested while the executor waited on something (reconciliation)."""


def allocations(raw: Any) -> dict[str, Allocation]:
    """The account's strategies and their allocations, from the boot arguments (or a reload command)."""
    if isinstance(raw, list):
        return {str(name): Allocation() for name in raw}
    return {str(name): Allocation.from_config(cfg) for name, cfg in (raw or {}).items()}


class Executor:
    def __init__(self, ctx: ChildContext, args: dict[str, Any], journal: Journal | None = None) -> None:
        self.ctx, self.args, self.log = ctx, args, ctx.log
        self.account = args["account"]
        self.mode = args.get("mode", "paper")
        self.exchanges: dict[str, dict[str, str]] = args["exchanges"]
        paper = args.get("paper") or {}
        self.journal = journal or Journal(ctx.state_dir / f"journal-{self.account}.sqlite")
        self.bad_frames = 0
        self.internal_errors = 0
        self.limited = LimitedLog(self.log)
        self.zctx = zmq.Context()
        capital = self.journal.balances() or ({k.upper(): Decimal(v) for k, v in (paper.get("balances") or {}).items()}
                                              if self.mode == "paper" else {})
        self.engine: Any = self._live_engine(args) if self.mode == "live" else \
            PaperEngine(lambda ex, sym: self.core.fees(ex, sym), float(paper.get("latency_ms", 20.0)))
        self.feed = MarketFeed(self.zctx, self.exchanges, ctx.credentials, self.idle,
                               lambda key, bids, asks: self.engine.set_book(key, bids, asks))
        self.reports = ReportPublisher(self.zctx, args["reports_endpoint"], ctx.name, ctx.server_keys)
        self.core = ExecutionCore(self.account, self.mode, self.journal, self.engine,
                                  RiskLimits.from_config(args["risk"]), allocations(args.get("strategies")), capital,
                                  self.feed.rules, self.reports, self.log, list(self.exchanges),
                                  driver=(args.get("venue") or {}).get("driver") if self.mode == "live" else None,
                                  fee_override=(paper.get("maker_fee"), paper.get("taker_fee")))
        self.core.live_cfg = args.get("live") or {}
        self.kill = KillSwitch(self.core, args.get("kill_switch") or {}, self.log)
        # Strategies authenticate (docs/security.md): the ZAP handler accepts this account's strategies only,
        # and every signal and subscription carries the name of the connection it came from.
        self.zap = ZapHandler(self.zctx, lambda _d, _a, mech, creds: ctx.server_keys.verify(mech, creds,
                                                                                             self.core.strategies))
        self.pull = self.zctx.socket(zmq.PULL)
        limits(self.pull, max_msg=MAX_SIGNAL_BYTES, rcvhwm=100_000)
        ctx.server_keys.server(self.pull, args["signals_endpoint"])
        bind(self.pull, args["signals_endpoint"])
        self.state_seq = 0
        self.ready_for_strategies = False  # reconciled: state reports are the truth from here on

    @property
    def strategies(self) -> set[str]:
        return self.core.strategies

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
        return LiveEngine(venue["driver"], venue, args.get("live") or {}, creds, self.journal, self.log)

    # ------------------------------------------------------------------ signals
    def _signals(self) -> None:
        """Read, check and journal every queued signal. Each runs under its own journal savepoint and
        exception guard: whatever one frame does, the executor goes on with the next, and a signal that
        fails half-way leaves nothing in the journal."""
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
            self.bad_frames += msg is None
            user = user_id(frame)
            if msg is not None and user is not None and msg.get("strategy", user) != user:
                self.core.reject(user, msg.get("id") if isinstance(msg.get("id"), str) else None,
                                 Reject("wrong_strategy", f"this connection is strategy {user!r}; it cannot send "
                                        f"signals as {str(msg.get('strategy'))[:64]!r}"))
                continue
            if msg is not None and user is not None:
                msg["strategy"] = user  # who sent it is the connection's name, never the frame's say-so
            exc = self.core.guarded_signal(msg)
            if exc is not None:
                self.internal_errors += 1
                self.limited("error", "signal_failed", kind=type(exc).__name__, error=f"{type(exc).__name__}: {exc}",
                             traceback="".join(traceback.format_exception(exc, limit=8)))

    # ------------------------------------------------------------------ startup reconciliation
    def idle(self) -> None:
        """While waiting (on the exchange, an ingestor): heartbeat, serve the link, stop on request."""
        self.ctx.beat()
        self.ctx.handle_link()
        if self.ctx.stopping:
            raise Stopping()

    def reconcile(self) -> dict[str, int]:
        self.core.restore()
        if self.mode == "live":
            from wispd.execution.live.reconcile import reconcile_live

            summary = reconcile_live(self, self.core)
        else:
            summary = reconcile_paper(self.core)
        self.core.fund()  # new strategies (and changed allocations) get their funds
        for key in self.core.keys_of_interest():  # marks for every position, books for every order
            try:
                self.feed.follow(key)
            except Stopping:
                raise
            except Exception as exc:  # noqa: BLE001 - an ingestor that is down: its mark comes later
                self.log.warning("follow_failed", market=":".join(key), error=str(exc))
        self._commit()
        self._flush_reports()
        return summary

    # ------------------------------------------------------------------ commands from wispctl (via wispd)
    def _commands(self) -> None:
        while self.ctx.commands:
            cmd = self.ctx.commands.pop(0)
            try:
                self._command(cmd)
            except Exception as exc:  # noqa: BLE001 - an operator command that fails is logged, not fatal
                self.log.exception("command_failed", cmd=str(cmd.get("cmd")), error=str(exc))

    def _command(self, cmd: dict[str, Any]) -> None:
        kind = cmd.get("cmd")
        strategy = cmd.get("strategy") if isinstance(cmd.get("strategy"), str) else None
        if kind == "halt":
            self.core.halt(strategy, str(cmd.get("reason") or "halted by wispctl"))
            self.log.warning("halted", strategy=strategy or "*", cancel=bool(cmd.get("cancel")))
            if cmd.get("cancel"):
                self.core.cancel_all_of(strategy, "cancelled by wispctl halt --cancel")
            if cmd.get("flatten"):
                self.core.flatten(strategy, "flattened by wispctl halt --flatten")
        elif kind == "resume":
            self.core.resume(strategy)
            self.kill.reset(strategy)
            self.log.warning("resumed", strategy=strategy or "*")
        elif kind == "close":
            made = self.core.flatten(strategy, "closed by wispctl close")
            self.log.warning("closing", strategy=strategy or "*", orders=made)
        elif kind == "strategies":
            result = self.core.set_strategies(allocations(cmd.get("strategies")), dict(cmd.get("removed") or {}))
            self.log.info("strategies_changed", **result)

    # ------------------------------------------------------------------ main loop
    def run(self) -> int:
        # Ready means: journal open, sockets bound, this process is up and will reconcile. Strategies wait for
        # their first state report, which comes only after reconciliation (an unreachable exchange keeps them
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
        self.ready_for_strategies = True
        poller = zmq.Poller()
        for sock in (self.pull, self.ctx.link_socket, self.reports.sock, self.zap.sock, *self.feed.subs.values()):
            poller.register(sock, zmq.POLLIN)
        if self.mode == "live":
            poller.register(self.engine.wake_r, zmq.POLLIN)
        pause = float(os.environ.get(PAUSE_ENV, "0") or 0)
        pause_ack = float(os.environ.get(PAUSE_ACK_ENV, "0") or 0)
        last_state = 0.0
        self._periodic()
        while not self.ctx.stopping:
            timeout = 20.0
            if self.mode == "paper":  # wake when a paper order's latency is over, not up to 20 ms later
                due = self.engine.next_activation()
                if due is not None:
                    timeout = min(timeout, max(0.0, due - now_ms()))
            events = dict(poller.poll(timeout))
            if self.zap.sock in events:
                self.zap.handle()
            if self.ctx.link_socket in events:
                self.ctx.handle_link()
            self._commands()
            if self.reports.sock in events or self.reports.held:
                for strategy in self.reports.subscriptions():
                    self._publish_state(strategy)  # its state at once: it decides nothing before it
            # Market data first: a signal decided on a book must meet a book at least that new (a signal and
            # the book it was decided on often arrive in the same poll), as in a backtest.
            for sub in self.feed.subs.values():
                if sub in events:
                    self._market_data(sub)
            if self.pull in events:
                self._signals()
            acks = self.core.acks
            self._commit()  # every intent of the batch is durable before any order leaves
            self._send(pause)
            self.core.tick(now_ms())
            if pause_ack and self.core.acks > acks:
                self.log.warning("test_pause_after_ack", seconds=pause_ack)
                time.sleep(pause_ack)
            self._commit()  # fills, and the intents of triggers that fired
            self._send(0)
            self._commit()
            self._flush_reports()
            self.journal.checkpoint_if_due()  # now, when this pass's signals have had their reports
            self.ctx.beat()
            now = time.monotonic()
            if now - last_state >= 1.0:
                last_state = now
                self._periodic()
        self.log.info("executor_stop", reason=self.ctx.stop_reason, open_orders=len(self.core.orders))
        return 0

    def _send(self, pause: float) -> None:
        if not self.core.outbox:
            return
        if not self.journal.healthy:  # their intents are not durable: they never leave
            self._not_durable()
            return
        if pause:
            self.log.warning("test_pause_after_intent", seconds=pause)
            time.sleep(pause)
        self.core.apply_events(self.core.send())

    def _not_durable(self) -> None:
        for order, _ in self.core.outbox:
            self.journal.update_order(order.client_id, status="rejected", reason="journal_unavailable")
            row = self.journal.order(order.client_id) or {}
            self.journal.set_signal_status(order.strategy, row.get("signal_id", ""), "rejected", "journal_unavailable")
            self.core.orders.pop(order.client_id, None)
            self.core.funds.release(order.client_id)
            rej = Reject("journal_unavailable", f"the intent could not be made durable ({self.journal.fault}); "
                         "not sent")
            if row.get("signal_id") and not any(r[1] == row["signal_id"] for r in self.core.pending_rejections):
                self.core.reject(order.strategy, row["signal_id"], rej)
        ids = {o.client_id for o, _ in self.core.outbox}
        self.core.pending_reports = [r for r in self.core.pending_reports if r.client_id not in ids]
        self.core.outbox = []

    def _market_data(self, sock: zmq.Socket) -> None:
        self.core.on_market(self.feed.drain(sock), now_ms())

    def _commit(self) -> None:
        was = self.journal.fault
        self.core.commit()
        if self.journal.fault != was:
            if self.journal.fault:
                self.log.error("journal_unavailable", error=self.journal.fault, path=str(self.journal.path),
                               effect="no new orders on this account until a commit succeeds")
            else:
                self.log.warning("journal_recovered", path=str(self.journal.path))
        if self.mode == "paper":
            self.engine.frozen = not self.journal.healthy  # no paper fill that could not be journaled

    def _flush_reports(self) -> None:
        formats = Formats(self.core)
        self.core.flush_reports(lambda row: row_doc(formats, row))

    # ------------------------------------------------------------------ state snapshots
    def state(self, strategy: str | None) -> dict[str, Any]:
        return state_doc(self.core, strategy)

    def _publish_state(self, strategy: str) -> None:
        if not self.ready_for_strategies or strategy not in self.strategies:
            return
        self.state_seq += 1
        doc = self.state(strategy)
        doc["seq"] = self.state_seq
        self.reports.publish(strategy, "state", doc)

    def _periodic(self) -> None:
        self.kill.check()
        for strategy in sorted(self.strategies):
            self._publish_state(strategy)
        full = self.state(None)
        gauges: dict[str, float] = {}
        note = ""
        if self.mode == "live":
            gauges = {"wispd_order_stream_up": float(self.engine.stream_up),
                      "wispd_unknown_exchange_orders": float(self.core.foreign_orders)}
            note = "" if self.engine.stream_up else ", order streams down (polling)"
        gauges["wispd_journal_healthy"] = float(self.journal.healthy)
        kill = self.kill.tripped()
        phase = "halted: journal" if not self.journal.healthy else "halted" if self.core.halted_account else \
            "trading"
        if not self.journal.healthy:
            note += f"; journal cannot be written: {self.journal.fault}"
        if self.core.halted_strategies:
            note += "; halted: " + ", ".join(f"{s} ({r})" for s, r in sorted(self.core.halted_strategies.items()))
        orphans = self.core.orphans()
        if orphans:
            note += f"; {len(orphans)} orphaned position(s)"
        prom = metric_series(self.core, full, len(self.core.orders), self.bad_frames + self.feed.bad_frames, gauges)
        for name, labels, value in self.kill.series():
            prom["g"].append([name, labels, value])
        self.ctx.metrics({"exec": full, "rejects": dict(self.core.rejects), "outcomes": dict(self.core.outcomes),
                          "fills": self.core.fills, "bad_frames": self.bad_frames, "journal_commits": self.journal.commits,
                          "prom": prom})
        self.ctx.status(phase, f"{self.mode}: {len(self.core.orders)} working orders, {len(full['positions'])} "
                        f"positions{note}", fills=self.core.fills, rejects=sum(self.core.rejects.values()),
                        journal=self.journal.fault or "ok", kill_switches=kill, orphaned=len(orphans))

    def close(self) -> None:
        if self.mode == "live":
            self.engine.close()
        self.journal.close()
        for sock in [self.pull, self.reports.sock]:
            sock.close()
        self.feed.close()
        self.zap.close()
        self.zctx.term()
        for endpoint in (self.args["signals_endpoint"], self.args["reports_endpoint"]):
            unlink_ipc(endpoint)
