"""A journal that cannot be written halts its account, says why, and resumes by itself: a full disk or a
read-only state directory is a state, not a crash loop, and no order leaves without a durable intent."""

from __future__ import annotations

import sqlite3
import subprocess

from tests.conftest import remount
from tests.execution.test_executor_e2e import BODY, Trader, order_signal
from tests.helpers import wait_for


def _phase(d) -> str:
    return d.child("executor.paper")["status"].get("phase", "")


def _fill(path) -> None:
    subprocess.run(["dd", "if=/dev/zero", f"of={path / 'filler'}", "bs=64k"], capture_output=True)


def test_full_disk_then_read_only_halt_the_account_and_it_resumes_by_itself(tmpfs, daemon):
    state = tmpfs("state", "3m")
    d = daemon(BODY, state_dir=str(state))
    assert d.ctl("stop", "tester").returncode == 0
    t = Trader(d)
    try:
        pid = d.child("executor.paper")["pid"]
        ok = order_signal()
        t.send(ok)
        assert t.reports(ok["id"])[-1]["status"] == "filled"
        for break_it, mend in ((lambda: _fill(state), lambda: (state / "filler").unlink()),):
            break_it()
            refused = []
            for _ in range(3):  # the first may fail at its commit, the next are refused at once
                sig = order_signal()
                t.send(sig)
                report = t.reports(sig["id"])[-1]
                refused.append(sig["id"])
                assert report["status"] == "rejected" and report["code"] == "journal_unavailable", report
            wait_for(lambda: _phase(d) == "halted: journal", 10, what="status says the journal is the problem")
            assert "journal cannot be written" in d.child("executor.paper")["status"]["summary"]
            mend()
            wait_for(lambda: _phase(d) == "trading", 15, what="resumed by itself")
            again = order_signal()
            t.send(again)
            assert t.reports(again["id"])[-1]["status"] == "filled"
            ex = d.child("executor.paper")
            assert ex["pid"] == pid and ex["restarts"] == 0
            db = sqlite3.connect(f"file:{state / 'journal-paper.sqlite'}?mode=ro", uri=True)
            try:  # nothing was sent for the refused signals, and nothing of theirs is left half-done
                rows = db.execute(f"SELECT status FROM orders WHERE signal_id IN ({','.join('?' * 3)})",
                                  refused).fetchall()
                assert all(r[0] == "rejected" for r in rows)
                assert db.execute("SELECT COUNT(*) FROM orders WHERE status='intent'").fetchone()[0] == 0
            finally:
                db.close()
    finally:
        t.close()


def test_a_journal_that_cannot_be_opened_is_a_state_not_a_crash_loop(tmpfs, daemon):
    state = tmpfs("state", "3m")
    d = daemon(BODY, state_dir=str(state))
    assert d.ctl("stop", "tester").returncode == 0
    assert d.ctl("stop", "executor.paper").returncode == 0
    assert d.ctl("stop", "ingestor.sim").returncode == 0  # it writes the sim's path (sim-sim.sqlite) there
    remount(state, "ro")  # nothing holds a file open for writing now
    try:
        assert d.ctl("start", "executor.paper").returncode == 0  # up, and says why it does not trade
        wait_for(lambda: _phase(d) == "halted: journal", 10, what="halted: journal")
        assert "cannot be opened" in d.child("executor.paper")["status"]["summary"]
        import time

        time.sleep(3)
        ex = d.child("executor.paper")
        assert ex["state"] == "RUNNING" and ex["restarts"] == 0
    finally:
        remount(state, "rw")
    assert d.ctl("start", "ingestor.sim").returncode == 0
    wait_for(lambda: _phase(d) == "trading", 20, what="the journal opened once it could")
    t = Trader(d)
    try:
        ok = order_signal()
        t.send(ok)
        assert t.reports(ok["id"])[-1]["status"] == "filled"
    finally:
        t.close()
