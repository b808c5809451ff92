"""What an executor reports about its account: the state document (positions, working orders, balances,
allocation, PnL, halts) sent to each strategy and, for the whole account, to ``wispctl positions`` /
``orders``, and its Prometheus series.

Numbers are shown as the market shows them (``wispd.numbers``): quantities at the market's step, prices
at its tick, money at the quote asset's precision; an unrealised PnL without a mark is ``null`` (unknown),
never 0. The journal keeps full Decimals.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from wispd import numbers
from wispd.execution.ledger import split_symbol
from wispd.metrics.registry import Registry

if TYPE_CHECKING:
    from wispd.execution.core import ExecutionCore

MarketKey = tuple[str, str, str]
ORDER_FIELDS = ("client_id", "signal_id", "strategy", "exchange", "market", "symbol", "side", "order_type", "qty",
                "price", "tif", "status", "filled", "avg_price", "fees", "reason", "exchange_id", "parent")


def order_doc(row: dict[str, Any]) -> dict[str, Any]:
    return {k: row.get(k) for k in ORDER_FIELDS}


class Formats:
    """How to show the numbers of each market (from the rules its orders were checked against)."""

    def __init__(self, core: ExecutionCore) -> None:
        self.core = core

    def _rules(self, key: MarketKey) -> Any:
        return self.core.rules.get(key)

    def qty(self, key: MarketKey, value: Decimal | None) -> str | None:
        r = self._rules(key)
        return numbers.qty(value, r.step if r else None)

    def price(self, key: MarketKey, value: Decimal | None) -> str | None:
        r = self._rules(key)
        return numbers.price(value, r.tick if r else None)

    def places(self, key: MarketKey) -> int:
        r = self._rules(key)
        return numbers.money_places(r.tick if r else None, r.step if r else None)

    def money(self, key: MarketKey, value: Decimal | None) -> str | None:
        return numbers.money(value, self.places(key))

    def asset_places(self, asset: str) -> int:
        """An asset's precision: the finest of the markets it is traded on (quote money, or base quantity)."""
        best = None
        for (_, _, symbol), r in self.core.rules.items():
            base, quote = split_symbol(symbol)
            n = numbers.places(r.step) if asset == base else \
                numbers.money_places(r.tick, r.step) if asset == quote else None
            if n is not None:
                best = n if best is None else max(best, n)
        return numbers.DEFAULT_MONEY_PLACES if best is None else best

    def asset(self, asset: str, value: Decimal | None) -> str | None:
        return numbers.money(value, self.asset_places(asset))


def row_doc(f: Formats, row: dict[str, Any]) -> dict[str, Any]:
    """An order as reports show it: the journal row with its numbers at the market's precision."""
    r = f.core.rules.get((row["exchange"], row["market"], row["symbol"]))
    step, tick = (r.step, r.tick) if r else (None, None)
    q, p, get, shown = numbers.places(step), numbers.places(tick), row.get, numbers.shown
    doc = order_doc(row)
    doc.update({"qty": shown(get("qty"), q), "price": shown(get("price"), p), "filled": shown(get("filled"), q),
                "avg_price": shown(get("avg_price"), p), "fees": shown(get("fees"), numbers.money_places(tick, step))})
    return doc


def _order(f: Formats, core: ExecutionCore, o: Any) -> dict[str, Any]:
    row = core.journal.order(o.client_id) or {}
    key = o.book_key
    doc = order_doc(row)
    doc.update({"qty": f.qty(key, o.qty), "price": f.price(key, o.price), "filled": f.qty(key, o.filled),
                "avg_price": f.price(key, o.avg_price), "fees": f.money(key, _dec(row.get("fees"))),
                "status": o.status if o.status != "pending" else row.get("status", "intent")})
    if o.trigger is not None:
        doc["trigger"] = {"kind": o.trigger.kind, "price": f.price(key, o.trigger.price),
                          "held_by": "venue" if o.extra.get("native") else "executor"}
    if o.parent:
        doc["parent"], doc["leg"] = o.parent, o.leg
    return doc


def _dec(value: Any) -> Decimal | None:
    return Decimal(value) if isinstance(value, str) and value else None


def state_doc(core: ExecutionCore, strategy: str | None) -> dict[str, Any]:
    """One strategy's state (sent to it), or the whole account's (``strategy=None``)."""
    f = Formats(core)
    marks = core.marks
    positions = []
    for (strat, ex, market, symbol), pos in core.ledger.positions.items():
        if strategy is not None and strat != strategy:
            continue
        key = (ex, market, symbol)
        mark = marks.get(key)
        positions.append({"strategy": strat, "exchange": ex, "market": market, "symbol": symbol,
                          "qty": f.qty(key, pos.qty), "avg_price": f.price(key, pos.avg),
                          "realized_pnl": f.money(key, pos.realized), "unrealized_pnl": f.money(key, pos.unrealized(mark)),
                          "fees": f.money(key, pos.fees), "mark": f.price(key, mark),
                          "orphaned": strat not in core.strategies})
    strategies = [strategy] if strategy else sorted(core.strategies | {k[0] for k in core.ledger.positions})
    pnl = {s: _pnl(f, core, s) for s in strategies}
    orders = [_order(f, core, o) for o in core.orders.values() if strategy is None or o.strategy == strategy]
    doc: dict[str, Any] = {"account": core.account, "halted": core.halted_account, "positions": positions,
                           "orders": orders, "pnl": pnl[strategy] if strategy else pnl}
    if strategy is None:
        doc["balances"] = {a: f.asset(a, v) for a, v in core.funds.account().items()}
        doc["unassigned"] = {a: f.asset(a, v) for a, v in core.funds.unassigned.items() if v}
        doc["strategies"] = {s: _funds(f, core, s) for s in strategies}
        doc["halted_strategies"] = dict(core.halted_strategies)
        doc["orphaned"] = [":".join(k) for k in core.orphans()]
    else:
        doc.update(_funds(f, core, strategy))
        doc["strategy_halted"] = core.halted_strategies.get(strategy)
    return doc


def _funds(f: Formats, core: ExecutionCore, strategy: str) -> dict[str, Any]:
    held = core.funds.held.get(strategy, {})
    assets = set(held) | set(core.funds.reserved.get(strategy, {}))
    return {"balances": {a: f.asset(a, held.get(a, Decimal(0))) for a in assets},
            "reserved": {a: f.asset(a, core.funds.reserved_of(strategy, a)) for a in assets
                         if core.funds.reserved_of(strategy, a)},
            "available": {a: f.asset(a, core.funds.available(strategy, a)) for a in assets},
            "allocation": {a: f.asset(a, v) for a, v in core.funds.funded.get(strategy, {}).items()}}


def _pnl(f: Formats, core: ExecutionCore, strategy: str) -> dict[str, str | None]:
    raw = core.ledger.strategy_pnl(strategy, core.marks)
    keys = [k[1:] for k in core.ledger.positions if k[0] == strategy]
    places = max((f.places(k) for k in keys), default=numbers.DEFAULT_MONEY_PLACES)
    return {k: numbers.money(v, places) for k, v in raw.items()}


def metric_series(core: ExecutionCore, full: dict[str, Any], open_orders: int, bad_frames: int,
                  gauges: dict[str, float] | None = None) -> dict[str, Any]:
    """The executor's counters and histograms plus its current gauges, as one registry snapshot. A PnL that
    is unknown (no mark) has no sample at all, rather than a 0 that would read as flat."""
    account = core.account
    reg = Registry()
    reg.counters, reg.hists = dict(core.reg.counters), dict(core.reg.hists)
    reg.inc("wispd_bad_frames_total", bad_frames, account=account)
    for p in full["positions"]:
        reg.set("wispd_position_quantity", float(p["qty"]), account=account, strategy=p["strategy"],
                exchange=p["exchange"], market=p["market"], symbol=p["symbol"])
        if p["orphaned"] and float(p["qty"]):
            reg.set("wispd_orphaned_position_quantity", float(p["qty"]), account=account, strategy=p["strategy"],
                    exchange=p["exchange"], market=p["market"], symbol=p["symbol"])
    for strategy, pnl in full["pnl"].items():
        reg.set("wispd_exposure_quote", float(core.ledger.exposure(strategy, core.marks)), account=account,
                strategy=strategy)
        for component, value in pnl.items():
            if value is not None:
                reg.set("wispd_pnl_quote", float(value), account=account, strategy=strategy, component=component)
    reg.set("wispd_open_orders", open_orders, account=account)
    for name, value in (gauges or {}).items():
        reg.set(name, value, account=account)
    return reg.snapshot()


def settle(core: ExecutionCore) -> None:
    """The executor loop's order of work in one call, for what drives a paper core outside the executor
    process (a backtest's accounts, tests): commit (intents durable), send, commit what came back (fills can
    fire triggers, whose orders are sent in turn), then the reports of what was committed, then a WAL
    checkpoint if one is due."""
    core.commit()
    for _ in range(10):
        if not core.outbox:
            break
        core.apply_events(core.send())
        core.commit()
    formats = Formats(core)
    core.flush_reports(lambda row: row_doc(formats, row))
    core.journal.checkpoint_if_due()
