"""Every SDK call, exercised by a strategy in its own process under a real wispd."""

from __future__ import annotations

import orjson

from tests.helpers import wait_for

BASE = """
[exchanges.sim]
driver = "sim"
pairs = ["BTC-USDT", "perp:BTC-USDC"]
[exchanges.sim.sim]
update_hz = 10.0
trade_rate = 10.0
prices = { BTC-USDT = 60000.0, BTC-USDC = 60000.0 }
[executors.paper]
exchanges = ["sim"]
[executors.paper.paper]
latency_ms = 0.0
"""


def test_every_sdk_call_works(daemon):
    d = daemon(BASE + '[strategies.probe]\nmodule = "tests.sample_strategies"\nclass = "Probe"\n')
    status = wait_for(lambda: (s := d.child("probe")["status"]).get("summary") == "done" and s, 40,
                      what="probe done")
    r = status["fields"]
    assert r["watch"] and r["watch_perp"]
    assert r["levels"] == 10 and r["mid_ok"] and r["vwap_ok"] and r["depth_ok"] and r["price_ok"]
    assert r["k5"] == 50 and r["k3"] == 20 and r["k5_sorted"] and r["rsi_ok"]
    assert r["trades"] and r["ticker"] and r["funding_ok"]
    assert r["fill"] == "filled" and r["rest"] == "accepted" and r["cancel"] == "cancelled"
    assert r["position"] == "0.01" and r["positions"] == 1 and r["open_orders"] == 1
    assert r["balance_usdt_ok"] and r["pnl_keys"] == ["fees", "realized", "total", "unrealized"]
    assert r["ticks"] == 5
    assert "status_history" not in d.child("probe")  # not in the overview...
    history = orjson.loads(d.ctl("status", "probe", "--json").stdout)["children"][0]["status_history"]  # ...here
    assert history and history[-1]["summary"] == "done"


def test_a_signal_says_when_its_decision_was_woken_for_not_only_when_it_was_built(daemon):
    """``woke`` is the tick the decision was taken on: before ``ts`` by the 60 ms the strategy spent deciding,
    and after the previous signal (never a stale instant). Parity replays start timer strategies at it."""
    import sqlite3

    d = daemon(BASE + '[strategies.slow]\nmodule = "tests.sample_strategies"\nclass = "SlowDecider"\n')
    status = wait_for(lambda: (s := d.child("slow")["status"]).get("fields", {}).get("n", 0) >= 4 and s, 30,
                      what="four decisions")
    db = sqlite3.connect(d.tmp / "state" / "journal-paper.sqlite")
    try:
        rows = [orjson.loads(p) for (p,) in db.execute("SELECT payload FROM signals WHERE strategy='slow' "
                                                        "ORDER BY received_ms")]
    finally:
        db.close()
    assert len(rows) >= 4 and [r["id"] for r in rows[:4]] == ["slow-0", "slow-1", "slow-2", "slow-3"]
    ticks = status["fields"]["ticks"]
    for i, r in enumerate(rows[:4]):
        assert r["woke"] <= ticks[i] <= r["ts"] - 60, (i, r, ticks)  # woken at the tick, built 60 ms later
        if i:
            assert r["woke"] > rows[i - 1]["ts"], (i, r, rows[i - 1])  # a new wake for each decision


def test_async_run_and_clean_stop(daemon):
    d = daemon(BASE + '[strategies.asy]\nmodule = "tests.sample_strategies"\nclass = "AsyncTicker"\n')
    wait_for(lambda: d.child("asy")["status"].get("fields", {}).get("n", 0) >= 10, 20, what="async ticks")
    assert d.ctl("stop", "asy").returncode == 0
    assert d.child("asy")["last_exit"] == "exit 0"
    assert any(e.get("event") == "async_done" for e in d.log_events("asy"))


def test_emit_without_a_reachable_executor_is_rejected_after_ttl_and_never_blocks(daemon):
    d = daemon(BASE + '[strategies.em]\nmodule = "tests.sample_strategies"\nclass = "Emitter"\n')
    wait_for(lambda: d.child("em")["status"].get("fields", {}).get("outcome") == "filled", 20, what="fills")
    assert d.ctl("stop", "executor.paper").returncode == 0
    wait_for(lambda: (f := d.child("em")["status"].get("fields", {})).get("outcome") == "rejected"
             and "no executor reachable" in f.get("reason", ""), 20, what="rejected while no executor is reachable")
    assert d.child("em")["state"] == "RUNNING"  # emit never blocked or raised
    assert d.ctl("start", "executor.paper").returncode == 0
    wait_for(lambda: d.child("em")["status"].get("fields", {}).get("outcome") == "filled", 20, what="fills again")


def test_a_strategy_wakes_on_every_book_and_on_its_timeout(daemon):
    d = daemon(BASE + '[strategies.re]\nmodule = "tests.sample_strategies"\nclass = "Reactor"\n')
    first = wait_for(lambda: (f := d.child("re")["status"].get("fields") or {}).get("books", 0) >= 5 and f, 20,
                     what="books")
    import time

    time.sleep(2.0)
    later = d.child("re")["status"]["fields"]
    assert later["books"] - first["books"] >= 10  # the sim publishes books at update_hz; each one wakes it
    assert d.ctl("stop", "ingestor.sim").returncode == 0
    wait_for(lambda: (d.child("re")["status"].get("fields") or {}).get("nones", 0) >= 3, 10,
             what="timeouts while no book comes")
    assert d.child("re")["state"] == "RUNNING"  # waiting heartbeats
