"""Technical indicators over candles (or plain closes): float math, the one place floats are allowed.

Every function returns the latest value (``None`` until there is enough data) and, with ``series=True``,
the whole series aligned with the input (``None`` where undefined). Definitions follow the usual
references: Wilder's smoothing for RSI and ATR, SMA-seeded EMA, MACD 12/26/9, Bollinger with the
population standard deviation, slow-%D Stochastic, session VWAP from typical price.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, overload

from wispd.strategy.types import Kline

Series = list[float | None]


def _closes(data: Sequence[Any]) -> list[float]:
    return [float(x.close) if isinstance(x, Kline) else float(x) for x in data]


def _hlc(data: Sequence[Kline]) -> tuple[list[float], list[float], list[float]]:
    return [float(k.high) for k in data], [float(k.low) for k in data], [float(k.close) for k in data]


def _check(period: int) -> None:
    if not isinstance(period, int) or period < 1:
        raise ValueError(f"period must be a positive integer, got {period!r}")


def _out(values: Series, series: bool) -> Any:
    return values if series else (values[-1] if values else None)


def sma_series(values: Sequence[float], period: int) -> Series:
    _check(period)
    out: Series = [None] * len(values)
    window = 0.0
    for i, v in enumerate(values):
        window += v
        if i >= period:
            window -= values[i - period]
        if i >= period - 1:
            out[i] = window / period
    return out


def ema_series(values: Sequence[float], period: int) -> Series:
    """EMA seeded with the SMA of the first ``period`` values, multiplier 2/(period+1)."""
    _check(period)
    out: Series = [None] * len(values)
    if len(values) < period:
        return out
    k = 2.0 / (period + 1)
    prev = sum(values[:period]) / period
    out[period - 1] = prev
    for i in range(period, len(values)):
        prev = (values[i] - prev) * k + prev
        out[i] = prev
    return out


@overload
def sma(data: Sequence[Any], period: int, series: Literal[False] = False) -> float | None: ...


@overload
def sma(data: Sequence[Any], period: int, *, series: Literal[True]) -> Series: ...


@overload
def sma(data: Sequence[Any], period: int, series: bool = False) -> float | None | Series: ...


def sma(data: Sequence[Any], period: int, series: bool = False) -> float | None | Series:
    """Simple moving average of the closes over ``period``."""
    return _out(sma_series(_closes(data), period), series)


@overload
def ema(data: Sequence[Any], period: int, series: Literal[False] = False) -> float | None: ...


@overload
def ema(data: Sequence[Any], period: int, *, series: Literal[True]) -> Series: ...


@overload
def ema(data: Sequence[Any], period: int, series: bool = False) -> float | None | Series: ...


def ema(data: Sequence[Any], period: int, series: bool = False) -> float | None | Series:
    """Exponential moving average (seeded with the SMA of the first ``period``)."""
    return _out(ema_series(_closes(data), period), series)


@overload
def rsi(data: Sequence[Any], period: int = 14, series: Literal[False] = False) -> float | None: ...


@overload
def rsi(data: Sequence[Any], period: int = 14, *, series: Literal[True]) -> Series: ...


@overload
def rsi(data: Sequence[Any], period: int = 14, series: bool = False) -> float | None | Series: ...


def rsi(data: Sequence[Any], period: int = 14, series: bool = False) -> float | None | Series:
    """Wilder's RSI: first averages are simple means of the first ``period`` changes, then smoothed."""
    _check(period)
    closes = _closes(data)
    out: Series = [None] * len(closes)
    if len(closes) <= period:
        return _out(out, series)
    gains = [max(0.0, closes[i] - closes[i - 1]) for i in range(1, len(closes))]
    losses = [max(0.0, closes[i - 1] - closes[i]) for i in range(1, len(closes))]
    avg_gain = sum(gains[:period]) / period
    avg_loss = sum(losses[:period]) / period

    def value(g: float, loss: float) -> float:
        if loss == 0:
            return 100.0 if g > 0 else 50.0
        return 100.0 - 100.0 / (1.0 + g / loss)

    out[period] = value(avg_gain, avg_loss)
    for i in range(period + 1, len(closes)):
        avg_gain = (avg_gain * (period - 1) + gains[i - 1]) / period
        avg_loss = (avg_loss * (period - 1) + losses[i - 1]) / period
        out[i] = value(avg_gain, avg_loss)
    return _out(out, series)


@overload
def atr(data: Sequence[Kline], period: int = 14, series: Literal[False] = False) -> float | None: ...


@overload
def atr(data: Sequence[Kline], period: int = 14, *, series: Literal[True]) -> Series: ...


@overload
def atr(data: Sequence[Kline], period: int = 14, series: bool = False) -> float | None | Series: ...


def atr(data: Sequence[Kline], period: int = 14, series: bool = False) -> float | None | Series:
    """Wilder's Average True Range (first value = mean of the first ``period`` true ranges)."""
    _check(period)
    high, low, close = _hlc(data)
    out: Series = [None] * len(close)
    tr = [high[0] - low[0]] + [max(high[i] - low[i], abs(high[i] - close[i - 1]), abs(low[i] - close[i - 1]))
                               for i in range(1, len(close))]
    if len(tr) < period:
        return _out(out, series)
    prev = sum(tr[:period]) / period
    out[period - 1] = prev
    for i in range(period, len(tr)):
        prev = (prev * (period - 1) + tr[i]) / period
        out[i] = prev
    return _out(out, series)


@dataclass(frozen=True)
class MACD:
    macd: float
    signal: float
    histogram: float


@overload
def macd(data: Sequence[Any], fast: int = 12, slow: int = 26, signal: int = 9, series: Literal[False] = False) -> MACD | None: ...


@overload
def macd(data: Sequence[Any], fast: int = 12, slow: int = 26, signal: int = 9, *, series: Literal[True]) -> list[MACD | None]: ...


@overload
def macd(data: Sequence[Any], fast: int = 12, slow: int = 26, signal: int = 9, series: bool = False) -> MACD | None | list[MACD | None]: ...


def macd(data: Sequence[Any], fast: int = 12, slow: int = 26, signal: int = 9, series: bool = False) -> MACD | None | list[MACD | None]:
    """MACD line (EMA fast - EMA slow), its signal EMA and the histogram."""
    if fast >= slow:
        raise ValueError("fast period must be shorter than slow period")
    closes = _closes(data)
    fast_e, slow_e = ema_series(closes, fast), ema_series(closes, slow)
    line = [f - s if f is not None and s is not None else None for f, s in zip(fast_e, slow_e, strict=True)]
    start = next((i for i, v in enumerate(line) if v is not None), len(line))
    sig_tail = ema_series([v for v in line[start:] if v is not None], signal)
    sig: Series = [None] * start + sig_tail
    out: list[MACD | None] = [MACD(m, s, m - s) if m is not None and s is not None else None
                              for m, s in zip(line, sig, strict=True)]
    return out if series else (out[-1] if out else None)


@dataclass(frozen=True)
class Bands:
    upper: float
    middle: float
    lower: float


@overload
def bollinger(data: Sequence[Any], period: int = 20, stddev: float = 2.0, series: Literal[False] = False) -> Bands | None: ...


@overload
def bollinger(data: Sequence[Any], period: int = 20, stddev: float = 2.0, *, series: Literal[True]) -> list[Bands | None]: ...


@overload
def bollinger(data: Sequence[Any], period: int = 20, stddev: float = 2.0, series: bool = False) -> Bands | None | list[Bands | None]: ...


def bollinger(data: Sequence[Any], period: int = 20, stddev: float = 2.0, series: bool = False) -> Bands | None | list[Bands | None]:
    """Middle band = SMA(period), upper/lower = middle +/- ``stddev`` population standard deviations."""
    _check(period)
    closes = _closes(data)
    out: list[Bands | None] = [None] * len(closes)
    for i in range(period - 1, len(closes)):
        window = closes[i - period + 1:i + 1]
        mean = sum(window) / period
        sd = math.sqrt(sum((x - mean) ** 2 for x in window) / period)
        out[i] = Bands(mean + stddev * sd, mean, mean - stddev * sd)
    return out if series else (out[-1] if out else None)


@dataclass(frozen=True)
class Stoch:
    k: float
    d: float


@overload
def stochastic(data: Sequence[Kline], k_period: int = 14, d_period: int = 3, series: Literal[False] = False) -> Stoch | None: ...


@overload
def stochastic(data: Sequence[Kline], k_period: int = 14, d_period: int = 3, *, series: Literal[True]) -> list[Stoch | None]: ...


@overload
def stochastic(data: Sequence[Kline], k_period: int = 14, d_period: int = 3, series: bool = False) -> Stoch | None | list[Stoch | None]: ...


def stochastic(data: Sequence[Kline], k_period: int = 14, d_period: int = 3, series: bool = False) -> Stoch | None | list[Stoch | None]:
    """%K = 100 (close - lowest low) / (highest high - lowest low) over ``k_period``; %D = SMA of %K."""
    _check(k_period)
    _check(d_period)
    high, low, close = _hlc(data)
    k: Series = [None] * len(close)
    for i in range(k_period - 1, len(close)):
        hh, ll = max(high[i - k_period + 1:i + 1]), min(low[i - k_period + 1:i + 1])
        k[i] = 50.0 if hh == ll else 100.0 * (close[i] - ll) / (hh - ll)
    out: list[Stoch | None] = [None] * len(close)
    for i in range(k_period + d_period - 2, len(close)):
        window = k[i - d_period + 1:i + 1]
        if all(v is not None for v in window):
            out[i] = Stoch(k[i], sum(window) / d_period)  # type: ignore[arg-type, misc]
    return out if series else (out[-1] if out else None)


@overload
def vwap(data: Sequence[Kline], series: Literal[False] = False) -> float | None: ...


@overload
def vwap(data: Sequence[Kline], *, series: Literal[True]) -> Series: ...


@overload
def vwap(data: Sequence[Kline], series: bool = False) -> float | None | Series: ...


def vwap(data: Sequence[Kline], series: bool = False) -> float | None | Series:
    """Cumulative VWAP of the given candles from typical price (high + low + close) / 3."""
    high, low, close = _hlc(data)
    out: Series = []
    pv = vol = 0.0
    for i, k in enumerate(data):
        v = float(k.volume)
        pv += (high[i] + low[i] + close[i]) / 3 * v
        vol += v
        out.append(pv / vol if vol else None)
    return _out(out, series)
