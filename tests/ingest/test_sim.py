"""The simulated exchange: seeded and reproducible, a sane book on the tick grid, candles from trades."""

from __future__ import annotations

from decimal import Decimal

from wispd.ingest.sim import SimSymbol, default_tick


def make(seed: int = 7) -> SimSymbol:
    return SimSymbol("BTC-USDT", "spot", 60000.0, Decimal("0.1"), Decimal("0.0001"), 10, 0.8, 3.0, seed)


def test_same_seed_same_path_different_seed_different_path():
    a, b, c = make(7), make(7), make(8)
    path_a = [a.step(0.2)["bids"][0][0] for _ in range(200)]
    path_b = [b.step(0.2)["bids"][0][0] for _ in range(200)]
    path_c = [c.step(0.2)["bids"][0][0] for _ in range(200)]
    assert path_a == path_b and path_a != path_c


def test_book_is_sane():
    sym = make()
    for _ in range(500):
        ev = sym.step(0.2)
        bids, asks = ev["bids"], ev["asks"]
        assert len(bids) == len(asks) == 10
        assert bids[0][0] < asks[0][0] and (asks[0][0] - bids[0][0]) <= Decimal("0.2")
        assert all(bids[i][0] > bids[i + 1][0] for i in range(9)) and all(asks[i][0] < asks[i + 1][0] for i in range(9))
        assert all(p % Decimal("0.1") == 0 and q > 0 and q % Decimal("0.0001") == 0 for p, q in bids + asks)
        for t in ev["trades"]:
            assert t["px"] in (bids[0][0], asks[0][0]) and t["qty"] > 0


def test_history_is_contiguous_closed_and_ends_near_the_current_price():
    sym = make()
    candles = sym.history("5m", 50, 1_800_000_000_000, seed=7)
    assert len(candles) == 50 and all(c["closed"] for c in candles)
    assert [c["t"] for c in candles] == [candles[0]["t"] + i * 300_000 for i in range(50)]
    assert candles[-1]["t"] + 300_000 <= 1_800_000_000_000
    assert abs(float(candles[-1]["c"]) - 60000) < 60000 * 0.01
    for c in candles:
        assert Decimal(c["l"]) <= min(Decimal(c["o"]), Decimal(c["c"])) <= Decimal(c["h"])
    assert sym.history("5m", 50, 1_800_000_000_000, seed=7) == candles  # reproducible


def test_default_tick():
    assert default_tick(60000) == Decimal("0.1") and default_tick(3000) == Decimal("0.01")
    assert default_tick(0.5) == Decimal("0.000001")
