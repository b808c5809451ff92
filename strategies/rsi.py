"""The RSI strategy from the Wisp article, in wispd: watch a pair, read 1m candles, RSI(14) every tick,
buy when it drops under 30 (and sell the position when it rises over 70), publish a status each tick.

Restart-safe: ``on_start`` runs only once the executor has reported this strategy's position, so a
restarted RSI sees what it holds and does not buy it again; one entry per candle (the signal id is the
candle's time), and none while an entry is still working."""

from wispd.sdk import Decimal, Param, Strategy, indicators, pair


class RsiDip(Strategy):
    params = {
        "exchange": Param(str, "sim"),
        "base": Param(str, "BTC"),
        "quote": Param(str, "USDT"),
        "interval": Param(str, "1m"),
        "period": Param(int, 14, min=2),
        "buy_below": Param(float, 30.0, min=0, max=100),
        "sell_above": Param(float, 70.0, min=0, max=100),
        "qty": Param(Decimal, "0.01"),
        "tick_seconds": Param(float, 5.0, min=0.1),
    }

    def on_start(self, ctx):
        self.pair = pair(self.p.base, self.p.quote)
        ctx.spot.watch_pair(self.p.exchange, self.pair)

    def run(self, ctx):
        for _ in ctx.every(self.p.tick_seconds):
            klines = ctx.spot.klines(self.p.exchange, self.pair, self.p.interval, limit=self.p.period * 5)
            rsi = indicators.rsi(klines, self.p.period)
            if rsi is None:
                ctx.emit_status("warming up", f"{len(klines)} candles")
                continue
            held = ctx.spot.position(self.p.exchange, self.pair).qty
            busy = bool(ctx.spot.open_orders(self.pair))
            candle = klines[-1].t
            if rsi < self.p.buy_below and held <= 0 and not busy:
                ctx.emit(ctx.spot.signal("rsi-buy").id(f"rsi-buy-{candle}").buy(self.pair, self.p.exchange, self.p.qty))
            elif rsi > self.p.sell_above and held > 0 and not busy:
                ctx.emit(ctx.spot.signal("rsi-sell").id(f"rsi-sell-{candle}").sell(self.pair, self.p.exchange, held))
            ctx.emit_status("RSI tick", f"rsi {rsi:.1f}", rsi=round(rsi, 2), position=str(held),
                            price=str(ctx.spot.price(self.p.exchange, self.pair)))
