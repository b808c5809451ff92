"""WorkingOrders: its indexes answer exactly what a scan of every working order would, after any writes."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wispd.execution.orders import WorkingOrder
from wispd.execution.working import WorkingOrders

IDS = [f"c{i}" for i in range(8)]
op = st.one_of(
    st.tuples(st.just("set"), st.sampled_from(IDS), st.sampled_from(["a", "b"]), st.sampled_from(["X", "Y"]),
              st.sampled_from([None, "c0", "c1"])),
    st.tuples(st.just("pop"), st.sampled_from(IDS)),
    st.tuples(st.just("del"), st.sampled_from(IDS)),
    st.tuples(st.just("clear")),
)


def order(cid: str, strategy: str, symbol: str, parent: str | None) -> WorkingOrder:
    return WorkingOrder(cid, strategy, "sim", "spot", f"{symbol}-USDT", "buy", Decimal(1), Decimal(1), parent=parent)


@settings(max_examples=300, deadline=None)
@given(st.lists(op, max_size=40))
def test_indexes_match_a_full_scan_after_any_writes(ops):
    orders, plain = WorkingOrders(), {}
    for step in ops:
        if step[0] == "set":
            o = order(step[1], step[2], step[3], step[4])
            orders[o.client_id] = plain[o.client_id] = o
        elif step[0] == "pop":
            assert orders.pop(step[1], None) is plain.pop(step[1], None)
        elif step[0] == "del":
            if step[1] in plain:
                del orders[step[1]], plain[step[1]]
            else:
                with pytest.raises(KeyError):
                    del orders[step[1]]
        else:
            orders.clear()
            plain.clear()
        assert dict(orders) == plain and list(orders) == list(plain)
        for parent in ("c0", "c1"):
            assert orders.legs(parent) == [o for o in plain.values() if o.parent == parent]
        for strategy in ("a", "b"):
            assert orders.of_strategy(strategy) == [o for o in plain.values() if o.strategy == strategy]
        for symbol in ("X", "Y"):
            key = ("sim", "spot", f"{symbol}-USDT")
            assert orders.on_book(key) == [o for o in plain.values() if o.book_key == key]
            assert orders.has_book(key) == any(o.book_key == key for o in plain.values())
        # nothing is kept for orders that are gone
        assert all(orders._by_strategy.values()) and all(orders._by_book.values()) and all(orders._by_parent.values())


def test_writes_that_would_skip_the_indexes_are_refused():
    orders = WorkingOrders([order("c1", "a", "X", None)])
    with pytest.raises(KeyError):
        orders.pop("nope")
    for write in (lambda: orders.update({}), lambda: orders.setdefault("c2", None), orders.popitem,
                  lambda: orders.__ior__({})):
        with pytest.raises(TypeError):
            write()
    assert list(orders) == ["c1"] and orders.of_strategy("a")[0].client_id == "c1"
