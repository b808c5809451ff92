"""Strategies under a real wispd on the sim exchange: the shipped examples, and fault isolation."""

from __future__ import annotations

import re

import orjson
import psutil

from tests.helpers import ROOT, wait_for
from wispd.strategy.types import D


def shipped_body() -> str:
    """config/wispd.toml without its [daemon] table (the harness writes one with test directories)."""
    text = (ROOT / "config" / "wispd.toml").read_text()
    body = text[re.search(r"^\[exchanges\.sim\]", text, re.M).start():]
    return body.replace('file = "../strategies/', f'file = "{ROOT}/strategies/')


def test_shipped_examples_run_on_the_sim_and_show_status_and_orders(daemon):
    d = daemon(shipped_body())
    for name, phases in (("rsi", {"RSI tick", "warming up"}), ("spread", {"watching", "opportunity"}),
                         ("maker", {"quoting"})):
        wait_for(lambda n=name, p=phases: d.child(n)["status"].get("phase") in p, 30, what=f"{name} status")
    assert "rsi " in d.child("rsi")["status"]["summary"]
    orders = wait_for(lambda: orjson.loads(d.ctl("orders", "--json").stdout)["orders"], 30, what="maker quotes")
    assert {o["strategy"] for o in orders} == {"maker"} and all(o["side"] in ("buy", "sell") for o in orders)
    assert d.ctl("status").returncode == 0
    for name in ("rsi", "spread", "maker"):
        assert "ccxt" not in " ".join(psutil.Process(d.child(name)["pid"]).cmdline())
        maps = open(f"/proc/{d.child(name)['pid']}/maps").read()
        assert "/ccxt/" not in maps  # strategy processes never import ccxt


ISOLATION = """
[exchanges.sim]
driver = "sim"
pairs = ["BTC-USDT"]
[exchanges.sim.sim]
update_hz = 10.0
prices = { BTC-USDT = 60000.0 }
[executors.paper]
exchanges = ["sim"]
[strategies.good]
module = "tests.sample_strategies"
class = "Ticker"
[strategies.raiser]
module = "tests.sample_strategies"
class = "Raiser"
[strategies.raiser.restart]
backoff_initial = 0.2
[strategies.leaker]
module = "tests.sample_strategies"
class = "Leaker"
[strategies.leaker.limits]
memory_mb = 150
memory_grace = 0.2
[strategies.leaker.restart]
backoff_initial = 0.2
[strategies.spinner]
module = "tests.sample_strategies"
class = "Spinner"
[strategies.spinner.limits]
heartbeat_timeout = 1.5
[strategies.spinner.restart]
backoff_initial = 0.2
"""


def test_faulty_strategies_are_isolated_and_handled_by_policy(daemon):
    d = daemon(ISOLATION, wait_ready=False)
    wait_for(lambda: d.child("raiser")["restarts_by_reason"].get("crash", 0) >= 2, 30, what="raiser restarted")
    wait_for(lambda: d.child("leaker")["restarts_by_reason"].get("memory", 0) >= 1, 30, what="leaker restarted")
    wait_for(lambda: d.child("spinner")["restarts_by_reason"].get("heartbeat", 0) >= 1, 30, what="spinner replaced")
    good = d.child("good")
    assert good["state"] == "RUNNING" and good["restarts"] == 0
    before = good["status"]["fields"]["books"]
    wait_for(lambda: d.child("good")["status"]["fields"]["books"] > before + 5, 10, what="good keeps receiving")
    def good_position():
        accounts = orjson.loads(d.ctl("positions", "--json").stdout)["accounts"]
        return accounts and any(p["strategy"] == "good" for p in accounts[0]["positions"])

    wait_for(good_position, 15, what="the good strategy's signals filled")
    crash = [e for e in d.log_events("raiser") if e.get("event") == "child_crash"]
    assert crash and "strategy bug on purpose" in crash[0]["traceback"]


def test_invalid_parameters_exit_78_and_go_fatal(daemon):
    d = daemon('[exchanges.sim]\ndriver = "sim"\n[strategies.bad]\nmodule = "tests.sample_strategies"\n'
               'class = "BadParams"\nparams = { period = 1, colour = "red" }\n', wait_ready=False)
    fatal = d.wait_state("bad", "FATAL", 20)
    assert fatal["restarts"] == 0 and fatal["last_exit"].startswith("exit 78")
    errors = [e for e in d.log_events("bad") if e.get("event") == "strategy_config_error"]
    assert "unknown parameter(s) ['colour']" in errors[0]["error"]


ARTICLE = f"""
[exchanges.sim]
driver = "sim"
pairs = ["perp:BTC-USDT"]
[exchanges.sim.sim]
update_hz = 10.0
prices = {{ BTC-USDT = 60000.0 }}
volatility = 0.2
drift = -0.5
[executors.paper]
exchanges = ["sim"]
[executors.paper.paper]
balances = {{ USDT = "100000" }}
[strategies.article]
file = "{ROOT}/strategies/article_rsi.py"
class = "ArticleRsi"
"""


def test_the_article_strategy_ported_line_by_line_buys_perp_on_the_sim(daemon):
    """The seed's RSI strategy (perp, twenty 1h candles, RSI 14, buy 0.1 under 30) on a falling sim: its
    history is there at once, its RSI is under 30, and what it buys is a perp position."""
    d = daemon(ARTICLE)
    status = wait_for(lambda: d.child("article")["status"].get("phase") == "RSI tick" and
                      d.child("article")["status"], 40, what="an RSI tick")
    assert float(status["fields"]["rsi"]) < 30, status

    def held():
        accounts = orjson.loads(d.ctl("positions", "--json").stdout)["accounts"]
        return accounts[0]["positions"] if accounts else []

    positions = wait_for(held, 30, what="a position")
    assert [(p["market"], p["symbol"]) for p in positions] == [("perp", "BTC-USDT")], positions
    assert D(positions[0]["qty"]) >= D("0.1")
    trades = orjson.loads(d.ctl("trades", "article", "--json").stdout)["trades"]
    assert trades and all(t["market"] == "perp" for t in trades), trades
