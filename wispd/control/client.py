"""wispctl's side of the control socket: one request, one reply, a clear message when nobody answers."""

from __future__ import annotations

import errno
import os
import socket
from typing import Any

import zmq

from wispd import protocol


class Unreachable(Exception):
    """The daemon cannot be reached; the message is one line meant for the operator."""

    def __init__(self, message: str, denied: bool = False) -> None:
        super().__init__(message)
        self.denied = denied  # the daemon may well run: this user may not talk to it


def _probe(path: str) -> None:
    try:
        os.stat(path)
    except PermissionError:
        raise Unreachable(f"permission denied: {path} belongs to another user (run wispctl as the user wispd "
                          "runs as)", denied=True) from None
    except FileNotFoundError:
        raise Unreachable(f"wispd is not running (no control socket at {path})") from None
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except PermissionError:
        raise Unreachable(f"permission denied on control socket {path} (run as the wispd user)",
                          denied=True) from None
    except OSError as exc:
        if exc.errno in (errno.ECONNREFUSED, errno.ENOENT):
            raise Unreachable(f"wispd is not running (stale control socket at {path})") from None
        raise Unreachable(f"cannot reach wispd at {path}: {exc.strerror}") from None
    finally:
        probe.close()


def call(endpoint: str, verb: str, args: dict[str, Any] | None = None, timeout: float = 10.0) -> dict[str, Any]:
    """Send one request and wait for its reply; raises Unreachable when the daemon does not answer."""
    if endpoint.startswith("ipc://"):
        _probe(endpoint[len("ipc://"):])
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        sock.connect(endpoint)
        rid, frame = protocol.control_request(verb, args)
        sock.send(frame)
        deadline_ms = int(timeout * 1000)
        while sock.poll(deadline_ms):
            reply = protocol.loads_dict(sock.recv())
            if reply is not None and reply.get("id") == rid:
                return reply
        raise Unreachable(f"wispd did not answer {verb!r} within {timeout:g}s at {endpoint}")
    finally:
        sock.close()
