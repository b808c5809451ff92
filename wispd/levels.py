"""Book levels as both planes read them: the strategy SDK's books and the executor's paper and live
engines share this one lazily converting side of a book (prices and sizes arrive as decimal strings)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any, NamedTuple

from wispd.protocol import to_decimal


class Level(NamedTuple):
    """One price level of a book. (A named tuple: a book is built from tens of them on every update.)"""

    price: Decimal
    size: Decimal


_tuple_new = tuple.__new__
_POSITIVE: dict[str, Decimal] = {}  # wire string -> its value, for the strings that are valid and positive
_POSITIVE_MAX = 1 << 16


def _positive(value: Any) -> Decimal | None:
    """A price or size: a bounded decimal (``to_decimal``) above zero, else None."""
    d = to_decimal(value)
    if d is None or not d > 0:
        return None
    if type(value) is str:
        if len(_POSITIVE) >= _POSITIVE_MAX:
            _POSITIVE.clear()
        _POSITIVE[value] = d
    return d


class Levels(Sequence[Level]):
    """One side of a book, read like a tuple of ``Level``. Converted from the wire only as far as it is read:
    a strategy looking at the top of book on every update converts one level a side, not twenty, and an
    executor matching a market order converts the levels it walks. Malformed levels (not a [price, size]
    pair of bounded decimals, or not positive) are skipped, as a full conversion would."""

    __slots__ = ("_raw", "_done", "_pos")

    def __init__(self, raw: list[Any]) -> None:
        self._raw, self._done, self._pos = raw, [], 0

    def _upto(self, n: int) -> None:
        raw, done, pos, known = self._raw, self._done, self._pos, _POSITIVE
        while len(done) <= n and pos < len(raw):
            lv = raw[pos]
            pos += 1
            if type(lv) in (list, tuple) and len(lv) >= 2:
                a, b = lv[0], lv[1]
                px = known.get(a) if type(a) is str else None
                if px is None:
                    px = _positive(a)
                sz = known.get(b) if type(b) is str else None
                if sz is None:
                    sz = _positive(b)
                if px is not None and sz is not None:
                    done.append(_tuple_new(Level, (px, sz)))  # Level(px, sz) without its generated __new__
        self._pos = pos

    def _first(self) -> Level | None:
        """The top level when it is well formed and both its strings were seen before (the common case, on
        every update of a strategy reading the top of book: ``_upto``'s general walk cost twice this); None
        otherwise, and ``_upto`` decides."""
        raw = self._raw
        if raw:
            lv = raw[0]
            if type(lv) is list and len(lv) >= 2:
                a, b = lv[0], lv[1]
                if type(a) is str and type(b) is str:
                    px, sz = _POSITIVE.get(a), _POSITIVE.get(b)
                    if px is not None and sz is not None:
                        level = _tuple_new(Level, (px, sz))
                        self._done.append(level)
                        self._pos = 1
                        return level
        return None

    def __getitem__(self, i: Any) -> Any:
        done = self._done
        if type(i) is int and i >= 0:
            if i >= len(done):  # the common case (the top of book, read again) skips this
                if i == 0 and (level := self._first()) is not None:
                    return level
                self._upto(i)
            return done[i]
        return tuple(self)[i]

    def __len__(self) -> int:
        self._upto(len(self._raw))
        return len(self._done)

    def __iter__(self) -> Iterator[Level]:
        i = 0
        while True:
            self._upto(i)
            if i >= len(self._done):
                return
            yield self._done[i]
            i += 1

    def __bool__(self) -> bool:
        if not self._done:
            self._upto(0)
        return bool(self._done)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Levels | tuple | list):
            return tuple(self) == tuple(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        return repr(tuple(self))
