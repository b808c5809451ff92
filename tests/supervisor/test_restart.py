"""Crashes, signals and hangs: real children, real signals, restarts by the policy."""

from __future__ import annotations

import os
import signal

import psutil

from tests.helpers import wait_for

WELL = """
[processes.good]
entry = "tests.kinds:well_behaved"
[processes.good.restart]
backoff_initial = 0.2
jitter = 0.0
"""


def test_kill9_restarts_with_new_pid_after_backoff(daemon):
    d = daemon(WELL)
    first = d.wait_state("good", "RUNNING")
    os.kill(first["pid"], signal.SIGKILL)
    backoff = d.wait_state("good", "BACKOFF")
    assert "signal SIGKILL" in backoff["last_exit"]
    after = d.wait_state("good", "RUNNING")
    assert after["pid"] != first["pid"]
    assert after["restarts"] == 1
    assert after["restarts_by_reason"] == {"signal": 1}


CRASH_LOOP = """
[processes.crashy]
entry = "tests.kinds:crasher"
[processes.crashy.restart]
backoff_initial = 0.1
backoff_factor = 2.0
jitter = 0.0
max_restarts = 4
window = 60
"""


def test_crash_loop_backoff_grows_then_fatal(daemon):
    d = daemon(CRASH_LOOP)
    fatal = d.wait_state("crashy", "FATAL", timeout=20)
    assert fatal["restarts"] == 4
    assert "crash loop" in fatal["reason"]
    assert fatal["last_exit"] == "exit 70: RuntimeError: deliberate crash from tests.kinds.crasher"  # with the why
    delays = [float(e["reason"].rsplit("retry in ", 1)[1].rstrip("s"))
              for e in d.log_events() if e.get("event") == "child_state" and e.get("new") == "BACKOFF"]
    assert delays == [0.1, 0.2, 0.4, 0.8]
    # the traceback of the crash is in the child's own log
    crashes = [e for e in d.log_events("crashy") if e.get("event") == "child_crash"]
    assert crashes and "deliberate crash" in crashes[0]["traceback"]


def test_exit_78_is_fatal_at_once(daemon):
    d = daemon('[processes.badconf]\nentry = "tests.kinds:config_error"\n')
    fatal = d.wait_state("badconf", "FATAL")
    assert fatal["restarts"] == 0
    assert "configuration error" in fatal["reason"]


def test_sigstopped_child_is_replaced_by_heartbeat(daemon):
    d = daemon(WELL, heartbeat_timeout=1.0)
    first = d.wait_state("good", "RUNNING")
    os.kill(first["pid"], signal.SIGSTOP)
    after = wait_for(lambda: (c := d.child("good"))["state"] == "RUNNING" and c["pid"] != first["pid"] and c,
                     15, what="replacement of the stopped child")
    assert after["restarts_by_reason"] == {"heartbeat": 1}


def test_hung_loop_is_replaced(daemon):
    d = daemon('[processes.hung]\nentry = "tests.kinds:hanger"\nargs = {after = 0.3}\n'
               '[processes.hung.restart]\nbackoff_initial = 0.1\n', heartbeat_timeout=1.0)
    first = d.wait_state("hung", "RUNNING")
    wait_for(lambda: d.child("hung")["restarts_by_reason"].get("heartbeat"), 10, what="heartbeat restart")
    replaced = wait_for(lambda: (c := d.child("hung"))["pid"] not in (None, first["pid"]) and c, 10,
                        what="a new process")
    assert not psutil.pid_exists(first["pid"]) or psutil.Process(first["pid"]).status() == "zombie"
    assert replaced["restarts"] >= 1


def test_never_ready_is_a_failed_start(daemon):
    d = daemon('[processes.lazy]\nentry = "tests.kinds:never_ready"\n'
               '[processes.lazy.limits]\nstart_timeout = 0.5\n'
               '[processes.lazy.restart]\nbackoff_initial = 0.1\nmax_restarts = 2\n', wait_ready=False)
    fatal = d.wait_state("lazy", "FATAL", timeout=20)
    assert fatal["restarts_by_reason"] == {"start_timeout": 2}


def test_memory_limit_restarts_with_reason_memory(daemon):
    d = daemon('[processes.hog]\nentry = "tests.kinds:memory_hog"\nargs = {mb = 150}\n'
               '[processes.hog.limits]\nmemory_mb = 100\nmemory_grace = 0.3\n'
               '[processes.hog.restart]\nbackoff_initial = 0.1\n')
    wait_for(lambda: d.child("hog")["restarts_by_reason"].get("memory"), 20, what="memory restart")
    events = [e for e in d.log_events() if e.get("event") == "memory_limit"]
    assert events and events[0]["rss_bytes"] > 100 * 1024 * 1024


def test_status_shows_cpu_and_memory(daemon):
    d = daemon(WELL)
    c = wait_for(lambda: (c := d.child("good"))["rss_bytes"] > 0 and c, what="resource sample")
    assert c["cpu_s"] >= 0 and c["uss_bytes"] > 0 and c["heartbeat_age_s"] < 2
