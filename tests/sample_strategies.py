"""Test-only strategies (loaded with module = "tests.sample_strategies"); nothing like them ships."""

from __future__ import annotations

import time

from wispd.sdk import D, Param, Strategy, pair, signal


class Idle(Strategy):
    """Watches a pair and waits: a known strategy name for signals sent by the tests themselves."""

    params = {"exchange": Param(str, "sim"), "market": Param(str, "spot"), "pair": Param(str, "BTC-USDT")}

    def on_start(self, ctx):
        domain = ctx.perp if self.p.market == "perp" else ctx.spot
        domain.watch_pair(self.p.exchange, self.p.pair)

    def run(self, ctx):
        while not ctx.sleep(0.5):
            pass


class Ticker(Strategy):
    """The healthy neighbour: counts book updates it sees and emits a small order every few ticks."""

    params = {"emit_every": Param(int, 5, min=1)}

    def on_start(self, ctx):
        self.p_ = pair("BTC", "USDT")
        ctx.spot.watch_pair("sim", self.p_)

    def run(self, ctx):
        seen = set()
        for tick in ctx.every(0.2):
            book = ctx.spot.order_book("sim", self.p_)
            if book is not None:
                seen.add(book.seq)
            if tick % self.p.emit_every == 0:
                ctx.emit(signal("tick").buy(self.p_, "sim", "0.001").ttl(2))
            ctx.emit_status("ticking", f"{len(seen)} books", books=len(seen), tick=tick)


class Raiser(Strategy):
    def run(self, ctx):
        ctx.sleep(0.3)
        raise RuntimeError("strategy bug on purpose")


class Leaker(Strategy):
    def run(self, ctx):
        hoard = []
        while not ctx.sleep(0.05):
            hoard.append(bytearray(8 * 1024 * 1024))
            for chunk in hoard[-1:]:
                for i in range(0, len(chunk), 4096):
                    chunk[i] = 1


class Spinner(Strategy):
    def run(self, ctx):
        ctx.sleep(0.3)
        x = 0
        while True:  # never yields to the runtime: no heartbeat
            x += 1


class BadParams(Strategy):
    params = {"period": Param(int, 14, min=2)}

    def run(self, ctx):
        return None


class Probe(Strategy):
    """Calls every SDK entry point once under a real daemon and reports what it saw in its status."""

    def on_start(self, ctx):
        from wispd.sdk import spot

        self.r = {"watch": spot.watch_pair("sim", pair("BTC", "USDT")),  # the module-level facade
                  "watch_perp": ctx.perp.watch_pair("sim", "BTC-USDC")}

    def run(self, ctx):
        from wispd.sdk import D, indicators

        r, btc = self.r, "BTC-USDT"
        book = ctx.spot.order_book("sim", btc)
        r["levels"] = len(book.bids)
        r["mid_ok"] = book.mid == (book.best_bid.price + book.best_ask.price) / 2 and book.spread > 0
        r["vwap_ok"] = book.vwap("buy", book.asks[0].size) == book.asks[0].price
        r["depth_ok"] = book.depth("bid") > 0
        r["price_ok"] = ctx.spot.price("sim", btc) == book.mid or ctx.spot.price("sim", btc) is not None
        k5 = ctx.spot.klines("sim", btc, "5m", 50)
        k3 = ctx.spot.klines("sim", btc, "3m", 20)
        r["k5"], r["k3"] = len(k5), len(k3)
        r["k5_sorted"] = [k.t for k in k5] == sorted(k.t for k in k5)
        r["rsi_ok"] = 0 <= indicators.rsi(k5, 14) <= 100
        ctx.sleep(1.0)
        r["trades"] = len(ctx.spot.trades("sim", btc)) > 0
        r["ticker"] = ctx.spot.ticker("sim", btc) is not None
        r["funding_ok"] = ctx.perp.funding_rate("sim", "BTC-USDC") is not None
        filled = ctx.emit(signal("probe-buy").buy(btc, "sim", "0.01")).wait(5)
        r["fill"] = filled.status if filled else None
        resting = ctx.emit(signal("probe-rest").buy(btc, "sim", "0.01").limit(
            (book.best_bid.price * D("0.99")).quantize(D("0.1")))).wait(5)
        r["rest"] = resting.status if resting else None
        ctx.sleep(1.5)  # executor state reports arrive every second
        pos = ctx.spot.position("sim", btc)
        r["position"] = str(pos.qty) if pos else None
        r["positions"] = len(ctx.positions())
        r["open_orders"] = len(ctx.open_orders()) + len(ctx.spot.open_orders()) * 0
        r["balance_usdt_ok"] = ctx.balance("USDT") < D("100000")
        r["pnl_keys"] = sorted(ctx.pnl())
        cancel = ctx.emit(signal("probe-cancel").cancel(ctx.open_orders()[0])).wait(5)
        r["cancel"] = cancel.status if cancel else None
        ctx.spot.unwatch_pair("sim", "ETH-USDT")
        ticks = 0
        for _ in ctx.every(0.1):
            ticks += 1
            if ticks == 5:
                break
        r["ticks"] = ticks
        ctx.emit_status("probe", "done", **r)
        while not ctx.sleep(0.5):
            pass


class AsyncTicker(Strategy):
    async def run(self, ctx):
        n = 0
        async for _ in ctx.aevery(0.1):
            n += 1
            if n % 5 == 0:
                ctx.emit_status("async", f"{n} ticks", n=n)
        ctx.log.info("async_done", n=n)


class Emitter(Strategy):
    """Emits a small order every half second (TTL 1 s) and shows how the previous one ended."""

    def run(self, ctx):
        from collections import deque

        handles = deque()
        for _ in ctx.every(0.5):
            if len(handles) == 4:  # the oldest is 2 s old: past its 1 s TTL, so its outcome is known
                res = handles.popleft().result()
                ctx.emit_status("emitting", res.status if res else "pending",
                                outcome=res.status if res else "pending", reason=res.reason if res else "")
            handles.append(ctx.emit(signal("e").buy(pair("BTC", "USDT"), "sim", "0.001").ttl(1)))


class SlowDecider(Strategy):
    """On each tick of a 0.3 s timer, takes 60 ms to decide, then buys: its signals' ``woke`` must be the
    tick, not the build 60 ms later (a replay starts a timer-driven strategy on that schedule)."""

    def run(self, ctx):
        ticks = []
        for n in ctx.every(0.3):
            ticks.append(ctx.now() * 1000)
            time.sleep(0.06)  # deciding takes a while (wall time: the build is at least 60 ms after the tick)
            ctx.emit(signal("slow").id(f"slow-{n}").buy(pair("BTC", "USDT"), "sim", "0.001")).wait(2)
            ctx.emit_status("deciding", f"{n + 1} decisions", ticks=ticks[-10:], n=n + 1)


class EnterOnce(Strategy):
    """Written the safe way: buys only when flat with nothing working (the position it holds after a
    restart is known before it decides: on_start runs after the executor's first state report)."""

    params = {"qty": Param(str, "0.01")}

    def on_start(self, ctx):
        self.btc = pair("BTC", "USDT")
        ctx.spot.watch_pair("sim", self.btc)
        self.seen_at_start = str(ctx.spot.position("sim", self.btc).qty)

    def run(self, ctx):
        entered = 0
        for _ in ctx.every(0.2):
            held = ctx.spot.position("sim", self.btc).qty
            if held == 0 and not ctx.spot.open_orders(self.btc) and not entered:
                ctx.emit(signal("enter").buy(self.btc, "sim", self.p.qty)).wait(3)
                entered += 1
            ctx.emit_status("holding" if held else "flat", f"qty {held}", qty=str(held), at_start=self.seen_at_start,
                            entered=entered)


class Rester(Strategy):
    """Keeps one resting buy far below the market (and a stop sell), for reload and restart tests."""

    def on_start(self, ctx):
        self.btc = pair("BTC", "USDT")
        ctx.spot.watch_pair("sim", self.btc)

    def run(self, ctx):
        placed = False
        for _ in ctx.every(0.3):
            book = ctx.spot.order_book("sim", self.btc)
            if not placed and book is not None and book.mid is not None and not ctx.spot.open_orders(self.btc):
                price = (book.mid * D("0.99") / D("0.1")).to_integral_value() * D("0.1")
                ctx.emit(signal("rest").buy(self.btc, "sim", "0.01").limit(price)).wait(3)
                placed = True
            ctx.emit_status("resting", f"{len(ctx.spot.open_orders(self.btc))} working",
                            working=len(ctx.spot.open_orders(self.btc)))


class Reactor(Strategy):
    """Wakes on every book (ctx.spot.updates, which watches the pair itself), counting books and timeouts."""

    def run(self, ctx):
        books = nones = 0
        for book in ctx.spot.updates("sim", "BTC-USDT", timeout=0.5):
            if book is None:
                nones += 1
            else:
                books += 1
            ctx.emit_status("reacting", f"{books} books", books=books, nones=nones,
                            mid=str(book.mid) if book is not None else None)
