"""``Levels``, the lazily converted side of a book both planes read: whatever order it is read in (an index,
iteration, its length, a slice), and however often its strings were seen before (they are remembered), it
is exactly the eager conversion: every [price, size] pair of bounded positive decimals, in order, the rest
skipped."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from wispd import levels as lv
from wispd.levels import Level, Levels
from wispd.protocol import to_decimal

wire = st.one_of(st.sampled_from(["60000.1", "0.5", "0", "-1", "1e-31", "1E+31", "nan", "inf", "", "x", "1e3",
                                  "00.10", "0.0000001"]),
                 st.decimals(allow_nan=False, allow_infinity=False, places=4).map(str),
                 st.integers(-5, 10**6), st.floats(allow_nan=True), st.none(), st.booleans())
level = st.one_of(st.tuples(wire, wire).map(list), st.tuples(wire, wire), st.lists(wire, max_size=3), wire)
reads = st.lists(st.one_of(st.integers(0, 12), st.just("len"), st.just("iter"), st.just("bool"),
                           st.just("slice")), max_size=8)


def eager(raw: list) -> list[Level]:
    out = []
    for item in raw:
        if type(item) in (list, tuple) and len(item) >= 2:
            px, sz = to_decimal(item[0]), to_decimal(item[1])
            if px is not None and sz is not None and px > 0 and sz > 0:
                out.append(Level(px, sz))
    return out


@settings(max_examples=300, deadline=None, derandomize=True)
@given(raw=st.lists(level, max_size=12), order=reads, forget=st.booleans())
def test_a_lazy_side_reads_as_its_eager_conversion_in_any_order(raw, order, forget):
    if forget:
        lv._POSITIVE.clear()
    want = eager(raw)
    side = Levels(raw)
    for read in order:
        if read == "len":
            assert len(side) == len(want)
        elif read == "iter":
            assert list(side) == want
        elif read == "bool":
            assert bool(side) == bool(want)
        elif read == "slice":
            assert side[1:3] == tuple(want[1:3])
        elif read < len(want):
            got = side[read]
            assert got == want[read] and type(got.price) is Decimal and str(got.price) == str(want[read].price)
        else:
            try:
                side[read]
            except IndexError:
                pass
            else:
                raise AssertionError(f"level {read} of {len(want)}")
    assert tuple(side) == tuple(want) and len(side) == len(want)
