"""Reconciliation on start, before the executor reports ready.

Paper accounts: the journal is the exchange. Positions are reloaded; orders that were resting rest
again; an intent that was committed but never sent (a crash between commit and send) is resolved as
rejected and reported, never sent again. Live accounts will match the journal to the exchange by client
order id the same way (an unknown outcome is looked up, never re-sent).
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from wispd.execution.checks import Reject
from wispd.execution.journal import OPEN_STATES
from wispd.execution.orders import order_from_row

if TYPE_CHECKING:
    from wispd.execution.executor import Executor


def restore_positions(ex: Executor) -> None:
    """Positions per strategy are the journal's (paper and live alike): reload them before anything else."""
    for (strategy, exchange, market, symbol, qty, avg, realized, fees) in (
            tuple(r.values()) for r in ex.journal.positions()):
        pos = ex.ledger.position((strategy, exchange, market, symbol))
        pos.qty, pos.avg, pos.realized, pos.fees = Decimal(qty), Decimal(avg), Decimal(realized), Decimal(fees)


def reconcile_paper(ex: Executor) -> dict[str, int]:
    """Restore the paper book from the journal; returns what was restored and what was left unsent."""
    restored = lost = 0
    for row in ex.journal.orders(OPEN_STATES):
        if row["status"] == "intent":
            ex.journal.update_order(row["client_id"], status="rejected",
                                      reason="executor restarted before the order was sent; not resent")
            ex._report_order(row["client_id"], "rejected", "executor restarted before the order was sent", "not_sent")
            lost += 1
            continue
        key = (row["exchange"], row["market"], row["symbol"])
        if row["exchange"] not in ex.exchanges:
            continue
        try:
            ex.ensure_market(key)
        except Reject:
            continue
        order = order_from_row(row)
        order.status = "partially_filled" if order.filled else "open"
        ex.engine.orders[order.client_id] = order
        restored += 1
    return {"restored_open_orders": restored, "unsent_intents": lost}

