"""No input from a strategy takes the executor down: huge exponents, multipart frames, oversized frames,
unknown fields and floods of bad signals are refused with a reason (or dropped and counted), and the other
strategy on the account keeps trading; a strategy can only act, and read, as itself."""

from __future__ import annotations

import time
import uuid

import orjson
import zmq

from tests.execution.test_executor_e2e import Trader, order_signal
from tests.helpers import wait_for

BODY = """
[exchanges.sim]
driver = "sim"
pairs = ["BTC-USDT"]
[exchanges.sim.sim]
seed = 5
update_hz = 20.0
prices = { BTC-USDT = 60000.0 }
[executors.paper]
exchanges = ["sim"]
[executors.paper.paper]
balances = { USDT = "1000000", BTC = "1" }
latency_ms = 0.0
[executors.paper.risk]
max_order_notional = "100000"
price_collar_pct = 2.0
[strategies.tester]
module = "tests.sample_strategies"
class = "Idle"
[strategies.other]
module = "tests.sample_strategies"
class = "Idle"
"""


def _as(sig: dict, strategy: str) -> dict:
    return {**sig, "strategy": strategy}


def start(daemon):
    d = daemon(BODY)
    for name in ("tester", "other"):
        assert d.ctl("stop", name).returncode == 0  # the Traders play them (their only report readers)
    return d, Trader(d, strategy="tester"), Trader(d, strategy="other")


def test_huge_numbers_unknown_fields_and_odd_frames_are_refused_and_the_neighbour_trades_on(daemon):
    d, bad, good = start(daemon)
    journal = d.tmp / "state" / "journal-paper.sqlite"
    try:
        pid = d.child("executor.paper")["pid"]
        cases = {
            "qty 1e30": order_signal(qty="1e30"),
            "qty 1E+100000": order_signal(qty="1E+100000"),
            "price 1e30": order_signal(price="1e30", order_type="limit"),
            "price 1E-100000": order_signal(price="1E-100000", order_type="limit"),
            "qty with 60 digits": order_signal(qty="0." + "1" * 60),
            "unknown field": order_signal(colour="blue"),
            "a bool as a flag": order_signal(post_only="yes"),
            "ts infinity-ish": {**order_signal(), "ts": 1e308},
        }
        ids = {}
        for what, sig in cases.items():
            ids[what] = sig["id"]
            bad.send(sig)
        bad.push.send_multipart([orjson.dumps(order_signal()), b"second part"])  # a signal is one frame
        neighbour = [order_signal() for _ in range(30)]
        for sig in neighbour:
            good.send(_as(sig, "other"))
        for what, sid in ids.items():
            (report,) = bad.reports(sid)
            assert report["status"] == "rejected", (what, report)
            assert report["code"] in ("bad_schema", "bad_quantity", "bad_price", "unknown_field", "bad_timestamp"), \
                (what, report)
        for sig in neighbour:
            assert good.reports(sig["id"])[-1]["status"] == "filled"
        # an oversized frame (20 MB) drops the sender's connection at the socket; nothing is journaled
        size_before = journal.stat().st_size
        bad.send(orjson.dumps({**order_signal(), "padding": "x" * 20_000_000}))
        after = order_signal()
        good.send(_as(after, "other"))
        assert good.reports(after["id"])[-1]["status"] == "filled"
        assert journal.stat().st_size < size_before + 2_000_000
        ex = d.child("executor.paper")
        assert ex["pid"] == pid and ex["state"] == "RUNNING" and ex["restarts"] == 0
    finally:
        bad.close()
        good.close()


def test_a_strategy_flooding_bad_signals_is_throttled_not_the_account(daemon):
    d, bad, good = start(daemon)
    try:
        flood = [order_signal(side="hodl") for _ in range(400)]
        for sig in flood:
            bad.send(sig)
        codes = [bad.reports(sig["id"], timeout=20)[-1]["code"] for sig in flood]
        assert codes[0] == "bad_schema" and "throttled" in codes  # refused at once, nothing journaled
        ok = order_signal()
        good.send(_as(ok, "other"))
        assert good.reports(ok["id"])[-1]["status"] == "filled"
        time.sleep(1.5)  # the bucket refills: the strategy is heard again
        retry = order_signal()
        bad.send(retry)
        assert bad.reports(retry["id"])[-1]["status"] == "filled"
    finally:
        bad.close()
        good.close()


def test_a_local_process_cannot_place_cancel_or_read_as_another_strategy(daemon):
    d, tester, other = start(daemon)
    ctx = zmq.Context.instance()
    pull = f"ipc://{d.tmp / 'run' / 'exec-paper.pull'}"
    pub = f"ipc://{d.tmp / 'run' / 'exec-paper.pub'}"
    try:
        resting = _as(order_signal(price="59000", order_type="limit"), "other")
        other.send(resting)
        (accepted,) = other.reports(resting["id"])
        cid = accepted["order"]["client_id"]

        # 1. no credentials, or the right name with a made-up password: the handshake fails, nothing arrives
        spies = []
        for user, password in ((None, None), (b"other", b"guess"), (b"tester", b"0" * 40)):
            push = ctx.socket(zmq.PUSH)
            push.setsockopt(zmq.LINGER, 0)
            sub = ctx.socket(zmq.SUB)
            sub.setsockopt(zmq.LINGER, 0)
            if user:
                push.plain_username = sub.plain_username = user
                push.plain_password = sub.plain_password = password
            sub.setsockopt(zmq.SUBSCRIBE, b"exec.")
            sub.connect(pub)
            push.connect(pull)
            push.send(orjson.dumps({"v": 1, "id": uuid.uuid4().hex, "strategy": "other", "ts": time.time() * 1000,
                                    "ttl_ms": 5000, "actions": [{"type": "cancel", "client_id": cid}]}),
                      zmq.NOBLOCK) if push.poll(0, zmq.POLLOUT) else None
            spies.append((push, sub))
        # 2. a genuine strategy cannot speak for another, cancel another's order, or read its reports
        peek = d.as_strategy(ctx.socket(zmq.SUB), "tester")
        peek.setsockopt(zmq.LINGER, 0)
        peek.setsockopt(zmq.SUBSCRIBE, b"exec.other ")
        peek.setsockopt(zmq.SUBSCRIBE, b"")
        peek.connect(pub)
        time.sleep(0.5)
        as_other = _as(order_signal(), "other")
        tester.send(as_other)  # over tester's own authenticated connection
        cancel_other = {"v": 1, "id": uuid.uuid4().hex, "strategy": "tester", "ts": time.time() * 1000,
                        "ttl_ms": 5000, "actions": [{"type": "cancel", "client_id": cid}]}
        tester.send(cancel_other)
        assert tester.reports(cancel_other["id"])[-1]["code"] == "unknown_order"
        wrong = wait_for(lambda: next((r for r in tester.skipped + tester.backlog if r["signal_id"] == as_other["id"]),
                                      None) or _pump(tester, as_other["id"]), 10, what="wrong_strategy report")
        assert wrong["code"] == "wrong_strategy"
        # other's order still rests, and other still hears about its own orders
        probe = _as(order_signal(), "other")
        other.send(probe)
        assert other.reports(probe["id"])[-1]["status"] == "filled"
        # wispctl shows what the executor last published (once a second): wait for a snapshot that has it
        listed = wait_for(lambda: (o := orjson.loads(d.ctl("orders", "--json").stdout)["orders"]) and o, 10,
                          what="the resting order in wispctl orders")
        assert [o["client_id"] for o in listed] == [cid]
        # nobody but "other" read a byte of other's reports
        for _push, sub in spies:
            assert not sub.poll(200)
        assert not peek.poll(200)
    finally:
        for push, sub in locals().get("spies", []):
            push.close()
            sub.close()
        if "peek" in locals():
            peek.close()
        tester.close()
        other.close()


def _pump(trader: Trader, signal_id: str) -> dict | None:
    try:
        body = trader.inbox.get(timeout=0.2)
    except Exception:  # noqa: BLE001 - queue.Empty
        return None
    if body["signal_id"] == signal_id:
        return body
    trader.backlog.append(body)
    return None
