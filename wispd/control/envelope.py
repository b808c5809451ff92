"""The client's half of the control envelope: the request ``{"id", "verb", "args"}`` it sends, the reply
``{"id", "ok", "result"}`` or ``{"id", "ok": false, "code", "error", "result"}`` it reads, and the error codes
both ends use.

``wispd.protocol`` re-exports all of it with every other frame (and holds the daemon's half). It lives here,
on the standard library's ``json``, because ``wispctl`` imports it for every command: importing the rest of the
protocol, or orjson (which pulls in dataclasses, uuid and datetime), was a fifth of a command's run time, and a
reply is decoded once.
"""

from __future__ import annotations

import json
import os
from typing import Any

ERR_UNKNOWN_NAME = "unknown_name"
ERR_BAD_REQUEST = "bad_request"
ERR_FAILED = "failed"
ERR_CONFIG = "config_error"
ERR_SHUTTING_DOWN = "shutting_down"


def control_request(verb: str, args: dict[str, Any] | None = None) -> tuple[str, bytes]:
    """A fresh request id (random: replies are matched to it) and the request frame."""
    rid = os.urandom(16).hex()
    return rid, json.dumps({"id": rid, "verb": verb, "args": args or {}}, default=str,
                           separators=(",", ":")).encode()


def parse_control_reply(frame: bytes, rid: str) -> dict[str, Any] | None:
    """The reply to request ``rid`` in a frame, or None (not JSON, not an object, another request's reply)."""
    try:
        msg = json.loads(frame)
    except (ValueError, TypeError, RecursionError):
        return None
    return msg if isinstance(msg, dict) and msg.get("id") == rid and isinstance(msg.get("ok"), bool) else None
