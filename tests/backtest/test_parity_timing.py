"""A parity divergence is checked against the recording: a live decision taken while a book was in flight
(published before it, recorded after it or just before it) is named as such, since the recording cannot say
which of the two books the live strategy had; a decision clear of every book is not."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import orjson

from wispd.backtest import parity
from wispd.data import segments, store

T0_MS = 1_796_296_109_000.0
TOPIC = b"md.sim.spot.BTC-USDT.book"


def _book(seq: int, published_ms: float, recorded_ms: float) -> segments.Record:
    env = {"v": 1, "kind": "book", "src": "ingestor.sim", "epoch": 1, "seq": seq, "ts_exch": published_ms,
           "ts_ingest": published_ms, "body": {"bids": [["60000", "1"]], "asks": [["60001", "1"]]}}
    return segments.Record(int(recorded_ms * 1000), segments.T_FRAME, TOPIC + b" " + orjson.dumps(env))


def _journal(path: Path, woke_ms: float | None, ts_ms: float) -> Path:
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE signals (strategy TEXT, signal_id TEXT, received_ms REAL, status TEXT, reason TEXT, "
               "payload BLOB)")
    payload = {"v": 1, "id": "s1", "strategy": "maker", "ts": ts_ms, **({"woke": woke_ms} if woke_ms else {})}
    db.execute("INSERT INTO signals VALUES ('maker', 's1', ?, 'accepted', '', ?)", (ts_ms + 1, orjson.dumps(payload)))
    db.commit()
    db.close()
    return path


ROW = {"strategy": "maker", "signal_id": "s1", "exchange": "sim", "market": "spot", "symbol": "BTC-USDT"}


def test_a_decision_taken_while_a_book_was_in_flight_is_named(tmp_path):
    data = tmp_path / "data"
    seg = store.segment_path(data, "sim", int(T0_MS * 1000), "rec")
    seg.parent.mkdir(parents=True)
    # book 1 long before; book 2 published 3 ms before the decision, recorded 4 ms after it; book 3 long after
    segments.write_segment(seg, [_book(1, T0_MS - 100, T0_MS - 99.5), _book(2, T0_MS - 3, T0_MS + 4),
                                 _book(3, T0_MS + 100, T0_MS + 100.5)])
    near = parity.in_flight(data, _journal(tmp_path / "a.sqlite", T0_MS, T0_MS + 16), ROW)
    assert near == {"seq": 2, "decided_ms": T0_MS, "published_ms_before": 3.0, "recorded_ms_after": 4.0}
    # the decision instant is the signal's woke, not its (later) build time: 16 ms later nothing is in flight
    assert parity.in_flight(data, _journal(tmp_path / "b.sqlite", T0_MS + 16, T0_MS + 16), ROW) is None
    # a signal from before woke existed: its ts is the decision instant
    assert parity.in_flight(data, _journal(tmp_path / "c.sqlite", None, T0_MS + 2), ROW)["seq"] == 2
    # recorded 2 ms before the decision: the live strategy may not have applied it yet (it lags the recorder)
    assert parity.in_flight(data, _journal(tmp_path / "d.sqlite", T0_MS + 6, T0_MS + 7), ROW)["seq"] == 2
    # another market's decision is not near this market's books
    assert parity.in_flight(data, _journal(tmp_path / "e.sqlite", T0_MS, T0_MS), {**ROW, "symbol": "ETH-USDT"}) is None
