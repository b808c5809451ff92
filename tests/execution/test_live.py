"""Live trading through real ccxt.pro code against the loopback Binance spot and Hyperliquid fakes:
place, fill, cancel, amend; every error class; the order stream dropped; no third-party tags on any
request; reconciliation (unknown orders reported, fills recovered)."""

from __future__ import annotations

import json
import os
import signal as signals
import sqlite3
import time
import uuid

import orjson
import pytest

from tests.execution.test_executor_e2e import Trader
from tests.helpers import wait_for

HL_WALLET = "0x" + "ab" * 20
HL_KEY = "0x" + "11" * 32
VENUES = {
    "binance": {"module": "tests.fakes.binance", "driver": "binance", "market": "spot", "symbol": "BTC-USDT",
                "price_off": 200.0, "key": "fake-binance-key", "secret": "fake-binance-secret", "qty": "0.01"},
    "hyperliquid": {"module": "tests.fakes.hyperliquid", "driver": "hyperliquid", "market": "perp",
                    "symbol": "BTC-USDC", "price_off": 200.0, "key": HL_WALLET, "secret": HL_KEY, "qty": "0.01"},
}


def credentials(v: dict) -> str:
    """Binance reads its credentials from environment variables, Hyperliquid from a 0600 secrets file."""
    if v["driver"] == "hyperliquid":
        return 'secrets_file = "hl.secrets"'
    return 'api_key_env = "WT_API_KEY"\nsecret_env = "WT_API_SECRET"'


def body(v: dict, base: str, extra: str = "") -> str:
    return f"""
[exchanges.ex]
driver = "{v['driver']}"
market = "{v['market']}"
pairs = ["{v['symbol']}"]
api_base = "{base}"
[executors.live]
mode = "live"
exchanges = ["ex"]
{credentials(v)}
[executors.live.live]
poll_interval_s = 1.0
account_poll_s = 2.0
request_timeout_s = 2.0
{extra}
[executors.live.risk]
max_order_notional = "100000"
price_collar_pct = 5.0
[executors.live.restart]
backoff_initial = 0.2
[strategies.tester]
module = "tests.sample_strategies"
class = "Idle"
params = {{ exchange = "ex", market = "{v['market']}", pair = "{v['symbol']}" }}
"""


def env(v: dict) -> dict[str, str]:
    return {"WT_API_KEY": v["key"], "WT_API_SECRET": v["secret"]}


def signal(v: dict, sid: str | None = None, ttl_ms: int = 20_000, **action) -> dict:
    base = {"type": "order", "side": "buy", "exchange": "ex", "market": v["market"], "symbol": v["symbol"],
            "qty": v["qty"], "price": None, "order_type": "market"}
    return {"v": 1, "id": sid or uuid.uuid4().hex, "strategy": "tester", "ts": time.time() * 1000,
            "ttl_ms": ttl_ms, "actions": [{**base, **action}]}


def mid(d) -> float:
    """The mid the executor sees, from the ingestor's snapshot (via wispctl is not needed: the fakes start
    BTC at 60000 and move it by a few units)."""
    return 60000.0


def limit_price(v: dict, side: str = "buy") -> str:
    off = v["price_off"]
    return f"{mid(None) - off:.1f}" if side == "buy" else f"{mid(None) + off:.1f}"


def venue_cid(v: dict, cid: str) -> str:
    return "0x77" + cid[2:] if v["driver"] == "hyperliquid" else cid


@pytest.fixture(params=sorted(VENUES))
def live(request, daemon, fake_exchange, short_tmp):
    v = VENUES[request.param]
    daemon_tmp = short_tmp
    fake = fake_exchange(v["module"])

    def start(extra: str = "", **kw):
        kw.setdefault("env", env(v))
        secrets = daemon_tmp / "hl.secrets"
        secrets.write_text(f"# test account\nAPI_KEY={v['key']}\nAPI_SECRET={v['secret']}\n")
        secrets.chmod(0o600)
        d = daemon(body(v, fake.base, extra), **kw)
        assert d.ctl("stop", "tester").returncode == 0  # the Trader plays "tester": its only report subscriber
        return d, Trader(d, "live")

    traders = []

    def started(extra: str = "", **kw):
        d, t = start(extra, **kw)
        traders.append(t)
        return d, t

    yield v, fake, started
    for t in traders:
        t.close()


def fake_orders(fake) -> list[dict]:
    return fake.ctl("orders")


def by_status(fake, status: str) -> list[dict]:
    return [o for o in fake_orders(fake) if o["status"] == status]


def requests_sent(fake) -> list[dict]:
    return fake.ctl("log")


def test_place_fill_cancel_amend(live):
    v, fake, start = live
    d, t = start()
    # a resting limit order: acknowledged by the exchange, then filled in two parts
    sig = signal(v, price=limit_price(v), order_type="limit")
    t.send(sig)
    acc = t.reports(sig["id"], until=("accepted", "rejected"))[-1]
    assert acc["status"] == "accepted", acc
    cid = acc["order"]["client_id"]
    (placed,) = [o for o in fake_orders(fake) if o["cid"] == venue_cid(v, cid)]
    assert placed["status"] == "open" and placed["qty"] == float(v["qty"])
    fake.ctl("fill", cid=venue_cid(v, cid), qty="0.004")
    part = t.reports(sig["id"], until=("partially_filled",))[-1]
    assert part["order"]["filled"] == "0.004"
    fake.ctl("fill", cid=venue_cid(v, cid))
    final = t.reports(sig["id"], until=("filled",))[-1]
    assert final["order"]["filled"] == v["qty"] and final["order"]["status"] == "filled"
    # how long the venue took to acknowledge it is journaled (a backtest can replay that latency)
    db = sqlite3.connect(f"file:{d.tmp / 'state' / 'journal-live.sqlite'}?mode=ro", uri=True)
    acks = wait_for(lambda: db.execute("SELECT client_id, latency_ms FROM acks").fetchall(), 10, what="ack latency")
    db.close()
    assert cid in {a[0] for a in acks} and all(0 <= a[1] < 10_000 for a in acks)
    pos = wait_for(lambda: [p for p in orjson.loads(d.ctl("positions", "--json").stdout)["accounts"][0]["positions"]
                            if p["qty"] == v["qty"]], 10, what="the position after both fills")
    assert float(pos[0]["avg_price"]) == float(limit_price(v))

    # a market order fills at once against the fake's book
    sig = signal(v)
    t.send(sig)
    final = t.reports(sig["id"], until=("filled", "rejected"))[-1]
    assert final["status"] == "filled", final

    # cancel: the order leaves the exchange's book and the strategy hears "cancelled"
    sig = signal(v, price=limit_price(v), order_type="limit")
    t.send(sig)
    cid = t.reports(sig["id"], until=("accepted",))[-1]["order"]["client_id"]
    cancel = {**signal(v), "actions": [{"type": "cancel", "client_id": cid}]}
    t.send(cancel)
    assert t.reports(cancel["id"], until=("cancelled", "rejected"))[-1]["status"] == "cancelled"
    assert [o["status"] for o in fake_orders(fake) if o["cid"] == venue_cid(v, cid)] == ["canceled"]

    # amend: the exchange replaces the order; the new one carries its own deterministic client id
    sig = signal(v, price=limit_price(v), order_type="limit")
    t.send(sig)
    old = t.reports(sig["id"], until=("accepted",))[-1]["order"]["client_id"]
    new_price = f"{float(limit_price(v)) - 10:.1f}"
    amend = {**signal(v), "actions": [{"type": "amend", "client_id": old, "price": new_price}]}
    t.send(amend)
    rep = t.reports(amend["id"], until=("accepted", "rejected"))[-1]
    assert rep["status"] == "accepted", rep
    new = rep["order"]["client_id"]
    assert new != old and float(rep["order"]["price"]) == float(new_price)
    by_cid = {o["cid"]: o for o in fake_orders(fake)}
    assert by_cid[venue_cid(v, old)]["status"] == "canceled"
    assert by_cid[venue_cid(v, new)]["status"] == "open" and by_cid[venue_cid(v, new)]["price"] == float(new_price)
    assert t.reports(sig["id"], until=("cancelled",))[-1]["reason"].startswith("replaced by")

    # wispctl halt --cancel: working orders are cancelled on the exchange, new ones refused until resume
    assert d.ctl("halt", "--cancel").returncode == 0
    wait_for(lambda: by_status(fake, "open") == [], 20, what="halt --cancel to reach the exchange")
    sig = signal(v, price=limit_price(v), order_type="limit")
    t.send(sig)
    assert t.reports(sig["id"], until=("rejected",))[-1]["code"] == "halted"
    assert d.ctl("resume").returncode == 0


def test_exchange_errors_become_clear_rejections(live):
    v, fake, start = live
    d, t = start()
    for kind, code in (("insufficient_funds", "insufficient_funds"), ("invalid_order", "invalid_order"),
                       ("auth", "auth")):
        fake.ctl("fail", kind=kind)
        sig = signal(v, price=limit_price(v), order_type="limit")
        t.send(sig)
        rej = t.reports(sig["id"], until=("rejected", "accepted"))[-1]
        assert rej["status"] == "rejected" and rej["code"] == code, rej
        assert not [o for o in fake_orders(fake) if o["cid"] == venue_cid(v, rej["order"]["client_id"])]
    sig = signal(v, price=limit_price(v), order_type="limit")  # the executor goes on
    t.send(sig)
    assert t.reports(sig["id"], until=("accepted", "rejected"))[-1]["status"] == "accepted"


def test_rate_limit_is_retried_and_an_unknown_outcome_looked_up(live):
    v, fake, start = live
    d, t = start()
    fake.ctl("fail", kind="rate_limited", n=2)  # refused twice: safe to retry, then placed once
    sig = signal(v, price=limit_price(v), order_type="limit")
    t.send(sig)
    rep = t.reports(sig["id"], until=("accepted", "rejected"))[-1]
    assert rep["status"] == "accepted", rep
    assert len([o for o in fake_orders(fake) if o["cid"] == venue_cid(v, rep["order"]["client_id"])]) == 1
    fake.ctl("fail", kind="lost_response")  # placed, but the answer never comes in time
    sig = signal(v, price=limit_price(v), order_type="limit")
    t.send(sig)
    rep = t.reports(sig["id"], until=("accepted", "rejected"), timeout=20)[-1]
    assert rep["status"] == "accepted", rep  # found by its client id, not sent again
    assert len([o for o in fake_orders(fake) if o["cid"] == venue_cid(v, rep["order"]["client_id"])]) == 1
    fake.ctl("fail", kind="rate_limited", n=100)  # refused until the signal's TTL: then a clear rejection
    sig = signal(v, price=limit_price(v), order_type="limit", ttl_ms=1500)
    t.send(sig)
    rep = t.reports(sig["id"], until=("accepted", "rejected"), timeout=20)[-1]
    assert rep["status"] == "rejected" and rep["code"] == "rate_limited", rep
    assert not [o for o in fake_orders(fake) if o["cid"] == venue_cid(v, rep["order"]["client_id"])]


def test_order_stream_reconnects_and_polling_covers_the_gap(live):
    v, fake, start = live
    d, t = start()
    sig = signal(v, price=limit_price(v), order_type="limit")
    t.send(sig)
    cid = t.reports(sig["id"], until=("accepted",))[-1]["order"]["client_id"]
    fake.ctl("drop")  # every WebSocket closes, the private streams with them
    fake.ctl("fill", cid=venue_cid(v, cid))  # filled while the stream is down
    final = t.reports(sig["id"], until=("filled",), timeout=20)[-1]
    assert final["order"]["filled"] == v["qty"]
    wait_for(lambda: '"order_stream_up"' in d.child_log("executor.live").split('"order_stream_down"', 1)[-1], 20,
             what="the order stream to reconnect")
    sig = signal(v, price=limit_price(v), order_type="limit")  # and the stream carries updates again
    t.send(sig)
    cid = t.reports(sig["id"], until=("accepted",))[-1]["order"]["client_id"]
    fake.ctl("fill", cid=venue_cid(v, cid))
    assert t.reports(sig["id"], until=("filled",))[-1]["status"] == "filled"


def test_no_third_party_tags_on_any_request(live):
    v, fake, start = live
    d, t = start()
    sig = signal(v, price=limit_price(v), order_type="limit")
    t.send(sig)
    t.reports(sig["id"], until=("accepted",))
    sig = signal(v)
    t.send(sig)
    t.reports(sig["id"], until=("filled",))
    logs = "".join(p.read_text() for p in (d.tmp / "log").glob("*.log*"))
    assert v["secret"] not in logs and v["secret"] not in d.stderr()  # no secret ever reaches a log
    log = requests_sent(fake)
    text = json.dumps(log)
    assert all(r.get("host", "127.0.0.1").startswith("127.0.0.1") for r in log)
    if v["driver"] == "hyperliquid":
        actions = [r["body"]["action"] for r in log if r.get("path", "").endswith("/exchange")]
        assert actions and all(a["type"] not in ("approveBuilderFee", "setReferrer") for a in actions)
        orders = [a for a in actions if a["type"] == "order"]
        assert orders and all("builder" not in a for a in orders)
        assert all(o["c"].startswith("0x77") for a in orders for o in a["orders"])
    else:
        placed = [r["signed"] for r in log if r.get("path", "").endswith("/api/v3/order") and r["method"] == "POST"]
        assert placed and all("newClientOrderId=wd" in p for p in placed)
        assert "x-TKT5PX2F" not in text and "TKT5PX2F" not in text
        assert all("Referer" not in r.get("headers", {}) for r in log)


def test_reconciliation_reports_unknown_orders_and_recovers_fills(live):
    """Binance runs with unknown_orders = "cancel", Hyperliquid with the default "report"."""
    v, fake, start = live
    policy = "cancel" if v["driver"] == "binance" else "report"
    d, t = start(f'unknown_orders = "{policy}"')
    before = signal(v)  # a position made before the restart must survive it
    t.send(before)
    assert t.reports(before["id"], until=("filled", "rejected"))[-1]["status"] == "filled"
    sig = signal(v, price=limit_price(v), order_type="limit")
    t.send(sig)
    cid = t.reports(sig["id"], until=("accepted",))[-1]["order"]["client_id"]
    d.ctl("stop", "executor.live")
    fake.ctl("fill", cid=venue_cid(v, cid))  # filled while the executor was stopped
    fake.ctl("foreign")  # an order placed by hand on the same account
    d.ctl("start", "executor.live")
    final = t.reports(sig["id"], until=("filled",), timeout=30)[-1]
    assert final["order"]["filled"] == v["qty"]
    log = d.child_log("executor.live")
    assert '"unknown_exchange_order"' in log
    foreign = [o["status"] for o in fake_orders(fake) if not o["cid"].startswith(("wd", "0x77"))]
    if policy == "cancel":
        assert '"action":"cancel"' in log.replace(" ", "") and foreign == ["canceled"]
    else:
        assert '"left alone"' in log and foreign == ["open"]
    pos = wait_for(lambda: orjson.loads(d.ctl("positions", "--json").stdout)["accounts"][0]["positions"], 10)
    assert float(pos[0]["qty"]) == 2 * float(v["qty"])  # the position from before plus the fill made while down


def journal_rows(d, signal_id: str) -> list[tuple]:
    db = sqlite3.connect(f"file:{d.tmp / 'state' / 'journal-live.sqlite'}?mode=ro", uri=True)
    try:
        return db.execute("SELECT client_id, status, exchange_id, qty, price FROM orders WHERE signal_id=?",
                          (signal_id,)).fetchall()
    finally:
        db.close()


def kill_executor(d) -> None:
    old = d.child("executor.live")
    os.kill(old["pid"], signals.SIGKILL)
    wait_for(lambda: (c := d.child("executor.live"))["state"] == "RUNNING" and c["pid"] != old["pid"], 30,
             what="executor restarted")


@pytest.mark.parametrize("point", ["after_intent", "at_exchange_before_answer", "after_ack_before_commit"])
def test_kill9_between_intent_and_ack_leaves_exactly_one_order(live, point):
    """Whatever instant the executor dies at, the restart leaves one order per signal on the exchange, and
    the journal agrees with it (status, exchange id, quantity, price)."""
    v, fake, start = live
    pause = {"after_intent": {"WISPD_TEST_PAUSE_AFTER_INTENT": "30"},
             "after_ack_before_commit": {"WISPD_TEST_PAUSE_AFTER_ACK": "30"}}.get(point, {})
    d, t = start(env={**env(v), **pause})
    if point == "at_exchange_before_answer":
        fake.ctl("hold", s="30")
    sig = signal(v, price=limit_price(v), order_type="limit", ttl_ms=120_000)
    t.send(sig)
    if point == "after_intent":
        wait_for(lambda: '"test_pause_after_intent"' in d.child_log("executor.live"), 20, what="paused after intent")
        assert [r[1] for r in journal_rows(d, sig["id"])] == ["intent"] and fake_orders(fake) == []
    elif point == "at_exchange_before_answer":
        wait_for(lambda: fake_orders(fake), 20, what="the order at the exchange")
        assert [r[1] for r in journal_rows(d, sig["id"])] == ["intent"]
    else:
        wait_for(lambda: '"test_pause_after_ack"' in d.child_log("executor.live"), 20, what="paused after ack")
    kill_executor(d)
    (row,) = wait_for(lambda: [r for r in journal_rows(d, sig["id"]) if r[1] == "open"], 30, what="journal open")
    on_exchange = [o for o in fake_orders(fake) if o["cid"] == venue_cid(v, row[0])]
    assert len(on_exchange) == 1 and len(fake_orders(fake)) == 1
    (o,) = on_exchange
    assert o["status"] == "open" and str(o["id"]) == row[2]
    assert float(row[3]) == o["qty"] and float(row[4]) == o["price"]
    t.send(sig)  # the strategy retries the same signal: a duplicate, never a second order
    assert t.reports(sig["id"], until=("rejected",))[-1]["code"] == "duplicate"
    assert len(fake_orders(fake)) == 1


def _last_price(d, v) -> float | None:
    """The mark the executor holds for the position now (wispctl positions), None before it has one."""
    accounts = orjson.loads(d.ctl("positions", "--json").stdout)["accounts"]
    marks = [float(p["mark"]) for a in accounts for p in a["positions"] if p.get("mark")]
    return marks[0] if marks else None


def _is_market(v, o: dict) -> bool:
    """A market order as the venue sees it: Binance has a MARKET type; Hyperliquid has none, and ccxt sends
    an immediate-or-cancel limit at the mark plus slippage."""
    return o["kind"] == "market" if v["driver"] == "binance" else (o["kind"], o["tif"]) == ("limit", "Ioc")


def _position(d) -> float:
    accounts = orjson.loads(d.ctl("positions", "--json").stdout)["accounts"]
    return sum(float(p["qty"]) for a in accounts for p in a["positions"])


def _reduce(v: dict) -> dict:
    return {"reduce_only": True} if v["market"] == "perp" else {}


def test_stops_rest_on_the_exchange_and_fire_there_while_the_executor_is_down(live):
    """With triggers = "venue" (the default) a stop is the exchange's own trigger order (Binance STOP_LOSS,
    Hyperliquid tpsl "sl") carrying our client id. It fires there even while the executor is dead (kill -9);
    the restarted executor finds it filled, recovers the fill and reports it, once."""
    v, fake, start = live
    d, t = start()
    entry = signal(v, qty="0.02")
    t.send(entry)
    assert t.reports(entry["id"], until=("filled", "rejected"))[-1]["status"] == "filled"
    mid = wait_for(lambda: _last_price(d, v), 15, what="a mark")
    stop = signal(v, side="sell", qty="0.01", trigger_type="stop", trigger_price=f"{mid - 150:.1f}", **_reduce(v))
    t.send(stop)
    accepted = t.reports(stop["id"], until=("accepted", "rejected"))[-1]
    assert accepted["status"] == "accepted", accepted
    cid = accepted["order"]["client_id"]
    (held,) = wait_for(lambda: [o for o in fake_orders(fake) if o["cid"] == venue_cid(v, cid)], 15,
                       what="the stop resting on the exchange")
    assert (held["trigger"], held["trigger_px"], held["triggered"], held["status"]) == \
        ("stop", float(f"{mid - 150:.1f}"), False, "open")
    assert held["qty"] == 0.01 and held["kind"] == "market"
    if v["driver"] == "binance":
        assert held["venue_type"] == "STOP_LOSS"
    kill_executor(d)  # dies, and the price falls through the stop before it is back
    fake.ctl("move", by=-400)
    (fired,) = [o for o in fake_orders(fake) if o["cid"] == venue_cid(v, cid)]
    assert fired["status"] == "filled" and fired["triggered"]
    done = t.reports(stop["id"], until=("filled", "cancelled", "rejected"), timeout=40)[-1]
    assert done["status"] == "filled", done
    wait_for(lambda: _position(d) == 0.01, 20, what="the position after the stop")
    trades = [r for r in journal_trades(d) if r["client_id"] == cid]
    assert len(trades) == 1 and float(trades[0]["qty"]) == 0.01
    assert len([o for o in fake_orders(fake) if o["side"] == "sell"]) == 1  # fired once, never re-sent


def journal_trades(d) -> list[dict]:
    db = sqlite3.connect(f"file:{d.tmp / 'state' / 'journal-live.sqlite'}?mode=ro", uri=True)
    db.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in db.execute("SELECT * FROM fills")]
    finally:
        db.close()


def test_stops_held_by_the_executor_and_brackets_fire_on_the_exchange_once(live):
    """With triggers = "executor", and for every bracket, the executor holds the trigger (docs/execution.md
    says why): it fires on the market data and goes out as a market order with its own client id; a
    bracket's take-profit rests on the exchange, and when the stop loss fires the take-profit is cancelled
    there first."""
    v, fake, start = live
    d, t = start('triggers = "executor"')
    entry = signal(v, qty="0.02")
    t.send(entry)
    assert t.reports(entry["id"], until=("filled", "rejected"))[-1]["status"] == "filled"
    mid = wait_for(lambda: _last_price(d, v), 15, what="a mark")
    stop = signal(v, side="sell", qty="0.01", trigger_type="stop", trigger_price=f"{mid - 150:.1f}")
    t.send(stop)
    armed = t.reports(stop["id"], until=("accepted", "rejected"))[-1]
    assert armed["status"] == "accepted", armed
    stop_cid = armed["order"]["client_id"]
    assert not [o for o in fake_orders(fake) if o["cid"] == venue_cid(v, stop_cid)]  # held here, not there
    fake.ctl("move", by=-400)
    done = t.reports(stop["id"], until=("filled", "cancelled", "rejected"), timeout=30)[-1]
    assert done["status"] == "filled", done
    (sent,) = [o for o in fake_orders(fake) if o["cid"] == venue_cid(v, stop_cid)]
    assert sent["side"] == "sell" and sent["status"] == "filled" and not sent["trigger"]
    assert _is_market(v, sent)

    mid = wait_for(lambda: (p := _last_price(d, v)) is not None and p < mid - 200 and p, 20, what="the new mark")
    bracket = signal(v, qty="0.01", price=f"{mid + 100:.1f}", order_type="limit", stop_loss=f"{mid - 200:.1f}",
                     take_profit=f"{mid + 300:.1f}")
    t.send(bracket)
    t.reports(bracket["id"], until=("filled",), timeout=20)
    tp = wait_for(lambda: [o for o in fake_orders(fake) if o["side"] == "sell" and o["kind"] == "limit"
                           and o["status"] == "open"], 20, what="the take-profit resting on the exchange")
    assert float(tp[0]["price"]) == float(f"{mid + 300:.1f}") and tp[0]["qty"] == 0.01
    fake.ctl("move", by=-600)
    wait_for(lambda: [o for o in fake_orders(fake) if o["cid"] == tp[0]["cid"]][0]["status"] == "canceled", 30,
             what="the take-profit cancelled on the exchange (one-cancels-other)")
    wait_for(lambda: [o for o in fake_orders(fake) if _is_market(v, o) and o["side"] == "sell"
                      and o["status"] == "filled" and o["cid"] != sent["cid"]], 30, what="the stop loss filled")
    wait_for(lambda: _position(d) == 0.01, 15, what="back to what was held before the bracket")


def test_a_reduce_only_stop_on_the_exchange_never_outgrows_its_position(live):
    """A reduce-only trigger the exchange holds would reduce the account's position, not the strategy's: the
    executor keeps it no larger than the strategy's position (an amend) and cancels it once that is closed."""
    v, fake, start = live
    if v["market"] != "perp":
        pytest.skip("reduce-only is a perp flag")
    d, t = start()
    entry = signal(v, qty="0.02")
    t.send(entry)
    t.reports(entry["id"], until=("filled",))
    mid = wait_for(lambda: _last_price(d, v), 15, what="a mark")
    stop = signal(v, side="sell", qty="0.02", trigger_type="stop", trigger_price=f"{mid - 150:.1f}", reduce_only=True)
    t.send(stop)
    cid = t.reports(stop["id"], until=("accepted",))[-1]["order"]["client_id"]
    part = signal(v, side="sell", qty="0.015")
    t.send(part)
    t.reports(part["id"], until=("filled",))
    resized = wait_for(lambda: [o for o in fake_orders(fake) if o["trigger"] == "stop" and o["status"] == "open"
                                and o["cid"] != venue_cid(v, cid)], 20, what="the stop cut to the position")
    assert resized[0]["qty"] == 0.005 and [o["status"] for o in fake_orders(fake) if o["cid"] == venue_cid(v, cid)] \
        == ["canceled"]
    rest = signal(v, side="sell", qty="0.005")
    t.send(rest)
    t.reports(rest["id"], until=("filled",))
    wait_for(lambda: not [o for o in fake_orders(fake) if o["trigger"] and o["status"] == "open"], 20,
             what="the stop cancelled once the position is closed")
    fake.ctl("move", by=-400)
    time.sleep(1.5)
    assert _position(d) == 0.0 and not [o for o in fake_orders(fake) if o["trigger"] and o["status"] == "filled"]


def test_atomic_signals_and_refused_fields_on_the_exchange(live):
    v, fake, start = live
    d, t = start()
    rest = signal(v, price=limit_price(v), order_type="limit")
    t.send(rest)
    cid = t.reports(rest["id"], until=("accepted",))[-1]["order"]["client_id"]
    both = {**signal(v), "actions": [{"type": "cancel", "client_id": "wd" + "0" * 30},
                                     {"type": "cancel", "client_id": cid}]}
    t.send(both)
    report = t.reports(both["id"], until=("rejected", "cancelled"))[-1]
    assert report["status"] == "rejected" and report["code"] == "unknown_order" and report["action"] == 0
    assert [o["status"] for o in fake_orders(fake) if o["cid"] == venue_cid(v, cid)] == ["open"]
    post = signal(v, price=f"{60000 + 500:.1f}", order_type="limit", post_only=True)  # would take: refused there
    t.send(post)
    assert t.reports(post["id"], until=("rejected", "accepted"))[-1]["status"] == "rejected"
    if v["driver"] == "hyperliquid":
        fok = signal(v, price=limit_price(v), order_type="limit", tif="FOK")
        t.send(fok)
        assert t.reports(fok["id"], until=("rejected",))[-1]["code"] == "unsupported"  # Hyperliquid has no FOK
        lev = signal(v, leverage="3")
        t.send(lev)
        assert t.reports(lev["id"], until=("filled", "rejected"))[-1]["status"] == "filled"
        actions = [e.get("body", {}).get("action", {}) for e in requests_sent(fake) if e.get("body")]
        assert {"type": "updateLeverage", "leverage": 3} in [{k: a.get(k) for k in ("type", "leverage")}
                                                             for a in actions]


def test_balances_follow_the_exchange(live):
    """After trading and a restart the journal agrees with the exchange (a perp account's value minus its
    open positions' unrealised PnL is its cash): nothing is taken as drift. Money that arrives outside wispd
    (a deposit) goes to the unassigned funds once two balance reads agree, never to a strategy."""
    v, fake, start = live
    d, t = start()
    quote = v["symbol"].split("-")[1]
    entry = signal(v, qty="0.02")
    t.send(entry)
    assert t.reports(entry["id"], until=("filled", "rejected"))[-1]["status"] == "filled"
    fake.ctl("move", by=300)  # an open perp position now has unrealised PnL in the account value
    kill_executor(d)
    time.sleep(6)  # reconciliation's read, then three account polls (account_poll_s = 2)
    assert '"balance_drift"' not in d.child_log("executor.live")

    def account() -> dict:
        return orjson.loads(d.ctl("positions", "--json").stdout)["accounts"][0]

    before = account()
    held = before["strategies"]["tester"]["balances"].get(quote)
    fake.ctl("deposit", asset=quote, amount=500)
    wait_for(lambda: '"balance_drift"' in d.child_log("executor.live"), 20, what="the deposit noticed")
    after = wait_for(lambda: (a := account())["unassigned"].get(quote) and a, 10, what="the unassigned funds")
    assert float(after["unassigned"].get(quote, 0)) == float(before["unassigned"].get(quote, 0)) + 500
    assert after["strategies"]["tester"]["balances"].get(quote) == held
