"""Positions, PnL and balances, all Decimal, per strategy and per account.

Average-cost accounting: adding to a position moves the average price; reducing it realises
``closed qty x (price - average)`` (sign-aware for shorts); crossing zero opens the remainder at the fill
price. Fees are in quote units and are tracked apart from realised PnL, so ``total = realized +
unrealized - fees``.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

ZERO = Decimal(0)

Key = tuple[str, str, str, str]  # strategy, exchange, market, symbol


@dataclass
class PositionState:
    qty: Decimal = ZERO  # signed
    avg: Decimal = ZERO
    realized: Decimal = ZERO
    fees: Decimal = ZERO

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

    def unrealized(self, mark: Decimal | None) -> Decimal:
        return ZERO if mark is None or self.qty == 0 else (mark - self.avg) * self.qty


def split_symbol(symbol: str) -> tuple[str, str]:
    base, quote = symbol.split("-", 1)
    return base, quote


class Ledger:
    def __init__(self, balances: dict[str, Decimal]) -> None:
        self.positions: dict[Key, PositionState] = {}
        self.balances: dict[str, Decimal] = dict(balances)

    def position(self, key: Key) -> PositionState:
        return self.positions.setdefault(key, PositionState())

    def apply_fill(self, key: Key, side: str, qty: Decimal, price: Decimal, fee: Decimal) -> Decimal:
        _, _, market, symbol = key
        base, quote = split_symbol(symbol)
        realized = self.position(key).apply(side, qty, price, fee)
        if market == "spot":
            sign = 1 if side == "buy" else -1
            self.balances[base] = self.balances.get(base, ZERO) + sign * qty
            self.balances[quote] = self.balances.get(quote, ZERO) - sign * qty * price - fee
        else:  # perp: the quote balance moves by realised PnL and fees (margin is not locked in paper)
            self.balances[quote] = self.balances.get(quote, ZERO) + realized - fee
        return realized

    def strategy_pnl(self, strategy: str, marks: dict[tuple[str, str, str], Decimal]) -> dict[str, Decimal]:
        realized = unrealized = fees = ZERO
        for (strat, ex, market, symbol), pos in self.positions.items():
            if strat != strategy:
                continue
            realized += pos.realized
            fees += pos.fees
            unrealized += pos.unrealized(marks.get((ex, market, symbol)))
        return {"realized": realized, "unrealized": unrealized, "fees": fees, "total": realized + unrealized - fees}

    def exposure(self, strategy: str | None, marks: dict[tuple[str, str, str], Decimal]) -> Decimal:
        """Sum of |qty| x mark over positions (of one strategy, or all)."""
        total = ZERO
        for (strat, ex, market, symbol), pos in self.positions.items():
            if strategy is None or strat == strategy:
                total += abs(pos.qty) * (marks.get((ex, market, symbol)) or pos.avg)
        return total
