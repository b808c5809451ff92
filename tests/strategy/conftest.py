"""Signals built outside a running strategy (unit tests) see the exchanges a test daemon configures: the sim
with spot pairs BTC-USDT and ETH-USDT and the perp pair BTC-USDC, and a spot-only Binance."""

from __future__ import annotations

import pytest

from wispd.strategy import venues

SIM_VENUES = {"sim": {"markets": ["spot", "perp"], "pairs": {"spot": ["BTC-USDT", "ETH-USDT"], "perp": ["BTC-USDC"]}},
              "bn": {"markets": ["spot"], "pairs": {"spot": ["BTC-USDT"]}}}


@pytest.fixture(autouse=True)
def sim_venues():
    venues.install(venues.Venues(SIM_VENUES))
    yield
    venues._current.clear()
