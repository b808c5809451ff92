"""The wire protocol: topics, envelopes, strict decoding that never raises."""

from __future__ import annotations

from decimal import Decimal

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wispd import protocol as p


def test_topics_parse_and_encode():
    t = p.parse_topic(b"md.sim.spot.BTC-USDT.kline.15m")
    assert t == p.Topic("sim", "spot", "BTC-USDT", "kline.15m") and t.interval == "15m"
    assert t.encode() == b"md.sim.spot.BTC-USDT.kline.15m"
    assert p.parse_topic("md.binance.perp.ETH-USDC.funding").channel == "funding"


@pytest.mark.parametrize("bad", [b"md.sim.spot.BTC-USDT", b"md.sim.swap.BTC-USDT.book", b"md.sim.spot.btc-usdt.book",
                                 b"md.sim.spot.BTC-USDT.kline.0m", b"md.Sim.spot.BTC-USDT.book", b"x.sim.spot.A-B.book",
                                 b"md.sim.spot.BTC-USDT.candles", b"\xff\xfe"])
def test_bad_topics(bad):
    assert p.parse_topic(bad) is None


def test_subscriptions():
    assert p.parse_subscription(b"md.sim.spot.BTC-USDT.") == ("sim", "spot", "BTC-USDT", None)
    assert p.parse_subscription(b"md.sim.perp.BTC-USDC.kline.1h ") == ("sim", "perp", "BTC-USDC", "kline.1h")
    assert p.parse_subscription(b"") is None and p.parse_subscription(b"md.sim.") is None


def test_frame_round_trip():
    frame = p.md_frame(b"md.sim.spot.BTC-USDT.book", "book", "ingestor.sim", 7, 42, 1.5e12,
                       {"bids": [["1", "2"]], "asks": []})
    topic, env = p.parse_md_frame(frame)
    assert topic == b"md.sim.spot.BTC-USDT.book"
    assert env["seq"] == 42 and env["epoch"] == 7 and env["v"] == p.SCHEMA_VERSION and env["ts_ingest"] > 0


@pytest.mark.parametrize("frame", [
    b"", b"garbage", b"md.sim.spot.BTC-USDT.book", b"md.sim.spot.BTC-USDT.book {not json",
    b"md.sim.spot.BTC-USDT.book []", b"other.topic " + orjson.dumps({"v": 1}),
    b"md.x " + orjson.dumps({"v": 2, "kind": "book", "epoch": 1, "seq": 1, "body": {}}),
    b"md.x " + orjson.dumps({"v": 1, "kind": "bogus", "epoch": 1, "seq": 1, "body": {}}),
    b"md.x " + orjson.dumps({"v": 1, "kind": "book", "epoch": 1, "seq": "1", "body": {}}),
    b"md.x " + orjson.dumps({"v": 1, "kind": "book", "epoch": 1, "seq": 1, "body": []}),
])
def test_malformed_frames_are_none_never_raise(frame):
    assert p.parse_md_frame(frame) is None


def test_decimals_on_the_wire():
    assert p.dec_str(Decimal("50000.1000")) == "50000.1" and p.dec_str("0.00000100") == "0.000001"
    assert p.dec_str(Decimal("1E+3")) == "1000" and p.dec_str(0) == "0"
    assert p.to_decimal("1.5") == Decimal("1.5") and p.to_decimal(3) == Decimal(3)
    for bad in (1.5, "nan", "inf", "abc", None, True, [1]):
        assert p.to_decimal(bad) is None


@settings(max_examples=400, deadline=None, derandomize=True)
@given(st.lists(st.one_of(st.text(max_size=70), st.from_regex(r"-?[0-9]{0,45}(\.[0-9]{0,45})?([eE][+-]?[0-9]{1,6})?",
                                                               fullmatch=True)), max_size=30))
def test_a_remembered_decimal_is_the_verdict_a_fresh_parse_gives(values):
    """to_decimal remembers wire strings: asked again (or after the memory starts afresh), the answer is the
    one parsing that string gives, valid or refused."""
    for value in values + values:
        got, fresh = p.to_decimal(value), p._parse_decimal(value) if len(value) <= 64 else None
        assert (got is None and fresh is None) or (got == fresh and str(got) == str(fresh)), value
    p._DECIMALS.clear()
    assert all((p.to_decimal(v) is None) == (p._parse_decimal(v) is None or len(v) > 64) for v in values)


def test_control_and_link_messages():
    rid, frame = p.control_request("status", {"name": "x"})
    assert p.parse_control_request(frame) == {"id": rid, "verb": "status", "args": {"name": "x"}}
    assert p.parse_control_request(b"{}") is None and p.parse_control_request(b"\x00") is None
    assert p.parse_link_identity(p.link_identity("ingestor.sim", 3, "ab12")) == ("ingestor.sim", 3, "ab12")
    assert p.parse_link_identity(b"ingestor.sim#3") is None and p.parse_link_identity(b"\xff#1#x") is None
    assert p.parse_link_message(b'{"t": 5}') is None


def test_terminal_log_lines_are_readable_and_still_mask_secrets(monkeypatch, capsys):
    from wispd.logs import setup_logging

    monkeypatch.setenv("WISPD_LOG_FORMAT", "text")
    log = setup_logging("demo", None)
    log.info("child_state", name="rsi", new="RUNNING", api_key="sk-live-123")
    err = capsys.readouterr().err
    assert "INFO" in err and "child_state name=rsi new=RUNNING" in err and "sk-live-123" not in err
    monkeypatch.setenv("WISPD_LOG_FORMAT", "json")
    log = setup_logging("demo", None)
    log.info("x", secret="s3")
    line = capsys.readouterr().err.strip()
    assert orjson.loads(line)["secret"] == "***"
