"""``wispctl data``: Tardis CSV and freqtrade OHLCV files (CSV, feather, parquet) written by the test itself,
imported into segments; exported back to Parquet; OHLCV and trades downloaded through ccxt from the
loopback Binance; and a backtest on candle-only data fills limit orders the bars reached."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq

from tests.helpers import BIN, MARK_ENV, ROOT, base_config
from wispd.data import segments, store

BASE = """
[exchanges.sim]
driver = "sim"
pairs = ["BTC-USDT"]
[executors.paper]
exchanges = ["sim"]
[executors.paper.paper]
balances = { USDT = "100000" }
latency_ms = 0.0
[executors.paper.risk]
max_order_notional = "100000"
price_collar_pct = 5.0
"""


def wispctl(tmp: Path, mark: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, MARK_ENV: mark, "PYTHONPATH": str(ROOT)}
    return subprocess.run([str(BIN / "wispctl"), "--config", str(tmp / "wispd.toml"), *args], env=env,
                          capture_output=True, text=True, timeout=timeout)


def project(tmp: Path, extra: str = "") -> Path:
    cfg = tmp / "wispd.toml"
    cfg.write_text(base_config(tmp, BASE + extra))
    return cfg


def test_tardis_book_and_trades_import_into_frames_a_strategy_would_have_seen(short_tmp: Path, mark: str):
    project(short_tmp, '[exchanges.binance]\ndriver = "binance"\npairs = ["BTC-USDT"]\napi_base = "http://127.0.0.1:9"\n')
    book = short_tmp / "binance_incremental_book_L2_2025-12-01_BTCUSDT.csv"
    t0 = 1_764_547_200_000_000
    rows = ["exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount"]
    rows += [f"binance,BTCUSDT,{t0},{t0 + 50},true,bid,{60000 - i}.5,1.{i}" for i in range(5)]
    rows += [f"binance,BTCUSDT,{t0},{t0 + 50},true,ask,{60001 + i}.5,2.{i}" for i in range(5)]
    rows += [f"binance,BTCUSDT,{t0 + 1000},{t0 + 1100},false,bid,60000.5,0",  # the best bid leaves
             f"binance,BTCUSDT,{t0 + 1000},{t0 + 1100},false,ask,60001.25,0.75",  # a new best ask
             f"binance,BTCUSDT,{t0 + 2000},{t0 + 2100},true,bid,59000.5,3",  # a new snapshot: book cleared
             f"binance,BTCUSDT,{t0 + 2000},{t0 + 2100},true,ask,59001.5,4"]
    book.write_text("\n".join(rows) + "\n")
    trades = short_tmp / "binance_trades_2025-12-01_BTCUSDT.csv"
    trades.write_text("exchange,symbol,timestamp,local_timestamp,id,side,price,amount\n"
                      f"binance,BTCUSDT,{t0 + 10},{t0 + 60},1,buy,60001.5,0.01\n"
                      f"binance,BTCUSDT,{t0 + 10},{t0 + 60},2,buy,60002.5,0.02\n"
                      f"binance,BTCUSDT,{t0 + 3000},{t0 + 3050},3,sell,59000.5,0.5\n")
    for kind, path in (("tardis-book", book), ("tardis-trades", trades)):
        done = wispctl(short_tmp, mark, "data", "import", kind, str(path))
        assert done.returncode == 0, done.stderr
    frames = [(r.recv_us, orjson.loads(r.data.split(b" ", 1)[1]), r.data.split(b" ", 1)[0])
              for r in store.replay(short_tmp / "state" / "data") if r.type == segments.T_FRAME]
    books = [(t, env["body"]) for t, env, topic in frames if topic == b"md.binance.spot.BTC-USDT.book"]
    assert [t for t, _ in books] == [t0 + 50, t0 + 1100, t0 + 2100]  # one frame per venue message, at capture
    assert books[0][1]["bids"][0] == ["60000.5", "1.0"] and books[0][1]["asks"][0] == ["60001.5", "2.0"]
    assert books[1][1]["bids"][0] == ["59999.5", "1.1"] and books[1][1]["asks"][0] == ["60001.25", "0.75"]
    assert books[2][1] == {"bids": [["59000.5", "3"]], "asks": [["59001.5", "4"]]}
    batches = [env["body"]["trades"] for _, env, topic in frames if topic.endswith(b".trades")]
    assert [[t["id"] for t in b] for b in batches] == [["1", "2"], ["3"]]
    ticks = {segments.read_index(p).meta[0]["markets"]["spot:BTC-USDT"]["tick"]
             for p in store.finished(short_tmp / "state" / "data")}
    assert ticks == {"0.01", "0.1"}  # inferred: the book file has 60001.25, the trades file one decimal
    # a file that is not Tardis says where and why
    bad = short_tmp / "bad.csv"
    bad.write_text("exchange,symbol,timestamp\nbinance,BTCUSDT,1\n")
    done = wispctl(short_tmp, mark, "data", "import", "tardis-book", str(bad))
    assert done.returncode == 65 and "bad.csv:2: missing" in done.stderr
    # an option the format does not use is refused, not ignored
    done = wispctl(short_tmp, mark, "data", "import", "tardis-trades", str(trades), "--interval", "1m")
    assert done.returncode == 64 and "--interval do(es) not apply to `data import tardis-trades`" in done.stderr
    done = wispctl(short_tmp, mark, "data", "list", "--pairs", "BTC-USDT")
    assert done.returncode == 64 and "--pairs" in done.stderr


def test_ohlcv_files_in_each_format_import_and_a_backtest_fills_on_the_bars(short_tmp: Path, mark: str):
    project(short_tmp, """
[strategies.sleeper]
module = "tests.backtest.strategies"
class = "Sleeper"
params = { exchange = "sim", pair = "BTC-USDT", period = 60.0, offset_bps = "20" }
allocation = { USDT = "50000" }
""")
    t0 = 1_764_547_200_000
    bars = [(t0 + i * 60_000, 60000 + i, 60000 + i + 30, 60000 + i - 200, 60000 + i + 5, 1.5) for i in range(120)]
    csv_path = short_tmp / "BTC_USDT-1m.csv"
    csv_path.write_text("date,open,high,low,close,volume\n" + "".join(
        f"{time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(t / 1000))}+00:00,{o},{h},{lo},{c},{v}\n"
        for t, o, h, lo, c, v in bars))
    table = pa.table({"date": pa.array([b[0] for b in bars], pa.int64()).cast(pa.timestamp("ms", tz="UTC")),
                      **{name: [float(b[i + 1]) for b in bars] for i, name in
                         enumerate(("open", "high", "low", "close", "volume"))}})
    feather.write_feather(table, short_tmp / "ETH_USDT-1m.feather")
    pq.write_table(table, short_tmp / "SOL_USDT-1m.parquet")
    for path in ("BTC_USDT-1m.csv", "ETH_USDT-1m.feather", "SOL_USDT-1m.parquet"):
        done = wispctl(short_tmp, mark, "data", "import", "ohlcv", str(short_tmp / path), "--exchange", "sim",
                       "--tick", "0.1", "--step", "0.0001")
        assert done.returncode == 0, done.stderr
        assert "120" not in done.stderr
    listed = orjson.loads(wispctl(short_tmp, mark, "data", "list", "--json").stdout)
    for sym in ("BTC-USDT", "ETH-USDT", "SOL-USDT"):
        assert listed["topics"][f"md.sim.spot.{sym}.kline.1m"]["records"] == 120
        assert listed["topics"][f"md.sim.spot.{sym}.book"]["records"] == 480  # four intrabar books per bar
    # a closed candle is seen only once it closed
    for rec in store.replay(short_tmp / "state" / "data", topics={b"md.sim.spot.BTC-USDT.kline.1m"}):
        if rec.type == segments.T_FRAME:
            body = orjson.loads(rec.data.split(b" ", 1)[1])["body"]
            assert rec.recv_us >= (body["t"] + 60_000) * 1000 - 1
    out = short_tmp / "bt"
    done = wispctl(short_tmp, mark, "backtest", "--strategy", "sleeper", "--out", str(out), "--json", timeout=240)
    assert done.returncode == 0, done.stderr + done.stdout[-2000:]
    fills = orjson.loads((out / "report.json").read_bytes())["fills"]
    assert fills, "the bars dip 200 below the open: a limit 20 bps under the mid fills"
    lows = {b[0]: b[3] for b in bars}
    for f in fills:
        bar_open = int(f["ts_ms"]) // 60_000 * 60_000
        assert float(f["price"]) >= lows[bar_open] - 1e-9  # never better than the bar's low
    # export to Parquet and read it back
    done = wispctl(short_tmp, mark, "data", "export", "--out", str(short_tmp / "pq"), "--topic", "md.sim.spot.BTC-USDT")
    assert done.returncode == 0, done.stderr
    klines = pq.read_table(short_tmp / "pq" / "klines.parquet").to_pydict()
    assert klines["open"][:3] == [60000.0, 60001.0, 60002.0] and len(klines["date"]) == 120
    assert pq.read_table(short_tmp / "pq" / "books.parquet").num_rows == 480


def test_download_fetches_candles_and_trades_through_ccxt_from_the_loopback_exchange(short_tmp: Path, mark: str,
                                                                                     fake_exchange):
    fake = fake_exchange("tests.fakes.binance")
    project(short_tmp, f'[exchanges.binance]\ndriver = "binance"\npairs = ["BTC-USDT"]\napi_base = "{fake.base}"\n')
    now = int(time.time())
    start = time.strftime("%Y-%m-%dT%H:%M:00", time.gmtime(now - 3 * 3600))
    end = time.strftime("%Y-%m-%dT%H:%M:00", time.gmtime(now - 3600))
    done = wispctl(short_tmp, mark, "data", "download", "binance", "--interval", "1m", "--trades", "--from", start,
                   "--to", end, "--json", timeout=180)
    assert done.returncode == 0, done.stderr
    out = orjson.loads(done.stdout)
    assert out["bars"] == 120 and out["trades"] == 720  # two hours of 1m bars, a trade every 10 s
    hosts = {e["path"].split("/")[1] for e in fake.ctl("log") if isinstance(e, dict) and e.get("path")}
    assert hosts <= {"api.binance.com"}
    listed = orjson.loads(wispctl(short_tmp, mark, "data", "list", "--json").stdout)
    assert listed["topics"]["md.binance.spot.BTC-USDT.kline.1m"]["records"] == 120
    meta = segments.read_index(store.finished(short_tmp / "state" / "data")[0]).meta[0]
    assert meta["markets"]["spot:BTC-USDT"]["tick"] == "0.01"  # the exchange's own rules
    # the sim has nothing to download; an unknown exchange is named
    done = wispctl(short_tmp, mark, "data", "download", "sim", "--interval", "1m")
    assert done.returncode == 64 and "data generate" in done.stderr
