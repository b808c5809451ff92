"""Fuzz every socket a wispd process listens on with generated frames (valid, near-valid and garbage) and
check, after every batch, that every child is still up with the same pid and that a well-formed signal
sent between the bad ones gets its report.

CI runs a short, seeded form (``FUZZ_EXAMPLES``, derandomized); ``pytest -m slow`` runs the long one.
"""

from __future__ import annotations

import os
import socket
import time
import uuid

import orjson
import pytest
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.execution.test_executor_e2e import Trader, order_signal
from wispd import protocol

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
SLOW = settings(SETTINGS, max_examples=EXAMPLES * 20)

BODY = """
[exchanges.sim]
driver = "sim"
pairs = ["BTC-USDT"]
[exchanges.sim.sim]
update_hz = 20.0
prices = { BTC-USDT = 60000.0 }
[executors.paper]
exchanges = ["sim"]
[executors.paper.paper]
balances = { USDT = "10000000", BTC = "100" }
latency_ms = 0.0
[executors.paper.risk]
max_order_notional = "1000000"
max_open_orders = 1000
strategy_budget = "100000000"
max_position_notional = "100000000"
[strategies.tester]
module = "tests.sample_strategies"
class = "Idle"
[strategies.other]
module = "tests.sample_strategies"
class = "Idle"
"""

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**63, 2**63 - 1) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30) | st.sampled_from(["1e30", "1E+100000", "-0", "0.0000001", "NaN", "inf", "60000"]),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12)


@st.composite
def near_valid_signal(draw) -> bytes:
    sig = order_signal(price=draw(st.sampled_from([None, "59000", "60000.1"])),
                       order_type="market")
    if sig["actions"][0]["price"] is not None:
        sig["actions"][0]["order_type"] = "limit"
    target = draw(st.sampled_from(["signal", "action"]))
    obj = sig if target == "signal" else sig["actions"][0]
    for _ in range(draw(st.integers(1, 3))):
        key = draw(st.sampled_from(sorted(obj) + ["extra", "type", "qty", "price", "side"]))
        if draw(st.booleans()) and key in obj:
            del obj[key]
        else:
            obj[key] = draw(json_values)
    if draw(st.booleans()) and isinstance(sig.get("actions"), list):
        sig["actions"] = sig["actions"] * draw(st.integers(0, 25))
    return orjson.dumps(sig, option=orjson.OPT_NON_STR_KEYS)


garbage = st.binary(max_size=300) | st.sampled_from([b"", b"{}", b"[]", b"null", b'{"v": 1}', b"\xff" * 50])
frames = st.one_of(near_valid_signal(), garbage, json_values.map(lambda v: orjson.dumps(v)))


@pytest.fixture
def fuzz_daemon(daemon):
    """A daemon, a fuzzing strategy ("tester": its bad signals may get it throttled) and a well-behaved
    neighbour ("other") whose signals must go on being filled."""
    d = daemon(BODY)
    for name in ("tester", "other"):
        assert d.ctl("stop", name).returncode == 0  # the Traders play them
    fuzzer, neighbour = Trader(d, strategy="tester"), Trader(d, strategy="other")
    fuzz_daemon.fuzzer = fuzzer
    yield d, neighbour
    fuzzer.close()
    neighbour.close()


def pids(d) -> dict[str, int]:
    return {c["name"]: c["pid"] for c in d.status()["children"] if c["state"] == "RUNNING"}


def still_trading(d, t, before: dict[str, int]) -> None:
    sig = {**order_signal(qty="0.001"), "strategy": "other"}
    t.send(sig)
    report = t.reports(sig["id"], timeout=15)[-1]
    assert report["status"] == "filled", report
    assert pids(d) == before


def _signals_case(fuzz_daemon, batch):
    d, t = fuzz_daemon
    before = pids(d)
    fuzzer = globals()["fuzz_daemon"].fuzzer
    for frame in batch:
        if len(frame) < 60_000:
            fuzzer.send(frame)
    fuzzer.push.send_multipart([b"{}", b"second"])
    still_trading(d, t, before)


@SETTINGS
@given(batch=st.lists(frames, min_size=1, max_size=15))
def test_fuzz_signal_socket(fuzz_daemon, batch):
    _signals_case(fuzz_daemon, batch)


@pytest.mark.slow
@SLOW
@given(batch=st.lists(frames, min_size=1, max_size=15))
def test_fuzz_signal_socket_long(fuzz_daemon, batch):
    _signals_case(fuzz_daemon, batch)


@SETTINGS
@given(batch=st.lists(st.binary(max_size=200), min_size=1, max_size=10), authenticated=st.booleans())
def test_fuzz_subscription_sockets(fuzz_daemon, batch, authenticated):
    """Raw subscription frames (XSUB) into the executor's reports XPUB and the ingestor's market-data XPUB."""
    d, t = fuzz_daemon
    before = pids(d)
    ctx = zmq.Context.instance()
    for endpoint in ("exec-paper.pub", "md-sim.pub"):
        xsub = ctx.socket(zmq.XSUB)
        xsub.setsockopt(zmq.LINGER, 0)
        if authenticated and endpoint.startswith("exec"):
            d.as_strategy(xsub, "tester")
        xsub.connect(f"ipc://{d.tmp / 'run' / endpoint}")
        time.sleep(0.05)
        for frame in batch:
            try:
                xsub.send(frame, zmq.NOBLOCK)
            except zmq.Again:
                pass
        time.sleep(0.05)
        xsub.close()
    still_trading(d, t, before)


@SETTINGS
@given(batch=st.lists(st.lists(st.binary(max_size=100) | json_values.map(orjson.dumps), min_size=1, max_size=3),
                      min_size=1, max_size=8),
       ops=st.lists(st.fixed_dictionaries({"id": st.text(max_size=8), "op": st.sampled_from(
           ["snapshot", "history", "markets", "watch", "unwatch", "teleport"]), "topic": json_values,
           "topics": json_values, "limit": json_values, "symbols": json_values, "wait": json_values}), max_size=4))
def test_fuzz_snapshot_socket(fuzz_daemon, batch, ops):
    d, t = fuzz_daemon
    before = pids(d)
    dealer = zmq.Context.instance().socket(zmq.DEALER)
    dealer.setsockopt(zmq.LINGER, 0)
    dealer.connect(f"ipc://{d.tmp / 'run' / 'md-sim.snap'}")
    for parts in batch:
        dealer.send_multipart(parts)
    for op in ops:
        dealer.send(orjson.dumps(op, option=orjson.OPT_NON_STR_KEYS))
    # a well-formed request is still answered
    rid = uuid.uuid4().hex
    dealer.send(orjson.dumps({"id": rid, "op": "markets", "symbols": [["spot", "BTC-USDT"]]}))
    deadline = time.monotonic() + 10
    answered = False
    while time.monotonic() < deadline and not answered:
        if dealer.poll(200):
            # (a multipart request is answered REQ-style: its leading frames come back as an envelope)
            reply = protocol.loads_dict(dealer.recv_multipart()[-1]) or {}
            answered = reply.get("id") == rid and reply.get("ok") is True
    dealer.close()
    assert answered
    still_trading(d, t, before)


@SETTINGS
@given(batch=st.lists(st.tuples(st.binary(min_size=1, max_size=40), st.binary(max_size=200) |
                                json_values.map(orjson.dumps)), min_size=1, max_size=10))
def test_fuzz_supervisor_link(fuzz_daemon, batch):
    d, t = fuzz_daemon
    before = pids(d)
    for identity, payload in batch:
        sock = zmq.Context.instance().socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.IDENTITY, identity.replace(b"\x00", b"x") or b"x")
        sock.connect(f"ipc://{d.tmp / 'run' / 'link.sock'}")
        sock.send(payload)
        sock.close()
    still_trading(d, t, before)


READ_ONLY_VERBS = ["status", "health", "positions", "orders", "logs", "teleport"]


@SETTINGS
@given(batch=st.lists(st.binary(max_size=200) | st.fixed_dictionaries(
    {"id": st.text(max_size=8), "verb": st.sampled_from(READ_ONLY_VERBS), "args": json_values}).map(
    lambda v: orjson.dumps(v, option=orjson.OPT_NON_STR_KEYS)), min_size=1, max_size=10))
def test_fuzz_control_socket(fuzz_daemon, batch):
    d, t = fuzz_daemon
    before = pids(d)
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(d.endpoint)
    for payload in batch:
        sock.send(payload)
    time.sleep(0.1)
    sock.close()
    assert d.status()["daemon"]["pid"] == d.proc.pid
    still_trading(d, t, before)


@SETTINGS
@given(requests=st.lists(st.binary(max_size=400) | st.sampled_from(
    [b"GET /metrics HTTP/1.1\r\n\r\n", b"GET /health HTTP/1.0\r\nAuthorization: Basic !!!\r\n\r\n",
     b"POST / HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n", b"GET " + b"/" * 9000 + b" HTTP/1.1\r\n\r\n"]),
    min_size=1, max_size=8))
def test_fuzz_http_endpoint(fuzz_daemon, requests):
    d, t = fuzz_daemon
    before = pids(d)
    url = d.status()["daemon"]["metrics_url"]
    host, port = url.split("//")[1].split("/")[0].split(":")
    for raw in requests:
        s = socket.create_connection((host, int(port)), timeout=5)
        s.sendall(raw + b"\r\n\r\n")
        s.settimeout(2)
        try:
            s.recv(256)
        except OSError:
            pass
        s.close()
    import urllib.request

    assert b"wispd_up" in urllib.request.urlopen(url, timeout=5).read()
    still_trading(d, t, before)
