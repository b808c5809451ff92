"""A daemon that runs for months restarts children thousands of times: each restart must give back every
descriptor it took (pidfds, link sockets, log pipes, subscriptions), in the supervisor and in the
long-lived children a restarted neighbour reconnects to (ingestor, executor). A leak of one per restart is
a daemon that stops starting children after ~1,000 crashes."""

from __future__ import annotations

import os
import signal
import time

from tests.helpers import wait_for

BODY = """
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
[strategies.good.restart]
backoff_initial = 0.05
backoff_max = 0.1
max_restarts = 1000
[processes.p]
entry = "tests.kinds:well_behaved"
[processes.p.restart]
backoff_initial = 0.05
backoff_max = 0.1
max_restarts = 1000
"""
ROUNDS = 12


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _kill_and_wait(d, name: str) -> None:  # noqa: ANN001
    old = d.child(name)["pid"]
    os.kill(old, signal.SIGKILL)
    wait_for(lambda: (c := d.child(name))["state"] == "RUNNING" and c["pid"] != old, 20, what=f"{name} restarted")


def test_restarts_leave_descriptor_counts_flat(daemon):
    d = daemon(BODY)
    for name in ("good", "p", "executor.paper", "ingestor.sim"):
        d.wait_state(name, "RUNNING")

    def counts() -> dict[str, int]:
        return {"wispd": _fds(d.proc.pid), "ingestor": _fds(d.child("ingestor.sim")["pid"]),
                "executor": _fds(d.child("executor.paper")["pid"])}

    for _ in range(2):  # a first restart may open what stays open (a lazily made socket): not a leak
        _kill_and_wait(d, "good")
        _kill_and_wait(d, "p")
    time.sleep(1.0)
    before = counts()
    for _ in range(ROUNDS):
        _kill_and_wait(d, "good")
        _kill_and_wait(d, "p")
        assert d.ctl("status").returncode == 0
    time.sleep(1.0)  # closed peers are reaped by the survivors' next passes
    after = counts()
    assert all(after[k] - before[k] < ROUNDS // 2 for k in before), (before, after)
    executor = d.child("executor.paper")["pid"]
    _kill_and_wait(d, "executor.paper")
    _kill_and_wait(d, "executor.paper")
    time.sleep(1.0)
    again = counts()
    assert again["wispd"] - before["wispd"] < ROUNDS // 2 and again["ingestor"] - before["ingestor"] < ROUNDS // 2, \
        (before, again)
    assert d.child("executor.paper")["pid"] != executor
