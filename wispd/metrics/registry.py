"""The registry a child process counts into; its snapshot travels to wispd over the supervisor link.

Values are cumulative since the process started. wispd adds the last values of earlier incarnations (see
``aggregate.py``), so a counter in the exposition never goes backwards when a child restarts.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Any

LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                   5.0, 10.0)

Labels = tuple[tuple[str, str], ...]


_KEYS: dict[tuple[Any, ...], Labels] = {}  # the same few hundred label sets come back every second
_KEYS_MAX = 100_000


def labels_key(labels: dict[str, Any]) -> Labels:
    """The canonical (sorted, stringified) form of a label set, memoized: the supervisor builds thousands
    of series a second with 100 children (bench/scale.py), and sorting each one again was most of its CPU."""
    raw = tuple(labels.items())
    try:
        return _KEYS[raw]
    except KeyError:
        pass
    except TypeError:  # an unhashable label value: not memoized
        return tuple(sorted((k, str(v)) for k, v in raw))
    key = tuple(sorted((k, str(v)) for k, v in raw))
    if len(_KEYS) >= _KEYS_MAX:
        _KEYS.clear()
    _KEYS[raw] = key
    return key


class Registry:
    def __init__(self) -> None:
        self.counters: dict[tuple[str, Labels], float] = {}
        self.gauges: dict[tuple[str, Labels], float] = {}
        self.hists: dict[tuple[str, Labels], list[Any]] = {}  # [bounds, counts (per bucket + inf), sum, count]

    def inc(self, name: str, value: float = 1.0, **labels: Any) -> None:
        key = (name, labels_key(labels))
        self.counters[key] = self.counters.get(key, 0.0) + value

    def set(self, name: str, value: float, **labels: Any) -> None:
        self.gauges[(name, labels_key(labels))] = float(value)

    def observe(self, name: str, value: float, buckets: tuple[float, ...] = LATENCY_BUCKETS, **labels: Any) -> None:
        key = (name, labels_key(labels))
        h = self.hists.get(key)
        if h is None:
            h = self.hists[key] = [buckets, [0] * (len(buckets) + 1), 0.0, 0]
        h[1][bisect_left(h[0], value)] += 1
        h[2] += value
        h[3] += 1

    def snapshot(self) -> dict[str, Any]:
        """Plain lists, ready for orjson."""
        return {
            "c": [[n, dict(lb), v] for (n, lb), v in self.counters.items()],
            "g": [[n, dict(lb), v] for (n, lb), v in self.gauges.items()],
            "h": [[n, dict(lb), list(h[0]), list(h[1]), h[2], h[3]] for (n, lb), h in self.hists.items()],
        }
