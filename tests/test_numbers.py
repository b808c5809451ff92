"""The one number formatter: the docstring's examples, and ``shown`` (journal text at n places, remembered)
giving exactly what parsing and formatting each time gives, for any number, any places, asked any number
of times."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from wispd import numbers


def test_the_documented_examples():
    assert numbers.qty(Decimal("0.0100000"), step=Decimal("0.0001")) == "0.01"
    assert numbers.price(Decimal("60000.05000"), tick=Decimal("0.01")) == "60000.05"
    assert numbers.money(Decimal("-7.27229599999999999999999992"), 5) == "-7.2723"
    assert numbers.shown("-7.27229599999999999999999992", 5) == "-7.2723"
    assert numbers.shown(None, 2) is None and numbers.shown("", 2) is None and numbers.shown("x", 2) is None


@settings(max_examples=400, deadline=None, derandomize=True)
@given(value=st.decimals(allow_nan=False, allow_infinity=False, places=None, min_value=Decimal("-1e18"),
                         max_value=Decimal("1e18")) | st.sampled_from([Decimal("0.001"), Decimal("60001"),
                                                                        Decimal("-0"), Decimal("1E+3")]),
       n=st.integers(0, 12))
def test_shown_is_the_formatter_applied_to_the_parsed_text(value, n):
    text = str(value)
    want = numbers.money(Decimal(text), n)
    assert numbers.shown(text, n) == want
    assert numbers.shown(text, n) == want  # remembered: the same answer again


def test_the_memory_is_bounded():
    for i in range(numbers._SHOWN_MAX + 10):
        numbers.shown(f"{i}.5", 1)
    assert len(numbers._SHOWN) <= numbers._SHOWN_MAX
    assert numbers.shown("3.25", 1) == "3.2"  # half to even, as the formatter
