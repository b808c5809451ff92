"""wispctl's side of the control socket: one request, one reply, a clear message when nobody answers.

The request goes over ``wispd.control.zmtp`` (ZMTP spoken by the standard library, not pyzmq: a command's run
time is mostly imports). Every way of not getting an answer becomes ``Unreachable`` with one line for the
operator: no socket, a stale socket, a socket of another user, a daemon that refused this connection (a
strategy's own session may not use it), one that does not answer in time, a file that is not wispd.
"""

from __future__ import annotations

import errno
import os
from typing import Any

from wispd.control import envelope, zmtp


class Unreachable(Exception):
    """The daemon cannot be reached; the message is one line meant for the operator."""

    def __init__(self, message: str, denied: bool = False) -> None:
        super().__init__(message)
        self.denied = denied  # the daemon may well run: this user may not talk to it


def _cannot_connect(path: str, exc: OSError) -> Unreachable:
    if isinstance(exc, PermissionError):
        try:
            os.stat(path)
        except PermissionError:
            return Unreachable(f"permission denied: {path} belongs to another user (run wispctl as the user wispd "
                               "runs as)", denied=True)
        except OSError:
            pass
        return Unreachable(f"permission denied on control socket {path} (run as the wispd user)", denied=True)
    if isinstance(exc, FileNotFoundError):
        return Unreachable(f"wispd is not running (no control socket at {path})")
    if exc.errno == errno.ECONNREFUSED:
        return Unreachable(f"wispd is not running (stale control socket at {path})")
    return Unreachable(f"cannot reach wispd at {path}: {exc.strerror or exc}")


def call(endpoint: str, verb: str, args: dict[str, Any] | None = None, timeout: float = 10.0) -> dict[str, Any]:
    """Send one request and wait for its reply; raises Unreachable when the daemon does not answer."""
    if not endpoint.startswith("ipc://"):
        raise Unreachable(f"the control endpoint must be ipc:// (got {endpoint!r})")
    path = endpoint[len("ipc://"):]
    rid, request = envelope.control_request(verb, args)
    with zmtp.Dealer() as dealer:
        try:
            try:
                dealer.open(path, timeout)
            except TimeoutError:
                raise
            except OSError as exc:
                raise _cannot_connect(path, exc) from None
            dealer.handshake()
            dealer.request(request)
            while True:
                reply = envelope.parse_control_reply(dealer.recv()[-1], rid)
                if reply is not None:
                    return reply
        except TimeoutError:
            raise Unreachable(f"wispd did not answer {verb!r} within {timeout:g}s at {endpoint}") from None
        except zmtp.Refused as exc:
            raise Unreachable(f"wispd refused this connection at {endpoint} ({exc or 'no reason given'}): the "
                              "control socket is for operators, not for strategies or what they start",
                              denied=True) from None
        except zmtp.Closed as exc:
            if dealer.ready:
                raise Unreachable(f"wispd closed the connection at {endpoint} before answering {verb!r} (is it "
                                  "shutting down?)") from None
            raise Unreachable(f"no wispd control socket at {endpoint}: {exc}") from None
        except zmtp.ZmtpError as exc:
            raise Unreachable(f"no wispd control socket at {endpoint}: {exc}") from None
        except OSError as exc:
            raise Unreachable(f"lost the connection to wispd at {endpoint}: {exc.strerror or exc}") from None
