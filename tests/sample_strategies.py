"""Test-only strategies (loaded with module = "tests.sample_strategies"); nothing like them ships."""

from __future__ import annotations

from wispd.sdk import Param, Strategy, pair, signal


class Idle(Strategy):
    """Watches a pair and waits: a known strategy name for signals sent by the tests themselves."""

    params = {"exchange": Param(str, "sim")}

    def on_start(self, ctx):
        ctx.spot.watch_pair(self.p.exchange, pair("BTC", "USDT"))

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
