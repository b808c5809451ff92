"""Messages of parts over a Unix stream socket: the backtest's replay link between the replayer and each
strategy process.

A replay link is strict ping-pong (a request, then a step), one or two round trips per order a backtest
makes. Through ZeroMQ each round trip crosses both sides' I/O threads: ~250 us on the 2-core VM the
benches run on, against ~70 us for a plain Unix socket (docs/BENCHMARKS.md). So the link is a plain
socket with its own framing: a message is a u32 count of parts, then per part a u32 length and its bytes.

A peer that sends a header no replay message has (more than ``MAX_PARTS`` parts, a part over
``MAX_PART`` bytes) is cut off: the reader says so (``BadFrame``) and the caller treats the peer as gone.
"""

from __future__ import annotations

import socket
import struct

from wispd.fdwait import readable

U32 = struct.Struct(">I")
MAX_PARTS = 1 << 16  # a step holds at most a few thousand frames
MAX_PART = 64 << 20  # a run-ahead blob is ~1 MB; nothing legitimate comes near this
SENDMSG_MAX = 512  # parts of a message gathered by one sendmsg (the system's limit is 1024 buffers)
READ = 256 << 10  # bytes read at once: more than a Unix socket's buffer holds (~208 KB by default)


class BadFrame(Exception):
    """The peer sent something that is not a message of this framing."""


class Link:
    """One end of a framed Unix stream socket (blocking sends; reads buffered and parsed incrementally)."""

    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(True)
        self.sock = sock
        self.buf = bytearray()
        self.closed = False
        # Reads land here first: ``recv(n)`` allocates n bytes on every call whatever arrives (36 us for a
        # 43 KB step with n = 1 MB on the bench VM, against 5 us into a buffer kept for the link's life)
        self._scratch = memoryview(bytearray(READ))

    def fileno(self) -> int:
        return self.sock.fileno()

    def send(self, parts: list[bytes]) -> None:
        out = [U32.pack(len(parts))]
        for p in parts:
            out.append(U32.pack(len(p)))
            out.append(p)
        # Gathered, not joined: a step carries a run-ahead of up to a megabyte, and joining it was a copy
        # the kernel makes anyway. A blocking sendmsg sends what the socket's buffer takes; the rest follows.
        bufs: list[bytes | memoryview] = out
        i = 0
        while i < len(bufs):
            n = self.sock.sendmsg(bufs[i:i + SENDMSG_MAX])
            while i < len(bufs) and len(bufs[i]) <= n:  # (an empty part is passed over here too)
                n -= len(bufs[i])
                i += 1
            if n:
                bufs[i] = memoryview(bufs[i])[n:]

    def take(self) -> list[bytes] | None:
        """A whole message from what was read so far, or None if none is complete yet."""
        buf = self.buf
        if len(buf) < 4:
            return None
        (count,) = U32.unpack_from(buf, 0)
        if count > MAX_PARTS:
            raise BadFrame(f"{count} parts")
        pos, lengths = 4, []
        for _ in range(count):
            if len(buf) < pos + 4:
                return None
            (n,) = U32.unpack_from(buf, pos)
            if n > MAX_PART:
                raise BadFrame(f"a part of {n} bytes")
            pos += 4
            if len(buf) < pos + n:
                return None
            lengths.append((pos, n))
            pos += n
        with memoryview(buf) as view:  # one copy per part (a bytearray slice would be a second)
            parts = [bytes(view[a:a + n]) for a, n in lengths]
        del buf[:pos]
        return parts

    def fill(self) -> bool:
        """Read what has arrived (without blocking once something was read); False once the peer closed."""
        try:
            n = self.sock.recv_into(self._scratch)
        except (BlockingIOError, InterruptedError):
            return True
        except OSError:
            n = 0
        if not n:
            self.closed = True
            return False
        self.buf += self._scratch[:n]
        return True

    def readable(self, timeout_s: float) -> bool:
        return readable(self.sock, timeout_s)

    def recv(self, timeout_s: float) -> list[bytes] | None:
        """The next message, waiting at most ``timeout_s`` for more bytes (None: not yet, or the peer is
        gone: see ``closed``)."""
        msg = self.take()
        if msg is not None or self.closed:
            return msg
        if not self.readable(timeout_s) or not self.fill():
            return None
        return self.take()

    def close(self) -> None:
        self.closed = True
        self.sock.close()


def connect(path: str) -> Link:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(path)
    return Link(sock)


def listen(path: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(path)
    sock.listen(64)
    return sock
