"""Order semantics under a real daemon: the state before the first decision, marks after a restart, a
reload that changes the strategy set without touching the executor, the operator's money verbs, kill
switches, and restarts that restore every working order whatever else is down."""

from __future__ import annotations

import os
import re
import signal
import sqlite3

import orjson

from tests.execution.test_executor_e2e import Trader, order_signal
from tests.helpers import wait_for

SIM = """
[exchanges.sim]
driver = "sim"
pairs = ["BTC-USDT"]
[exchanges.sim.sim]
seed = 3
update_hz = 20.0
prices = { BTC-USDT = 60000.0 }
[executors.paper]
exchanges = ["sim"]
[executors.paper.paper]
balances = { USDT = "100000", BTC = "1" }
latency_ms = 0.0
[executors.paper.restart]
backoff_initial = 0.2
"""


def gauge(d, name: str) -> list[str]:
    """The lines of one series on the daemon's /metrics (what Prometheus would scrape)."""
    import urllib.request

    text = urllib.request.urlopen(d.status()["daemon"]["metrics_url"], timeout=5).read().decode()
    return [line for line in text.splitlines() if line.startswith(name + "{")]


def positions(d) -> list[dict]:
    accounts = orjson.loads(d.ctl("positions", "--json").stdout)["accounts"]
    return accounts[0]["positions"] if accounts else []


def buys(d, strategy: str) -> int:
    db = sqlite3.connect(f"file:{d.tmp / 'state' / 'journal-paper.sqlite'}?mode=ro", uri=True)
    try:
        return db.execute("SELECT COUNT(*) FROM orders WHERE strategy=? AND side='buy'", (strategy,)).fetchone()[0]
    finally:
        db.close()


def test_a_restarted_strategy_sees_its_position_first_and_does_not_buy_again(daemon):
    d = daemon(SIM + '[strategies.once]\nmodule = "tests.sample_strategies"\nclass = "EnterOnce"\n')
    wait_for(lambda: d.child("once")["status"].get("phase") == "holding", 20, what="entered once")
    assert buys(d, "once") == 1
    for _ in range(2):
        assert d.ctl("restart", "once").returncode == 0
        status = wait_for(lambda: (s := d.child("once")["status"]).get("phase") == "holding" and s, 20)
        assert status["fields"]["at_start"] == "0.01"  # it knew what it held before on_start ran
    assert buys(d, "once") == 1  # no second entry, restart after restart


def test_marks_after_an_executor_restart_and_unknown_pnl_is_never_zero(daemon):
    d = daemon(SIM + '[strategies.once]\nmodule = "tests.sample_strategies"\nclass = "EnterOnce"\n')
    wait_for(lambda: positions(d) and positions(d)[0]["mark"], 20, what="a marked position")
    old = d.child("executor.paper")["pid"]
    os.kill(old, signal.SIGKILL)
    wait_for(lambda: (c := d.child("executor.paper"))["state"] == "RUNNING" and c["pid"] != old, 20)
    # the restarted executor has a mark at once (from the journal, then from the book it subscribes to)
    pos = wait_for(lambda: positions(d), 10, what="positions after the restart")[0]
    assert pos["mark"] is not None and pos["unrealized_pnl"] is not None
    text = d.ctl("positions").stdout
    assert "unknown" not in text
    assert not re.search(r"\d\.\d{9,}", text)  # no Decimal noise: money at the quote's precision


RELOAD = SIM + """
[strategies.keeper]
module = "tests.sample_strategies"
class = "Rester"
on_remove = "keep"
[strategies.leaver]
module = "tests.sample_strategies"
class = "Rester"
"""


def test_reload_changes_the_strategy_set_without_restarting_the_executor(daemon):
    d = daemon(RELOAD + '[strategies.once]\nmodule = "tests.sample_strategies"\nclass = "EnterOnce"\n')
    for name in ("keeper", "leaver"):
        wait_for(lambda n=name: d.child(n)["status"].get("fields", {}).get("working") == 1, 20, what=f"{name} rests")
    wait_for(lambda: d.child("once")["status"].get("phase") == "holding", 20)
    executor = d.child("executor.paper")["pid"]
    text = d.config.read_text()
    head, _, _ = text.partition("[strategies.keeper]")
    d.config.write_text(head + '[strategies.fresh]\nmodule = "tests.sample_strategies"\nclass = "Rester"\n')
    done = d.ctl("reload")
    assert done.returncode == 0, done.stderr
    assert d.child("executor.paper")["pid"] == executor  # told, not restarted
    wait_for(lambda: d.child("fresh")["status"].get("fields", {}).get("working") == 1, 20, what="new one trades")
    wait_for(lambda: {o["strategy"] for o in orjson.loads(d.ctl("orders", "--json").stdout)["orders"]}
             == {"fresh", "keeper"}, 15, what="leaver's order cancelled, keeper's kept")
    wait_for(lambda: any(p["strategy"] == "once" and p["orphaned"] for p in positions(d)), 10,
             what="the removed strategy's position reported as orphaned")
    assert "ORPHANED" in d.ctl("positions").stdout
    assert d.child("executor.paper")["status"]["fields"]["orphaned"] == 1
    (line,) = wait_for(lambda: gauge(d, "wispd_orphaned_position_quantity"), 15, what="the orphan gauge")
    assert 'strategy="once"' in line and float(line.rsplit(" ", 1)[1]) > 0


def test_reload_restarts_a_fatal_strategy_whose_config_was_fixed(daemon):
    d = daemon(SIM + '[strategies.bad]\nmodule = "tests.sample_strategies"\nclass = "BadParams"\n'
               'params = { period = 1 }\n', wait_ready=False)
    d.wait_state("bad", "FATAL", 20)
    d.config.write_text(d.config.read_text().replace("period = 1", "period = 5"))
    assert d.ctl("reload").returncode == 0
    d.wait_state("bad", "EXITED", 20)  # it started again with the fixed parameters (and returned)


def test_trades_pnl_close_and_halt_one_strategy(daemon):
    d = daemon(SIM + '[strategies.tester]\nmodule = "tests.sample_strategies"\nclass = "Idle"\n'
               '[strategies.other]\nmodule = "tests.sample_strategies"\nclass = "Idle"\n')
    for name in ("tester", "other"):
        assert d.ctl("stop", name).returncode == 0
    t, o = Trader(d), Trader(d, strategy="other")
    try:
        for trader, name in ((t, "tester"), (o, "other")):
            sig = {**order_signal(qty="0.02"), "strategy": name}
            trader.send(sig)
            assert trader.reports(sig["id"])[-1]["status"] == "filled"
        trades = orjson.loads(d.ctl("trades", "tester", "--json").stdout)["trades"]
        assert len(trades) >= 1 and {f["strategy"] for f in trades} == {"tester"}
        assert all(set(f) >= {"time", "price", "qty", "fee", "realized_pnl"} for f in trades)
        assert d.ctl("halt", "tester").returncode == 0
        wait_for(lambda: "tester" in d.child("executor.paper")["status"].get("summary", ""), 10, what="halted tester")
        refused = {**order_signal(), "strategy": "tester"}
        t.send(refused)
        assert t.reports(refused["id"])[-1]["code"] == "halted"
        fine = {**order_signal(), "strategy": "other"}
        o.send(fine)
        assert o.reports(fine["id"])[-1]["status"] == "filled"  # only tester is halted
        assert d.ctl("close", "tester").returncode == 0  # reducing is allowed while halted
        wait_for(lambda: not [p for p in positions(d) if p["strategy"] == "tester" and float(p["qty"])], 10,
                 what="tester flat")
        assert d.ctl("resume", "tester").returncode == 0
        d.stop()
        offline = d.ctl("pnl", "--json")  # the daemon is down: read from the journal
        rows = {r["strategy"]: r for r in orjson.loads(offline.stdout)["pnl"]}
        assert rows["tester"]["fills"] == 2 and rows["other"]["fills"] == 2
        assert "fees" in rows["tester"] and rows["tester"]["realized"] is not None
        assert orjson.loads(d.ctl("pnl", "--by", "day", "--json").stdout)["pnl"][0]["fills"] == 4
    finally:
        t.close()
        o.close()


def test_kill_switch_halts_and_survives_a_restart(daemon):
    d = daemon(SIM.replace("[executors.paper.restart]", '[executors.paper.kill_switch]\nstrategy_daily_loss = "1"\n'
                           "[executors.paper.restart]") +
               '[strategies.tester]\nmodule = "tests.sample_strategies"\nclass = "Idle"\n')
    assert d.ctl("stop", "tester").returncode == 0
    t = Trader(d)
    try:
        for side in ("buy", "sell", "buy", "sell", "buy", "sell"):  # round trips pay the spread and fees
            sig = order_signal(side=side, qty="0.1")
            t.send(sig)
            t.reports(sig["id"])
        wait_for(lambda: "kill switch" in d.child("executor.paper")["status"].get("summary", ""), 15, what="tripped")
        sig = order_signal()
        t.send(sig)
        assert t.reports(sig["id"])[-1]["code"] == "halted"
        old = d.child("executor.paper")["pid"]
        os.kill(old, signal.SIGKILL)
        wait_for(lambda: (c := d.child("executor.paper"))["state"] == "RUNNING" and c["pid"] != old, 20)
        wait_for(lambda: "kill switch" in d.child("executor.paper")["status"].get("summary", ""), 15, what="still tripped")
        (line,) = wait_for(lambda: gauge(d, "wispd_kill_switch_tripped"), 15, what="the kill switch gauge")
        assert 'scope="tester"' in line and float(line.rsplit(" ", 1)[1]) == 1
        assert d.ctl("resume", "tester").returncode == 0
        wait_for(lambda: "kill switch" not in d.child("executor.paper")["status"]["summary"], 15, what="resumed")
        wait_for(lambda: not gauge(d, "wispd_kill_switch_tripped"), 15, what="the gauge gone after resume")
    finally:
        t.close()


def test_an_executor_restarted_while_its_ingestor_is_down_keeps_every_order(daemon):
    d = daemon(SIM + '[strategies.keeper]\nmodule = "tests.sample_strategies"\nclass = "Rester"\n')
    wait_for(lambda: d.child("keeper")["status"].get("fields", {}).get("working") == 1, 20, what="resting")
    before = wait_for(lambda: orjson.loads(d.ctl("orders", "--json").stdout)["orders"], 10, what="listed")
    assert d.ctl("stop", "ingestor.sim").returncode == 0
    assert d.ctl("restart", "executor.paper").returncode == 0
    after = wait_for(lambda: orjson.loads(d.ctl("orders", "--json").stdout)["orders"], 15, what="orders back")
    assert [o["client_id"] for o in after] == [o["client_id"] for o in before]
    assert d.ctl("halt", "--cancel").returncode == 0  # and they are the engine's: halt --cancel reaches them
    wait_for(lambda: not orjson.loads(d.ctl("orders", "--json").stdout)["orders"], 15, what="cancelled")
