"""The wire protocol: every message that crosses a socket in wispd is defined here.

One module, imported by every plane (supervisor, control, ingest, strategy runtime, execution), so that
the shape of a frame is written down exactly once. Everything is orjson; nothing crosses a socket as a
Python object. Decoding is strict and never raises out of a receive loop: callers get ``None`` (and count
the drop) for anything malformed.

Sections:
- market data: topics ``md.<exchange>.<market>.<SYMBOL>.<channel>`` and the envelope (PUB/SUB), and the
  snapshot/history request-reply of each ingestor;
- supervisor link: child <-> supervisor (hello, ready, heartbeat, status, drain);
- control: wispctl <-> supervisor request/reply with request ids.

``docs/protocol.md`` documents the same for programs outside wispd.
"""

from __future__ import annotations

import functools
import re
import uuid
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

from wispd import clock
from wispd.control.envelope import (  # noqa: F401 - re-exported
    ERR_BAD_REQUEST,
    ERR_CONFIG,
    ERR_FAILED,
    ERR_SHUTTING_DOWN,
    ERR_UNKNOWN_NAME,
    control_request,
)

SCHEMA_VERSION = 1


def dumps(obj: Any) -> bytes:
    """Encode with orjson; Decimal and other non-JSON types become strings (prices travel as text)."""
    return orjson.dumps(obj, default=_default)


def _default(obj: Any) -> Any:
    # Decimal, Path, Enum: all travel as their string form. Floats never stand in for prices.
    if hasattr(obj, "value") and obj.__class__.__module__ == "enum":
        return obj.value
    return str(obj)


def loads_dict(frame: bytes) -> dict[str, Any] | None:
    """Decode one frame that must be a JSON object. Returns None for anything else, never raises."""
    try:
        obj = orjson.loads(frame)
    except (orjson.JSONDecodeError, TypeError, ValueError):
        return None
    return obj if isinstance(obj, dict) else None


# --------------------------------------------------------------------------- market data
# One ZeroMQ frame per message: b"<topic> <envelope json>". Subscribers filter by topic prefix on the
# publisher side (SUB subscriptions); subscribe to b"<topic> " (with the space) for one exact topic, or to
# b"md.<exchange>.<market>.<SYMBOL>." for every channel of a pair.

MARKETS = ("spot", "perp")
CHANNELS = ("book", "trades", "ticker", "funding")  # plus "kline.<interval>"
KINDS_MD = ("book", "trades", "ticker", "kline", "funding", "stale")
_SYMBOL = re.compile(r"^[A-Z0-9]{1,20}-[A-Z0-9]{1,20}$")
INTERVAL_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "M": 2592000}
_EXCHANGE = re.compile(r"^[a-z][a-z0-9_-]{0,47}$")


@dataclass(frozen=True)
class Topic:
    exchange: str
    market: str  # spot | perp
    symbol: str  # BASE-QUOTE, upper case
    channel: str  # book | trades | ticker | funding | kline.<interval>

    def encode(self) -> bytes:
        return f"md.{self.exchange}.{self.market}.{self.symbol}.{self.channel}".encode()

    @property
    def interval(self) -> str | None:
        return self.channel[6:] if self.channel.startswith("kline.") else None


def interval_seconds(interval: str) -> int:
    """Seconds of an interval like 15s, 1m, 4h, 1d, 1w; ValueError (with the valid forms) otherwise."""
    unit, count = interval[-1:], interval[:-1]
    if unit not in INTERVAL_SECONDS or not count.isdigit() or int(count) <= 0:
        raise ValueError(f"unknown interval {interval!r}: a number and one of s, m, h, d, w, M (e.g. 1m, 15m, 4h, 1d)")
    secs = int(count) * INTERVAL_SECONDS[unit]
    if secs < 60 and 60 % secs or secs > 60 and secs % 60:
        raise ValueError(f"unknown interval {interval!r}: under a minute it must divide 60 s, above a whole "
                         "number of minutes")
    return secs


def valid_interval(interval: str) -> bool:
    try:
        interval_seconds(interval)
    except ValueError:
        return False
    return True


def valid_channel(channel: str) -> bool:
    if channel.startswith("kline."):
        return valid_interval(channel[6:])
    return channel in CHANNELS


def parse_topic(raw: bytes | str) -> Topic | None:
    """``md.sim.spot.BTC-USDT.kline.1m`` -> Topic; None for anything that is not a full, valid topic.

    Cached: a subscriber sees the same few topics millions of times, and this runs once per message.
    """
    return _parse_topic(raw)


@functools.lru_cache(maxsize=8192)
def _parse_topic(raw: bytes | str) -> Topic | None:
    try:
        text = raw.decode() if isinstance(raw, bytes) else raw
    except UnicodeDecodeError:
        return None
    parts = text.split(".", 4)
    if len(parts) != 5 or parts[0] != "md":
        return None
    _, exchange, market, symbol, channel = parts
    if not _EXCHANGE.match(exchange) or market not in MARKETS or not _SYMBOL.match(symbol):
        return None
    return Topic(exchange, market, symbol, channel) if valid_channel(channel) else None


def valid_symbol(symbol: str) -> bool:
    return bool(_SYMBOL.match(symbol))


def pair_prefix(exchange: str, market: str, symbol: str) -> bytes:
    """Subscription prefix for every channel of one pair."""
    return f"md.{exchange}.{market}.{symbol}.".encode()


def parse_subscription(prefix: bytes) -> tuple[str, str, str, str | None] | None:
    """A SUB prefix a strategy may send: a pair prefix, or one exact topic (trailing space allowed)."""
    text = prefix.decode(errors="replace").rstrip(" ")
    if text.count(".") == 4 and text.endswith("."):
        _, exchange, market, symbol, _ = text.split(".")
        if _EXCHANGE.match(exchange) and market in MARKETS and _SYMBOL.match(symbol):
            return exchange, market, symbol, None
        return None
    topic = parse_topic(text)
    return (topic.exchange, topic.market, topic.symbol, topic.channel) if topic else None


def now_ms() -> float:
    return clock.now_ms()


def md_frame(topic: bytes, kind: str, source: str, epoch: int, seq: int, ts_exch: float | None,
             body: dict[str, Any]) -> bytes:
    """Encode one market-data message. ``ts_ingest`` is stamped here, at the last moment."""
    env = {"v": SCHEMA_VERSION, "kind": kind, "src": source, "epoch": epoch, "seq": seq,
           "ts_exch": ts_exch, "ts_ingest": clock.now_ms(), "body": body}
    return topic + b" " + dumps(env)


def parse_md_frame(frame: bytes) -> tuple[bytes, dict[str, Any]] | None:
    """Split and validate one market-data frame; None (to be counted as dropped) if malformed."""
    topic, sep, payload = frame.partition(b" ")
    if not sep or not topic.startswith(b"md."):
        return None
    env = loads_dict(payload)
    return (topic, env) if valid_envelope(env) else None


_KINDS_MD = frozenset(KINDS_MD)


def valid_envelope(env: Any) -> bool:
    # type() is deliberate: this runs once per message in every subscriber, and bool is not a valid seq.
    # The kind's type is checked before the set lookup: a dict or list there is unhashable and would raise.
    return (type(env) is dict and env.get("v") == SCHEMA_VERSION and type(env.get("kind")) is str
            and env["kind"] in _KINDS_MD
            and type(env.get("seq")) is int and type(env.get("epoch")) is int and type(env.get("body")) is dict)


MAX_DIGITS = 40  # significant digits of any decimal that crosses a socket
MAX_ADJUSTED = 30  # ... and its magnitude: 1e-30 < |x| < 1e31 (or 0)


_DECIMALS: dict[str, Decimal | None] = {}  # wire string -> its verdict: a book's prices and sizes repeat
_DECIMALS_MAX = 1 << 16  # then it starts afresh (bounded, whatever a peer sends)


def to_decimal(value: Any) -> Decimal | None:
    """Decimal from a wire string (or int); None for floats, NaN, infinities, garbage and numbers no market
    has (more than 40 digits, or beyond 1e+/-30): the one parser every plane uses at its edge, so a value
    like "1E+100000" is refused where it enters and never reaches arithmetic.

    Strings are remembered with their verdict (a Decimal is immutable, so one can be shared): a book's
    levels arrive as the same few strings update after update, and parsing them was most of the cost of
    reading a top of book."""
    if type(value) is str:  # the wire's case, checked first: this runs for every price and size read
        try:
            return _DECIMALS[value]
        except KeyError:
            pass
        d = _parse_decimal(value) if len(value) <= 64 else None
        if len(_DECIMALS) >= _DECIMALS_MAX:
            _DECIMALS.clear()
        _DECIMALS[value] = d
        return d
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    if isinstance(value, str) and len(value) > 64:  # a str subclass: parsed, never remembered
        return None
    return _parse_decimal(value)


def _parse_decimal(value: str | int) -> Decimal | None:
    try:
        d = Decimal(value)
    except (InvalidOperation, ValueError):
        return None
    if not d.is_finite():
        return None
    if d and not -MAX_ADJUSTED <= d.adjusted() <= MAX_ADJUSTED:
        return None
    # a string of at most MAX_DIGITS characters cannot hold more digits (the common case: no tuple built)
    if d and (type(value) is not str or len(value) > MAX_DIGITS) and len(d.as_tuple().digits) > MAX_DIGITS:
        return None
    return d


def dec_str(value: Any) -> str:
    """Canonical decimal string for the wire (no exponent, no trailing zeros beyond need)."""
    d = value if isinstance(value, Decimal) else Decimal(str(value))
    text = format(d, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


# Snapshot/history endpoint of each ingestor (ROUTER; clients use DEALER or REQ).
# Request {"id", "op": "snapshot", "topic"} -> {"id", "ok", "envelope"} (the latest message of the topic)
# Request {"id", "op": "history", "topic": "md...kline.<i>", "limit"} -> {"id", "ok", "candles": [...]}
# Request {"id", "op": "markets"} -> {"id", "ok", "markets": {SYMBOL: {"market", "tick", "step", ...}}}
# Request {"id", "op": "watch", "topics": [...], "ttl"?} -> {"id", "ok", "watching": [...]} (explicit watch, for
#   clients that do not SUBscribe; held per client (its ROUTER identity) until it unwatches, or ttl seconds)
# Request {"id", "op": "unwatch", "topics": [...]} -> {"id", "ok", "watching": [...]}
# Errors: {"id", "ok": false, "error", "code"?} ("unknown_symbol" for a pair the exchange does not have)
SNAP_OPS = ("snapshot", "history", "markets", "watch", "unwatch")
WATCH_TTL_MAX = 86_400.0


def snap_request(op: str, **fields: Any) -> tuple[str, bytes]:
    rid = uuid.uuid4().hex
    return rid, dumps({"id": rid, "op": op, **fields})


def parse_snap_request(frame: bytes) -> dict[str, Any] | None:
    msg = loads_dict(frame)
    if msg is None or not isinstance(msg.get("id"), str) or msg.get("op") not in SNAP_OPS:
        return None
    return msg


# --------------------------------------------------------------------------- supervisor link
# A child connects a DEALER whose identity is "<name>#<generation>#<nonce>" to the supervisor's ROUTER.
# The generation makes a message from a previous incarnation recognisable; the nonce (random, made by the
# supervisor for each spawn and handed over in the boot arguments, never on disk) makes the identity
# unguessable, so no other local process can take the link of the child about to start.

LINK_HELLO = "hello"  # child -> sup: process is up, link connected (pid)
LINK_READY = "ready"  # child -> sup: ready per its kind's readiness rule
LINK_HEARTBEAT = "hb"  # child -> sup: main loop is alive (sent from the loop itself, never a side thread)
LINK_STATUS = "status"  # child -> sup: phase, summary, fields (shown by wispctl status)
LINK_DRAINING = "draining"  # child -> sup: drain acknowledged, extend: seconds still needed
LINK_METRICS = "metrics"  # child -> sup: counters/gauges snapshot for the Prometheus endpoint
LINK_EXIT = "exit"  # child -> sup: why it is about to exit (the exception type and message), for status
LINK_DRAIN = "drain"  # sup -> child: stop taking new work, finish, exit 0
LINK_COMMAND = "cmd"  # sup -> child: an operator command for this kind of child (halt, resume)


def link_identity(name: str, generation: int, nonce: str) -> bytes:
    return f"{name}#{generation}#{nonce}".encode()


def parse_link_identity(identity: bytes) -> tuple[str, int, str] | None:
    try:
        rest, _, nonce = identity.decode().rpartition("#")
        name, _, gen = rest.rpartition("#")
        return (name, int(gen), nonce) if name and nonce else None
    except (UnicodeDecodeError, ValueError):
        return None


def link_message(kind: str, **fields: Any) -> bytes:
    return dumps({"t": kind, **fields})


def bounded_text(value: Any, limit: int) -> str:
    """A string from the wire, cut to ``limit`` characters (anything else becomes "")."""
    return value[:limit] if isinstance(value, str) else ""


STATUS_FIELDS_MAX = 4096  # encoded bytes of a status line's fields


def clean_status(msg: dict[str, Any]) -> dict[str, Any] | None:
    """A child's status line, bounded (phase 64 chars, summary 500, fields 4 KB encoded); None if malformed."""
    fields = msg.get("fields") or {}
    ts = msg.get("ts")
    if not isinstance(fields, dict) or (ts is not None and (isinstance(ts, bool) or not isinstance(ts, int | float))):
        return None
    if len(dumps(fields)) > STATUS_FIELDS_MAX:
        return None
    return {"phase": bounded_text(msg.get("phase"), 64), "summary": bounded_text(msg.get("summary"), 500),
            "fields": fields, "ts": ts}


def parse_link_message(frame: bytes) -> dict[str, Any] | None:
    """A link message is an object with a string ``t`` naming one of the known kinds."""
    msg = loads_dict(frame)
    if msg is None or not isinstance(msg.get("t"), str):
        return None
    return msg


# --------------------------------------------------------------------------- control
# wispctl (DEALER) -> supervisor control ROUTER. Request: {"id", "verb", "args"}.
# Reply: {"id", "ok": bool, "result": {...}} or {"id", "ok": false, "error": str, "code": str}.

# The client's half (the request, the error codes) is in wispd.control.envelope, which wispctl imports alone;
# it is re-exported here with every other frame.


def parse_control_request(frame: bytes) -> dict[str, Any] | None:
    msg = loads_dict(frame)
    if msg is None:
        return None
    if not isinstance(msg.get("id"), str) or not isinstance(msg.get("verb"), str):
        return None
    if not isinstance(msg.get("args", {}), dict):
        return None
    msg.setdefault("args", {})
    return msg


def control_ok(rid: str, result: dict[str, Any]) -> bytes:
    return dumps({"id": rid, "ok": True, "result": result})


def control_error(rid: str, code: str, error: str, result: dict[str, Any] | None = None) -> bytes:
    return dumps({"id": rid, "ok": False, "code": code, "error": error, "result": result or {}})
