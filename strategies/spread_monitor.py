"""The cross-exchange spread monitor from the Wisp article: watch one pair on two exchanges and compare
their books every tick. It only observes (no orders): the status shows the spread in basis points."""

from wispd.sdk import Param, Strategy, pair


class SpreadMonitor(Strategy):
    params = {
        "exchange_a": Param(str, "sim"),
        "exchange_b": Param(str, "simx"),
        "base": Param(str, "BTC"),
        "quote": Param(str, "USDT"),
        "alert_bps": Param(float, 5.0, min=0),
        "tick_seconds": Param(float, 1.0, min=0.1),
    }

    def on_start(self, ctx):
        self.pair = pair(self.p.base, self.p.quote)
        ctx.spot.watch_pair(self.p.exchange_a, self.pair)
        ctx.spot.watch_pair(self.p.exchange_b, self.pair)

    def run(self, ctx):
        widest = 0.0
        for _ in ctx.every(self.p.tick_seconds):
            a = ctx.spot.order_book(self.p.exchange_a, self.pair)
            b = ctx.spot.order_book(self.p.exchange_b, self.pair)
            if a is None or b is None or a.mid is None or b.mid is None:
                ctx.emit_status("waiting", "no books yet")
                continue
            a_bid, a_ask, b_bid, b_ask = a.best_bid, a.best_ask, b.best_bid, b.best_ask
            if a_bid is None or a_ask is None or b_bid is None or b_ask is None:  # a side emptied meanwhile
                continue
            # Buying on the cheaper ask and selling on the richer bid: positive = an arbitrage window.
            edge_ab = (b_bid.price - a_ask.price) / a.mid * 10000
            edge_ba = (a_bid.price - b_ask.price) / b.mid * 10000
            mid_bps = (b.mid - a.mid) / a.mid * 10000
            widest = max(widest, float(max(edge_ab, edge_ba)))
            phase = "opportunity" if max(edge_ab, edge_ba) > self.p.alert_bps else "watching"
            ctx.emit_status(phase, f"mid spread {mid_bps:.2f} bps", mid_spread_bps=round(float(mid_bps), 3),
                            edge_ab_bps=round(float(edge_ab), 3), edge_ba_bps=round(float(edge_ba), 3),
                            widest_edge_bps=round(widest, 3), stale=a.stale or b.stale)
