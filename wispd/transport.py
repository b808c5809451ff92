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
