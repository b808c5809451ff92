"""A scrape is answered with series built for it: the metrics thread asks the supervisor's loop for fresh
series and waits for them (at most FRESH_WAIT_S, then the last snapshot is served), so nothing is built
every second for nobody, and what a scrape shows is as new as the scrape."""

from __future__ import annotations

import threading
import time
import urllib.request

from hypothesis import given, settings
from hypothesis import strategies as st

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


def _reference(series: dict) -> bytes:
    """prometheus_client's own rendering of the same snapshot (what wispd used before its own renderer)."""
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

    from wispd.metrics.catalogue import CATALOGUE

    class Collector:
        def collect(self):
            fams = {}
            for name, meta in CATALOGUE.items():
                cls = {"counter": CounterMetricFamily, "gauge": GaugeMetricFamily}.get(meta.type, HistogramMetricFamily)
                fams[name] = cls(name[:-6] if meta.type == "counter" else name, meta.help, labels=meta.labels)

            def values(name, labels):
                return [dict(labels).get(label, "") for label in CATALOGUE[name].labels]

            for kind, want in (("c", "counter"), ("g", "gauge")):
                for (name, labels), value in series[kind].items():
                    if name in CATALOGUE and CATALOGUE[name].type == want:
                        fams[name].add_metric(values(name, labels), value)
            for (name, labels), (bounds, counts, total, _n) in series["h"].items():
                if name in CATALOGUE and CATALOGUE[name].type == "histogram":
                    acc, cumulative = 0, []
                    for bound, n in zip([*map(str, bounds), "+Inf"], counts, strict=False):
                        acc += n
                        cumulative.append((bound, acc))
                    fams[name].add_metric(values(name, labels), cumulative, total)
            return [f for f in fams.values() if f.samples]

    reg = CollectorRegistry(auto_describe=False)
    reg.register(Collector())
    return generate_latest(reg)


LABEL_TEXT = st.sampled_from(['plain', 'a"quote', 'back\\slash', 'new\nline', '', 'ünïcode', 'x' * 30])
NUMBER = st.one_of(st.floats(allow_nan=False), st.integers(-10**6, 10**18).map(float))


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_the_exposition_is_what_prometheus_client_would_write(data: st.DataObject):
    from wispd.metrics.catalogue import CATALOGUE
    from wispd.metrics.registry import labels_key

    series: dict = {"c": {}, "g": {}, "h": {}}
    for name in data.draw(st.lists(st.sampled_from(sorted(CATALOGUE)), max_size=25)):
        meta = CATALOGUE[name]
        labels = {label: data.draw(LABEL_TEXT) for label in meta.labels if data.draw(st.booleans())}
        key = (name, labels_key(labels))
        if meta.type == "histogram":
            bounds = sorted(data.draw(st.sets(st.floats(1e-4, 10), min_size=1, max_size=5)))
            counts = data.draw(st.lists(st.integers(0, 100), min_size=len(bounds) + 1, max_size=len(bounds) + 1))
            series["h"][key] = [bounds, counts, data.draw(st.floats(0, 1e6)), sum(counts)]
        else:
            series["c" if meta.type == "counter" else "g"][key] = data.draw(NUMBER)
    assert exposition.render(series) == _reference(series)
    # The same label sets with new values (the next scrape: line prefixes are remembered, values never)
    for kind in ("c", "g"):
        series[kind] = {key: data.draw(NUMBER) for key in series[kind]}
    assert exposition.render(series) == _reference(series)
