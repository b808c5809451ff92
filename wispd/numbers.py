"""The one number formatter: quantities and prices as the market shows them, money at the quote asset's
precision. Used by every human and JSON output and by the metrics; the journal keeps full Decimals.

    qty(Decimal("0.0100000"), step=Decimal("0.0001"))  -> "0.01"
    price(Decimal("60000.05000"), tick=Decimal("0.01")) -> "60000.05"
    money(Decimal("-7.27229599999999999999999992"), 5) -> "-7.2723"
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

DEFAULT_MONEY_PLACES = 8
_PLACES: dict[Decimal, int] = {}  # a market's tick and step, asked for with every number shown: worked out once
_PLACES_MAX = 4096
_QUANTUM = [Decimal(1).scaleb(-n) for n in range(64)]


def places(step: Decimal | None) -> int:
    """Decimal places of a tick or step (0.01 -> 2, 5 -> 0, 0.25 -> 2)."""
    if step is None:
        return DEFAULT_MONEY_PLACES
    try:
        n = _PLACES.get(step)
    except TypeError:  # a signalling NaN cannot be hashed
        return DEFAULT_MONEY_PLACES
    if n is None:
        n = _places(step)
        if len(_PLACES) < _PLACES_MAX:
            _PLACES[step] = n
    return n


def _places(step: Decimal) -> int:
    if not step.is_finite() or step <= 0:
        return DEFAULT_MONEY_PLACES
    exponent = step.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else DEFAULT_MONEY_PLACES


def money_places(tick: Decimal | None, step: Decimal | None) -> int:
    """The quote asset's precision for one market: what a price tick times a quantity step can resolve
    (0.01 x 0.0001 -> 6 places), kept between 2 and 8."""
    if tick is None or step is None:
        return DEFAULT_MONEY_PLACES
    return min(8, max(2, places(tick) + places(step)))


def _fixed(value: Decimal, n: int) -> str:
    try:
        q = value.quantize(_QUANTUM[n] if 0 < n < 64 else Decimal(1).scaleb(-n), rounding=ROUND_HALF_EVEN) if n \
            else value.to_integral_value()
    except InvalidOperation:
        q = value
    text = format(q, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


_SHOWN: dict[tuple[str, int], str] = {}  # journal strings as shown: the same few repeat report after report
_SHOWN_MAX = 65536


def shown(text: str | None, n: int) -> str | None:
    """A number the journal keeps as text (``str(Decimal)``), shown at ``n`` places: what
    ``_fixed(Decimal(text), n)`` gives, remembered (a report shows the same quantities, prices and fees
    over and over; parsing and quantizing each was a tenth of a signal's report). None for no number."""
    if not text or type(text) is not str:
        return None
    out = _SHOWN.get((text, n))
    if out is None:
        try:
            out = _fixed(Decimal(text), n)
        except InvalidOperation:
            return None
        if len(_SHOWN) >= _SHOWN_MAX:
            _SHOWN.clear()
        _SHOWN[(text, n)] = out
    return out


def qty(value: Decimal | None, step: Decimal | None = None) -> str | None:
    return None if value is None else _fixed(value, places(step))


def price(value: Decimal | None, tick: Decimal | None = None) -> str | None:
    return None if value is None else _fixed(value, places(tick))


def money(value: Decimal | None, n: int = DEFAULT_MONEY_PLACES) -> str | None:
    """PnL, fees, balances of a quote asset; None (shown as unknown) stays None."""
    return None if value is None else _fixed(value, n)
