"""Reconciliation of a paper account on start, before the executor's first state report.

The journal is the exchange. Every row that is not final ends up final or working again, whatever else is
down (the market rules each order was checked against are journaled with it: no ingestor is needed):

- an ``intent`` that never left (a crash between its commit and the send): an entry is rejected and
  reported, never sent late; a fired trigger or a bracket leg being placed is armed again (it never reached
  the book, so it can still fire, once);
- an ``armed`` order is armed again;
- a resting GTC limit rests again;
- a market, IOC or FOK order in flight when the executor died is resolved as cancelled (its fills so far
  stand): it must never come back as a resting order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from wispd.execution.journal import OPEN_STATES
from wispd.execution.orders import Done, Trigger, order_from_row, row_flags

if TYPE_CHECKING:
    from wispd.execution.core import ExecutionCore


def reconcile_paper(core: ExecutionCore) -> dict[str, int]:
    restored = lost = rearmed = resolved = 0
    entries = set()
    for row in core.journal.orders(OPEN_STATES):
        flags = row_flags(row)
        order = order_from_row(row)
        order.extra["expires"] = float(row["created_ms"]) + 3_600_000
        contingent = bool(flags.get("trigger") or flags.get("parent"))
        if row["status"] == "intent" and not contingent:
            core.journal.update_order(row["client_id"], status="rejected",
                                      reason="executor restarted before the order was sent; not resent")
            core.report_order(row["client_id"], "rejected", "executor restarted before the order was sent", "not_sent")
            lost += 1
            continue
        if row["status"] in ("intent", "armed"):
            order.trigger = Trigger.from_wire(flags.get("trigger"))
            order.status = "armed"
            if row["status"] == "intent":
                core.journal.update_order(row["client_id"], status="armed",
                                          reason="armed again after a restart (it had not left)")
                rearmed += 1
            core.adopt(order)
        elif row["order_type"] == "market" or row["tif"] in ("IOC", "FOK"):
            core.adopt(order)
            core.apply_events([Done(order, "cancelled", "the executor restarted while this market/IOC/FOK order "
                                    "was being matched: cancelled (its fills so far stand)")])
            resolved += 1
            continue
        else:
            order.status = "partially_filled" if order.filled else "open"
            core.engine.orders[order.client_id] = order
            core.adopt(order)
            restored += 1
        if order.parent is not None:
            entries.add(order.parent)
    for entry_id in entries:
        entry = core.working(entry_id) or core.entry_of(entry_id)
        if entry is not None:
            core.refresh_bracket(entry)
    return {"restored_open_orders": restored, "unsent_intents": lost, "rearmed": rearmed,
            "resolved_in_flight": resolved}
