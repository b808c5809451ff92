"""Indicators against published reference values (StockCharts' RSI and moving-average tables) and against
hand computations where no published table is at hand."""

from __future__ import annotations

from decimal import Decimal

import pytest

from wispd.strategy import indicators as ind
from wispd.strategy.types import Kline

# StockCharts "Relative Strength Index" spreadsheet: closes and the published RSI(14) column.
RSI_CLOSES = [44.3389, 44.0902, 44.1497, 43.6124, 44.2778, 44.8264, 45.0955, 45.4245, 45.8433, 46.0826, 45.8931,
              46.0328, 45.6140, 46.2820, 46.2820, 46.0028, 46.0328, 46.4116, 46.2222, 45.6439, 46.2122, 46.2521,
              45.7137, 46.4515, 45.7835, 45.3548, 44.0288, 44.1783, 44.2181, 44.5672, 43.4205, 42.6628, 43.1314]
RSI_PUBLISHED = [70.53, 66.32, 66.55, 69.41, 66.36, 57.97, 62.93, 63.26, 56.06, 62.38, 54.71, 50.42, 39.99, 41.46,
                 41.87, 45.46, 37.30, 33.09, 37.79]
# StockCharts "Moving Averages": closes, 10-day SMA and EMA columns.
MA_CLOSES = [22.27, 22.19, 22.08, 22.17, 22.18, 22.13, 22.23, 22.43, 22.24, 22.29, 22.15, 22.39, 22.38, 22.61, 23.36,
             24.05, 23.75, 23.83, 23.95, 23.63, 23.82, 23.87, 23.65, 23.19, 23.10, 23.33, 22.68, 23.10, 22.40, 22.17]
EMA_PUBLISHED = [22.22, 22.21, 22.24, 22.27, 22.33, 22.52, 22.80, 22.97, 23.13, 23.28, 23.34, 23.43, 23.51, 23.54,
                 23.47, 23.40, 23.39, 23.26, 23.23, 23.08, 22.92]
SMA_PUBLISHED = [22.22, 22.21, 22.23, 22.26, 22.31, 22.42, 22.61, 22.77, 22.91, 23.08, 23.21, 23.38, 23.53, 23.65,
                 23.71, 23.69, 23.61, 23.51, 23.43, 23.28, 23.13]


def k(h: float, low: float, c: float, v: float = 1.0, o: float | None = None) -> Kline:
    d = Decimal
    return Kline(0, d(str(o if o is not None else c)), d(str(h)), d(str(low)), d(str(c)), d(str(v)), True)


def test_rsi_matches_the_published_wilder_table():
    got = [x for x in ind.rsi(RSI_CLOSES, 14, series=True) if x is not None]
    assert len(got) == len(RSI_PUBLISHED)
    for mine, ref in zip(got, RSI_PUBLISHED, strict=True):
        assert mine == pytest.approx(ref, abs=0.03)
    assert ind.rsi(RSI_CLOSES, 14) == got[-1]
    assert ind.rsi(RSI_CLOSES[:14], 14) is None


def test_sma_and_ema_match_published_tables():
    ema = [x for x in ind.ema(MA_CLOSES, 10, series=True) if x is not None]
    sma = [x for x in ind.sma(MA_CLOSES, 10, series=True) if x is not None]
    assert ema == pytest.approx(EMA_PUBLISHED, abs=0.011)
    assert sma == pytest.approx(SMA_PUBLISHED, abs=0.011)


def test_macd_is_the_ema_difference_and_its_signal():
    closes = RSI_CLOSES * 2
    m = ind.macd(closes, 12, 26, 9)
    e12, e26 = ind.ema(closes, 12), ind.ema(closes, 26)
    assert m.macd == pytest.approx(e12 - e26)
    line = [a - b for a, b in zip(ind.ema(closes, 12, series=True), ind.ema(closes, 26, series=True), strict=True)
            if a is not None and b is not None]
    assert m.signal == pytest.approx(ind.ema(line, 9)) and m.histogram == pytest.approx(m.macd - m.signal)
    with pytest.raises(ValueError):
        ind.macd(closes, 26, 12)


def test_bollinger_by_hand():
    b = ind.bollinger([1, 2, 3, 4, 5], 5, 2.0)
    assert b.middle == 3 and b.upper == pytest.approx(3 + 2 * 2 ** 0.5) and b.lower == pytest.approx(3 - 2 * 2 ** 0.5)


def test_atr_by_hand():
    bars = [k(10, 8, 9), k(11, 9, 10), k(12, 9, 11), k(11, 10, 10)]
    # true ranges: 2, 2, 3, max(1, |11-11|, |10-11|) = 1; first ATR(2) = 2, then (2*1+3)/2 = 2.5, (2.5+1)/2 = 1.75
    assert ind.atr(bars, 2, series=True) == [None, 2.0, 2.5, 1.75]


def test_stochastic_by_hand():
    bars = [k(10, 0, 5), k(10, 0, 10), k(20, 10, 15), k(20, 10, 20)]
    s = ind.stochastic(bars, 2, 2, series=True)
    # %K: [-, 100*(10-0)/(10-0)=100, 100*(15-0)/(20-0)=75, 100*(20-10)/(20-10)=100]; %D(2): -, -, 87.5, 87.5
    assert s[2].k == 75 and s[2].d == 87.5 and s[3].k == 100 and s[3].d == 87.5


def test_vwap_by_hand():
    bars = [k(3, 1, 2, v=10), k(6, 4, 5, v=30)]  # typical 2 and 5
    assert ind.vwap(bars) == pytest.approx((2 * 10 + 5 * 30) / 40)


def test_bad_period():
    with pytest.raises(ValueError):
        ind.sma([1, 2, 3], 0)
