"""A ZMTP 3.1 DEALER over a Unix socket, in the standard library: what ``wispctl`` needs to ask wispd one question.

wispctl sends one request and reads one reply. Importing pyzmq for that (its extension, constants, sugar and a
context whose threads start and stop) was a third of a command's run time, so the client speaks the wire
protocol itself (37/ZMTP 3.1, NULL mechanism): the 64-byte greeting, a READY command naming the socket type, then
frames. The daemon's side stays a real libzmq ROUTER; ``tests/control/test_zmtp.py`` holds this dealer to it.

Everything a peer sends is bounded (frame sizes, command sizes, the total of one message) and read against one
deadline, so a daemon that hangs, a file that is not wispd, or a peer that sends garbage gives a clear error
(``ZmtpError``, ``Refused``, ``TimeoutError``), never a hang or a traceback.
"""

from __future__ import annotations

import socket
import struct
import time

SIGNATURE = b"\xff" + b"\x00" * 8 + b"\x7f"
GREETING = SIGNATURE + b"\x03\x01" + b"NULL".ljust(20, b"\x00") + b"\x00" + b"\x00" * 31
MORE, LONG, COMMAND = 0x01, 0x02, 0x04
MAX_COMMAND = 64 * 1024  # a READY or ERROR is a few dozen bytes
MAX_MESSAGE_DEFAULT = 64 * 1024 * 1024  # a status of hundreds of children with their histories is < 1 MB


class ZmtpError(Exception):
    """The peer does not speak ZMTP as a wispd control socket does, or went away mid-conversation."""


class Closed(ZmtpError):
    """The peer closed the connection."""


class Refused(ZmtpError):
    """The peer answered the handshake with an ERROR command (a ZAP handler said no)."""


def command(name: bytes, body: bytes = b"") -> bytes:
    """One command frame: name length, name, body (short or long size as the total needs)."""
    payload = bytes([len(name)]) + name + body
    if len(payload) < 256:
        return bytes([COMMAND, len(payload)]) + payload
    return bytes([COMMAND | LONG]) + struct.pack(">Q", len(payload)) + payload


def frame(data: bytes, more: bool = False) -> bytes:
    """One message frame."""
    flags = MORE if more else 0
    if len(data) < 256:
        return bytes([flags, len(data)]) + data
    return bytes([flags | LONG]) + struct.pack(">Q", len(data)) + data


def ready(socket_type: bytes) -> bytes:
    """The NULL mechanism's READY command with its one property this dealer has to state."""
    name = b"Socket-Type"
    return command(b"READY", bytes([len(name)]) + name + struct.pack(">I", len(socket_type)) + socket_type)


def properties(body: bytes) -> dict[bytes, bytes]:
    """A READY command's metadata (name -> value); raises ZmtpError when it does not parse."""
    props: dict[bytes, bytes] = {}
    i = 0
    while i < len(body):
        n = body[i]
        name, i = body[i + 1:i + 1 + n], i + 1 + n
        if len(name) != n or n == 0 or i + 4 > len(body):
            raise ZmtpError("malformed READY metadata")
        (size,) = struct.unpack_from(">I", body, i)
        value, i = body[i + 4:i + 4 + size], i + 4 + size
        if len(value) != size:
            raise ZmtpError("malformed READY metadata")
        props[name.lower()] = value
    return props


class Dealer:
    """One connection to a ZMTP ROUTER on a Unix socket path: ``open``, ``handshake``, then ``request`` sends
    one message and ``recv`` reads the next one, all within the deadline given at ``open``."""

    def __init__(self, max_message: int = MAX_MESSAGE_DEFAULT) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.max_message = max_message
        self.deadline = 0.0
        self.ready = False  # the handshake is done: what goes wrong now is the daemon's, not the socket's
        self._buf = bytearray()

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Dealer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self, path: str, timeout: float) -> None:
        """Connect to the socket at ``path``; ``timeout`` bounds everything this dealer does from now on."""
        self.deadline = time.monotonic() + timeout
        self._settimeout()
        self.sock.connect(path)

    def handshake(self) -> None:
        """Greet, announce a DEALER, and check the peer is a ZMTP 3 ROUTER with the NULL mechanism."""
        try:
            self._handshake()
        except Closed:
            raise Closed("the peer closed the connection during the handshake (a ZeroMQ socket with a security "
                         "mechanism or of a type that does not talk to a DEALER?)") from None

    def _handshake(self) -> None:
        self._settimeout()
        self._send(GREETING)
        greeting = self._read(64)  # before READY: a peer that dislikes our greeting closes, and what it
        # had not read of ours would turn its close into a reset that loses its greeting on our side
        if greeting[:1] != b"\xff" or greeting[9:10] != b"\x7f":
            raise ZmtpError("the peer is not a ZeroMQ socket (no ZMTP greeting)")
        if greeting[10] < 3:
            raise ZmtpError(f"the peer speaks ZMTP {greeting[10]}.{greeting[11]}, not 3.x")
        if greeting[12:32].rstrip(b"\x00") != b"NULL":
            raise ZmtpError(f"the peer wants the {greeting[12:32].rstrip(bytes(1)).decode('ascii', 'replace')} "
                            "security mechanism, not NULL")
        self._send(ready(b"DEALER"))
        name, body = self._command()
        if name == b"ERROR":
            raise Refused(body[1:1 + body[0]].decode("ascii", "replace") if body else "")
        if name != b"READY":
            raise ZmtpError(f"the peer sent {name[:20]!r} where READY belongs")
        kind = properties(body).get(b"socket-type", b"")
        if kind != b"ROUTER":
            raise ZmtpError(f"the peer is a {kind.decode('ascii', 'replace') or 'typeless'} socket, not a ROUTER")
        self.ready = True

    def request(self, data: bytes) -> None:
        self._send(frame(data))

    def recv(self) -> list[bytes]:
        """The next message's frames; a PING between messages gets its PONG (a ROUTER with heartbeats drops a
        peer that stays silent), other commands are read past."""
        parts: list[bytes] = []
        total = 0
        while True:
            flags, size = self._header()
            if flags & COMMAND:
                if parts:
                    raise ZmtpError("a command inside a multipart message")
                name, body = self._command_body(size)
                if name == b"ERROR":
                    raise Refused(body[1:1 + body[0]].decode("ascii", "replace") if body else "")
                if name == b"PING":  # 2-byte TTL, then up to 16 bytes of context the PONG must echo
                    self._send(command(b"PONG", body[2:18]))
                continue
            total += size
            if total > self.max_message:
                raise ZmtpError(f"a reply of more than {self.max_message} bytes")
            parts.append(self._read(size))
            if not flags & MORE:
                return parts

    # ------------------------------------------------------------------ the socket
    def _send(self, data: bytes) -> None:
        self._settimeout()
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            raise Closed("the peer closed the connection") from None

    def _settimeout(self) -> None:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        self.sock.settimeout(left)

    def _read(self, n: int) -> bytes:
        while len(self._buf) < n:
            self._settimeout()
            try:
                chunk = self.sock.recv(max(65536, n - len(self._buf)))
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                raise Closed("the peer closed the connection")
            self._buf += chunk
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out

    def _header(self) -> tuple[int, int]:
        flags = self._read(1)[0]
        if flags & ~(MORE | LONG | COMMAND):
            raise ZmtpError(f"frame flags {flags:#04x} are not ZMTP")
        if flags & LONG:
            (size,) = struct.unpack(">Q", self._read(8))
        else:
            size = self._read(1)[0]
        return flags, size

    def _command(self) -> tuple[bytes, bytes]:
        flags, size = self._header()
        if not flags & COMMAND:
            raise ZmtpError("a message frame before the handshake finished")
        return self._command_body(size)

    def _command_body(self, size: int) -> tuple[bytes, bytes]:
        if size > MAX_COMMAND or size < 1:
            raise ZmtpError(f"a command of {size} bytes")
        data = self._read(size)
        n = data[0]
        if n == 0 or 1 + n > len(data):
            raise ZmtpError("a command without a name")
        return data[1:1 + n], data[1 + n:]
