"""The replayer's overlap with its strategies (``Replayer._speculate``, docs/backtesting.md) changes
nothing: on dense data with stale notices and gap records between the frames, and with a timer-driven
strategy cutting the data-driven one's run-aheads, every strategy sees the same frames at the same virtual
instants, and the journal is the same, as when the replayer steps frame by frame."""

from __future__ import annotations

import random
from pathlib import Path

import orjson

from tests.backtest.test_backtest import T0, dump, section, wispctl
from tests.helpers import base_config
from wispd import protocol
from wispd.data import store
from wispd.data.segments import T_FRAME, Record, write_segment
from wispd.ingest.sim import market_rules

EXCHANGE = """
[exchanges.sim]
driver = "sim"
pairs = ["BTC-USDT", "ETH-USDT"]
[executors.paper]
exchanges = ["sim"]
[executors.paper.paper]
balances = { USDT = "1000000", BTC = "10" }
latency_ms = 0.0
[executors.paper.risk]
max_order_notional = "100000"
max_open_orders = 20
"""


def _data(root: Path, seconds: int, seed: int = 5) -> tuple[int, int]:
    """BTC-USDT books every ms (a stale notice now and then, and gap records), ETH-USDT books every 7 ms."""
    rng = random.Random(seed)
    markets = {f"spot:{p}": {**market_rules("spot", p, protocol.to_decimal("0.1"), protocol.to_decimal("0.001")),
                             "maker_fee": "0", "taker_fee": "0"} for p in ("BTC-USDT", "ETH-USDT")}
    recs = [store.meta_record(T0 - 1, {"exchange": "sim", "markets": markets})]
    seqs: dict[bytes, int] = {}

    def frame(t_us: int, topic: bytes, kind: str, body: dict) -> Record:
        seqs[topic] = seqs.get(topic, 0) + 1
        return Record(t_us, T_FRAME, protocol.md_frame(topic, kind, "sim", 1, seqs[topic], t_us / 1000, body))

    btc, eth = b"md.sim.spot.BTC-USDT.book", b"md.sim.spot.ETH-USDT.book"
    mid = {btc: 60000.0, eth: 3000.0}
    for ms in range(seconds * 1000):
        t = T0 + ms * 1000 + rng.randint(0, 900)
        for topic, every in ((btc, 1), (eth, 7)):
            if ms % every:
                continue
            mid[topic] += rng.choice((-0.1, 0.0, 0.1))
            m = round(mid[topic], 1)
            recs.append(frame(t, topic, "book", {"bids": [[f"{m - 0.1 * k:.1f}", "5.000"] for k in range(1, 6)],
                                                 "asks": [[f"{m + 0.1 * k:.1f}", "5.000"] for k in range(1, 6)]}))
        if rng.random() < 0.002:
            recs.append(frame(t + 1, btc, "stale", {"stale": True, "silent_s": 1.0}))
        if rng.random() < 0.001:
            recs.append(store.gap_record(t + 2, btc, 1, seqs[btc], seqs[btc] + 1))
    write_segment(store.segment_path(root, "sim", T0, "test"), recs)
    return sum(b'"kind":"stale"' in r.data for r in recs), sum(r.type != T_FRAME for r in recs) - 1


def test_overlapping_with_the_strategies_hands_them_what_stepping_frame_by_frame_does(short_tmp: Path, mark: str):
    data = short_tmp / "data"
    stale, gaps = _data(data, 20)
    assert stale > 10 and gaps > 5
    runs = []
    for flag in ([], ["--no-run-ahead"]):
        out = short_tmp / f"run{len(runs)}"
        out.mkdir()
        body = (section("witness", "Witness", f'exchange = "sim", pair = "BTC-USDT", every = 97, '
                                              f'out = "{out}/witness.json"', usdt="100000")
                + section("napper", "Napper", f'exchange = "sim", pair = "ETH-USDT", period = 0.37, '
                                              f'out = "{out}/napper.json"', usdt="100000"))
        cfg = out / "wispd.toml"
        cfg.write_text(base_config(out, EXCHANGE + body))
        done = wispctl(mark, "backtest", "--config", str(cfg), "--data", str(data), "--out", str(out / "bt"), *flag)
        assert done.returncode == 0, done.stderr + done.stdout
        runs.append({"witness": orjson.loads((out / "witness.json").read_bytes()),
                     "napper": orjson.loads((out / "napper.json").read_bytes()),
                     "journal": dump(out / "bt" / "journal-paper.sqlite"),
                     "lanes": orjson.loads((out / "bt" / "result.json").read_bytes())["lanes"]})
    ahead, stepped = runs
    assert len(ahead["witness"]) > 15_000 and len(ahead["napper"]) > 40
    assert ahead["witness"] == stepped["witness"]
    assert ahead["napper"] == stepped["napper"]
    assert ahead["journal"] == stepped["journal"]
    assert sum(line.startswith('INSERT INTO "fills"') for line in ahead["journal"]) > 100
    lane = ahead["lanes"]["witness"]
    assert lane["speculated_steps"] > 20 and lane["short_frames"] > 10_000, lane
    assert stepped["lanes"]["witness"]["speculated_steps"] == 0
    assert all(run["lanes"][name]["late_wakes"] == 0 for run in runs for name in ("witness", "napper"))
