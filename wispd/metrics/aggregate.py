"""wispd's side of child metrics: snapshots folded across restarts, gauges dropped with their process.

For each child: ``base`` holds the counters and histograms of its earlier incarnations; ``current`` the
latest snapshot of the running one. Exposed = base + current for counters and histograms (monotonic across
restarts), current only for gauges (a dead process leaves no gauge behind). A child removed by a reload
loses all its series.
"""

from __future__ import annotations

from typing import Any

from wispd.metrics.registry import Labels, labels_key

Key = tuple[str, Labels]


class ChildSeries:
    def __init__(self) -> None:
        self.base_c: dict[Key, float] = {}
        self.base_h: dict[Key, list[Any]] = {}
        self.current: dict[str, Any] = {}

    def update(self, snapshot: dict[str, Any]) -> None:
        if isinstance(snapshot, dict):
            self.current = snapshot

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

    def counters(self) -> dict[Key, float]:
        out = dict(self.base_c)
        for name, labels, value in self.current.get("c", []):
            key = (name, labels_key(labels))
            out[key] = out.get(key, 0.0) + float(value)
        return out

    def gauges(self) -> dict[Key, float]:
        return {(name, labels_key(labels)): float(value) for name, labels, value in self.current.get("g", [])}

    def histograms(self) -> dict[Key, list[Any]]:
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
