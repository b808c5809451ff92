"""wispctl reaches a running daemon with only the control socket's location; when it cannot, it says why
(permission denied is not "not running"); a halt that cannot be saved still halts, and says it will not
survive a restart."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.helpers import BIN, wait_for

BODY = """
[exchanges.sim]
driver = "sim"
pairs = ["BTC-USDT"]
[executors.paper]
exchanges = ["sim"]
"""

LIVE_EXTRA = """
[exchanges.bn]
driver = "binance"
api_base = "http://127.0.0.1:1"
[executors.live]
mode = "live"
exchanges = ["bn"]
api_key_env = "WT_UNSET_KEY"
secret_env = "WT_UNSET_SECRET"
"""


def test_wispctl_needs_only_the_daemon_section(daemon):
    d = daemon(BODY)
    # The operator's copy of the config names live credentials that are not set in this shell, and a
    # strategy file that does not exist: wispctl reads [daemon] alone, so it still reaches wispd.
    other = d.tmp / "operator.toml"
    other.write_text(d.config.read_text() + LIVE_EXTRA + '[strategies.gone]\nfile = "nope.py"\n')
    env = {k: v for k, v in d.env().items() if not k.startswith("WT_UNSET")}
    done = subprocess.run([str(BIN / "wispctl"), "--config", str(other), "status"], env=env, capture_output=True,
                          text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert "ingestor.sim" in done.stdout


def _as_nobody(argv: list[str]) -> tuple[int, str]:
    """Run wispctl's main in a forked copy of this process that has become user nobody (no new exec: the
    interpreter may live where nobody cannot read)."""
    from wispd.cli import ctl

    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 2
        try:
            os.close(r)
            sys.stderr = open(w, "w", closefd=False)  # noqa: SIM115
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            code = ctl.main(argv)
        finally:
            sys.stderr.flush()
            os._exit(code)
    os.close(w)
    err = b""
    while chunk := os.read(r, 65536):
        err += chunk
    os.close(r)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), err.decode()


def test_another_user_is_told_permission_denied_not_not_running(daemon):
    d = daemon(BODY)
    public = Path(tempfile.mkdtemp(prefix="wt-pub-"))
    try:
        public.chmod(0o755)
        config = public / "wispd.toml"
        shutil.copy(d.config, config)
        config.chmod(0o644)
        for argv in (["--config", str(config), "status"], ["--socket", str(d.tmp / "run" / "control.sock"), "status"]):
            code, err = _as_nobody(argv)
            assert code == 1 and "permission denied" in err and "not running" not in err, (argv, err)
    finally:
        shutil.rmtree(public, ignore_errors=True)


def test_a_halt_that_cannot_be_saved_still_halts_and_says_so(daemon):
    d = daemon(BODY)
    wait_for(lambda: d.child("executor.paper")["status"].get("phase") == "trading", 10, what="trading")
    (d.tmp / "state" / "desired.tmp").mkdir()  # where the atomic write goes first: now it cannot
    done = d.ctl("halt")
    assert done.returncode == 1
    assert "halted in memory on 1 executor(s)" in done.stderr and "will NOT survive a restart" in done.stderr
    wait_for(lambda: d.child("executor.paper")["status"].get("phase") == "halted", 10, what="halted anyway")
    assert d.status()["daemon"]["trading_halted"] is True
    again = d.ctl("halt")  # a second halt tries to save again (and says the same)
    assert again.returncode == 1 and "will NOT survive" in again.stderr
    os.rmdir(d.tmp / "state" / "desired.tmp")
    third = d.ctl("halt")  # once it can be written, it is
    assert third.returncode == 0, third.stderr
    assert '"halted": true' in (d.tmp / "state" / "desired.json").read_text().replace(":true", ": true")
