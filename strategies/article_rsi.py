"""The article's Go strategy, ported line by line (``s.wisp.Perp()`` is ``ctx.perp``, ``numerical`` is
``Decimal``): watch BTC/USDT perp, every 5 s read twenty 1h candles, RSI(14), buy 0.1 perp under 30,
report the RSI. The exchange is a parameter so the same file runs on the sim and on Hyperliquid.

    Go                                                     wispd
    ticker := time.NewTicker(5 * time.Second)              for _ in ctx.every(5):
    s.wisp.Perp().WatchPair(connector.Hyperliquid, pair)   ctx.perp.watch_pair(ex, p)
    s.wisp.Perp().Klines(connector.Hyperliquid, pair, ...) ctx.perp.klines(ex, p, "1h", 20)
    s.wisp.Indicators().RSI(klines, 14); err != nil        indicators.rsi(klines, 14); None
    s.wisp.Perp().Signal(s.GetName()).Buy(...).Build()     ctx.perp.signal(self.name).buy(...).build()
    s.wisp.Emit(signal)                                    ctx.emit(sig)
    s.EmitStatus(StrategyStatus{Summary, Metadata})        ctx.emit_status("RSI tick", rsi=...)

Like the original it buys on every tick while the RSI stays under 30; ``strategies/rsi.py`` is the
restart-safe version (one entry per candle, sells above 70)."""

from wispd.sdk import D, Param, Strategy, asset, indicators, pair


class ArticleRsi(Strategy):
    params = {"exchange": Param(str, "sim", help="the exchange to trade (hyperliquid in the article)")}

    def run(self, ctx):
        btc = asset("BTC")
        usdt = asset("USDT")
        p = pair(btc, usdt)
        ctx.perp.watch_pair(self.p.exchange, p)
        for _ in ctx.every(5):
            klines = ctx.perp.klines(self.p.exchange, p, "1h", 20)
            rsi = indicators.rsi(klines, 14)
            if rsi is None:
                continue
            if rsi < 30:
                sig = ctx.perp.signal(self.name).buy(p, self.p.exchange, D("0.1")).build()
                ctx.emit(sig)  # non-blocking push to the executor
            ctx.emit_status("RSI tick", rsi=str(rsi))
