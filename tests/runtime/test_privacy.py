"""Least privilege: secrets only where they are needed, private files whatever the umask, nothing left
behind after a clean stop (no socket file, no zombie helper)."""

from __future__ import annotations

import os
import stat

import psutil

from tests.helpers import wait_for

BODY = """
[exchanges.sim]
driver = "sim"
pairs = ["BTC-USDT"]
[executors.paper]
exchanges = ["sim"]
[executors.paper.paper]
latency_ms = 0.0
[strategies.ticker]
module = "tests.sample_strategies"
class = "Ticker"
"""


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_children_never_see_the_secret_variables_and_files_are_private(daemon):
    os.umask(0o022)  # a lax umask in the operator's shell changes nothing
    d = daemon(BODY, env={"WT_METRICS_TOKEN": "tok-123456"}, log_max_bytes=4096, log_backups=2,
               metrics={"bind": "127.0.0.1:0", "bearer_token_env": "WT_METRICS_TOKEN"})
    for name in ("ingestor.sim", "executor.paper", "ticker"):
        child = d.wait_state(name, "RUNNING")
        env = psutil.Process(child["pid"]).environ()
        assert "WT_METRICS_TOKEN" not in env, name
    journal = d.tmp / "state" / "journal-paper.sqlite"
    wait_for(lambda: (d.tmp / "state" / "journal-paper.sqlite-wal").exists(), 10, what="a WAL file")
    for path in (journal, d.tmp / "state" / "journal-paper.sqlite-wal"):
        assert _mode(path) == 0o600, path
    assert d.ctl("stop", "ticker").returncode == 0  # writes desired.json
    assert _mode(d.tmp / "state" / "desired.json") == 0o600
    for _ in range(10):  # each start and stop writes a few lines: enough to rotate a 4 KB log
        if (d.tmp / "log" / "wispd.log.1").exists():
            break
        d.ctl("start", "ticker")
        d.ctl("stop", "ticker")
    assert (d.tmp / "log" / "wispd.log.1").exists()
    for path in (d.tmp / "log").iterdir():
        assert _mode(path) == 0o640, path
    assert _mode(d.tmp / "run") == 0o700 and _mode(d.tmp / "state") == 0o700


def test_a_clean_stop_leaves_no_socket_file_and_reaps_its_helpers(daemon):
    d = daemon(BODY)
    d.wait_state("ticker", "RUNNING")
    me = psutil.Process(d.proc.pid)
    helpers = [p for p in me.children() if "forkserver" in " ".join(p.cmdline()) or
               "resource_tracker" in " ".join(p.cmdline())]
    assert len(helpers) == 2, [p.cmdline() for p in me.children()]
    assert d.stop() == 0
    for p in helpers:
        assert not psutil.pid_exists(p.pid) or p.status() != psutil.STATUS_ZOMBIE, p.cmdline()
    left = sorted(p.name for p in (d.tmp / "run").iterdir() if p.is_socket())
    assert left == [], left
