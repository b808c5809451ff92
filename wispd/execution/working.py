"""The working orders of one account, indexed by what the hot paths look them up by.

A fill asks for its bracket's legs, a perp fill for the strategy's other orders on that market, a book
update for the resting orders of that book. With a plain dict every one of those was a scan of every
working order: with 1,000 resting orders a signal cost 27 % more (bench/order_stages.py). The indexes
hold only what never changes on an order once it is working (its parent, strategy and market), so they
cannot go stale; status is read from the order itself.

It is a dict (client id -> order) whose every write keeps the indexes: ``__setitem__``, ``pop``,
``__delitem__`` and ``clear``; the dict methods that would write around them are refused. Each index
keeps the dict's insertion order, so a lookup yields orders in the order a full scan would have.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NoReturn

from wispd.execution.orders import WorkingOrder

BookKey = tuple[str, str, str]
_MISSING: Any = object()


class WorkingOrders(dict[str, WorkingOrder]):
    __slots__ = ("_by_book", "_by_parent", "_by_strategy")

    def __init__(self, orders: Iterable[WorkingOrder] = ()) -> None:
        super().__init__()
        self._by_parent: dict[str, dict[str, WorkingOrder]] = {}
        self._by_strategy: dict[str, dict[str, WorkingOrder]] = {}
        self._by_book: dict[BookKey, dict[str, WorkingOrder]] = {}
        for order in orders:
            self[order.client_id] = order

    # ------------------------------------------------------------------ lookups
    def legs(self, parent: str) -> list[WorkingOrder]:
        """The working exits of a bracket entry."""
        return list(self._by_parent.get(parent, {}).values())

    def of_strategy(self, strategy: str) -> list[WorkingOrder]:
        return list(self._by_strategy.get(strategy, {}).values())

    def on_book(self, key: BookKey) -> list[WorkingOrder]:
        """The working orders of one market (exchange, market, symbol)."""
        return list(self._by_book.get(key, {}).values())

    def has_book(self, key: BookKey) -> bool:
        """Whether any order is working on one market (asked once per replayed frame in a backtest)."""
        return key in self._by_book  # a group is removed with its last order

    # ------------------------------------------------------------------ writes
    def __setitem__(self, client_id: str, order: WorkingOrder) -> None:
        old = super().get(client_id)
        super().__setitem__(client_id, order)
        for index, key, was in ((self._by_parent, order.parent, old.parent if old else None),
                                (self._by_strategy, order.strategy, old.strategy if old else None),
                                (self._by_book, order.book_key, old.book_key if old else None)):
            if old is not None and was != key:
                self._drop(index, was, client_id)
            if key is None:
                continue
            group = index.get(key)
            if group is None:
                index[key] = {client_id: order}
            elif old is None or was == key:
                group[client_id] = order  # new: last, as in the dict; the same key: keeps its place
            else:  # an order moved between groups keeps its place in the dict: so it does in the group
                index[key] = {c: o for c, o in self.items() if c in group or c == client_id}

    def __delitem__(self, client_id: str) -> None:
        order = super().pop(client_id)
        self._unindex(client_id, order)

    def pop(self, client_id: str, default: Any = _MISSING) -> Any:
        order = super().pop(client_id, None)
        if order is None:
            if default is _MISSING:
                raise KeyError(client_id)
            return default
        self._unindex(client_id, order)
        return order

    def clear(self) -> None:
        super().clear()
        self._by_parent.clear()
        self._by_strategy.clear()
        self._by_book.clear()

    def _unindex(self, client_id: str, order: WorkingOrder) -> None:
        self._drop(self._by_parent, order.parent, client_id)
        self._drop(self._by_strategy, order.strategy, client_id)
        self._drop(self._by_book, order.book_key, client_id)

    @staticmethod
    def _drop(index: dict[Any, dict[str, WorkingOrder]], key: Any, client_id: str) -> None:
        group = index.get(key) if key is not None else None
        if group is not None:
            group.pop(client_id, None)
            if not group:
                del index[key]

    def _refused(self, *_args: Any, **_kwargs: Any) -> NoReturn:
        raise TypeError("WorkingOrders is written through [] and pop only, which keep its indexes")

    update = setdefault = popitem = __ior__ = _refused  # type: ignore[assignment]
