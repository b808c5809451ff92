"""Backtest speed: replayed market-data events per second into one strategy that reads the top of book on
every update and sends a market order every 50 updates, on synthetic L2 data (10 levels a side, one update
per millisecond of a random walk).

Three measurements in the same run, on the same data:

1. wispd: ``wispctl backtest``'s replayer, the strategy in its own process (the SDK, ``ctx.spot.updates``),
   orders through the executor core and paper engine; events/s = book frames replayed / replay wall time.
2. a bare in-process loop: the same frames decoded (orjson) and the top of book read, a counter every 50
   updates: no process boundary, no matching, no journal (what one core does with nothing else to do).
3. NautilusTrader (``--nautilus-python``: a Python in an environment with nautilus_trader installed): a
   ``BacktestEngine`` with an L2 book venue, the same deltas, a ``Strategy`` reading the best bid/ask on every
   delta and submitting a market order every 50.

    python bench/backtest.py [--events 200000] [--nautilus-python /tmp/ntvenv/bin/python] [--write docs/BENCHMARKS.md]
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import orjson  # noqa: E402

from bench.report import replace_section  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
T0_US = 1_764_547_200_000_000
LEVELS = 10
EVERY = 50

STRATEGY = '''
from wispd.sdk import D, Param, Strategy


class TopOfBook(Strategy):
    params = {"every": Param(int, 50), "cpu_out": Param(str, "")}

    def run(self, ctx):
        n, buy = 0, True
        for book in ctx.spot.updates("bench", "BTC-USDT", timeout=60):
            if book is None:
                continue
            bid, ask = book.best_bid, book.best_ask  # the top of book, every update
            n += 1
            if n % self.p.every == 0 and bid is not None and ask is not None:
                s = ctx.spot.signal("b")
                ctx.emit(s.buy("BTC-USDT", "bench", D("0.001")) if buy else s.sell("BTC-USDT", "bench", D("0.001")))
                buy = not buy

    def on_stop(self, ctx):
        import time

        if self.p.cpu_out:  # the bench splits the run's CPU between this process and the replayer's
            with open(self.p.cpu_out, "w") as f:
                f.write(repr(time.process_time()))
'''

CONFIG = """
[daemon]
state_dir = "{tmp}/state"
run_dir = "{tmp}/run"
log_dir = "{tmp}/log"
python_path = ["{tmp}", "{root}"]
[exchanges.bench]
driver = "sim"
pairs = ["BTC-USDT"]
[executors.paper]
exchanges = ["bench"]
[executors.paper.paper]
balances = {{ USDT = "10000000", BTC = "100" }}
latency_ms = 0.0
[executors.paper.risk]
max_order_notional = "1000000"
max_open_orders = 100
[strategies.top]
module = "bench_top"
params = {{ every = {every}, cpu_out = "{tmp}/strategy.cpu" }}
allocation = {{ USDT = "5000000", BTC = "50" }}
"""


def deltas(n: int, seed: int = 1) -> tuple[dict[int, int], dict[int, int], list[tuple[int, bool, int, int]]]:
    """An L2 delta stream near the touch: (initial bids, initial asks, [(time us, is_bid, price ticks, size
    in lots)]), one delta per ms; size 0 deletes a level. Prices in ticks of 0.1, sizes in lots of 0.001."""
    rng = random.Random(seed)
    bids = {600_000 - k: rng.randint(100, 5000) for k in range(LEVELS)}
    asks = {600_001 + k: rng.randint(100, 5000) for k in range(LEVELS)}
    start = (dict(bids), dict(asks))
    out = []
    for i in range(n):
        is_bid = rng.random() < 0.5
        side = bids if is_bid else asks
        best_bid, best_ask = max(bids), min(asks)
        if is_bid:
            px = best_bid - rng.randint(-1, LEVELS - 1)
            px = min(px, best_ask - 1)
        else:
            px = best_ask + rng.randint(-1, LEVELS - 1)
            px = max(px, best_bid + 1)
        size = 0 if (px in side and len(side) > 3 and rng.random() < 0.3) else rng.randint(100, 5000)
        if size:
            side[px] = size
        else:
            side.pop(px, None)
        out.append((T0_US + i * 1000, is_bid, px, size))
    return start[0], start[1], out


def synthetic(n: int, seed: int = 1) -> list[tuple[int, list[list[str]], list[list[str]]]]:
    """The same stream as wispd's bus carries it: the top 10 levels a side after each delta."""
    bids, asks, stream = deltas(n, seed)
    out = []
    for t, is_bid, px, size in stream:
        side = bids if is_bid else asks
        if size:
            side[px] = size
        else:
            side.pop(px, None)
        top_b = sorted(bids, reverse=True)[:LEVELS]
        top_a = sorted(asks)[:LEVELS]
        out.append((t, [[f"{p / 10:.1f}", f"{bids[p] / 1000:.3f}"] for p in top_b],
                    [[f"{p / 10:.1f}", f"{asks[p] / 1000:.3f}"] for p in top_a]))
    return out


def write_wispd_data(root: Path, updates: list) -> None:
    from wispd import protocol
    from wispd.data import store
    from wispd.data.segments import T_FRAME, Record, write_segment
    from wispd.ingest.sim import market_rules

    topic = b"md.bench.spot.BTC-USDT.book"
    recs = [store.meta_record(T0_US - 1, {"exchange": "bench", "markets": {
        "spot:BTC-USDT": {**market_rules("spot", "BTC-USDT", protocol.to_decimal("0.1"),
                                         protocol.to_decimal("0.001")), "maker_fee": "0", "taker_fee": "0"}}})]
    for seq, (t, bids, asks) in enumerate(updates, start=1):
        env = {"v": 1, "kind": "book", "src": "bench", "epoch": 1, "seq": seq, "ts_exch": t / 1000,
               "ts_ingest": t / 1000, "body": {"bids": bids, "asks": asks}}
        recs.append(Record(t, T_FRAME, topic + b" " + orjson.dumps(env)))
    write_segment(store.segment_path(root, "bench", T0_US, "bench"), recs)


def run_wispd(tmp: Path, n: int, every: int = EVERY) -> dict:
    (tmp / "bench_top.py").write_text(STRATEGY)
    (tmp / "wispd.toml").write_text(CONFIG.format(tmp=tmp, root=ROOT, every=every))
    write_wispd_data(tmp / "data", synthetic(n))
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "wispd.cli.daemon", "backtest", "--config", str(tmp / "wispd.toml"),
                           "--data", str(tmp / "data"), "--out", str(tmp / "out"), "--json"], capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": f"{tmp}:{ROOT}"})
    total = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"wispd backtest failed: {done.stderr}\n{done.stdout[-2000:]}")
    doc = orjson.loads(done.stdout)
    replay_s = doc["wall_seconds"]
    events = doc["replayed_records"]
    # CPU per event in each process: the strategy's from its own clock at on_stop (including its start-up,
    # a few ms), the replayer's over the replay only
    strategy_cpu = float((tmp / "strategy.cpu").read_text())
    return {"events": events, "seconds": replay_s, "total_s": total, "rate": events / replay_s,
            "fills": doc["total"]["fills"], "signals": doc["strategies"]["top"]["signals"],
            "strategy_us": strategy_cpu / events * 1e6, "replayer_us": doc["replayer_cpu_seconds"] / events * 1e6}


def run_bare(n: int) -> dict:
    frames = []
    for seq, (t, bids, asks) in enumerate(synthetic(n), start=1):
        frames.append(b"md.bench.spot.BTC-USDT.book " + orjson.dumps(
            {"v": 1, "kind": "book", "src": "bench", "epoch": 1, "seq": seq, "ts_exch": t / 1000,
             "ts_ingest": t / 1000, "body": {"bids": bids, "asks": asks}}))
    t0 = time.perf_counter()
    orders = 0
    for i, frame in enumerate(frames, start=1):
        env = orjson.loads(frame.partition(b" ")[2])
        body = env["body"]
        bid, ask = body["bids"][0][0], body["asks"][0][0]
        if i % EVERY == 0 and bid and ask:
            orders += 1
    took = time.perf_counter() - t0
    return {"events": n, "seconds": took, "rate": n / took, "orders": orders}


NAUTILUS = r'''
import json, random, sys, time
from decimal import Decimal
n, levels, every = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
from nautilus_trader.backtest.engine import BacktestEngine, BacktestEngineConfig
from nautilus_trader.config import LoggingConfig
from nautilus_trader.model.currencies import BTC, USDT
from nautilus_trader.model.data import BookOrder, OrderBookDelta, OrderBookDeltas
from nautilus_trader.model.enums import AccountType, BookAction, BookType, OmsType, OrderSide
from nautilus_trader.model.identifiers import InstrumentId, Symbol, Venue
from nautilus_trader.model.instruments import CurrencyPair
from nautilus_trader.model.objects import Money, Price, Quantity
from nautilus_trader.trading.strategy import Strategy

venue = Venue("BENCH")
inst = CurrencyPair(instrument_id=InstrumentId(Symbol("BTC/USDT"), venue), raw_symbol=Symbol("BTCUSDT"),
                    base_currency=BTC, quote_currency=USDT, price_precision=1, size_precision=3,
                    price_increment=Price.from_str("0.1"), size_increment=Quantity.from_str("0.001"),
                    ts_event=0, ts_init=0, maker_fee=Decimal(0), taker_fee=Decimal(0))
stream = json.loads(sys.stdin.read())  # the bench's own delta stream (the one wispd replays as books)
F_LAST = 128
t0 = stream["t0_ns"] - 1_000_000
def order(is_bid, px, size):
    return BookOrder(OrderSide.BUY if is_bid else OrderSide.SELL, Price(px / 10, 1), Quantity(size / 1000, 3), px)
snapshot = [OrderBookDelta.clear(inst.id, 0, t0, t0)]
for is_bid, book in ((True, stream["bids"]), (False, stream["asks"])):
    for px, size in book:
        snapshot.append(OrderBookDelta(inst.id, BookAction.ADD, order(is_bid, px, size), 0, 0, t0, t0))
deltas = [OrderBookDeltas(inst.id, snapshot)]
live = {True: {p for p, _ in stream["bids"]}, False: {p for p, _ in stream["asks"]}}
for t_us, is_bid, px, size in stream["deltas"]:
    ts = t_us * 1000
    if size == 0:
        action = BookAction.DELETE
        live[is_bid].discard(px)
    else:
        action = BookAction.UPDATE if px in live[is_bid] else BookAction.ADD
        live[is_bid].add(px)
    deltas.append(OrderBookDelta(inst.id, action, order(is_bid, px, size or 1), F_LAST, 0, ts, ts))


class Top(Strategy):
    def __init__(self):
        super().__init__()
        self.n, self.buy = 0, True

    def on_start(self):
        self.subscribe_order_book_deltas(inst.id, book_type=BookType.L2_MBP)

    def on_order_book_deltas(self, deltas):
        book = self.cache.order_book(inst.id)
        bid, ask = book.best_bid_price(), book.best_ask_price()
        self.n += 1
        if self.n % every == 0 and bid is not None and ask is not None:
            order = self.order_factory.market(inst.id, OrderSide.BUY if self.buy else OrderSide.SELL, Quantity.from_str("0.001"))
            self.submit_order(order)
            self.buy = not self.buy


engine = BacktestEngine(BacktestEngineConfig(logging=LoggingConfig(log_level="ERROR")))
engine.add_venue(venue, oms_type=OmsType.NETTING, account_type=AccountType.CASH, base_currency=None,
                 starting_balances=[Money(10_000_000, USDT), Money(100, BTC)], book_type=BookType.L2_MBP)
engine.add_instrument(inst)
engine.add_data(deltas)
engine.add_strategy(Top())
start = time.perf_counter()
engine.run()
took = time.perf_counter() - start
fills = len(engine.cache.orders_closed())
print(json.dumps({"events": n, "seconds": took, "rate": n / took, "orders": fills}))
'''


def run_nautilus(python: str, n: int, every: int = EVERY) -> dict | None:
    bids, asks, stream = deltas(n)
    feed = orjson.dumps({"t0_ns": T0_US * 1000, "bids": sorted(bids.items()), "asks": sorted(asks.items()),
                         "deltas": stream})
    done = subprocess.run([python, "-c", NAUTILUS, str(n), str(LEVELS), str(every)], input=feed.decode(),
                          capture_output=True, text=True)
    if done.returncode != 0:
        print(f"nautilus failed: {done.stderr[-2000:]}", file=sys.stderr)
        return None
    return orjson.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--nautilus-python", default="")
    ap.add_argument("--every", type=int, default=EVERY, help="updates per market order (wispd only: the "
                    "published comparison uses the default)")
    ap.add_argument("--write")
    ns = ap.parse_args()
    if ns.write and ns.every != EVERY:
        raise SystemExit("--write publishes the like-for-like comparison: use the default --every")
    bare = run_bare(ns.events)
    print(f"bare in-process loop: {bare['rate']:,.0f} events/s")
    # The published comparison, and the same without orders (every > events): where the time goes.
    variants = [ns.every] + ([ns.events + 1] if ns.write else [])
    w: dict[int, dict] = {}
    nt: dict[int, dict | None] = {}
    for every in variants:
        with tempfile.TemporaryDirectory(prefix="wbt-", dir="/tmp") as tmp:
            w[every] = run_wispd(Path(tmp), ns.events, every)
        r = w[every]
        print(f"wispd (strategy in its own process): {r['rate']:,.0f} events/s ({r['events']:,} in {r['seconds']:.2f} s "
              f"replay, {r['total_s']:.2f} s with start-up; {r['signals']} signals, {r['fills']} fills; CPU per "
              f"event: strategy {r['strategy_us']:.1f} us, replayer {r['replayer_us']:.1f} us)")
        nt[every] = run_nautilus(ns.nautilus_python, ns.events, every) if ns.nautilus_python else None
        if nt[every]:
            print(f"NautilusTrader (in-process): {nt[every]['rate']:,.0f} events/s ({nt[every]['orders']} orders)")
    if ns.write:
        rows = ["| engine | orders | events | seconds | events/s | vs bare | vs Nautilus | CPU per event: strategy | "
                "replayer |",
                "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
                f"| bare in-process loop (decode + top of book) | | {bare['events']:,} | {bare['seconds']:.2f} | "
                f"{bare['rate']:,.0f} | 1 | | {bare['seconds'] / bare['events'] * 1e6:.1f} us | |"]
        for every in variants:
            orders = f"every {every}" if every <= ns.events else "none"
            n, r = nt[every], w[every]
            if n:
                rows.append(f"| NautilusTrader BacktestEngine, L2, Python strategy | {orders} | {n['events']:,} | "
                            f"{n['seconds']:.2f} | {n['rate']:,.0f} | {n['rate'] / bare['rate']:.2f} | 1 | | |")
            ratio = f"**{r['rate'] / n['rate']:.2f}**" if n else "n/a"
            rows.append(f"| wispd backtest, strategy in its own process | {orders} | {r['events']:,} | {r['seconds']:.2f} | "
                        f"{r['rate']:,.0f} | {r['rate'] / bare['rate']:.2f} | {ratio} | {r['strategy_us']:.1f} us | "
                        f"{r['replayer_us']:.1f} us |")
        rows += ["", f"Synthetic L2 book, {LEVELS} levels a side, one update per ms; the strategy reads the top of book "
                 f"on every update and sends a market order every {EVERY} updates (the comparison the goal is about), "
                 "and the same without orders, to show what the order path costs. CPU per event: each process's own "
                 "CPU time over the events replayed (the strategy's includes its start-up, the replayer's includes "
                 "the executor core and paper engine of its account). Without orders the two overlap (the replayer "
                 "scans the next batch while the strategy works on this one), so the wall time per event is about the "
                 "strategy's; each order is a round trip in which they take turns (the account's work on the order "
                 "and the strategy's on its report are serial). Goals (issue 13): >= 2x NautilusTrader and "
                 ">= 100k events/s with the strategy in its own process."]
        replace_section(Path(ns.write), "backtest", "\n".join(rows), "python bench/backtest.py " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
