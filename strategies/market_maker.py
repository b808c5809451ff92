"""A simple market maker: one post-only bid and one post-only ask around the mid, requoted when the mid
moves, skewed away from inventory so the position stays inside a limit.

It requotes with one signal that cancels all of its quotes on the pair and places the new ones: the
executor checks the signal whole, so a quote that filled meanwhile cannot make the others leak, and the
cancelled quotes' reserved funds pay for the new ones. After a restart it finds its working quotes in its
first state report (``ctx.spot.open_orders``) and requotes them away at once: it never holds more than the
two quotes it means to."""

from wispd.sdk import D, Decimal, Param, Strategy, pair


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
        self.quoted_mid = None  # quotes left from before a restart (if any) are requoted at the first tick

    def _tick_size(self, book):
        prices = [lv.price for lv in book.bids[:2]]
        return abs(prices[0] - prices[1]) if len(prices) == 2 and prices[0] != prices[1] else D("0.01")

    def run(self, ctx):
        for _ in ctx.every(self.p.tick_seconds):
            book = ctx.spot.order_book(self.p.exchange, self.pair)
            if book is None or book.mid is None or book.best_bid is None or book.best_ask is None or book.stale:
                ctx.emit_status("waiting", "no fresh book")
                continue
            mid, best_bid, best_ask = book.mid, book.best_bid.price, book.best_ask.price
            inventory = ctx.spot.position(self.p.exchange, self.pair).qty
            working = ctx.spot.open_orders(self.pair)
            moved = self.quoted_mid is None or abs(mid - self.quoted_mid) / mid * 10000 >= self.p.requote_bps
            if moved or len(working) > 2:
                tick = self._tick_size(book)
                skew = -inventory / self.p.max_inventory * self.p.half_spread_bps  # lean away from inventory
                bid = ((mid * (1 - (self.p.half_spread_bps - skew) / 10000)) / tick).to_integral_value() * tick
                ask = ((mid * (1 + (self.p.half_spread_bps + skew) / 10000)) / tick).to_integral_value() * tick
                requote = ctx.spot.signal("mm-quote").cancel_all(self.pair, self.p.exchange)
                if inventory < self.p.max_inventory:
                    requote.buy(self.pair, self.p.exchange, self.p.qty).limit(min(bid, best_bid)).post_only()
                held = ctx.balance(self.p.base)  # its own inventory (the cancel frees what the old ask reserved)
                if held > 0:
                    requote.sell(self.pair, self.p.exchange, min(self.p.qty, held)).limit(
                        max(ask, best_ask)).post_only()
                outcome = ctx.emit(requote).wait(2)
                if outcome is not None and outcome.status == "rejected":
                    ctx.log.info("requote_rejected", reason=outcome.reason, code=outcome.code)
                self.quoted_mid = mid
            pnl = ctx.pnl()
            ctx.emit_status("quoting", f"mid {mid} inventory {inventory}", inventory=str(inventory),
                            quotes=len(ctx.spot.open_orders(self.pair)), pnl=str(pnl.get("total")))
