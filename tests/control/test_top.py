"""`wispctl top` in a real pseudo-terminal (tmux): shows the children and quits on q."""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest

from tests.helpers import BIN, wait_for
from tests.strategy.test_strategies_e2e import shipped_body


@pytest.mark.skipif(shutil.which("tmux") is None and not os.environ.get("CI"),
                    reason="tmux not installed (CI installs it)")
def test_top_draws_children_feeds_positions_and_quits_on_q(daemon, short_tmp):
    d = daemon(shipped_body())
    session = f"wtop{os.getpid()}"
    sock = str(short_tmp / "tmux.sock")
    env = {**d.env(), "TERM": "xterm-256color"}
    cmd = f"{BIN / 'wispctl'} --config {d.config} top --interval 0.5"
    subprocess.run(["tmux", "-S", sock, "new-session", "-d", "-s", session, "-x", "160", "-y", "45", cmd],
                   check=True, env=env)

    def screen() -> str:
        return subprocess.run(["tmux", "-S", sock, "capture-pane", "-p", "-t", session], capture_output=True,
                              text=True).stdout

    try:
        text = wait_for(lambda: (s := screen()) and "maker" in s and "ingestor.sim" in s and "FEED" in s and s, 20,
                        what="top drawn")
        assert "executor.paper" in text and "RUNNING" in text and "children 6/6 running" in text
        wait_for(lambda: "PnL total" in screen(), 20, what="positions and PnL shown")
        subprocess.run(["tmux", "-S", sock, "send-keys", "-t", session, "q"], check=True)
        wait_for(lambda: subprocess.run(["tmux", "-S", sock, "has-session", "-t", session],
                                        capture_output=True).returncode != 0, 10, what="top exits on q")
    finally:
        subprocess.run(["tmux", "-S", sock, "kill-server"], capture_output=True)
        time.sleep(0.1)


def test_top_without_a_terminal_prints_one_frame(daemon):
    d = daemon(shipped_body())
    out = d.ctl("top")
    assert out.returncode == 0 and "ingestor.sim" in out.stdout and "FEED" in out.stdout
