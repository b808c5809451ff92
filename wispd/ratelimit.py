"""One token bucket, for everything wispd rate-limits: log lines about bad input, and strategies that keep
sending bad signals (they are throttled; the account is not)."""

from __future__ import annotations

import time
from collections.abc import Callable


class TokenBucket:
    """``burst`` tokens, refilled at ``rate`` per second; ``take()`` is False when empty."""

    __slots__ = ("rate", "burst", "tokens", "stamp", "clock")

    def __init__(self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.burst, self.clock = rate, burst, clock
        self.tokens, self.stamp = burst, clock()

    def take(self, n: float = 1.0) -> bool:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= n:
            self.tokens -= n
            return True
        return False

    @property
    def empty(self) -> bool:
        self.take(0)
        return self.tokens < 1


class KeyedBuckets:
    """A bucket per key (a strategy, a kind of bad input), made on first use, at most ``max_keys`` kept."""

    def __init__(self, rate: float, burst: float, max_keys: int = 10_000) -> None:
        self.rate, self.burst, self.max_keys = rate, burst, max_keys
        self.buckets: dict[str, TokenBucket] = {}

    def get(self, key: str) -> TokenBucket:
        bucket = self.buckets.get(key)
        if bucket is None:
            if len(self.buckets) >= self.max_keys:
                self.buckets.pop(next(iter(self.buckets)))
            bucket = self.buckets[key] = TokenBucket(self.rate, self.burst)
        return bucket

    def take(self, key: str) -> bool:
        return self.get(key).take()
