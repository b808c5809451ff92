"""Backtests end to end, through ``wispctl``: the configured strategies as their own processes, in virtual
time, on recorded (here: generated) sim data, against the executor's own core and paper engine.

Checked: the same backtest twice gives identical journals; the example strategies and the article's port run
unchanged and trade; nothing a strategy sees is newer than its clock, and no fill uses data it had not seen;
the report's HTML renders in a real browser; a sweep runs every combination; bad requests are refused clearly.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

import orjson
import pytest

from tests.helpers import BIN, MARK_ENV, ROOT, base_config
from wispd.config import load_config
from wispd.data.generate import generate

T0 = 1_764_547_200_000_000  # 2025-12-01T00:00:00Z
MIN = 60_000_000

EXCHANGES = """
[exchanges.sim]
driver = "sim"
pairs = ["BTC-USDT", "ETH-USDT"]
klines = ["1m"]
[exchanges.sim.sim]
seed = 7
update_hz = 5.0
volatility = 1.5
trade_rate = 3.0
prices = { BTC-USDT = 60000.0, ETH-USDT = 3000.0 }
[exchanges.simx]
driver = "sim"
pairs = ["BTC-USDT"]
[exchanges.simx.sim]
seed = 11
update_hz = 5.0
volatility = 1.5
prices = { BTC-USDT = 60010.0 }
[exchanges.simp]
driver = "sim"
market = "perp"
pairs = ["BTC-USDT"]
klines = ["1h"]
[exchanges.simp.sim]
seed = 3
update_hz = 2.0
volatility = 2.0
drift = -0.3
prices = { BTC-USDT = 60000.0 }
[executors.paper]
exchanges = ["sim", "simx", "simp"]
[executors.paper.paper]
balances = { USDT = "100000", USDC = "100000" }
latency_ms = 20.0
[executors.paper.risk]
max_order_notional = "20000"
max_position_notional = "50000"
max_open_orders = 20
price_collar_pct = 2.0
"""

EXAMPLES = f"""
[strategies.rsi]
file = "{ROOT}/strategies/rsi.py"
params = {{ exchange = "sim", base = "BTC", quote = "USDT", qty = "0.01", buy_below = 45.0, sell_above = 55.0 }}
allocation = {{ USDT = "40000" }}
[strategies.spread]
file = "{ROOT}/strategies/spread_monitor.py"
params = {{ exchange_a = "sim", exchange_b = "simx" }}
allocation = {{}}
[strategies.maker]
file = "{ROOT}/strategies/market_maker.py"
params = {{ exchange = "sim", base = "ETH", quote = "USDT", qty = "0.1" }}
allocation = {{ USDT = "40000" }}
[strategies.article]
file = "{ROOT}/strategies/article_rsi.py"
params = {{ exchange = "simp" }}
allocation = {{ USDT = "20000" }}
"""


@pytest.fixture(scope="module")
def sim_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Forty minutes of the three sim exchanges, made by the sim's own engine in virtual time."""
    root = tmp_path_factory.mktemp("data")
    cfg = tmp_path_factory.mktemp("cfg") / "wispd.toml"
    cfg.write_text(base_config(cfg.parent, EXCHANGES))
    sections = load_config(cfg).sections["exchanges"]
    for name, item in sections.items():
        pairs = [(item["market"], p) for p in item["pairs"]]
        generate(root, name, item["sim"], pairs, T0, T0 + 40 * MIN, intervals=tuple(item.get("klines") or ["1m"]))
    return root


def section(name: str, cls: str, params: str = "", usdt: str = "50000") -> str:
    """A ``[strategies.NAME]`` section running a class of ``tests/backtest/strategies.py`` (params: TOML inline)."""
    return (f'\n[strategies.{name}]\nmodule = "tests.backtest.strategies"\nclass = "{cls}"\n'
            f'params = {{ {params} }}\nallocation = {{ USDT = "{usdt}" }}\n')


def project(tmp: Path, body: str) -> Path:
    cfg = tmp / "wispd.toml"
    cfg.write_text(base_config(tmp, EXCHANGES + body))
    return cfg


def wispctl(mark: str, *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, MARK_ENV: mark, "PYTHONPATH": str(ROOT)}
    return subprocess.run([str(BIN / "wispctl"), *args], env=env, capture_output=True, text=True, timeout=timeout)


def dump(journal: Path) -> list[str]:
    db = sqlite3.connect(journal)
    try:
        return list(db.iterdump())
    finally:
        db.close()


def test_the_same_backtest_twice_gives_identical_journals_and_fills(short_tmp: Path, mark: str, sim_data: Path):
    cfg = project(short_tmp, EXAMPLES)
    runs = []
    for n in (1, 2):
        out = short_tmp / f"run{n}"
        done = wispctl(mark, "backtest", "--config", str(cfg), "--data", str(sim_data), "--from", "2025-12-01T00:00",
                       "--to", "2025-12-01T00:12", "--strategy", "maker", "--strategy", "rsi", "--out", str(out))
        assert done.returncode == 0, done.stderr + done.stdout
        runs.append(out)
    a, b = dump(runs[0] / "journal-paper.sqlite"), dump(runs[1] / "journal-paper.sqlite")
    assert a == b
    assert sum(1 for line in a if line.startswith('INSERT INTO "fills"')) > 10  # the maker traded
    ra, rb = (orjson.loads((r / "report.json").read_bytes()) for r in runs)
    assert ra["fills"] == rb["fills"] and ra["total"]["pnl"] == rb["total"]["pnl"]


def test_the_examples_and_the_article_port_backtest_unchanged_and_the_report_renders(short_tmp: Path, mark: str,
                                                                                     sim_data: Path):
    cfg = project(short_tmp, EXAMPLES)
    out = short_tmp / "run"
    done = wispctl(mark, "backtest", "--config", str(cfg), "--data", str(sim_data), "--out", str(out), "--json")
    assert done.returncode == 0, done.stderr + done.stdout
    doc = orjson.loads(done.stdout)
    strategies = doc["strategies"]
    assert set(strategies) == {"rsi", "spread", "maker", "article"}
    for name, s in strategies.items():
        assert s["exit_code"] == 0 and not s["error"], (name, s)
    assert strategies["maker"]["fills"] > 20  # it quotes both sides and gets filled
    assert strategies["article"]["fills"] >= 1  # the drifting perp pushes the 1h RSI under 30: it buys
    assert strategies["rsi"]["signals"] >= 1
    assert strategies["spread"]["fills"] == 0  # it only watches
    report = orjson.loads((out / "report.json").read_bytes())
    total = report["total"]
    assert total["fills"] == sum(s["fills"] for s in strategies.values())
    assert abs(total["pnl"]["total"] - sum(s["pnl"]["total"] for s in report["strategies"].values())) < 1e-6
    assert report["strategies"]["maker"]["equity"], "an equity curve"
    png = (out / "equity.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 2000
    listed = wispctl(mark, "backtest", "list", "--config", str(cfg), "--json")
    assert listed.returncode == 0
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        if os.environ.get("CI"):
            raise AssertionError("CI must have chromium (.ci/run installs it)")
        pytest.skip("no chromium here")
    shot = short_tmp / "shot.png"
    subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", f"--screenshot={shot}",
                    "--window-size=1200,1600", (out / "report.html").as_uri()], capture_output=True, timeout=90,
                   env={**os.environ, MARK_ENV: mark})
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG") and len(data) > 30_000  # a page with tables and charts, not a blank
    _assert_not_blank(shot)


def _assert_not_blank(png: Path) -> None:
    """Decode the screenshot (zlib, filter 0-4) just enough to count distinct colours."""
    import struct
    import zlib

    raw = png.read_bytes()
    pos, idat, width, height = 8, b"", 0, 0
    while pos < len(raw):
        (n,) = struct.unpack(">I", raw[pos:pos + 4])
        kind, body = raw[pos + 4:pos + 8], raw[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            width, height = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    pixels = zlib.decompress(idat)
    stride = len(pixels) // height
    colours = {pixels[y * stride + 1 + x * 3: y * stride + 4 + x * 3] for y in range(0, height, 37)
               for x in range(0, width, 13)}
    assert len(colours) > 8, f"the screenshot looks blank ({len(colours)} colours)"


def test_nothing_a_strategy_sees_is_newer_than_its_clock_and_fills_use_seen_books(short_tmp: Path, mark: str,
                                                                                  sim_data: Path):
    seen = short_tmp / "peeker.json"
    cfg = project(short_tmp, section("peeker", "Peeker", f'exchange = "sim", pair = "BTC-USDT", out = "{seen}"'))
    out = short_tmp / "run"
    done = wispctl(mark, "backtest", "--config", str(cfg), "--data", str(sim_data), "--to", "2025-12-01T00:05",
                   "--out", str(out), "--latency", "0")
    assert done.returncode == 0, done.stderr + done.stdout
    result = orjson.loads(seen.read_bytes())
    assert result["seen"] > 1000 and result["violations"] == []
    # every fill is at a price of a book the strategy had already been shown (its own last one, with zero
    # order latency): lookahead would show up as fills at later books' prices
    books: dict[float, tuple[str, str]] = {}
    from wispd.data import store
    from wispd.data.segments import T_FRAME

    for rec in store.replay(sim_data, T0, T0 + 5 * MIN, {b"md.sim.spot.BTC-USDT.book"}):
        if rec.type == T_FRAME:
            env = orjson.loads(rec.data.split(b" ", 1)[1])
            books[rec.recv_us / 1000] = (env["body"]["bids"][0][0], env["body"]["asks"][0][0])
    times = sorted(books)
    db = sqlite3.connect(out / "journal-paper.sqlite")
    fills = db.execute("SELECT ts_ms, side, price FROM fills ORDER BY id").fetchall()
    assert len(fills) > 500
    import bisect

    for ts, side, price in fills:
        i = bisect.bisect_right(times, ts + 1e-6) - 1  # the newest book at or before the fill
        bid, ask = books[times[i]]
        assert price == (ask if side == "buy" else bid), (ts, side, price, books[times[i]])
    report = orjson.loads((out / "report.json").read_bytes())
    assert report["strategies"]["peeker"]["pnl"]["total"] < 0  # buying the ask, selling the bid: it pays


def test_a_strategy_waiting_on_time_gets_its_data_in_batches_and_the_same_fills(short_tmp: Path, mark: str,
                                                                                sim_data: Path):
    cfg = project(short_tmp, section("sleeper", "Sleeper", 'exchange = "sim", pair = "BTC-USDT", period = 30.0'))
    out = short_tmp / "run"
    done = wispctl(mark, "backtest", "--config", str(cfg), "--data", str(sim_data), "--out", str(out), "--json")
    assert done.returncode == 0, done.stderr + done.stdout
    doc = orjson.loads(done.stdout)
    s = doc["strategies"]["sleeper"]
    # 40 minutes at one wake per 30 s: about 80 steps for ~12,000 book frames (batched, not one by one)
    assert s["fills"] >= 1
    assert doc["events_to_strategies"] > 10_000
    result = orjson.loads((out / "result.json").read_bytes())
    assert result["lanes"]["sleeper"]["steps"] < 400


def test_a_sweep_runs_every_combination_in_its_own_process(short_tmp: Path, mark: str, sim_data: Path):
    cfg = project(short_tmp, EXAMPLES)
    out = short_tmp / "sweep"
    done = wispctl(mark, "backtest", "--config", str(cfg), "--data", str(sim_data), "--to", "2025-12-01T00:10",
                   "--strategy", "maker", "--param", "half_spread_bps=2,8", "--param", 'qty="0.1","0.2"', "--jobs", "2",
                   "--out", str(out))
    assert done.returncode == 0, done.stderr + done.stdout
    rows = orjson.loads((out / "summary.json").read_bytes())
    assert len(rows) == 4 and all("error" not in r for r in rows), rows
    assert {(r["params"]["maker"]["half_spread_bps"], r["params"]["maker"]["qty"]) for r in rows} == {
        (2, "0.1"), (2, "0.2"), (8, "0.1"), (8, "0.2")}
    assert len({(r["fills"], r["pnl"]) for r in rows}) == 4  # the parameters reached the strategy
    assert "#0" in done.stdout and "4 runs, 0 failed" in done.stdout
    # a value the strategy refuses is a failed run, said as such (decimals are strings, as in the config)
    bad = wispctl(mark, "backtest", "--config", str(cfg), "--data", str(sim_data), "--to", "2025-12-01T00:02",
                  "--strategy", "maker", "--param", "qty=0.1,0.2", "--out", str(short_tmp / "bad"))
    assert bad.returncode == 1 and "2 runs, 2 failed" in bad.stdout, bad.stdout
    assert "parameter 'qty'" in bad.stdout


def test_a_strategy_sending_garbage_on_its_replay_link_does_not_stop_the_backtest(short_tmp: Path, mark: str,
                                                                                  sim_data: Path):
    cfg = project(short_tmp, section("garbler", "Garbler", usdt="1000")
                  + section("stepper", "Stepper", 'exchange = "sim", pair = "BTC-USDT", every = 10'))
    out = short_tmp / "run"
    done = wispctl(mark, "backtest", "--config", str(cfg), "--data", str(sim_data), "--to", "2025-12-01T00:03",
                   "--out", str(out))
    assert done.returncode == 0, done.stderr + done.stdout
    lanes = orjson.loads((out / "result.json").read_bytes())["lanes"]
    assert lanes["garbler"]["exit_code"] == 0 and lanes["garbler"]["bad_requests"] >= 3, lanes["garbler"]
    assert lanes["stepper"]["exit_code"] == 0
    assert orjson.loads((out / "report.json").read_bytes())["strategies"]["stepper"]["fills"] > 10


def test_bad_requests_are_refused_before_anything_starts(short_tmp: Path, mark: str, sim_data: Path):
    cfg = project(short_tmp, EXAMPLES)
    cases = [
        (["--from", "2025-12-02", "--to", "2025-12-01"], "is not after"),
        (["--from", "yesterday"], "expected a UTC date"),
        (["--from", "2024-01-01", "--to", "2024-01-02"], "nothing of it is between"),
        (["--strategy", "nope"], "no strategy named nope"),
        (["--param", "period=7,14"], "say whose parameter it is"),
        (["--param", "ghost.period=7"], "'ghost' is not a strategy"),
        (["--warmup", "forever"], "expected a duration"),
        (["--journal", "/tmp/x.sqlite"], "--journal do(es) not apply here (without --parity)"),
    ]
    for args, expected in cases:
        done = wispctl(mark, "backtest", "--config", str(cfg), "--data", str(sim_data), *args)
        assert done.returncode == 64, (args, done.stdout, done.stderr)
        assert expected in done.stderr, (args, done.stderr)
    done = wispctl(mark, "backtest", "list", "--config", str(cfg), "--from", "2025-12-01")
    assert done.returncode == 64 and "--from do(es) not apply here (list)" in done.stderr
    empty = short_tmp / "empty"
    empty.mkdir()
    done = wispctl(mark, "backtest", "--config", str(cfg), "--data", str(empty))
    assert done.returncode == 64 and "no recorded data" in done.stderr


def test_running_ahead_gives_exactly_what_stepping_frame_by_frame_gives(short_tmp: Path, mark: str, sim_data: Path):
    """Strategies waiting on data are handed the coming frames in one step and apply them one by one; that is
    only an optimisation if it changes nothing: the journals with and without it are identical."""
    cfg = project(short_tmp, EXAMPLES + section("stepper", "Stepper", 'exchange = "sim", pair = "ETH-USDT", every = 25',
                                                usdt="10000"))
    dumps, lanes = [], []
    for flag in ([], ["--no-run-ahead"]):
        out = short_tmp / f"run{len(dumps)}"
        done = wispctl(mark, "backtest", "--config", str(cfg), "--data", str(sim_data), "--to", "2025-12-01T00:08",
                       "--strategy", "maker", "--strategy", "rsi", "--strategy", "stepper",
                       "--out", str(out), *flag)
        assert done.returncode == 0, done.stderr + done.stdout
        dumps.append(dump(out / "journal-paper.sqlite"))
        lanes.append(orjson.loads((out / "result.json").read_bytes())["lanes"])
    assert dumps[0] == dumps[1]
    assert sum(1 for line in dumps[0] if line.startswith('INSERT INTO "fills"')) > 20
    assert lanes[0]["stepper"]["ahead_steps"] > 0 and lanes[1]["stepper"]["ahead_steps"] == 0
    assert all(lane["late_wakes"] == 0 for run_lanes in lanes for lane in run_lanes.values())
    assert lanes[0]["stepper"]["steps"] < lanes[1]["stepper"]["steps"]


@pytest.mark.parametrize("alone", ["stepper", "two"])
def test_a_strategy_alone_commits_its_run_ahead_the_short_way_with_the_same_result(short_tmp: Path, mark: str,
                                                                                   sim_data: Path, alone: str):
    """A strategy that no other shares its topics with has its run-ahead replayed the short way (only each
    topic's newest frame is kept, ``Replayer._commit_ahead``): the journal is the one stepping frame by
    frame gives, with one market and with two its account follows."""
    cfg = project(short_tmp, section("stepper", "Stepper", 'exchange = "sim", pair = "ETH-USDT", every = 25',
                                     usdt="10000") + section("two", "TwoBooks", usdt="10000"))
    dumps, lanes = [], []
    for flag in ([], ["--no-run-ahead"]):
        out = short_tmp / f"run{len(dumps)}"
        done = wispctl(mark, "backtest", "--config", str(cfg), "--data", str(sim_data), "--to", "2025-12-01T00:10",
                       "--strategy", alone, "--out", str(out), *flag)
        assert done.returncode == 0, done.stderr + done.stdout
        dumps.append(dump(out / "journal-paper.sqlite"))
        lanes.append(orjson.loads((out / "result.json").read_bytes())["lanes"][alone])
    assert dumps[0] == dumps[1]
    assert sum(1 for line in dumps[0] if line.startswith('INSERT INTO "fills"')) > 10
    assert lanes[0]["short_frames"] > 0 and lanes[1]["short_frames"] == 0
    assert lanes[0]["speculated_steps"] > 0 and lanes[1]["speculated_steps"] == 0  # scanned while it computed
    assert lanes[0]["late_wakes"] == 0


def test_order_latency_can_be_drawn_from_a_live_journals_acknowledgements(short_tmp: Path, mark: str, sim_data: Path):
    from wispd.execution.journal import Journal

    live = short_tmp / "live.sqlite"
    j = Journal(live)
    measured = [3.5, 7.25, 41.0, 120.0]
    for n, ms in enumerate(measured):
        j.record_ack(f"wd{n:030d}", "sim", ms)
    j.commit()
    j.close()
    cfg = project(short_tmp, section("stepper", "Stepper", 'exchange = "sim", pair = "BTC-USDT", every = 10'))
    out = short_tmp / "run"
    done = wispctl(mark, "backtest", "--config", str(cfg), "--data", str(sim_data), "--to", "2025-12-01T00:05",
                   "--out", str(out), "--latency", f"journal:{live}")
    assert done.returncode == 0, done.stderr + done.stdout
    db = sqlite3.connect(out / "journal-paper.sqlite")
    lags = [f - o for o, f in db.execute("SELECT o.created_ms, MIN(f.ts_ms) FROM orders o JOIN fills f USING (client_id) "
                                         "GROUP BY o.client_id")]
    assert len(lags) > 10
    for lag in lags:  # each order went live after one of the measured latencies (to the microsecond)
        assert min(abs(lag - m) for m in measured) < 0.002, lag
    assert len({round(lag, 1) for lag in lags}) > 1
    result = orjson.loads((out / "result.json").read_bytes())
    assert result["latency"]["paper_ms"]["acks"] == 4
    bad = wispctl(mark, "backtest", "--config", str(cfg), "--data", str(sim_data), "--latency", "soon")
    assert bad.returncode == 64 and "milliseconds" in bad.stderr


START_LATER = """
import sys
from pathlib import Path
from wispd.backtest import run
from wispd.config import load_config
cfg, data, out, start = sys.argv[1:5]
req = run.Request(Path(cfg), t_from="2025-12-01T00:00", t_to="2025-12-01T00:05", data=data, out=out,
                  strategies=["stepper", "sleeper"], starts={"sleeper": int(start)})
run.run(req, load_config(Path(cfg)))
"""


def test_a_strategy_starting_later_starts_on_time_while_another_runs_ahead(short_tmp: Path, mark: str,
                                                                         sim_data: Path):
    """Every strategy wakes exactly when it asked to (its start, its timers), however far another one was
    handed data ahead: here a data-driven stepper runs ahead across the instant a timer-driven sleeper starts
    (as parity starts each strategy when its live one took its first decision)."""
    cfg = project(short_tmp, section("stepper", "Stepper", 'exchange = "sim", pair = "ETH-USDT", every = 25')
                  + section("sleeper", "Sleeper", 'exchange = "sim", pair = "BTC-USDT", period = 7.0'))
    start_us = T0 + 95_500_123  # between two frames, long after the stepper began running ahead
    out = short_tmp / "run"
    env = {**os.environ, MARK_ENV: mark, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([str(BIN / "python"), "-c", START_LATER, str(cfg), str(sim_data), str(out), str(start_us)],
                          env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr + done.stdout
    lanes = orjson.loads((out / "result.json").read_bytes())["lanes"]
    assert lanes["stepper"]["ahead_steps"] > 0
    assert {name: lane["late_wakes"] for name, lane in lanes.items()} == {"stepper": 0, "sleeper": 0}
    db = sqlite3.connect(out / "journal-paper.sqlite")
    try:
        ts = [orjson.loads(p)["ts"] for (p,) in db.execute(
            "SELECT payload FROM signals WHERE strategy='sleeper' ORDER BY received_ms")]
    finally:
        db.close()
    assert ts and ts[0] == pytest.approx(start_us / 1000, abs=0.002)  # its first tick is its start, to the us


def test_garbage_on_the_replay_socket_changes_nothing(short_tmp: Path, mark: str, sim_data: Path):
    """The replayer listens on a Unix socket its strategies connect to; whatever else connects (garbage
    bytes, a header no replay message has, an unknown name, a strategy's name without its token, a connection
    that says nothing) is
    cut off, and the backtest's journal is exactly that of an undisturbed run."""
    import socket
    import struct
    import time

    cfg = project(short_tmp, section("stepper", "Stepper", 'exchange = "sim", pair = "ETH-USDT", every = 25'))
    args = ["backtest", "--config", str(cfg), "--data", str(sim_data), "--to", "2025-12-01T00:05"]
    clean = wispctl(mark, *args, "--out", str(short_tmp / "clean"))
    assert clean.returncode == 0, clean.stderr + clean.stdout
    out = short_tmp / "fuzzed"
    env = {**os.environ, MARK_ENV: mark, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([str(BIN / "wispctl"), *args, "--out", str(out)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    path, deadline, sent = out / "replay.sock", time.monotonic() + 60, 0
    u32 = struct.Struct(">I").pack
    junk = [b"\xff" * 64, u32(1 << 31), u32(1) + u32(1 << 30), u32(1) + u32(7) + b"nobody!", u32(1) + u32(7) + b"stepper",
            u32(2) + u32(7) + b"stepper" + u32(4) + b"nope",
            b"", u32(2)]
    try:
        while not path.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.002)
        for payload in junk:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(str(path))
                s.sendall(payload)
                sent += 1
            except OSError:
                pass  # the run may be over already: nothing to disturb
            finally:
                time.sleep(0.05)
                s.close()
        stdout, stderr = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr + stdout
    assert sent >= 1
    assert dump(out / "journal-paper.sqlite") == dump(short_tmp / "clean" / "journal-paper.sqlite")
