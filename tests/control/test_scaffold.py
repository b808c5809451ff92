"""`wispctl init` and `wispctl new strategy` make a project that runs as it is."""

from __future__ import annotations

import subprocess

from tests.helpers import BIN, Daemon, wait_for


def test_init_then_new_strategy_then_run(short_tmp, mark):
    proj = short_tmp / "proj"
    out = subprocess.run([str(BIN / "wispctl"), "init", str(proj)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert (proj / "strategies" / "starter.py").exists() and (proj / "README.md").exists()
    config = proj / "config" / "wispd.toml"
    new = subprocess.run([str(BIN / "wispctl"), "--config", str(config), "new", "strategy", "second_idea"],
                         capture_output=True, text=True)
    assert new.returncode == 0 and (proj / "strategies" / "second_idea.py").exists()
    again = subprocess.run([str(BIN / "wispctl"), "--config", str(config), "new", "strategy", "second_idea"],
                           capture_output=True, text=True)
    assert again.returncode == 1 and "already" in again.stderr
    bad = subprocess.run([str(BIN / "wispctl"), "--config", str(config), "new", "strategy", "Bad-Name"],
                         capture_output=True, text=True)
    assert bad.returncode == 1 and "lowercase" in bad.stderr
    assert subprocess.run([str(BIN / "wispctl"), "init", str(proj)], capture_output=True).returncode == 1

    d = Daemon(short_tmp, "", mark)
    d.config, d.tmp = config, proj / "var"
    try:
        d.start()
        for name in ("starter", "second_idea"):
            wait_for(lambda n=name: d.child(n)["status"].get("phase") == "tick", 30, what=f"{name} ticking")
    finally:
        d.stop()
        d.kill()
