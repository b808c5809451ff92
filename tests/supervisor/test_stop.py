"""The stop sequence, process groups, ordering, persistence and the run-dir lock."""

from __future__ import annotations

import os
import stat
import subprocess
import time

import psutil

from tests.helpers import BIN, wait_for


def _dead(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_sigterm_ignorer_is_killed_with_its_grandchild(daemon, short_tmp):
    pidfile = short_tmp / "gc.pid"
    d = daemon(f'[processes.stubborn]\nentry = "tests.kinds:sigterm_ignorer"\nargs = {{pidfile = "{pidfile}"}}\n'
               '[processes.stubborn.limits]\ndrain_timeout = 0.5\nstop_timeout = 0.5\n')
    child = d.wait_state("stubborn", "RUNNING")
    grandchild = int(wait_for(lambda: pidfile.exists() and pidfile.read_text(), what="grandchild pid"))
    t0 = time.monotonic()
    result = d.ctl("stop", "stubborn")
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - t0 >= 1.0  # drain 0.5 s, then SIGTERM ignored for 0.5 s, then SIGKILL
    assert wait_for(lambda: _dead(child["pid"]) and _dead(grandchild), 5, what="child and grandchild dead")
    assert d.child("stubborn")["last_exit"] == "signal SIGKILL"
    signals = [e["signal"] for e in d.log_events() if e.get("event") == "child_signal"]
    assert signals[:2] == ["SIGTERM", "SIGKILL"]


def test_grandchild_of_a_clean_exit_is_swept(daemon, short_tmp):
    pidfile = short_tmp / "gc.pid"
    d = daemon(f'[processes.forky]\nentry = "tests.kinds:forker"\nargs = {{pidfile = "{pidfile}"}}\n')
    d.wait_state("forky", "RUNNING")
    grandchild = int(wait_for(lambda: pidfile.exists() and pidfile.read_text(), what="grandchild pid"))
    assert d.ctl("stop", "forky").returncode == 0
    assert d.child("forky")["last_exit"] == "exit 0"  # it drained cleanly...
    assert wait_for(lambda: _dead(grandchild), 5, what="grandchild swept")  # ...and its group was swept


TWO = """
[processes.alpha]
entry = "tests.kinds:well_behaved"
[processes.beta]
entry = "tests.kinds:well_behaved"
"""


def test_operator_stop_survives_wispd_restart(daemon):
    d = daemon(TWO)
    d.wait_state("alpha", "RUNNING")
    assert d.ctl("stop", "alpha").returncode == 0
    assert d.child("alpha")["state"] == "STOPPED"
    assert d.stop() == 0
    d.start()
    alpha = d.child("alpha")
    assert alpha["state"] == "STOPPED" and alpha["wanted"] is False
    assert d.child("beta")["state"] == "RUNNING"
    assert d.ctl("status").returncode == 0  # a child the operator stopped is not "not running"
    assert d.ctl("start", "alpha").returncode == 0
    assert d.stop() == 0
    d.start()
    assert d.child("alpha")["state"] == "RUNNING"


def test_operator_restart_is_not_a_crash(daemon):
    d = daemon(TWO)
    before = d.wait_state("alpha", "RUNNING")
    result = d.ctl("restart", "alpha")
    assert result.returncode == 0, result.stderr
    after = d.child("alpha")
    assert after["state"] == "RUNNING" and after["pid"] != before["pid"]
    assert after["restarts"] == 0


ORDERED = """
[processes.feed]
entry = "tests.kinds:crasher"
phase = "infra"
args = {ready = true, delay = 1.0, code = 0}
[processes.feed.restart]
policy = "temporary"
[processes.strat]
entry = "tests.kinds:well_behaved"
phase = "app"
[processes.infra2]
entry = "tests.kinds:well_behaved"
phase = "infra"
"""


def test_start_and_stop_order(daemon):
    d = daemon(ORDERED)
    d.wait_state("strat", "RUNNING")
    assert d.stop() == 0
    events = [(e["name"], e["new"]) for e in d.log_events() if e.get("event") == "child_state"]
    assert events.index(("infra2", "RUNNING")) < events.index(("strat", "STARTING"))
    assert events.index(("feed", "RUNNING")) < events.index(("strat", "STARTING"))
    assert events.index(("strat", "STOPPED")) < events.index(("infra2", "STOPPING"))


def test_second_wispd_on_same_run_dir_is_refused(daemon):
    d = daemon(TWO)
    second = subprocess.run([str(BIN / "wispd"), "run", "--config", str(d.config)], env=d.env(),
                            capture_output=True, text=True, timeout=30)
    assert second.returncode == 1
    assert "already running" in second.stderr and str(os.getpid()) not in second.stderr
    assert d.status()["daemon"]["pid"] == d.proc.pid  # the first one is untouched


def test_control_socket_modes(daemon):
    d = daemon(TWO)
    run_dir = d.tmp / "run"
    assert stat.S_IMODE(run_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((run_dir / "control.sock").stat().st_mode) == 0o600


def test_slow_stop_does_not_block_other_commands(daemon, short_tmp):
    d = daemon('[processes.stubborn]\nentry = "tests.kinds:sigterm_ignorer"\n'
               '[processes.stubborn.limits]\ndrain_timeout = 3.0\nstop_timeout = 3.0\n' + TWO)
    d.wait_state("stubborn", "RUNNING")
    slow = subprocess.Popen([str(BIN / "wispctl"), "--config", str(d.config), "stop", "stubborn"], env=d.env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    d.wait_state("stubborn", "STOPPING")
    reply = d.call("restart", name="alpha", timeout=10)
    assert reply["ok"], reply
    assert d.child("stubborn")["state"] == "STOPPING"  # still stopping: alpha's restart did not wait for it
    assert slow.wait(30) == 0


def test_a_draining_child_can_ask_for_more_time(daemon):
    d = daemon('[processes.slow]\nentry = "tests.kinds:slow_drainer"\nargs = {extend = 3.0, work = 1.5}\n'
               '[processes.slow.limits]\ndrain_timeout = 0.5\nstop_timeout = 0.5\n')
    d.wait_state("slow", "RUNNING")
    assert d.ctl("stop", "slow").returncode == 0
    assert d.child("slow")["last_exit"] == "exit 0"  # finished its drain instead of being killed
    assert not [e for e in d.log_events() if e.get("event") == "child_signal" and e.get("name") == "slow"
                and e.get("signal") != "SIGKILL"]
