"""A child's series across restarts, as a scrape reads them (``ChildSeries``): counters and histograms add
up over every incarnation (never going backwards), gauges are the running process's only, and what a scrape
reads is remembered per snapshot and never outlives the next snapshot or the process's end."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from wispd.metrics.aggregate import ChildSeries
from wispd.metrics.registry import labels_key

BOUNDS = [0.001, 0.01, 0.1]
labels = st.sampled_from([{}, {"strategy": "a"}, {"strategy": "b", "exchange": "sim"}])
snapshot = st.fixed_dictionaries({
    "c": st.lists(st.tuples(st.just("wispd_signals_emitted_total"), labels, st.integers(0, 50)).map(list), max_size=3),
    "g": st.lists(st.tuples(st.just("wispd_open_orders"), labels, st.integers(0, 9)).map(list), max_size=3),
    "h": st.lists(st.tuples(st.just("wispd_md_lag_seconds"), labels, st.just(BOUNDS),
                            st.lists(st.integers(0, 5), min_size=4, max_size=4), st.just(0.5), st.integers(0, 20))
                  .map(list), max_size=2),
})
ops = st.lists(st.one_of(snapshot.map(lambda s: ("update", s)), st.just(("fold", None)), st.just(("read", None))),
               max_size=25)


def _last(entries: list) -> dict:
    """A snapshot lists a series once; when a generated one lists it twice, the later one counts (as a dict)."""
    return {labels_key(e[1]): e for e in entries}


def _add(table: dict, e: list) -> None:
    """One histogram entry into a model table of [bucket counts, count]."""
    k = ("wispd_md_lag_seconds", labels_key(e[1]))
    have = table.get(k)
    table[k] = [list(e[3]), e[5]] if have is None else [[a + b for a, b in zip(have[0], e[3], strict=True)],
                                                        have[1] + e[5]]


@settings(max_examples=200, deadline=None, derandomize=True)
@given(steps=ops)
def test_series_add_up_across_restarts_and_reads_are_never_stale(steps):
    s = ChildSeries()
    folded_c: dict = {}
    folded_h: dict = {}
    current: dict = {}
    for op, snap in steps:
        if op == "update":
            s.update(snap)
            current = snap
        elif op == "fold":
            s.fold()
            for e in current.get("c", []):
                k = ("wispd_signals_emitted_total", labels_key(e[1]))
                folded_c[k] = folded_c.get(k, 0.0) + e[2]
            for e in current.get("h", []):
                _add(folded_h, e)
            current = {}
        for _ in range(2):  # read twice: the remembered answer is the fresh one
            want_c = dict(folded_c)
            for e in current.get("c", []):
                k = ("wispd_signals_emitted_total", labels_key(e[1]))
                want_c[k] = want_c.get(k, 0.0) + e[2]
            assert s.counters() == want_c
            assert s.gauges() == {("wispd_open_orders", k): float(e[2]) for k, e in _last(current.get("g", [])).items()}
            want_h = {k: list(v) for k, v in folded_h.items()}
            for e in current.get("h", []):
                _add(want_h, e)
            assert {k: [v[1], v[3]] for k, v in s.histograms().items()} == want_h



_value = st.one_of(st.none(), st.booleans(), st.integers(-2**63, 2**63 - 1), st.floats(), st.text(max_size=5),
                   st.text(min_size=199, max_size=202), st.lists(st.integers(), max_size=2))
_raw_labels = st.one_of(st.dictionaries(st.sampled_from(["strategy", "exchange", "channel", "account", "component",
                                                         "other"]), _value, max_size=4), _value)


@settings(max_examples=400, deadline=None, derandomize=True)
@given(name=st.sampled_from(["wispd_signals_emitted_total", "wispd_md_lag_seconds", "wispd_pnl_quote",
                             "wispd_md_received_total"]), raw=_raw_labels, value=_value)
def test_cleaning_labels_and_numbers_agrees_with_the_plain_conversion(name, raw, value):
    """The snapshot cleaner's fast paths (a short text label taken as it is, plain ints and floats checked
    first) against the plain forms: every label converted to text and cut at 200, every number checked for
    being a finite non-bool int or float."""
    import math

    from wispd.metrics import aggregate
    from wispd.metrics.catalogue import CATALOGUE

    plain = {k: str(raw[k])[:200] for k in CATALOGUE[name].labels if k in raw} if isinstance(raw, dict) else None
    assert aggregate._labels(CATALOGUE[name].labels, raw) == plain
    assert aggregate._num(value) == (isinstance(value, int | float) and not isinstance(value, bool)
                                     and math.isfinite(value))
