"""Positions, PnL and balances, all Decimal, per strategy and per account.

Average-cost accounting: adding to a position moves the average price; reducing it realises
``closed qty x (price - average)`` (sign-aware for shorts); crossing zero opens the remainder at the fill
price. Fees are in quote units and are tracked apart from realised PnL, so ``total = realized +
unrealized - fees``. Unrealised PnL needs a mark: without one it is unknown (None), never 0.

Balances live in ``Funds`` (one sub-ledger per strategy): a spot fill moves the strategy's base and quote,
a perp fill its quote by the realised PnL and the fee, and a perp position locks its margin there
(``|qty| x average / leverage``) until it is reduced.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from wispd.execution.funds import Funds

ZERO = Decimal(0)

Key = tuple[str, str, str, str]  # strategy, exchange, market, symbol
MarketKey = tuple[str, str, str]  # exchange, market, symbol


@dataclass
class PositionState:
    qty: Decimal = ZERO  # signed
    avg: Decimal = ZERO
    realized: Decimal = ZERO
    fees: Decimal = ZERO
    leverage: Decimal = Decimal(1)  # perps: of the orders that opened it (its margin is qty x avg / leverage)

    def apply(self, side: str, qty: Decimal, price: Decimal, fee: Decimal) -> Decimal:
        """Apply one fill; returns the PnL it realised."""
        signed = qty if side == "buy" else -qty
        self.fees += fee
        if self.qty == 0 or (self.qty > 0) == (signed > 0):
            total = abs(self.qty) + qty
            self.avg = (abs(self.qty) * self.avg + qty * price) / total
            self.qty += signed
            return ZERO
        closing = min(qty, abs(self.qty))
        pnl = closing * (price - self.avg) * (1 if self.qty > 0 else -1)
        self.realized += pnl
        self.qty += signed
        if self.qty == 0:
            self.avg = ZERO
        elif (self.qty > 0) == (signed > 0):  # crossed through zero: the rest is a new position
            self.avg = price
        return pnl

    def unrealized(self, mark: Decimal | None) -> Decimal | None:
        if self.qty == 0:
            return ZERO
        return None if mark is None else (mark - self.avg) * self.qty

    @property
    def margin(self) -> Decimal:
        return abs(self.qty) * self.avg / self.leverage


def split_symbol(symbol: str) -> tuple[str, str]:
    base, quote = symbol.split("-", 1)
    return base, quote


class Ledger:
    def __init__(self, funds: Funds) -> None:
        self.positions: dict[Key, PositionState] = {}
        self.funds = funds

    @property
    def balances(self) -> dict[str, Decimal]:
        """The account's balances (the sum of the sub-ledgers and what no strategy holds)."""
        return self.funds.account()

    def position(self, key: Key) -> PositionState:
        pos = self.positions.get(key)  # (not setdefault: that builds a PositionState on every call)
        if pos is None:
            pos = self.positions[key] = PositionState()
        return pos

    def apply_fill(self, key: Key, side: str, qty: Decimal, price: Decimal, fee: Decimal,
                   leverage: Decimal | None = None) -> Decimal:
        strategy, _, market, symbol = key
        base, quote = split_symbol(symbol)
        pos = self.position(key)
        opening = pos.qty == 0 or (pos.qty > 0) == (side == "buy")
        if market == "perp" and opening and leverage is not None:
            pos.leverage = max(Decimal(1), leverage)
        realized = pos.apply(side, qty, price, fee)
        if market == "spot":
            sign = 1 if side == "buy" else -1
            self.funds.move(strategy, {base: sign * qty, quote: -sign * qty * price - fee})
        else:
            self.funds.move(strategy, {quote: realized - fee})
            self.funds.reserve(margin_key(key), strategy, quote, pos.margin)
        return realized

    def strategy_pnl(self, strategy: str, marks: dict[MarketKey, Decimal]) -> dict[str, Decimal | None]:
        realized = fees = ZERO
        unrealized: Decimal | None = ZERO
        for (strat, ex, market, symbol), pos in self.positions.items():
            if strat != strategy:
                continue
            realized += pos.realized
            fees += pos.fees
            u = pos.unrealized(marks.get((ex, market, symbol)))
            unrealized = None if u is None or unrealized is None else unrealized + u
        total = None if unrealized is None else realized + unrealized - fees
        return {"realized": realized, "unrealized": unrealized, "fees": fees, "total": total}

    def apply_funding(self, key: Key, amount: Decimal) -> None:
        """A funding payment (``amount`` > 0: this position paid it): realized PnL and the quote sub-ledger."""
        pos = self.position(key)
        pos.realized -= amount
        self.funds.move(key[0], {split_symbol(key[3])[1]: -amount})

    def exposure(self, strategy: str | None, marks: dict[MarketKey, Decimal]) -> Decimal:
        """Sum of |qty| x mark over positions (of one strategy, or all); the average price stands in for a
        missing mark (exposure must never be understated to zero)."""
        total = ZERO
        for (strat, ex, market, symbol), pos in self.positions.items():
            if strategy is None or strat == strategy:
                total += abs(pos.qty) * (marks.get((ex, market, symbol)) or pos.avg)
        return total


def margin_key(key: Key) -> str:
    return "pos:" + ":".join(key)
