"""Reconciliation of a live account on start, before the executor reports ready.

1. Connect (markets), read balances and, for perps, the exchange's positions.
2. Every journaled order that was not final is looked up on the exchange by its client id:
   - found: it is adopted as a working order, with the status the exchange gives;
   - not found, still an ``intent`` (the executor died between committing the intent and hearing from
     the exchange) and the exchange said "unknown client id" on every lookup: it was never received, so
     it is sent now, once, with the same client id, if its signal's TTL has not passed; otherwise it is
     rejected as expired. A second copy cannot appear: the id is the same and the lookup came first;
   - not found but acknowledged before: the journal and the exchange disagree; it is marked rejected
     with that reason and logged as an error (nothing is sent).
3. Recent trades of those symbols are fetched and matched by exchange order id; fills the journal does
   not have are applied (once per trade id).
4. Open orders on the exchange that the journal does not know are reported and left alone, unless
   ``live.unknown_orders = "cancel"``.
Armed contingent orders (stops, take-profits, bracket exits) are held by the executor, not the exchange:
they are armed again without a lookup; a fired one that the exchange does not know is armed again too
(it never left, so it may still fire, once).

It works on the execution core (``core``: journal, funds, positions, venue) and asks its ``host`` (the
executor process) only to heartbeat, wait and say how it is doing.
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

from wispd.execution.journal import OPEN_STATES
from wispd.execution.live import drivers
from wispd.execution.live.errors import classify, describe
from wispd.execution.live.messages import AccountMsg, order_msg
from wispd.execution.orders import Trigger, order_from_row, row_flags

if TYPE_CHECKING:
    from wispd.execution.core import ExecutionCore
    from wispd.execution.live.engine import LiveEngine


class Host(Protocol):
    """What reconciliation needs of the executor process."""

    ctx: Any
    log: Any

    def idle(self) -> None: ...


def connect(ex: Host, engine: LiveEngine) -> AccountMsg | None:
    """Connect and read the account (the first authenticated call) with backoff while the exchange cannot
    be reached (status says so; the process stays up). Refused credentials are a configuration error: exit
    78 (FATAL, no restart loop), with the exchange's own words in ``wispctl status``."""
    delay = 1.0
    while not ex.ctx.stopping:
        try:
            engine.conn.call(engine.conn.connect(), timeout=120)
            return engine.conn.call(engine.conn.account(strict=True), timeout=120)  # type: ignore[no-any-return]
        except Exception as exc:  # noqa: BLE001
            outcome = classify(exc)
            ex.log.error("exchange_connect_failed", error=describe(exc), code=outcome.code)
            if outcome.code == "auth":
                ex.ctx.exiting(f"the exchange refused the credentials: {describe(exc)}")
                raise SystemExit(78) from exc
            ex.ctx.status("unreachable", f"cannot reach the exchange ({describe(exc)}); retrying in {delay:.0f} s")
            ex.ctx.wait(delay)
            delay = min(delay * 2, 30.0)
    raise SystemExit(0)


def _expiry(core: ExecutionCore, row: dict[str, Any]) -> float:
    payload = core.journal.signal_payload(row["strategy"], row["signal_id"]) or {}
    return float(payload.get("ts") or 0) + float(payload.get("ttl_ms") or 0)


def reconcile_live(ex: Host, core: ExecutionCore) -> dict[str, int]:
    engine: LiveEngine = core.engine
    conn = engine.conn
    conn.idle = ex.idle
    conn.start()
    account = connect(ex, engine)
    summary = {"found": 0, "sent_after_lookup": 0, "expired_unsent": 0, "missing_on_exchange": 0,
               "unknown_exchange_orders": 0, "fills_recovered": 0, "position_mismatches": 0, "rearmed": 0}
    since: dict[str, float] = {}
    for row in core.journal.orders(OPEN_STATES):
        flags = row_flags(row)
        order = order_from_row(row)
        order.extra["expires"] = _expiry(core, row)
        if row["status"] == "armed":
            order.status = "armed"
            core.adopt(order)
            continue
        symbol = engine.symbol(order)
        found = conn.call(conn.lookup(row["client_id"], symbol), timeout=300)
        if found is not None:
            msg = order_msg(engine.driver, found)
            order.exchange_id = msg.exchange_id
            order.status = "pending" if row["status"] == "intent" else order.status
            if not order.extra.get("native"):
                order.trigger = None  # a fired trigger is a plain order on the exchange
            engine.adopt(order)
            core.adopt(order)
            engine._post(msg)
            summary["found"] += 1
            since[symbol] = min(since.get(symbol, row["created_ms"]), row["created_ms"])
        elif row["status"] == "intent" and (flags.get("trigger") or flags.get("parent")) and not flags.get("native"):
            order.status, order.trigger = "armed", Trigger.from_wire(flags.get("trigger"))
            core.journal.update_order(row["client_id"], status="armed",
                                      reason="armed again after a restart (the exchange never received it)")
            core.adopt(order)
            summary["rearmed"] += 1
        elif row["status"] == "intent":
            expires = order.extra["expires"]
            if time.time() * 1000 < expires:
                ex.log.warning("intent_sent_after_lookup", client_id=row["client_id"],
                               reason="the exchange does not know this client id; sending it once")
                core.adopt(order)
                engine.submit(order, time.time() * 1000, expires)
                summary["sent_after_lookup"] += 1
            else:
                core.journal.update_order(row["client_id"], status="rejected",
                                          reason="never reached the exchange and its TTL passed; not sent")
                core.report_order(row["client_id"], "rejected", "expired before it could be sent", "expired")
                summary["expired_unsent"] += 1
        else:
            ex.log.error("order_missing_on_exchange", client_id=row["client_id"], status=row["status"])
            core.journal.update_order(row["client_id"], status="rejected",
                                      reason="acknowledged before, but the exchange does not know it")
            core.report_order(row["client_id"], "rejected", "the exchange does not know this order", "missing")
            summary["missing_on_exchange"] += 1
    for symbol, t0 in since.items():
        before = core.fills
        conn.call(conn.fetch_trades(symbol, t0 - 60_000), timeout=120)
        core.apply_events(engine.tick(time.time() * 1000))
        summary["fills_recovered"] += core.fills - before
    core.apply_events(engine.tick(time.time() * 1000))
    summary["unknown_exchange_orders"] = _foreign_orders(ex, core)
    if account is not None:  # read again now that the fills made while we were away are in the journal
        account = conn.call(conn.account(), timeout=120) or account  # (or they would count twice)
        core.venue_balances(account.balances)
    if account is not None and account.positions is not None:
        summary["position_mismatches"] = _compare_positions(ex, core, account.positions)
    conn.start_streams()
    return summary


def _foreign_orders(ex: Host, core: ExecutionCore) -> int:
    engine = core.engine
    conn, count = engine.conn, 0
    for o in conn.call(conn.open_orders(), timeout=120):
        cid = drivers.our_client_id(engine.driver, o.get("clientOrderId"))
        if cid and core.journal.order(cid) is not None:
            continue
        count += 1
        policy = core.live_cfg["unknown_orders"]
        ex.log.warning("unknown_exchange_order", exchange_id=o.get("id"), symbol=o.get("symbol"), side=o.get("side"),
                       amount=o.get("amount"), price=o.get("price"), client_order_id=o.get("clientOrderId"),
                       action="cancel" if policy == "cancel" else "left alone")
        if policy == "cancel":
            try:
                conn.call(conn.ex.cancel_order(o["id"], o["symbol"]), timeout=60)
            except Exception as exc:  # noqa: BLE001
                ex.log.error("unknown_order_cancel_failed", exchange_id=o.get("id"), error=describe(exc))
    core.foreign_orders = count
    return count


def _compare_positions(ex: Host, core: ExecutionCore, positions: dict[str, Decimal]) -> int:
    engine = core.engine
    ours: dict[str, Decimal] = {}
    for (_strategy, _exchange, market, symbol), pos in core.ledger.positions.items():
        if market == "perp":
            sym = engine.ccxt_symbol(market, symbol)
            ours[sym] = ours.get(sym, Decimal(0)) + pos.qty
    mismatches = 0
    for sym in set(ours) | set(positions):
        if ours.get(sym, Decimal(0)) != positions.get(sym, Decimal(0)):
            mismatches += 1
            ex.log.warning("position_mismatch", symbol=sym, journal=str(ours.get(sym, 0)),
                           exchange=str(positions.get(sym, 0)),
                           note="positions opened outside wispd, or fills before this journal")
    return mismatches
