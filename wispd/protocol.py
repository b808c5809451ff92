"""The wire protocol: every message that crosses a socket in wispd is defined here.

One module, imported by every plane (supervisor, control, ingest, strategy runtime, execution), so that
the shape of a frame is written down exactly once. Everything is orjson; nothing crosses a socket as a
Python object. Decoding is strict and never raises out of a receive loop: callers get ``None`` (and count
the drop) for anything malformed.

Sections:
- supervisor link: child <-> supervisor (hello, ready, heartbeat, status, drain);
- control: wispctl <-> supervisor request/reply with request ids.
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson

SCHEMA_VERSION = 1


class ProtocolError(ValueError):
    """A frame that does not match the protocol. Raised only by the strict ``parse_*`` helpers."""


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


# --------------------------------------------------------------------------- supervisor link
# A child connects a DEALER whose identity is "<name>#<generation>" to the supervisor's ROUTER.
# The generation makes a message from a previous incarnation of the same child recognisable (and ignored).

LINK_HELLO = "hello"  # child -> sup: process is up, link connected (pid)
LINK_READY = "ready"  # child -> sup: ready per its kind's readiness rule
LINK_HEARTBEAT = "hb"  # child -> sup: main loop is alive (sent from the loop itself, never a side thread)
LINK_STATUS = "status"  # child -> sup: phase, summary, fields (shown by wispctl status)
LINK_DRAINING = "draining"  # child -> sup: drain acknowledged, extend: seconds still needed
LINK_METRICS = "metrics"  # child -> sup: counters/gauges snapshot for the Prometheus endpoint
LINK_DRAIN = "drain"  # sup -> child: stop taking new work, finish, exit 0

CHILD_TO_SUP = frozenset({LINK_HELLO, LINK_READY, LINK_HEARTBEAT, LINK_STATUS, LINK_DRAINING, LINK_METRICS})


def link_identity(name: str, generation: int) -> bytes:
    return f"{name}#{generation}".encode()


def parse_link_identity(identity: bytes) -> tuple[str, int] | None:
    try:
        name, _, gen = identity.decode().rpartition("#")
        return (name, int(gen)) if name else None
    except (UnicodeDecodeError, ValueError):
        return None


def link_message(kind: str, **fields: Any) -> bytes:
    return dumps({"t": kind, **fields})


def parse_link_message(frame: bytes) -> dict[str, Any] | None:
    """A link message is an object with a string ``t`` naming one of the known kinds."""
    msg = loads_dict(frame)
    if msg is None or not isinstance(msg.get("t"), str):
        return None
    return msg


# --------------------------------------------------------------------------- control
# wispctl (DEALER) -> supervisor control ROUTER. Request: {"id", "verb", "args"}.
# Reply: {"id", "ok": bool, "result": {...}} or {"id", "ok": false, "error": str, "code": str}.

ERR_UNKNOWN_NAME = "unknown_name"
ERR_BAD_REQUEST = "bad_request"
ERR_FAILED = "failed"
ERR_CONFIG = "config_error"
ERR_SHUTTING_DOWN = "shutting_down"


def control_request(verb: str, args: dict[str, Any] | None = None) -> tuple[str, bytes]:
    rid = uuid.uuid4().hex
    return rid, dumps({"id": rid, "verb": verb, "args": args or {}})


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
