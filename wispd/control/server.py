"""Control requests into the supervisor: decode, log mutations, route to the verb's ``handle``.

Replies may be deferred (``stop`` answers once the child has stopped); each request carries its id, so
the client matches replies, and work on one child never waits for work on another.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from wispd import protocol
from wispd.control.verbs import VERBS

if TYPE_CHECKING:
    from wispd.supervisor.supervisor import Supervisor


def dispatch(sup: Supervisor, payload: bytes, send: Callable[[bytes], None]) -> None:
    req = protocol.parse_control_request(payload)
    if req is None:
        rid = (protocol.loads_dict(payload) or {}).get("id")
        send(protocol.control_error(rid if isinstance(rid, str) else "", protocol.ERR_BAD_REQUEST,
                                    "malformed control request"))
        return
    rid, verb, args = req["id"], req["verb"], req["args"]
    module = VERBS.get(verb)
    if module is None or not hasattr(module, "handle"):
        send(protocol.control_error(rid, protocol.ERR_BAD_REQUEST, f"unknown verb {verb!r}"))
        return
    if getattr(module, "MUTATING", False):
        sup.log.info("control_command", verb=verb, args=args, request_id=rid)
    answered = {"done": False}

    def respond(ok: bool, result: dict[str, Any], code: str = "", error: str = "") -> None:
        if answered["done"]:
            return
        answered["done"] = True
        if getattr(module, "MUTATING", False):
            sup.log.info("control_result", verb=verb, request_id=rid, ok=ok, error=error or None)
        on_result = getattr(sup, "on_control_result", None)
        if on_result is not None:
            on_result(verb, ok)
        send(protocol.control_ok(rid, result) if ok else protocol.control_error(rid, code, error, result))

    if sup.halting and getattr(module, "MUTATING", False) and verb != "shutdown":
        respond(False, {}, protocol.ERR_SHUTTING_DOWN, "wispd is shutting down")
        return
    try:
        module.handle(sup, args, respond)
    except Exception as exc:  # noqa: BLE001 - a bad request must never take the supervisor down
        sup.log.exception("control_error", verb=verb)
        respond(False, {}, protocol.ERR_FAILED, f"{type(exc).__name__}: {exc}")
