"""Strategies that exist to test backtests (not examples)."""

from __future__ import annotations

import orjson

from wispd.sdk import D, Param, Strategy


class Peeker(Strategy):
    """Wakes on every book; checks that nothing it can see is newer than its clock; trades every update
    (buy on odd, sell on even), so a fill on data it had not seen yet would show in its PnL."""

    params = {"exchange": Param(str, "sim"), "pair": Param(str, "BTC-USDT"), "out": Param(str, ""),
              "qty": Param(str, "0.01")}

    def run(self, ctx):
        self.seen, self.violations, n = 0, [], 0
        for book in ctx.spot.updates(self.p.exchange, self.p.pair, timeout=30):
            if book is None:
                continue
            now_ms = ctx.now() * 1000
            self.seen += 1
            for what, ts in (("book", book.ts), *(("trade", t.ts) for t in ctx.spot.trades(self.p.exchange,
                                                                                          self.p.pair, 5))):
                if ts is not None and ts > now_ms + 1e-6:
                    self.violations.append([what, ts, now_ms])
            for k in ctx.spot.klines(self.p.exchange, self.p.pair, "1m", 5):
                if k.closed and k.t + 60_000 > now_ms + 1:
                    self.violations.append(["kline", k.t, now_ms])
            n += 1
            if n % 2:
                ctx.emit(ctx.spot.signal("peek").buy(self.p.pair, self.p.exchange, D(self.p.qty)))
            else:
                held = ctx.spot.position(self.p.exchange, self.p.pair).qty
                if held > 0:
                    ctx.emit(ctx.spot.signal("peek").sell(self.p.pair, self.p.exchange, held))

    def on_stop(self, ctx):
        if self.p.out:
            with open(self.p.out, "wb") as fh:
                fh.write(orjson.dumps({"seen": getattr(self, "seen", 0), "violations": getattr(self, "violations", [])}))


class Sleeper(Strategy):
    """Sleeps on a schedule and limit-buys below the market: a strategy that waits on time, not data."""

    params = {"exchange": Param(str, "sim"), "pair": Param(str, "BTC-USDT"), "period": Param(float, 30.0),
              "offset_bps": Param(str, "5")}

    def run(self, ctx):
        ctx.spot.watch_pair(self.p.exchange, self.p.pair)
        for _ in ctx.every(self.p.period):
            book = ctx.spot.order_book(self.p.exchange, self.p.pair)
            if book is None or book.mid is None or ctx.spot.open_orders(self.p.pair):
                continue
            price = book.mid * (1 - D(self.p.offset_bps) / 10_000)
            ctx.emit(ctx.spot.signal("dip").buy(self.p.pair, self.p.exchange, D("0.01")).limit(price.quantize(D("0.1"))))


class Stepper(Strategy):
    """Data-driven and deterministic: on every 10th book (by sequence number) a market order, alternating
    buy and sell. Live and in a backtest of the recorded feed it must make the same orders."""

    params = {"exchange": Param(str, "sim"), "pair": Param(str, "BTC-USDT"), "every": Param(int, 10)}

    def run(self, ctx):
        buy = True
        for book in ctx.spot.updates(self.p.exchange, self.p.pair, timeout=30):
            if book is None or book.seq % self.p.every:
                continue
            side = ctx.spot.signal("step").id(f"step-{book.seq}")
            ctx.emit(side.buy(self.p.pair, self.p.exchange, D("0.01")) if buy else
                     side.sell(self.p.pair, self.p.exchange, D("0.01")))
            buy = not buy


class TwoBooks(Strategy):
    """Wakes on one pair's books while watching a second, and trades both in turn: one strategy whose
    run-ahead carries two markets its account follows (the replayer's short way to commit a hand-over
    must keep the order in which the account first sees each market's book)."""

    params = {"exchange": Param(str, "sim"), "pair": Param(str, "ETH-USDT"), "other": Param(str, "BTC-USDT"),
              "every": Param(int, 7)}

    def run(self, ctx):
        ctx.spot.watch_pair(self.p.exchange, self.p.other)
        n = 0
        for book in ctx.spot.updates(self.p.exchange, self.p.pair, timeout=30):
            if book is None or book.seq % self.p.every:
                continue
            n += 1
            pair = self.p.pair if n % 2 else self.p.other
            other = ctx.spot.order_book(self.p.exchange, self.p.other)
            if other is None or other.best_bid is None:
                continue
            side = ctx.spot.signal("two").id(f"two-{book.seq}")
            ctx.emit(side.buy(pair, self.p.exchange, D("0.01")) if n % 4 < 2 else
                     side.sell(pair, self.p.exchange, D("0.01")))


class Holder(Strategy):
    """Buys a perp position once and holds it (funding is what it earns or pays)."""

    params = {"exchange": Param(str, "simp"), "pair": Param(str, "BTC-USDT"), "qty": Param(str, "0.1"),
              "short": Param(bool, False)}

    def run(self, ctx):
        ctx.perp.watch_pair(self.p.exchange, self.p.pair)
        s = ctx.perp.signal("hold")
        h = ctx.emit(s.sell_short(self.p.pair, self.p.exchange, D(self.p.qty)) if self.p.short else
                     s.buy(self.p.pair, self.p.exchange, D(self.p.qty)))
        h.wait(10)
        while not ctx.sleep(60):
            pass


class Garbler(Strategy):
    """Sends garbage on its replayer link before behaving: the replay must answer, count and go on."""

    def run(self, ctx):
        sock = ctx._rt.vt.link.sock  # the strategy's own link to the replayer (test-only access)

        def answer():
            while (reply := sock.recv(1.0)) is None:
                pass
            return reply

        junk = [b"\xff\x00", b"[]", b"{}", b'{"op": 7}',
                b'{"op":"history","topic":"md.sim.spot.BTC-USDT.kline.1m","limit":"x"}',
                b'{"op":"sub","prefixes":"md."}', b'{"op":"snap","topic":{"a":1}}',
                b'{"op":"flush","signals":[12,"{not json",null]}',
                b'{"op":"snap","topic":"md.sim.spot.BTC-USDT.book","signals":{"a":1}}',
                b'{"op":"signal","frame":"{}"}', b'{"op":"hello","consumed":"many"}']
        for frame in junk:
            sock.send([frame])
            if b'"flush"' not in frame:  # a flush is not answered, garbled or not
                answer()
        sock.send([b"two", b"parts"])
        answer()
        for _ in ctx.every(10):
            pass


class Witness(Strategy):
    """Writes down every book it is woken with (its sequence number, staleness and the clock then) and
    trades every ``every`` of them: two backtests that hand it the data in different batches must leave the
    same record and the same journal."""

    params = {"exchange": Param(str, "sim"), "pair": Param(str, "BTC-USDT"), "every": Param(int, 97),
              "out": Param(str, "")}

    def run(self, ctx):
        self.record, n, buy = [], 0, True
        for book in ctx.spot.updates(self.p.exchange, self.p.pair, timeout=2):
            if book is None:
                self.record.append(["none", ctx.now()])
                continue
            self.record.append([book.seq, book.stale, ctx.now()])
            n += 1
            if n % self.p.every == 0:
                side = ctx.spot.signal("w")
                ctx.emit(side.buy(self.p.pair, self.p.exchange, D("0.01")) if buy else
                         side.sell(self.p.pair, self.p.exchange, D("0.01")))
                buy = not buy

    def on_stop(self, ctx):
        if self.p.out:
            with open(self.p.out, "wb") as fh:
                fh.write(orjson.dumps(getattr(self, "record", [])))


class Napper(Strategy):
    """Wakes on a timer and writes down the newest book of its pair each time (a timer that cuts another
    strategy's run-ahead)."""

    params = {"exchange": Param(str, "sim"), "pair": Param(str, "ETH-USDT"), "period": Param(float, 0.37),
              "out": Param(str, "")}

    def run(self, ctx):
        ctx.spot.watch_pair(self.p.exchange, self.p.pair)
        self.record = []
        for _ in ctx.every(self.p.period):
            book = ctx.spot.order_book(self.p.exchange, self.p.pair)
            self.record.append([None if book is None else book.seq, ctx.now()])

    def on_stop(self, ctx):
        if self.p.out:
            with open(self.p.out, "wb") as fh:
                fh.write(orjson.dumps(getattr(self, "record", [])))
