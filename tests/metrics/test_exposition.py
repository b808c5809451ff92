"""A scrape is answered with series built for it: the metrics thread asks the supervisor's loop for fresh
series and waits for them (at most FRESH_WAIT_S, then the last snapshot is served), so nothing is built
every second for nobody, and what a scrape shows is as new as the scrape."""

from __future__ import annotations

import threading
import time
import urllib.request

from wispd.metrics import exposition
from wispd.metrics.exposition import MetricsServer

BODY = '[processes.p]\nentry = "tests.kinds:well_behaved"\n'


def _scrape(server: MetricsServer) -> tuple[float, str]:
    t0 = time.monotonic()
    text = urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=10).read().decode()
    return time.monotonic() - t0, text


def _up(text: str) -> float:
    return float(next(line.split()[1] for line in text.splitlines() if line.startswith("wispd_up ")))


def test_a_scrape_gets_series_built_after_it_asked():
    asked = threading.Event()
    server = MetricsServer("127.0.0.1", 0, lambda strict: (200, {}), on_want=asked.set)
    server.start()
    try:
        server.publish({"c": {}, "g": {("wispd_up", ()): 1.0}, "h": {}})
        seen: list[float] = []
        scraper = threading.Thread(target=lambda: seen.append(_up(_scrape(server)[1])))
        scraper.start()
        assert asked.wait(5)  # the scrape asked for fresh series ...
        server.publish({"c": {}, "g": {("wispd_up", ()): 2.0}, "h": {}})  # ... the loop built them
        scraper.join(10)
        assert seen == [2.0] and not server.wanted
    finally:
        server.stop()


def test_a_scrape_the_loop_cannot_answer_gets_the_last_snapshot_in_bounded_time():
    server = MetricsServer("127.0.0.1", 0, lambda strict: (200, {}), on_want=lambda: None)
    server.start()
    try:
        server.publish({"c": {}, "g": {("wispd_up", ()): 1.0}, "h": {}})
        took, text = _scrape(server)
        assert _up(text) == 1.0 and took < exposition.FRESH_WAIT_S + 2.0
    finally:
        server.stop()


def test_a_daemons_scrape_shows_a_state_change_at_once(daemon):
    d = daemon(BODY)
    url = d.status()["daemon"]["metrics_url"]
    assert d.ctl("stop", "p").returncode == 0
    text = urllib.request.urlopen(url, timeout=10).read().decode()
    up = [line for line in text.splitlines() if line.startswith("wispd_child_up{") and 'child="p"' in line]
    assert up and up[0].endswith(" 0.0"), up
