"""/metrics and /health on a live daemon: promtool-clean, scraped by a real Prometheus, never backwards."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

import orjson
import pytest

from tests.helpers import wait_for
from tests.strategy.test_strategies_e2e import shipped_body

needs = pytest.mark.skipif(shutil.which("promtool") is None and not os.environ.get("CI"),
                           reason="promtool not installed (Debian package prometheus; CI installs it)")


def scrape(d) -> str:
    url = d.status()["daemon"]["metrics_url"]
    return urllib.request.urlopen(url, timeout=5).read().decode()


def samples(text: str) -> dict[str, float]:
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


@needs
def test_live_scrape_is_promtool_clean_and_has_the_catalogue(daemon):
    d = daemon(shipped_body())
    wanted = ("wispd_pnl_quote", "wispd_md_lag_seconds_bucket", "wispd_fills_total")
    wait_for(lambda: (lambda text: all(n in text for n in wanted))(scrape(d)), 30, what="every plane reporting")
    text = scrape(d)
    result = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == "" and result.stderr.strip() == "", result
    for name in ("wispd_child_state", "wispd_child_up", "wispd_child_restarts_total", "wispd_child_cpu_seconds_total",
                 "wispd_child_memory_rss_bytes", "wispd_child_heartbeat_age_seconds", "wispd_md_messages_total",
                 "wispd_md_received_total", "wispd_md_lag_seconds_bucket", "wispd_md_staleness_seconds",
                 "wispd_signals_total", "wispd_orders_total", "wispd_fills_total", "wispd_order_to_ack_seconds_bucket",
                 "wispd_signal_to_order_seconds_bucket", "wispd_journal_commit_seconds_bucket",
                 "wispd_position_quantity", "wispd_pnl_quote", "wispd_exposure_quote", "wispd_control_commands_total"):
        assert re.search(rf"^{name}[{{ ]", text, re.M), name


def test_health_endpoint_and_verb(daemon):
    d = daemon('[exchanges.sim]\ndriver = "sim"\npairs = ["BTC-USDT"]\n'
               '[processes.p]\nentry = "tests.kinds:well_behaved"\n'
               '[processes.p.restart]\nbackoff_initial = 60.0\n')  # once killed as hung, it stays down a while
    url = d.status()["daemon"]["metrics_url"].replace("/metrics", "/health")
    wait_for(lambda: d.ctl("health").returncode == 0, 10, what="healthy")
    doc = orjson.loads(urllib.request.urlopen(url, timeout=5).read())
    assert doc["status"] == "ok" and doc["healthy"] is True and doc["problems"] == []
    assert 'wispd_health 0.0' in scrape(d)

    def strict_code() -> int:
        try:
            return urllib.request.urlopen(url + "?strict", timeout=5).status
        except urllib.error.HTTPError as exc:
            return exc.code

    d.ctl("stop", "p")  # an operator stop is degraded: it runs, but not all of it
    out = wait_for(lambda: (r := d.ctl("health")).returncode == 2 and r, 10, what="degraded (stopped)")
    assert out.stdout.startswith("degraded: p stopped by the operator"), out.stdout
    assert urllib.request.urlopen(url, timeout=5).status == 200 and strict_code() == 503
    wait_for(lambda: 'wispd_health 1.0' in scrape(d), 10, what="the gauge at 1")
    d.ctl("start", "p")
    wait_for(lambda: d.ctl("health").returncode == 0, 10, what="ok again")
    assert d.ctl("halt").returncode == 0  # so is a halt
    out = wait_for(lambda: (r := d.ctl("health")).returncode == 2 and r, 10, what="degraded (halted)")
    assert "trading halted" in out.stdout
    assert d.ctl("resume").returncode == 0
    wait_for(lambda: d.ctl("health").returncode == 0, 10, what="ok after resume")
    os.kill(d.child("p")["pid"], signal.SIGSTOP)  # a hung child is failing
    out = wait_for(lambda: (r := d.ctl("health")).returncode == 3 and r, 10, what="failing")
    assert out.stdout.startswith("failing:") and "p " in out.stdout
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(url, timeout=5)
    assert err.value.code == 503
    assert orjson.loads(err.value.read())["status"] == "failing"


def test_kill9_child_counters_continue_and_never_go_backwards(daemon):
    d = daemon(shipped_body())
    wait_for(lambda: samples(scrape(d)).get('wispd_md_messages_total{channel="book",exchange="sim"}', 0) > 20, 30)
    before = samples(scrape(d))
    key_restart = 'wispd_child_restarts_total{child="ingestor.sim",kind="ingestor",reason="signal"}'
    key_msgs = 'wispd_md_messages_total{channel="book",exchange="sim"}'
    key_cpu = 'wispd_child_cpu_seconds_total{child="ingestor.sim",kind="ingestor"}'
    os.kill(d.child("ingestor.sim")["pid"], signal.SIGKILL)
    history = [before]
    end = time.monotonic() + 8
    while time.monotonic() < end:
        history.append(samples(scrape(d)))
        time.sleep(0.25)
    after = history[-1]
    assert after[key_restart] == before[key_restart] + 1
    assert after[key_msgs] > before[key_msgs] and after[key_cpu] >= before[key_cpu]
    assert 'wispd_child_memory_rss_bytes{child="ingestor.sim",kind="ingestor"}' in after  # memory series continues
    counters = [k for k in before if "_total" in k or k.endswith(("_count", "_sum", "_bucket"))]
    for earlier, later in zip(history, history[1:], strict=False):
        for key in counters:
            if key in earlier and key in later:
                assert later[key] >= earlier[key], (key, earlier[key], later[key])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(shutil.which("prometheus") is None and not os.environ.get("CI"),
                    reason="prometheus not installed (Debian package prometheus; CI installs it)")
def test_a_real_prometheus_scrapes_wispd(daemon, short_tmp):
    d = daemon(shipped_body())
    target = d.status()["daemon"]["metrics_url"].split("//")[1].split("/")[0]
    port = _free_port()
    cfg = short_tmp / "prometheus.yml"
    cfg.write_text("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n"
                   f"  - job_name: wispd\n    static_configs:\n      - targets: ['{target}']\n")
    prom = subprocess.Popen(["prometheus", f"--config.file={cfg}", f"--storage.tsdb.path={short_tmp}/tsdb",
                             f"--web.listen-address=127.0.0.1:{port}"], stdout=subprocess.DEVNULL,
                            stderr=open(short_tmp / "prom.log", "wb"), start_new_session=True, env=d.env())

    def query(expr: str) -> list:
        url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        try:
            doc = orjson.loads(urllib.request.urlopen(url, timeout=3).read())
        except OSError:
            return []
        return doc["data"]["result"] if doc.get("status") == "success" else []

    try:
        up = wait_for(lambda: query('wispd_child_up{child="maker"}'), 40, interval=0.5, what="prometheus series")
        assert up[0]["value"][1] == "1"
        wait_for(lambda: query("sum(rate(wispd_md_messages_total[5s])) > 0"), 30, interval=0.5, what="rates")
        assert query('wispd_pnl_quote{component="total"}')
    finally:
        os.killpg(prom.pid, signal.SIGTERM)
        prom.wait(10)
