"""The paper executor under a real wispd: every bad input rejected with a reason, fills, halt, and no
duplicate order after a kill -9 between the journaled intent and the send."""

from __future__ import annotations

import os
import queue
import signal
import sqlite3
import threading
import time
import uuid

import orjson
import zmq

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
balances = { USDT = "100000", BTC = "0.1" }
latency_ms = 0.0
[executors.paper.risk]
max_order_notional = "20000"
price_collar_pct = 2.0
[executors.paper.restart]
backoff_initial = 0.2
[strategies.tester]
module = "tests.sample_strategies"
class = "Idle"
"""


class Trader:
    """Plays strategy "tester": PUSHes raw signals, SUBscribes to its reports.

    Like a real strategy's receiver, a thread reads the SUB socket all the time: a SUB with unread
    messages does not reconnect to a restarted executor until they are read (libzmq keeps the old pipe)."""

    def __init__(self, d, account: str = "paper", strategy: str = "tester") -> None:
        ctx = zmq.Context.instance()
        self.d, self.strategy = d, strategy
        self.push = d.as_strategy(ctx.socket(zmq.PUSH), strategy)
        self.push.setsockopt(zmq.LINGER, 0)
        self.push.connect(f"ipc://{d.tmp / 'run' / f'exec-{account}.pull'}")
        self.endpoint = f"ipc://{d.tmp / 'run' / f'exec-{account}.pub'}"
        self.inbox: queue.SimpleQueue[dict] = queue.SimpleQueue()
        self.backlog: list[dict] = []
        self.skipped: list[dict] = []
        self.stop = threading.Event()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        time.sleep(0.3)  # slow joiner

    def _read(self) -> None:
        sub = self.d.as_strategy(zmq.Context.instance().socket(zmq.SUB), self.strategy)
        sub.setsockopt(zmq.LINGER, 0)
        sub.setsockopt(zmq.SUBSCRIBE, f"exec.{self.strategy} ".encode())
        sub.connect(self.endpoint)
        try:
            while not self.stop.is_set():
                if sub.poll(50):
                    env = orjson.loads(sub.recv().split(b" ", 1)[1])
                    if env["kind"] == "report":
                        self.inbox.put(env["body"])
        finally:
            sub.close()

    def send(self, raw: bytes | dict) -> None:
        self.push.send(raw if isinstance(raw, bytes) else orjson.dumps(raw))

    def reports(self, signal_id: str, until: tuple[str, ...] = ("filled", "rejected", "cancelled", "accepted"),
                timeout: float = 10.0) -> list[dict]:
        """Reports of one signal up to the first whose status is in ``until``; reports of other signals that
        arrive meanwhile are kept for later calls, as are this signal's reports after the one returned."""
        got, end = [], time.monotonic() + timeout
        while True:
            while self.backlog:
                body = self.backlog.pop(0)
                if body["signal_id"] != signal_id:
                    self.skipped.append(body)
                    continue
                got.append(body)
                if body["status"] in until:
                    self.backlog[:0] = self.skipped
                    self.skipped = []
                    return got
            if time.monotonic() >= end:
                self.backlog[:0] = self.skipped
                self.skipped = []
                raise AssertionError(f"no final report for {signal_id}: {got}")
            try:
                self.backlog.append(self.inbox.get(timeout=0.1))
            except queue.Empty:
                pass

    def close(self) -> None:
        self.stop.set()
        self.reader.join(5)
        self.push.close()


def order_signal(sid: str | None = None, **action) -> dict:
    base = {"type": "order", "side": "buy", "exchange": "sim", "market": "spot", "symbol": "BTC-USDT",
            "qty": "0.01", "price": None, "order_type": "market"}
    return {"v": 1, "id": sid or uuid.uuid4().hex, "strategy": "tester", "ts": time.time() * 1000, "ttl_ms": 5000,
            "actions": [{**base, **action}]}


def test_bad_input_is_rejected_with_reasons_and_the_executor_keeps_running(daemon):
    d = daemon(BODY)
    t = Trader(d)
    try:
        pid = d.child("executor.paper")["pid"]
        for junk in (b"\xff\x00", b"[]", b'{"v": 1}'):
            t.send(junk)
        cases = {
            "bad_schema": order_signal(side="hodl"),
            "bad_quantity": order_signal(qty="-1"),
            "unknown_symbol": order_signal(symbol="NOPE"),
            "price_tick": order_signal(price="60000.05", order_type="limit"),
            "qty_step": order_signal(qty="0.00001"),
            "max_order_notional": order_signal(qty="1"),
            "price_collar": order_signal(price="50000", order_type="limit"),
            "unknown_exchange": order_signal(exchange="mars"),
            "insufficient_funds": order_signal(side="sell", qty="0.3"),
        }
        old = order_signal()
        old["ts"] -= 10_000
        cases["expired"] = old
        for code, sig in cases.items():
            t.send(sig)
            (report,) = t.reports(sig["id"])
            assert report["status"] == "rejected" and report["code"] == code, (code, report)
        unknown = order_signal()
        unknown["strategy"] = "intruder"
        t.send(unknown)
        good = order_signal()
        t.send(good)
        final = t.reports(good["id"])[-1]
        assert final["status"] == "filled" and final["order"]["filled"] == "0.01"
        t.send(good)  # the same signal again
        (dup,) = t.reports(good["id"])
        assert dup["status"] == "rejected" and dup["code"] == "duplicate"
        assert d.child("executor.paper")["pid"] == pid and d.child("executor.paper")["state"] == "RUNNING"
        def account():
            accounts = orjson.loads(d.ctl("positions", "--json").stdout)["accounts"]
            return accounts[0] if accounts and accounts[0]["positions"] else None

        acc = wait_for(account, 5, what="positions reported")
        (pos,) = acc["positions"]
        assert pos["strategy"] == "tester" and pos["qty"] == "0.01" and acc["balances"]["BTC"] == "0.11"
        assert acc["pnl"]["tester"]["fees"] != "0"
    finally:
        t.close()


def test_limit_rests_and_cancel_and_halt_resume(daemon):
    d = daemon(BODY)
    t = Trader(d)
    try:
        rest = order_signal(price="59000", order_type="limit")
        t.send(rest)
        (accepted,) = t.reports(rest["id"])
        assert accepted["status"] == "accepted"
        listed = wait_for(lambda: orjson.loads(d.ctl("orders", "--json").stdout)["orders"], 5, what="order listed")
        assert listed[0]["client_id"] == accepted["order"]["client_id"] and listed[0]["price"] == "59000"
        cid = accepted["order"]["client_id"]
        cancel = {"v": 1, "id": uuid.uuid4().hex, "strategy": "tester", "ts": time.time() * 1000, "ttl_ms": 5000,
                  "actions": [{"type": "cancel", "client_id": cid}]}
        t.send(cancel)
        assert t.reports(rest["id"], ("cancelled",))[-1]["status"] == "cancelled"
        assert d.ctl("halt").returncode == 0
        halted = order_signal()
        wait_for(lambda: d.child("executor.paper")["status"].get("phase") == "halted", 5, what="halted")
        t.send(halted)
        assert t.reports(halted["id"])[-1]["code"] == "halted"
        assert d.ctl("resume").returncode == 0
        wait_for(lambda: d.child("executor.paper")["status"].get("phase") == "trading", 5, what="resumed")
        ok = order_signal()
        t.send(ok)
        assert t.reports(ok["id"])[-1]["status"] == "filled"
    finally:
        t.close()


def test_kill9_between_intent_and_send_never_duplicates(daemon):
    d = daemon(BODY, env={"WISPD_TEST_PAUSE_AFTER_INTENT": "5"})
    assert d.ctl("stop", "tester").returncode == 0  # the Trader plays "tester": its only report subscriber
    t = Trader(d)
    journal = d.tmp / "state" / "journal-paper.sqlite"
    try:
        sig = order_signal()
        t.send(sig)

        def intent_rows():
            db = sqlite3.connect(f"file:{journal}?mode=ro", uri=True)
            try:
                return db.execute("SELECT client_id, status FROM orders WHERE signal_id=?", (sig["id"],)).fetchall()
            finally:
                db.close()

        rows = wait_for(intent_rows, 10, what="durable intent")
        assert rows[0][1] == "intent"  # committed, and the order has not been sent
        old = d.child("executor.paper")
        os.kill(old["pid"], signal.SIGKILL)
        wait_for(lambda: (c := d.child("executor.paper"))["state"] == "RUNNING" and c["pid"] != old["pid"], 20,
                 what="executor restarted")
        rows = intent_rows()
        assert len(rows) == 1 and rows[0][1] == "rejected"  # resolved, not resent
        assert t.reports(sig["id"])[-1]["code"] == "not_sent"  # told, once its SUB is back
        t.send(sig)  # the strategy retries the same signal: still one order
        assert t.reports(sig["id"])[-1]["code"] == "duplicate"
        assert len(intent_rows()) == 1
    finally:
        t.close()


def test_paper_trading_on_a_ccxt_exchange(daemon, fake_exchange):
    """Paper mode is not sim-only: it fills against the book a ccxt.pro ingestor publishes."""
    fake = fake_exchange("tests.fakes.hyperliquid")
    d = daemon(f"""
[exchanges.hl]
driver = "hyperliquid"
market = "perp"
pairs = ["BTC-USDC"]
api_base = "{fake.base}"
[executors.paper]
exchanges = ["hl"]
[executors.paper.paper]
balances = {{ USDC = "100000" }}
latency_ms = 0.0
[strategies.tester]
module = "tests.sample_strategies"
class = "Idle"
params = {{ exchange = "hl", market = "perp", pair = "BTC-USDC" }}
""")
    t = Trader(d)
    try:
        sig = order_signal(exchange="hl", market="perp", symbol="BTC-USDC", qty="0.01")
        t.send(sig)
        final = t.reports(sig["id"])[-1]
        assert final["status"] == "filled", final
        wait_for(lambda: orjson.loads(d.ctl("positions", "--json").stdout)["accounts"][0]["positions"], 10)
        (pos,) = orjson.loads(d.ctl("positions", "--json").stdout)["accounts"][0]["positions"]
        assert pos["exchange"] == "hl" and pos["market"] == "perp" and pos["qty"] == "0.01"
        assert 59000 < float(pos["avg_price"]) < 61000  # the fake's ask, walked by the paper engine
    finally:
        t.close()
