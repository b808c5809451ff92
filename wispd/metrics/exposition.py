"""The /metrics and /health HTTP endpoints, served from a thread that only reads finished snapshots.

The supervisor's main loop builds a plain snapshot of every series each sample interval and swaps it in
whole; the HTTP thread turns the current one into Prometheus families. The loop is never blocked by a
scrape, and a scrape never sees half-updated state.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import orjson
from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from wispd.metrics.catalogue import CATALOGUE

Series = dict[str, Any]  # {"c": {(name, labels): v}, "g": {...}, "h": {...}}


class SnapshotCollector:
    def __init__(self) -> None:
        self.series: Series = {"c": {}, "g": {}, "h": {}}

    def collect(self) -> Iterable[Metric]:
        series = self.series
        families: dict[str, Metric] = {}
        for name, meta in CATALOGUE.items():
            if meta.type == "counter":
                families[name] = CounterMetricFamily(name[:-6], meta.help, labels=meta.labels)
            elif meta.type == "gauge":
                families[name] = GaugeMetricFamily(name, meta.help, labels=meta.labels)
            else:
                families[name] = HistogramMetricFamily(name, meta.help, labels=meta.labels)
        for (name, labels), value in series["c"].items():
            fam = families.get(name)
            if fam is not None and CATALOGUE[name].type == "counter":
                fam.add_metric(_values(name, labels), value)
        for (name, labels), value in series["g"].items():
            fam = families.get(name)
            if fam is not None and CATALOGUE[name].type == "gauge":
                fam.add_metric(_values(name, labels), value)
        for (name, labels), (bounds, counts, total, _count) in series["h"].items():
            fam = families.get(name)
            if fam is None or CATALOGUE[name].type != "histogram":
                continue
            cumulative, acc = [], 0
            for bound, n in zip([*map(str, bounds), "+Inf"], counts, strict=False):
                acc += n
                cumulative.append((bound, acc))
            fam.add_metric(_values(name, labels), cumulative, total)
        return [f for f in families.values() if f.samples]


def _values(name: str, labels: tuple[tuple[str, str], ...]) -> list[str]:
    given = dict(labels)
    return [given.get(label, "") for label in CATALOGUE[name].labels]


class _Threading(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's signature
        pass


class MetricsServer:
    def __init__(self, host: str, port: int, health: Callable[[], tuple[bool, dict[str, Any]]]) -> None:
        self.collector = SnapshotCollector()
        registry = CollectorRegistry(auto_describe=False)
        registry.register(self.collector)  # type: ignore[arg-type]
        metrics_app = make_wsgi_app(registry)

        def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            path = environ.get("PATH_INFO", "")
            if path == "/health":
                ok, doc = health()
                start_response("200 OK" if ok else "503 Service Unavailable",
                               [("Content-Type", "application/json")])
                return [orjson.dumps(doc)]
            if path in ("/metrics", "/"):
                return metrics_app(environ, start_response)
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"wispd serves /metrics and /health\n"]

        self.server = make_server(host, port, app, server_class=_Threading, handler_class=_Quiet)
        self.port = self.server.server_port
        self.thread = threading.Thread(target=self.server.serve_forever, name="wispd-metrics", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def publish(self, series: Series) -> None:
        self.collector.series = series

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
