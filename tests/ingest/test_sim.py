"""The simulated exchange: seeded and reproducible, a sane book on the tick grid, candles from trades."""

from __future__ import annotations

from decimal import Decimal

import pytest

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


T0 = 1_800_000_000_000  # a minute boundary


def source(tmp_path, seed: int = 7, **opts):
    from wispd.ingest.sim import SimSource

    src = SimSource("sim", {"seed": seed, "prices": {"BTC-USDT": 60000.0}, "trade_rate": 20.0, "history_days": 1,
                            **opts}, 10, tmp_path, pairs=[("spot", "BTC-USDT")])
    return src


def run(src, start_ms: float, seconds: float, hz: float = 5.0) -> float:
    """Drive the sim's steps on a synthetic clock (what its engine task does on the wall clock)."""
    key = ("spot", "BTC-USDT")
    src.symbol(*key)
    t = start_ms
    for _ in range(int(seconds * hz)):
        src.advance(key, t, 1 / hz)
        t += 1000 / hz
    return t


def history(src, interval: str, limit: int, now_ms: float) -> list[dict]:
    closed, _ = src.paths[("spot", "BTC-USDT")].candles(interval, limit, int(now_ms))
    return [b.body(interval, True) for b in closed]


def test_closed_candles_never_change_and_each_opens_at_the_previous_close(tmp_path, monkeypatch):
    monkeypatch.setattr("time.time", lambda: T0 / 1000)
    src = source(tmp_path)
    end = run(src, T0, 300)
    first = history(src, "1m", 60, end)
    end = run(src, end, 120)
    later = history(src, "1m", 62, end)
    assert all(c["t"] in {x["t"] for x in later} for c in first[2:])
    by_t = {c["t"]: c for c in later}
    assert all(by_t[c["t"]] == c for c in first if c["t"] in by_t)  # a closed candle is what it was
    for prev, cur in zip(later, later[1:], strict=False):
        assert cur["t"] == prev["t"] + 60_000 and cur["o"] == prev["c"]
        assert Decimal(cur["l"]) <= min(Decimal(cur["o"]), Decimal(cur["c"])) <= Decimal(cur["h"])
    hourly = history(src, "1h", 10, end)
    assert [c["t"] % 3_600_000 for c in hourly] == [0] * len(hourly)
    for prev, cur in zip(hourly, hourly[1:], strict=False):
        assert cur["o"] == prev["c"]
    src.store.close()


def test_live_candles_are_the_ones_history_returns(tmp_path, monkeypatch):
    monkeypatch.setattr("time.time", lambda: T0 / 1000)
    src = source(tmp_path)
    key = ("spot", "BTC-USDT")
    src.symbol(*key)
    from wispd.ingest.sim_path import KlineFeed

    src.feeds[key] = {"1m": KlineFeed(src.paths[key], "1m", T0)}
    seen: list[dict] = []
    src._emit = lambda k, ch, item: seen.append(item[1]) if ch == "kline.1m" and item[1]["closed"] else None
    end = run(src, T0, 250)
    assert len(seen) >= 3
    stored = {c["t"]: c for c in history(src, "1m", 10, end)}
    assert all(stored[c["t"]] == c for c in seen)
    src.store.close()


def test_a_restart_continues_the_same_walk_and_the_same_seed_gives_the_same_series(tmp_path, monkeypatch):
    monkeypatch.setattr("time.time", lambda: T0 / 1000)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    one = source(tmp_path / "a")
    mid = run(one, T0, 100)
    one.store.close()
    resumed = source(tmp_path / "a")  # a restart: same file; it resumes from the last recorded second,
    end = run(resumed, mid - 1000, 101)  # (here restarted exactly then: the walk must not differ at all)
    straight = source(tmp_path / "b")  # the same seed, never stopped
    assert run(straight, T0, 200) == end
    assert history(resumed, "1m", 500, end) == history(straight, "1m", 500, end)
    assert history(resumed, "1s", 150, end) == history(straight, "1s", 150, end)
    (tmp_path / "c").mkdir()
    other = source(tmp_path / "c", seed=8)
    run(other, T0, 200)
    assert history(other, "1m", 100, end) != history(straight, "1m", 100, end)


def test_minutes_the_sim_was_stopped_are_flat_at_the_previous_close(tmp_path, monkeypatch):
    monkeypatch.setattr("time.time", lambda: T0 / 1000)
    src = source(tmp_path)
    end = run(src, T0, 90)
    src.store.close()
    src = source(tmp_path)
    end = run(src, end + 10 * 60_000, 90)  # ten minutes later
    candles = history(src, "1m", 20, end)
    flat = [c for c in candles if c["v"] == "0"]
    assert len(flat) >= 9 and all(c["o"] == c["h"] == c["l"] == c["c"] for c in flat)
    for prev, cur in zip(candles, candles[1:], strict=False):
        assert cur["t"] == prev["t"] + 60_000 and cur["o"] == prev["c"]


def test_only_configured_pairs_and_known_intervals(tmp_path):
    from wispd.ingest.sim_path import interval_seconds

    src = source(tmp_path)
    assert src.unknown("spot", "BTC-USDT") is None
    why = src.unknown("spot", "BTC-USTD")
    assert why is not None and "did you mean BTC-USDT" in why
    assert src.unknown("perp", "BTC-USDT") is not None
    assert source(tmp_path / "..", serve_any=True).unknown("spot", "DOGE-USDT") is None
    assert interval_seconds("15m") == 900 and interval_seconds("1w") == 604800
    for bad in ("1x", "0m", "m", "7s", "90s"):
        with pytest.raises(ValueError, match="unknown interval"):
            interval_seconds(bad)


def test_default_tick():
    assert default_tick(60000) == Decimal("0.1") and default_tick(3000) == Decimal("0.01")
    assert default_tick(0.5) == Decimal("0.000001")
