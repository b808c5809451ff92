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


def test_two_init_projects_run_side_by_side_each_with_its_own_metrics(short_tmp, mark):
    import re
    import urllib.request

    daemons = []
    try:
        ports = []
        for name in ("one", "two"):
            proj = short_tmp / name
            assert subprocess.run([str(BIN / "wispctl"), "init", str(proj)], capture_output=True).returncode == 0
            config = proj / "config" / "wispd.toml"
            ports.append(int(re.search(r'^bind = "127\.0\.0\.1:(\d+)"', config.read_text(), re.M).group(1)))
            d = Daemon(short_tmp, "", mark)
            d.config, d.tmp = config, proj / "var"
            daemons.append(d.start())  # the first one holds its port while the second is created and started
        assert ports[0] != ports[1] and all(p > 0 for p in ports)
        for d, port in zip(daemons, ports, strict=True):
            url = d.status()["daemon"]["metrics_url"]
            assert url == f"http://127.0.0.1:{port}/metrics"
            assert b"wispd_up 1.0" in urllib.request.urlopen(url, timeout=5).read()
    finally:
        for d in daemons:
            d.stop()
            d.kill()
