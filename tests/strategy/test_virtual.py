"""The strategy side of a backtest's virtual time (wispd/strategy/virtual.py)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from wispd.strategy.virtual import UNTIL_SLACK_US


@settings(max_examples=2000, deadline=None)
@given(st.floats(min_value=1e8, max_value=1e10, allow_nan=False, allow_infinity=False))
def test_a_timer_read_the_replayers_way_is_within_the_slack_of_its_float(until_s: float):
    """``_run_ahead`` skips the exact (slow) reading of its timer when every frame it holds is more than the
    slack before ``until_s * 1e6``: that is only the same decision if the exact reading is never further
    from the float than the slack."""
    exact = int(round(until_s * 1000, 3) * 1000)
    assert abs(exact - until_s * 1e6) < UNTIL_SLACK_US
