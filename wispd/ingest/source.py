"""What the ingestor needs from an exchange: the ``Source`` interface (sim and ccxt.pro implement it)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol

from wispd.protocol import Topic


class Source(Protocol):
    name: str

    async def connect(self) -> None:
        """Load markets; raise on failure (the stream loops retry, the start timeout bounds it)."""

    async def close(self) -> None: ...

    def stream(self, topic: Topic) -> AsyncIterator[tuple[str, dict[str, Any], float | None]]:
        """Yield (kind, body, exchange_ts_ms) for one topic until an error is raised."""

    async def history(self, topic: Topic, limit: int) -> list[dict[str, Any]]:
        """The last ``limit`` closed candles of a kline topic."""

    def unknown(self, market: str, symbol: str) -> str | None:
        """Why the exchange has no such pair (naming the close matches), or None when it has it (or cannot
        tell yet: markets not loaded)."""

    async def markets(self, wanted: list[tuple[str, str]]) -> dict[str, Any]:
        """Trading rules ("market:SYMBOL" -> tick, step, min_qty, min_notional, fees) for the executor."""
