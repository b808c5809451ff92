"""wispd's side of child metrics: snapshots folded across restarts, gauges dropped with their process.

For each child: ``base`` holds the counters and histograms of its earlier incarnations; ``current`` the
latest snapshot of the running one. Exposed = base + current for counters and histograms (monotonic across
restarts), current only for gauges (a dead process leaves no gauge behind). A child removed by a reload
loses all its series.
"""

from __future__ import annotations

import math
from typing import Any

from wispd.metrics.catalogue import CATALOGUE
from wispd.metrics.registry import Labels, labels_key

MAX_SERIES = 20_000  # per child and kind: a child's snapshot beyond this is cut


def _num(v: Any) -> bool:
    t = type(v)
    if t is float:
        return math.isfinite(v)
    if t is int:  # (decoded JSON: at most 64 bits, always finite)
        return True
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _labels(wanted: tuple[str, ...], raw: Any) -> dict[str, str] | None:
    """The catalogue's labels of a series, as text of at most 200 characters. A label that is already such
    a text is taken as it is: an executor's snapshot with 100 strategies is ~500 series a second, and
    converting and cutting every value again was a sixth of the supervisor's time (tests/metrics hold this
    to the plain conversion)."""
    if not isinstance(raw, dict):
        return None
    out = {}
    for k in wanted:
        if k in raw:
            v = raw[k]
            out[k] = v if type(v) is str and len(v) <= 200 else str(v)[:200]
    return out


def clean_series(snapshot: Any) -> tuple[dict[str, Any], int]:
    """A child's metric snapshot as wispd will fold it: only series of the catalogue, with its labels,
    finite numbers and histograms of a consistent shape. Returns (clean snapshot, entries dropped): one
    malformed entry costs only itself, never the scrape or the supervisor."""
    out: dict[str, list[Any]] = {"c": [], "g": [], "h": []}
    dropped = 0
    if not isinstance(snapshot, dict):
        return out, 1
    for kind, want in (("c", "counter"), ("g", "gauge"), ("h", "histogram")):
        entries = snapshot.get(kind) or []
        if not isinstance(entries, list):
            dropped += 1
            continue
        for entry in entries[:MAX_SERIES]:
            clean = _entry(entry, want)
            if clean is None:
                dropped += 1
            else:
                out[kind].append(clean)
        dropped += max(0, len(entries) - MAX_SERIES)
    return out, dropped


def _entry(entry: Any, want: str) -> list[Any] | None:
    if not isinstance(entry, list) or not entry or not isinstance(entry[0], str):
        return None
    meta = CATALOGUE.get(entry[0])
    if meta is None or meta.type != want:
        return None
    if want != "histogram":
        if len(entry) != 3 or not _num(entry[2]) or (want == "counter" and entry[2] < 0):
            return None
        labels = _labels(meta.labels, entry[1])
        return None if labels is None else [entry[0], labels, float(entry[2])]
    if len(entry) != 6:
        return None
    name, raw_labels, bounds, counts, total, count = entry
    labels = _labels(meta.labels, raw_labels)
    if labels is None or not isinstance(bounds, list) or not isinstance(counts, list) or not 0 < len(bounds) <= 64 \
            or len(counts) != len(bounds) + 1 or not all(_num(b) for b in bounds) or bounds != sorted(bounds) \
            or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in counts) \
            or not _num(total) or not isinstance(count, int) or isinstance(count, bool) or count < 0:
        return None
    return [name, labels, [float(b) for b in bounds], list(counts), float(total), count]

Key = tuple[str, Labels]


class ChildSeries:
    def __init__(self) -> None:
        self.base_c: dict[Key, float] = {}
        self.base_h: dict[Key, list[Any]] = {}
        self.current: dict[str, Any] = {}
        # What a scrape reads, built once per snapshot (a child sends one every few seconds; with 200 children
        # rebuilding every label key on every scrape was most of a scrape's time). Read-only for callers.
        self._c: dict[Key, float] | None = None
        self._g: dict[Key, float] | None = None
        self._h: dict[Key, list[Any]] | None = None

    def update(self, snapshot: dict[str, Any]) -> None:
        if isinstance(snapshot, dict):
            self.current = snapshot
            self._c = self._g = self._h = None

    def fold(self) -> None:
        """The process ended: its last counts become part of the base; its gauges go."""
        for name, labels, value in self.current.get("c", []):
            key = (name, labels_key(labels))
            self.base_c[key] = self.base_c.get(key, 0.0) + float(value)
        for name, labels, bounds, counts, total, count in self.current.get("h", []):
            key = (name, labels_key(labels))
            base = self.base_h.get(key)
            if base is None or base[0] != bounds:
                self.base_h[key] = [bounds, list(counts), total, count]
            else:
                base[1] = [a + b for a, b in zip(base[1], counts, strict=False)]
                base[2] += total
                base[3] += count
        self.current = {}
        self._c = self._g = self._h = None

    def counters(self) -> dict[Key, float]:
        if self._c is None:
            self._c = self._counters()
        return self._c

    def gauges(self) -> dict[Key, float]:
        if self._g is None:
            self._g = {(name, labels_key(labels)): float(value) for name, labels, value in self.current.get("g", [])}
        return self._g

    def histograms(self) -> dict[Key, list[Any]]:
        if self._h is None:
            self._h = self._histograms()
        return self._h

    def _counters(self) -> dict[Key, float]:
        out = dict(self.base_c)
        for name, labels, value in self.current.get("c", []):
            key = (name, labels_key(labels))
            out[key] = out.get(key, 0.0) + float(value)
        return out

    def _histograms(self) -> dict[Key, list[Any]]:
        out = {k: [v[0], list(v[1]), v[2], v[3]] for k, v in self.base_h.items()}
        for name, labels, bounds, counts, total, count in self.current.get("h", []):
            key = (name, labels_key(labels))
            if key in out and out[key][0] == bounds:
                out[key][1] = [a + b for a, b in zip(out[key][1], counts, strict=False)]
                out[key][2] += total
                out[key][3] += count
            else:
                out[key] = [bounds, list(counts), total, count]
        return out
