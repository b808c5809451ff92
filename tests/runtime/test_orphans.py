"""The daemon's death is every child's death: SIGKILL of wispd leaves nothing running, every time, and no
second executor can ever write a journal another one is writing."""

from __future__ import annotations

import os
import signal
import time

import psutil
import pytest

from tests.helpers import marked_processes, wait_for
from wispd.execution.journal import Journal, JournalLocked

BODY = """
[exchanges.sim]
driver = "sim"
pairs = ["BTC-USDT"]
[exchanges.sim.sim]
update_hz = 20.0
[executors.paper]
exchanges = ["sim"]
[executors.paper.paper]
latency_ms = 0.0
[strategies.ticker]
module = "tests.sample_strategies"
class = "Ticker"
[processes.stubborn]
entry = "tests.kinds:sigterm_ignorer"
"""


def _alive(mark: str) -> list[psutil.Process]:
    out = []
    for p in marked_processes(mark):
        try:
            if p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
        except psutil.NoSuchProcess:
            continue
    return out


def test_sigkill_of_wispd_takes_every_child_and_helper_with_it(daemon, mark):
    d = daemon(BODY)
    for round_ in range(3):
        if round_:
            d.start()
        for name in ("ingestor.sim", "executor.paper", "ticker", "stubborn"):
            d.wait_state(name, "RUNNING", 20)
        family = _alive(mark)
        # wispd, its forkserver and resource tracker, four children and the stubborn one's grandchild
        assert len(family) >= 8, [p.cmdline() for p in family]
        killed_at = time.monotonic()
        os.kill(d.proc.pid, signal.SIGKILL)
        d.proc.wait(5)
        # The mechanism: PR_SET_PDEATHSIG through the forkserver and a pidfd watch of wispd in each child
        # (SIGTERM at once, SIGKILL of the child's group 0.5 s later): gone within a second.
        wait_for(lambda: not _alive(mark), 1.0, interval=0.02, what="every process of the dead daemon gone")
        assert time.monotonic() - killed_at < 1.0


def test_a_journal_has_one_writer(tmp_path):
    first = Journal(tmp_path / "journal-x.sqlite")
    try:
        with pytest.raises(JournalLocked, match=f"pid {os.getpid()}"):
            Journal(tmp_path / "journal-x.sqlite")
    finally:
        first.close()
    Journal(tmp_path / "journal-x.sqlite").close()  # free again once its holder closed it


def test_a_running_executors_journal_cannot_be_opened_twice(daemon):
    d = daemon(BODY.split("[strategies.ticker]")[0])
    d.wait_state("executor.paper", "RUNNING")
    with pytest.raises(JournalLocked):
        Journal(d.tmp / "state" / "journal-paper.sqlite")
