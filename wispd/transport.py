"""Binding and connecting ZeroMQ endpoints the same way in every plane.

ipc endpoints live in the run directory (0700); the socket file itself is made 0600, and a stale file
left by a crashed process is removed first (the run-dir lock guarantees no live owner).
"""

from __future__ import annotations

import os

import zmq


def ipc_path(endpoint: str) -> str | None:
    return endpoint[len("ipc://"):] if endpoint.startswith("ipc://") else None


def bind(sock: zmq.Socket, endpoint: str) -> None:
    path = ipc_path(endpoint)
    if path and os.path.exists(path):
        os.unlink(path)
    old = os.umask(0o077)
    try:
        sock.bind(endpoint)
    finally:
        os.umask(old)
    if path:
        os.chmod(path, 0o600)


def limits(sock: zmq.Socket, *, max_msg: int | None = None, rcvhwm: int | None = None, sndhwm: int | None = None,
           linger: int = 0) -> zmq.Socket:
    """The bounds every socket gets (docs/security.md lists them per endpoint): ``max_msg`` is the largest
    frame it accepts (libzmq drops a peer that sends a bigger one: nobody can make us buffer 20 MB), and
    the high-water marks bound what queues in memory."""
    if max_msg is not None:
        sock.setsockopt(zmq.MAXMSGSIZE, max_msg)
    if rcvhwm is not None:
        sock.setsockopt(zmq.RCVHWM, rcvhwm)
    if sndhwm is not None:
        sock.setsockopt(zmq.SNDHWM, sndhwm)
    sock.setsockopt(zmq.LINGER, linger)
    return sock


def unlink_ipc(endpoint: str) -> None:
    """Remove the socket file of an ipc endpoint this process bound (on a clean stop: no files left)."""
    path = ipc_path(endpoint)
    if path:
        try:
            os.unlink(path)
        except OSError:
            pass
