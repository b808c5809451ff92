"""Funds on one account: each strategy's own sub-ledger, and what its working orders reserve.

- The account's balances are split into one sub-ledger per strategy plus what no strategy holds
  (``unassigned``). A strategy spends only from its own sub-ledger and sells only what it holds there: one
  strategy can never sell another's inventory. Its allocation (config) says how much of the account's
  capital it is given: a fixed amount per asset, a share, or, for strategies that set neither, an equal
  split of what the others leave.
- A working order reserves what it can consume (quote for a spot buy, base for a spot sell, margin for a
  perp at its leverage), released as it fills or when it ends. ``available = held - reserved`` is what a
  new order may use; a spot sub-ledger therefore never goes negative.
- Open perp positions lock their margin (``pos:`` reservations) until they are reduced.

Everything is Decimal; the executor journals the sub-ledgers and the funding, so a restart resumes the
same split. Reservations are not journaled: they are recomputed from the working orders on start.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_UP, Decimal
from typing import Any

ZERO = Decimal(0)
GRAIN = Decimal("1e-8")  # an equal split is cut to this, so the shares never add up to more than the whole
RESERVE_GRAIN = Decimal("1e-12")  # reservations are rounded up to this: sums of them stay exact


def reservation(amount: Decimal) -> Decimal:
    """An amount to reserve, rounded up to ``RESERVE_GRAIN`` (a reservation never falls short by a digit,
    and adding and removing reservations in any order gives the same total)."""
    return amount.quantize(RESERVE_GRAIN, rounding=ROUND_UP)


@dataclass(frozen=True)
class Allocation:
    """From the config: ``fixed`` amounts per asset, or a ``share`` of the capital, or neither (equal split)."""

    fixed: dict[str, Decimal] | None = None  # None: not set ({} is set: nothing at all)
    share: Decimal | None = None

    @classmethod
    def from_config(cls, raw: dict[str, Any] | None) -> Allocation:
        raw = raw or {}
        fixed = raw.get("fixed")
        return cls({k.upper(): Decimal(v) for k, v in fixed.items()} if fixed is not None else None,
                   Decimal(str(raw["share"])) if raw.get("share") is not None else None)

    @property
    def default(self) -> bool:
        return self.fixed is None and self.share is None


class Funds:
    def __init__(self, account: dict[str, Decimal]) -> None:
        self.unassigned: dict[str, Decimal] = {k: v for k, v in account.items()}
        self.held: dict[str, dict[str, Decimal]] = defaultdict(dict)  # strategy -> asset -> amount
        self.funded: dict[str, dict[str, Decimal]] = defaultdict(dict)  # strategy -> asset -> given so far (net)
        self.reserved: dict[str, dict[str, Decimal]] = defaultdict(dict)  # strategy -> asset -> reserved
        self.holds: dict[str, tuple[str, str, Decimal]] = {}  # reservation key -> (strategy, asset, amount)

    # ------------------------------------------------------------------ views
    def account(self) -> dict[str, Decimal]:
        """The account's balances: what no strategy holds plus every sub-ledger."""
        out = dict(self.unassigned)
        for assets in self.held.values():
            for asset, amount in assets.items():
                out[asset] = out.get(asset, ZERO) + amount
        return {k: v for k, v in out.items()}

    def balance(self, strategy: str, asset: str) -> Decimal:
        return self.held.get(strategy, {}).get(asset, ZERO)

    def reserved_of(self, strategy: str, asset: str) -> Decimal:
        return self.reserved.get(strategy, {}).get(asset, ZERO)

    def available(self, strategy: str, asset: str) -> Decimal:
        return self.balance(strategy, asset) - self.reserved_of(strategy, asset)

    # ------------------------------------------------------------------ reservations
    def reserve(self, key: str, strategy: str, asset: str, amount: Decimal) -> None:
        """Set the reservation ``key`` (an order's client id, or ``pos:...``) to ``amount`` of ``asset``."""
        self.release(key)
        amount = reservation(amount)
        if amount > 0:
            self.holds[key] = (strategy, asset, amount)
            bucket = self.reserved[strategy]
            bucket[asset] = bucket.get(asset, ZERO) + amount

    def release(self, key: str) -> None:
        held = self.holds.pop(key, None)
        if held is not None:
            strategy, asset, amount = held
            bucket = self.reserved[strategy]
            bucket[asset] = bucket.get(asset, ZERO) - amount
            if bucket[asset] == 0:
                del bucket[asset]

    # ------------------------------------------------------------------ movements
    def move(self, strategy: str, deltas: dict[str, Decimal]) -> None:
        """A fill (or a fee): change the strategy's sub-ledger."""
        bucket = self.held[strategy]
        for asset, delta in deltas.items():
            bucket[asset] = bucket.get(asset, ZERO) + delta

    def fund(self, strategies: list[str], allocations: dict[str, Allocation], capital: dict[str, Decimal]) -> dict[
            str, dict[str, Decimal]]:
        """Bring every strategy's funding to its allocation of ``capital``: top up from the unassigned funds
        (as far as they go), give back what is free when an allocation shrank. Returns what moved."""
        targets = allocation_targets(strategies, allocations, capital)
        moved: dict[str, dict[str, Decimal]] = {}
        for strategy in strategies:
            for asset in set(targets.get(strategy, {})) | set(self.funded.get(strategy, {})):
                target = targets.get(strategy, {}).get(asset, ZERO)
                have = self.funded[strategy].get(asset, ZERO)
                if target > have:
                    give = min(target - have, max(ZERO, self.unassigned.get(asset, ZERO)))
                else:
                    give = -min(have - target, max(ZERO, self.available(strategy, asset)))
                if give == 0:
                    continue
                self.unassigned[asset] = self.unassigned.get(asset, ZERO) - give
                self.held[strategy][asset] = self.held[strategy].get(asset, ZERO) + give
                self.funded[strategy][asset] = have + give
                moved.setdefault(strategy, {})[asset] = give
        return moved

    def release_strategy(self, strategy: str, keep: dict[str, Decimal] | None = None) -> dict[str, Decimal]:
        """A strategy left the account: what it holds free goes back to the unassigned funds, except what
        ``keep`` says still backs its positions (an orphaned position can still be closed)."""
        back: dict[str, Decimal] = {}
        for asset in list(self.held.get(strategy, {})):
            free = max(ZERO, self.available(strategy, asset) - (keep or {}).get(asset, ZERO))
            if free:
                self.held[strategy][asset] -= free
                self.unassigned[asset] = self.unassigned.get(asset, ZERO) + free
                self.funded[strategy][asset] = self.funded[strategy].get(asset, ZERO) - free
                back[asset] = free
        return back


def allocation_targets(strategies: list[str], allocations: dict[str, Allocation],
                       capital: dict[str, Decimal]) -> dict[str, dict[str, Decimal]]:
    """Per strategy and asset, what its allocation is worth: fixed amounts, shares of ``capital``, and an
    equal split of the rest among the strategies that set neither."""
    out: dict[str, dict[str, Decimal]] = {}
    defaults = [s for s in strategies if allocations.get(s, Allocation()).default]
    for asset, total in capital.items():
        taken = ZERO
        for s in strategies:
            a = allocations.get(s, Allocation())
            if a.fixed is not None:
                amount = a.fixed.get(asset, ZERO)
            elif a.share is not None:
                amount = total * a.share
            else:
                continue
            out.setdefault(s, {})[asset] = amount
            taken += amount
        rest = max(ZERO, total - taken)
        for s in defaults:
            out.setdefault(s, {})[asset] = (rest / len(defaults)).quantize(GRAIN, rounding=ROUND_DOWN)
    return out
