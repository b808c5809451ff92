"""Strategies used only by the benchmarks."""

from __future__ import annotations

from wispd.sdk import Param, Strategy


class Idle(Strategy):
    def run(self, ctx):
        while not ctx.sleep(1):
            pass


class WatchMany(Strategy):
    params = {"pairs": Param(int, 10, min=1)}

    def on_start(self, ctx):
        for i in range(self.p.pairs):
            ctx.spot.watch_pair("sim", f"C{i}-USDT")
            ctx.spot.klines("sim", f"C{i}-USDT", "1m", 100)

    def run(self, ctx):
        for _ in ctx.every(1):
            books = [ctx.spot.order_book("sim", f"C{i}-USDT") for i in range(self.p.pairs)]
            ctx.emit_status("watching", f"{sum(b is not None for b in books)} books")


class FirstBook(Strategy):
    """Writes the wall time at which it first holds a live book to ``path`` (bench/restart.py)."""

    params = {"path": Param(str, "")}

    def on_start(self, ctx):
        import time

        ctx.spot.watch_pair("sim", "BTC-USDT")
        if ctx.spot.order_book("sim", "BTC-USDT") is not None:
            with open(self.p.path, "a") as f:
                f.write(f"{time.time()}\n")

    def run(self, ctx):
        while not ctx.sleep(1):
            pass


class WatchOne(Strategy):
    """One book, a status line every 5 s: a typical idle strategy (bench/scale.py)."""

    def on_start(self, ctx):
        ctx.spot.watch_pair("sim", "BTC-USDT")

    def run(self, ctx):
        for _ in ctx.every(5):
            book = ctx.spot.order_book("sim", "BTC-USDT")
            ctx.emit_status("watching", f"mid {book.mid if book else None}")


class TickTrader(Strategy):
    """Reacts to books (ctx.spot.updates): every ``every``-th book sends a market order and waits for its
    fill; records book publish time -> fill report received (bench/tick_to_fill.py reads its status)."""

    params = {"every": Param(int, 5, min=1), "samples": Param(int, 200, min=10)}

    def run(self, ctx):
        import statistics
        import time

        lat: list[float] = []
        n = 0
        for book in ctx.spot.updates("sim", "BTC-USDT", timeout=1.0):
            if book is None or book.ts is None:
                continue
            n += 1
            if n % self.p.every:
                continue
            side = ctx.spot.signal("tick").buy if len(lat) % 2 == 0 else ctx.spot.signal("tick").sell
            report = ctx.emit(side("BTC-USDT", "sim", "0.001")).wait(5)
            if report is not None and report.status == "filled":
                lat.append(time.time() * 1000 - book.ts)
            if len(lat) >= self.p.samples:
                lat.sort()
                ctx.emit_status("measured", f"{len(lat)} samples", p50=statistics.median(lat),
                                p99=lat[int(0.99 * len(lat)) - 1], n=len(lat))
                lat = []
