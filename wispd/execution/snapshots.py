"""What an executor reports about its account: the state document (positions, orders, balances, PnL)
sent to strategies and to ``wispctl positions``/``orders``, and its Prometheus series."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from wispd.execution.journal import Journal
from wispd.execution.ledger import Ledger
from wispd.metrics.registry import Registry
from wispd.protocol import dec_str

MarketKey = tuple[str, str, str]
ORDER_FIELDS = ("client_id", "signal_id", "strategy", "exchange", "market", "symbol", "side", "order_type", "qty",
                "price", "tif", "status", "filled", "avg_price", "fees", "reason", "exchange_id")


def order_doc(row: dict[str, Any]) -> dict[str, Any]:
    return {k: row.get(k) for k in ORDER_FIELDS}


def state_doc(account: str, halted: bool, ledger: Ledger, journal: Journal, marks: dict[MarketKey, Decimal],
              strategy: str | None) -> dict[str, Any]:
    positions = []
    for (strat, ex, market, symbol), pos in ledger.positions.items():
        if strategy is not None and strat != strategy:
            continue
        mark = marks.get((ex, market, symbol))
        positions.append({"strategy": strat, "exchange": ex, "market": market, "symbol": symbol,
                          "qty": dec_str(pos.qty), "avg_price": dec_str(pos.avg),
                          "realized_pnl": dec_str(pos.realized), "unrealized_pnl": dec_str(pos.unrealized(mark)),
                          "fees": dec_str(pos.fees), "mark": dec_str(mark) if mark is not None else None})
    strategies = [strategy] if strategy else sorted({k[0] for k in ledger.positions})
    pnl = {s: {k: dec_str(v) for k, v in ledger.strategy_pnl(s, marks).items()} for s in strategies}
    orders = [order_doc(r) for r in journal.orders(("accepted", "open", "partially_filled"))
              if strategy is None or r["strategy"] == strategy]
    return {"account": account, "halted": halted, "positions": positions, "orders": orders,
            "balances": {k: dec_str(v) for k, v in ledger.balances.items()},
            "pnl": pnl[strategy] if strategy else pnl}


def metric_series(counts: Registry, account: str, full: dict[str, Any], ledger: Ledger,
                  marks: dict[MarketKey, Decimal], open_orders: int, bad_frames: int,
                  gauges: dict[str, float] | None = None) -> dict[str, Any]:
    """The executor's counters and histograms plus its current gauges, as one registry snapshot."""
    reg = Registry()
    reg.counters, reg.hists = dict(counts.counters), dict(counts.hists)
    reg.inc("wispd_bad_frames_total", bad_frames, account=account)
    for p in full["positions"]:
        reg.set("wispd_position_quantity", float(p["qty"]), account=account, strategy=p["strategy"],
                exchange=p["exchange"], market=p["market"], symbol=p["symbol"])
    for strategy, pnl in full["pnl"].items():
        reg.set("wispd_exposure_quote", float(ledger.exposure(strategy, marks)), account=account,
                strategy=strategy)
        for component, value in pnl.items():
            reg.set("wispd_pnl_quote", float(value), account=account, strategy=strategy,
                    component=component)
    reg.set("wispd_open_orders", open_orders, account=account)
    for name, value in (gauges or {}).items():
        reg.set(name, value, account=account)
    return reg.snapshot()

