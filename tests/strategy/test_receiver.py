"""The strategy receiver's market-data path against its references.

``Receiver.ingest`` inlines the envelope checks of ``protocol.valid_envelope`` and the in-order case of
``MarketCache.sequence`` (they run once per message in every strategy process). These properties hold the
inlined code to the reference functions: any frame is dropped exactly when the reference parser refuses it,
and any order of sequence numbers and epochs leaves the same gaps, resyncs, last sequence and kline
re-fetches as the reference tracker.
"""

from __future__ import annotations

from contextlib import closing
from decimal import Decimal
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from wispd import protocol
from wispd.logs import get_logger
from wispd.strategy.cache import MarketCache
from wispd.strategy.receiver import Receiver

TOPICS = [b"md.sim.spot.BTC-USDT.trades", b"md.sim.spot.BTC-USDT.book", b"md.sim.spot.ETH-USDT.kline.1m",
          b"md.sim.perp.BTC-USDT.ticker"]
KIND_OF = {b"trades": "trades", b"book": "book", b"1m": "kline", b"ticker": "ticker"}


class RecordingReceiver(Receiver):
    """The receiver's ingest path without its sockets: history re-fetches are recorded, not sent."""

    def __init__(self) -> None:
        super().__init__("t", {}, None, MarketCache(), get_logger("test"))
        self.refetched: list[str] = []

    def _history(self, exchange: str, topic: str, limit: int, done: Any) -> None:  # noqa: ARG002
        self.refetched.append(topic)


def body_for(kind: str, i: int) -> dict[str, Any]:
    if kind == "trades":
        return {"trades": [{"id": str(i), "px": "100.5", "qty": "0.1", "side": "buy", "ts": 1.0}]}
    if kind == "book":
        return {"bids": [["99", "1"]], "asks": [["101", "2"]]}
    if kind == "kline":
        return {"t": 60_000 * i, "o": "1", "h": "2", "l": "0.5", "c": "1.5", "v": "10", "closed": True}
    return {"bid": "99", "ask": "101", "last": "100", "volume": "5"}


scalars = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.floats(allow_nan=False, width=32),
                    st.text(max_size=4), st.sampled_from(["book", "trades", "kline", "stale", "ticker", "funding"]))
fields = st.sampled_from(["v", "kind", "epoch", "seq", "body", "src", "ts_ingest"])


@st.composite
def frames(draw: st.DrawFn) -> bytes:
    topic = draw(st.sampled_from([*TOPICS, b"md.", b"md.sim.spot.bad pair.book", b"xx.sim.spot.BTC-USDT.book"]))
    kind = KIND_OF.get(topic.rsplit(b".", 1)[-1], "book")
    env: Any = {"v": protocol.SCHEMA_VERSION, "kind": kind, "src": "ingestor.sim", "epoch": 7,
                "seq": draw(st.integers(1, 5)), "ts_exch": 1.0, "ts_ingest": 2.0, "body": body_for(kind, 1)}
    for _ in range(draw(st.integers(0, 2))):
        field = draw(fields)
        if draw(st.booleans()):
            env.pop(field, None)
        else:
            env[field] = draw(st.one_of(scalars, st.just({}), st.just([])))
    shape = draw(st.sampled_from(["dict", "dict", "dict", "list", "scalar", "garbage"]))
    if shape == "list":
        payload = orjson.dumps([env])
    elif shape == "scalar":
        payload = orjson.dumps(draw(scalars))
    elif shape == "garbage":
        payload = draw(st.binary(max_size=12))
    else:
        payload = orjson.dumps(env)
    sep = draw(st.sampled_from([b" ", b" ", b"", b"  "]))
    return topic + sep + payload


@settings(max_examples=400, deadline=None)
@given(st.lists(frames(), min_size=1, max_size=12))
def test_a_frame_is_dropped_exactly_when_the_reference_parser_refuses_it(batch: list[bytes]) -> None:
    with closing(RecordingReceiver()) as r:
        dropped = 0
        for frame in batch:
            parsed = protocol.parse_md_frame(frame)
            if parsed is None or protocol.parse_topic(parsed[0]) is None:
                dropped += 1
            r.ingest(frame, 5.0)
            assert r.cache.dropped == dropped, frame
        assert sum(r.cache.received.values()) == len(batch) - dropped


steps = st.lists(st.tuples(st.sampled_from(TOPICS), st.integers(1, 3), st.integers(0, 6),
                           st.sampled_from(["data", "data", "data", "stale"])), min_size=1, max_size=40)


@settings(max_examples=300, deadline=None)
@given(steps)
def test_sequence_tracking_matches_the_reference_for_any_order_of_seqs_and_epochs(plan: list) -> None:
    with closing(RecordingReceiver()) as r:
        ref = MarketCache()
        refetched: list[str] = []
        seq_of: dict[tuple[bytes, int], int] = {}
        for topic_bytes, epoch, jump, what in plan:
            seq = seq_of.get((topic_bytes, epoch), 0) + (jump or 1) - (jump == 6) * 3  # forward, skips, repeats
            seq_of[(topic_bytes, epoch)] = seq
            topic = protocol.parse_topic(topic_bytes)
            assert topic is not None
            kind = "stale" if what == "stale" else KIND_OF[topic_bytes.rsplit(b".", 1)[-1]]
            body = {"stale": True} if kind == "stale" else body_for(kind, seq)
            frame = protocol.md_frame(topic_bytes, kind, "ingestor.sim", epoch, seq, 1.0, body)
            verdict = ref.sequence(topic_bytes, topic.channel, epoch, seq)
            if verdict != "ok" and topic.interval is not None and kind != "stale":
                refetched.append(topic_bytes.decode())
            r.ingest(frame, 5.0)
            assert r.cache.last_seq == ref.last_seq
            assert r.cache.gaps == ref.gaps and r.cache.resyncs == ref.resyncs
            assert r.refetched == refetched
        assert r.cache.dropped == 0


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-2, 10**6), st.floats(allow_nan=False),
              st.sampled_from(["", "1", "0.5", "1E+100000", "nan", "buy", "open", "filled", "sim", "spot", "BTC-USDT"])),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(
        ["client_id", "signal_id", "qty", "price", "status", "filled", "avg_price", "exchange", "market", "symbol",
         "side", "action", "reason", "orders", "positions", "balances", "pnl", "seq", "halted", "strategy_halted",
         "order", "avg_price", "realized_pnl", "x"]), inner, max_size=5)),
    max_leaves=12)
report_bodies = st.fixed_dictionaries({}, optional={
    "signal_id": json_values, "status": json_values, "reason": json_values, "action": json_values,
    "order": st.one_of(json_values, st.fixed_dictionaries({"client_id": json_values}, optional={
        "qty": json_values, "price": json_values, "filled": json_values, "status": json_values})),
    "orders": st.lists(st.one_of(json_values, st.fixed_dictionaries({"client_id": json_values})), max_size=3),
    "positions": st.one_of(json_values, st.lists(json_values, max_size=3)),
    "balances": json_values, "available": json_values, "reserved": json_values, "allocation": json_values,
    "pnl": json_values, "seq": json_values, "halted": json_values, "strategy_halted": json_values})


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["report", "state", "other", None]), st.one_of(report_bodies, json_values)),
                min_size=1, max_size=6))
def test_any_report_stream_frame_is_applied_or_counted_and_never_raises(msgs: list) -> None:
    """The executor's report stream is trusted, but a malformed frame must cost a count, not the receiver
    thread (its death stops the strategy)."""
    with closing(RecordingReceiver()) as r:
        for kind, body in msgs:
            msg = {"kind": kind, "body": body} if kind is not None else body
            r.report_frame(b"exec.t " + orjson.dumps(msg))
            for cid, o in r.cache.orders.items():  # what the strategy reads back is typed
                assert isinstance(cid, str) and isinstance(o.client_id, str)
            assert all(isinstance(v, Decimal) for v in r.cache.balances.values())
