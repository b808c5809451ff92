"""Config validation closes the gaps: no infinite or absurd durations, no secret echoed back, one live
account per exchange key whatever the variables are called, every strategy checked before deploy."""

from __future__ import annotations

import subprocess

import pytest

from tests.config.test_loader import GOOD_PROC, issues, write
from tests.helpers import BIN, ROOT


@pytest.mark.parametrize("key,value", [
    ("stop_timeout", "inf"), ("drain_timeout", "inf"), ("heartbeat_timeout", "inf"), ("sample_interval", "1e-300"),
    ("sample_interval", "nan"), ("heartbeat_interval", "0"), ("stop_timeout", "1e9"),
])
def test_durations_must_be_finite_and_sane(tmp_path, key, value):
    found = issues(tmp_path, f"{key} = {value}\n" + GOOD_PROC)  # lands in [daemon]
    assert any(f"daemon.{key} = " in m and "expected" in m for m in found), found


def test_child_limits_and_rates_are_bounded(tmp_path):
    found = issues(tmp_path, GOOD_PROC + "[processes.p1.limits]\nstop_timeout = inf\nstart_timeout = -1\n"
                   "[processes.p1.restart]\nbackoff_max = 1e12\nwindow = nan\n")
    assert len(found) == 4
    assert any("processes.p1.limits.stop_timeout = inf: expected a finite number" in m for m in found)


def test_heartbeat_timeout_must_exceed_the_interval(tmp_path):
    (msg,) = issues(tmp_path, "heartbeat_interval = 5.0\nheartbeat_timeout = 6.0\n" + GOOD_PROC)
    assert "daemon.heartbeat_timeout = 6.0: expected more than twice daemon.heartbeat_interval" in msg


def test_a_secret_under_an_unknown_key_is_not_echoed(tmp_path):
    found = issues(tmp_path, GOOD_PROC + 'api_secret = "s3cr3t-value"\npassword = "hunter2"\n')
    assert len(found) == 2 and all("***" in m for m in found)
    assert not any("s3cr3t" in m or "hunter2" in m for m in found)


LIVE = """
[exchanges.bn]
driver = "binance"
api_base = "http://127.0.0.1:1"
[executors.a]
mode = "live"
exchanges = ["bn"]
api_key_env = "WT_KEY_A"
secret_env = "WT_SECRET_A"
[executors.b]
mode = "live"
exchanges = ["bn"]
api_key_env = "WT_KEY_B"
secret_env = "WT_SECRET_B"
"""


def test_two_live_executors_on_one_key_are_refused_whatever_the_variable_names(tmp_path, monkeypatch):
    for name, value in (("WT_KEY_A", "same-key"), ("WT_KEY_B", "same-key"), ("WT_SECRET_A", "x"),
                        ("WT_SECRET_B", "y")):
        monkeypatch.setenv(name, value)
    (msg,) = issues(tmp_path, LIVE)
    assert "executors.b.exchanges" in msg and "executors.a has the same exchange and credentials" in msg
    monkeypatch.setenv("WT_KEY_B", "another-key")
    from wispd.config import load_config

    load_config(write(tmp_path, LIVE))  # two different accounts on one exchange are fine


def test_wispd_check_imports_every_strategy_and_lists_every_problem(tmp_path):
    (tmp_path / "broken.py").write_text("from wispd.sdk import Strategy\nclass B(Strategy)\n    pass\n")
    (tmp_path / "params.py").write_text(
        "from wispd.sdk import Decimal, Param, Strategy\n"
        "class P(Strategy):\n"
        "    params = {'qty': Param(Decimal, '0.1'), 'period': Param(int, 14, min=2), 'mode': Param(str, 'a',"
        " choices=('a', 'b'))}\n"
        "    def run(self, ctx):\n        pass\n")
    path = write(tmp_path, '[strategies.broken]\nfile = "broken.py"\n'
                 '[strategies.params]\nfile = "params.py"\nparams = { qty = "x", period = 1, mode = "c", extra = 1 }\n')
    done = subprocess.run([str(BIN / "wispd"), "check", "--config", str(path)], capture_output=True, text=True,
                          timeout=60, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 78, done.stdout + done.stderr
    out = done.stdout + done.stderr
    assert "strategies.broken: importing the strategy failed: SyntaxError" in out
    for piece in ("parameter 'qty' = 'x'", "parameter 'period' = 1: must be at least 2",
                  "parameter 'mode' = 'c': must be one of", "unknown parameter(s) ['extra']"):
        assert piece in out, piece
    assert "5 problem(s)" in out


def test_wispd_check_passes_the_shipped_config():
    done = subprocess.run([str(BIN / "wispd"), "check", "--config", str(ROOT / "config" / "wispd.toml")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "OK, 6 children" in done.stdout
