"""A simple market maker: quote one post-only bid and one post-only ask around the mid, requote when the
mid moves, and skew away from inventory so the position stays inside a limit."""

from wispd.sdk import D, Decimal, Param, Strategy, pair, signal


class SimpleMaker(Strategy):
    params = {
        "exchange": Param(str, "sim"),
        "base": Param(str, "ETH"),
        "quote": Param(str, "USDT"),
        "qty": Param(Decimal, "0.1"),
        "half_spread_bps": Param(Decimal, "4", min=D("0.1")),
        "requote_bps": Param(Decimal, "2", min=D("0")),
        "max_inventory": Param(Decimal, "1"),
        "tick_seconds": Param(float, 2.0, min=0.2),
    }

    def on_start(self, ctx):
        self.pair = pair(self.p.base, self.p.quote)
        ctx.spot.watch_pair(self.p.exchange, self.pair)
        self.quoted_mid = None
        self.live = []  # client ids of our working quotes

    def _tick_size(self, book):
        prices = [lv.price for lv in book.bids[:2]]
        return abs(prices[0] - prices[1]) if len(prices) == 2 and prices[0] != prices[1] else D("0.01")

    def run(self, ctx):
        for _ in ctx.every(self.p.tick_seconds):
            book = ctx.spot.order_book(self.p.exchange, self.pair)
            if book is None or book.mid is None or book.stale:
                ctx.emit_status("waiting", "no fresh book")
                continue
            mid = book.mid
            position = ctx.spot.position(self.p.exchange, self.pair)
            inventory = position.qty if position else Decimal(0)
            moved = self.quoted_mid is None or abs(mid - self.quoted_mid) / mid * 10000 >= self.p.requote_bps
            if moved:
                if self.live:
                    cancel = signal("mm-cancel")
                    for cid in self.live:
                        cancel.cancel(cid)
                    ctx.emit(cancel).wait(2)
                    self.live = []
                tick = self._tick_size(book)
                skew = -inventory / self.p.max_inventory * self.p.half_spread_bps  # lean away from inventory
                bid = ((mid * (1 - (self.p.half_spread_bps - skew) / 10000)) / tick).to_integral_value() * tick
                ask = ((mid * (1 + (self.p.half_spread_bps + skew) / 10000)) / tick).to_integral_value() * tick
                quotes = signal("mm-quote")
                if inventory < self.p.max_inventory:
                    quotes.buy(self.pair, self.p.exchange, self.p.qty).limit(min(bid, book.best_bid.price)).post_only()
                if inventory > 0:
                    quotes.sell(self.pair, self.p.exchange, min(self.p.qty, inventory)).limit(
                        max(ask, book.best_ask.price)).post_only()
                handle = ctx.emit(quotes)
                handle.wait(2)
                live = {o["client_id"] for u in handle.updates for o in u.orders
                        if u.status in ("accepted", "partially_filled")}
                done = {o["client_id"] for u in handle.updates for o in u.orders
                        if u.status not in ("accepted", "partially_filled")}
                self.live = sorted(live - done)
                self.quoted_mid = mid
            pnl = ctx.pnl()
            ctx.emit_status("quoting", f"mid {mid} inventory {inventory}", inventory=str(inventory),
                            quotes=len(self.live), pnl=str(pnl.get("total", "0")))
