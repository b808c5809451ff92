"""Hangs explain themselves: a child that stops heartbeating has the stack of every thread written to its
own log (`child_hung`) before it is killed, and `wispctl stack NAME` prints them on demand, also while the
loop is stuck in a tight computation."""

from __future__ import annotations

import orjson

from tests.helpers import wait_for


def _records(d, name: str) -> list[dict]:
    out = d.ctl("logs", name, "--json", "-n", "500").stdout
    return [orjson.loads(line) for line in out.splitlines() if line.startswith("{")]


def test_a_hung_child_has_its_stacks_in_its_log_before_it_is_restarted(daemon):
    d = daemon('[processes.hung]\nentry = "tests.kinds:hanger"\nargs = {after = 0.3}\n'
               '[processes.hung.restart]\nbackoff_initial = 0.1\n', heartbeat_timeout=1.0)
    first = d.wait_state("hung", "RUNNING")
    wait_for(lambda: d.child("hung")["restarts_by_reason"].get("heartbeat"), 15, what="heartbeat restart")
    wait_for(lambda: d.child("hung")["pid"] not in (None, first["pid"]), 10, what="a new process")
    records = _records(d, "hung")
    hung = [i for i, r in enumerate(records) if r["event"] == "child_hung"]
    assert hung, [r["event"] for r in records]
    report = records[hung[0]]
    assert report["pid"] == first["pid"] and "in hanger" in report["traceback"], report
    assert "tests/kinds.py" in report["traceback"] and "Current thread" in report["traceback"]
    starts = [i for i, r in enumerate(records) if r["event"] == "child_start" and r["pid"] != first["pid"]]
    assert starts and hung[0] < starts[0]  # written before the replacement started
    pretty = d.ctl("logs", "hung", "-n", "500").stdout
    assert "child_hung" in pretty and "in hanger" in pretty  # shown as a stack, not a JSON string
    assert any(e.get("event") == "child_hung" and e.get("name") == "hung" for e in d.log_events())


SPIN = """
[exchanges.sim]
driver = "sim"
pairs = ["BTC-USDT"]
[executors.paper]
exchanges = ["sim"]
[strategies.spinner]
module = "tests.sample_strategies"
class = "Spinner"
[strategies.spinner.restart]
backoff_initial = 5.0
"""


def test_wispctl_stack_shows_a_running_child_and_a_strategy_stuck_in_a_loop(daemon):
    d = daemon('[processes.calm]\nentry = "tests.kinds:well_behaved"\n' + SPIN, heartbeat_timeout=30.0)
    d.wait_state("calm", "RUNNING")
    out = d.ctl("stack", "calm")
    assert out.returncode == 0, out.stderr
    assert "in well_behaved" in out.stdout and f"(pid {d.child('calm')['pid']})" in out.stdout
    wait_for(lambda: d.child("spinner")["state"] == "RUNNING", 20, what="the spinner running")
    spun = wait_for(lambda: (o := d.ctl("stack", "spinner")).returncode == 0 and "in run" in o.stdout and o, 10,
                    what="the spinner's stack")
    assert "sample_strategies.py" in spun.stdout
    assert spun.stdout.count("Thread 0x") >= 2  # the strategy's loop and the receiver thread
    assert d.ctl("stack", "nope").returncode == 4
    assert d.ctl("stop", "calm").returncode == 0
    stopped = d.ctl("stack", "calm")
    assert stopped.returncode == 1 and "STOPPED" in stopped.stderr
