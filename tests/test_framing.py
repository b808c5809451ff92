"""The replay link's framing: messages of parts survive any split of the byte stream, and garbage is
refused as ``BadFrame`` (never an exception of another kind, never an unbounded buffer)."""

from __future__ import annotations

import socket
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wispd import framing


def _pair() -> tuple[framing.Link, framing.Link]:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    return framing.Link(a), framing.Link(b)


def _encoded(parts: list[bytes]) -> bytes:
    a, b = _pair()
    try:
        a.send(parts)
        a.sock.shutdown(socket.SHUT_WR)
        out = b""
        while chunk := b.sock.recv(1 << 16):
            out += chunk
        return out
    finally:
        a.close()
        b.close()


@settings(max_examples=200, deadline=None)
@given(messages=st.lists(st.lists(st.binary(max_size=300), max_size=6), min_size=1, max_size=5),
       cuts=st.lists(st.integers(1, 64), max_size=40))
def test_messages_survive_any_split_of_the_stream(messages: list[list[bytes]], cuts: list[int]):
    stream = b"".join(_encoded(m) for m in messages)
    reader = framing.Link(socket.socket(socket.AF_UNIX, socket.SOCK_STREAM))
    got, pos = [], 0
    for size in [*cuts, len(stream)]:
        reader.buf += stream[pos:pos + size]
        pos += size
        while (msg := reader.take()) is not None:
            got.append(msg)
    reader.close()
    assert got == messages and not reader.buf


@settings(max_examples=300, deadline=None)
@given(junk=st.binary(max_size=200))
def test_garbage_is_refused_or_waited_on_never_anything_else(junk: bytes):
    reader = framing.Link(socket.socket(socket.AF_UNIX, socket.SOCK_STREAM))
    reader.buf += junk
    try:
        while reader.take() is not None:
            pass
    except framing.BadFrame:
        pass
    finally:
        reader.close()


def test_a_header_no_replay_message_has_is_refused_at_once():
    reader = framing.Link(socket.socket(socket.AF_UNIX, socket.SOCK_STREAM))
    reader.buf += framing.U32.pack(framing.MAX_PARTS + 1)
    with pytest.raises(framing.BadFrame):
        reader.take()
    reader.buf[:] = framing.U32.pack(1) + framing.U32.pack(framing.MAX_PART + 1)
    with pytest.raises(framing.BadFrame):
        reader.take()
    reader.close()


def test_a_large_message_between_processes_and_the_peer_going_away():
    a, b = _pair()
    blob = bytes(range(256)) * 8192  # 2 MB: larger than the socket buffers, so it arrives in pieces
    sender = threading.Thread(target=a.send, args=([b"head", blob],))
    sender.start()
    got = None
    while got is None:
        got = b.recv(1.0)
    sender.join()
    assert got == [b"head", blob]
    a.close()
    assert b.recv(1.0) is None and b.closed
    b.close()


@settings(max_examples=25, deadline=None)
@given(sizes=st.lists(st.sampled_from([0, 1, 7, 4096, 300_000]), min_size=1, max_size=framing.SENDMSG_MAX + 40))
def test_a_gathered_send_of_any_parts_arrives_whole(sizes: list[int]):
    """Sends gather the parts (no join); whatever the socket's buffer takes at a time, with empty parts,
    parts larger than the buffer and more parts than one gather holds, the message arrives as sent."""
    parts = [bytes([n % 251]) * n for n in sizes]
    a, b = _pair()
    sender = threading.Thread(target=a.send, args=(parts,))
    sender.start()
    got = None
    while got is None:
        got = b.recv(1.0)
    sender.join()
    assert got == parts
    a.close()
    b.close()
