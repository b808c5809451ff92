"""Contingent orders: stop, take-profit and trailing-stop orders, and the exits of brackets.

An armed contingent order is a journaled order row (status ``armed``) that is not on any book yet. The
executor evaluates its trigger on every trigger-price update and, when it fires, turns it into a market
order (or a limit order at its limit price) with the same client id: the row moves to ``intent`` and is
committed before the order is sent, so it fires once; an executor that dies between the two re-arms it on
restart (nothing was sent), so it can fire then, still once.

The trigger price is the last trade for spot markets and the mark price for perps (from the venue's
funding/mark stream, the last trade until a mark has been seen): the same market data the paper engine
fills against.

  side   stop fires when          take_profit fires when     trailing_stop follows
  buy    price >= trigger         price <= trigger           the lowest price; fires at lowest + distance
  sell   price <= trigger         price >= trigger           the highest price; fires at highest - distance

A bracket (an entry with ``stop_loss``/``take_profit``) arms reduce-only exits whose size follows what the
entry actually filled (growing with partial fills) minus what the exits themselves have filled, so the
exits never exceed the position they protect: one-cancels-other, generalised to partial fills. The stop
loss is a stop (market, or stop-limit) held here; the take profit is a resting reduce-only limit order at
its price (or, with ``market``, a take-profit trigger). When the exits together have closed the entry's
fills and the entry is done, what is left of them is cancelled.
"""

from __future__ import annotations

from decimal import Decimal

from wispd.execution.orders import Trigger

ZERO = Decimal(0)
KINDS = ("stop", "take_profit", "trailing_stop")


def follow(trigger: Trigger, side: str, price: Decimal) -> None:
    """A trailing stop moves with the best price seen (up for a sell, down for a buy); others stay."""
    if trigger.kind != "trailing_stop":
        return
    if trigger.extreme is None or (price > trigger.extreme if side == "sell" else price < trigger.extreme):
        trigger.extreme = price
    assert trigger.extreme is not None
    if trigger.distance is not None:
        offset = trigger.distance
    else:
        assert trigger.percent is not None
        offset = trigger.extreme * trigger.percent / 100
    trigger.price = trigger.extreme - offset if side == "sell" else trigger.extreme + offset


def fires(trigger: Trigger, side: str, price: Decimal) -> bool:
    """Whether ``price`` (the trigger price just seen) fires this trigger."""
    follow(trigger, side, price)
    level = trigger.price
    if level is None:
        return False
    rising = trigger.kind == "take_profit" and side == "sell" or trigger.kind != "take_profit" and side == "buy"
    return price >= level if rising else price <= level


def wrong_side(side: str, kind: str, trigger: Decimal, ref: Decimal) -> bool:
    """A trigger that would fire at once against ``ref`` (the order's price, or the current price) is on
    the wrong side: a buy stop below the market, a sell stop above it, and the reverse for take-profits."""
    if kind == "stop":
        return trigger <= ref if side == "buy" else trigger >= ref
    if kind == "take_profit":
        return trigger >= ref if side == "buy" else trigger <= ref
    return False
