"""wispctl's standard-library ZMTP dealer against a real libzmq ROUTER (the daemon's socket type), and
against peers that are not one: every way a conversation can go wrong ends in a clear error within the
deadline, never a hang, a traceback of another kind or an unbounded buffer."""

from __future__ import annotations

import os
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import wait_for
from wispd.control import zmtp
from wispd.control.client import Unreachable, call


@pytest.fixture
def router(short_tmp: Path) -> Iterator[Callable[..., tuple[zmq.Socket, str]]]:
    """A libzmq ROUTER bound on an ipc path, configured by the test; closed afterwards."""
    ctx = zmq.Context()
    made: list[zmq.Socket] = []

    def make(**options: object) -> tuple[zmq.Socket, str]:
        sock = ctx.socket(zmq.ROUTER)
        sock.linger = 0
        for name, value in options.items():
            setattr(sock, name, value)
        path = str(short_tmp / f"r{len(made)}.sock")
        sock.bind(f"ipc://{path}")
        made.append(sock)
        return sock, path

    yield make
    for sock in made:
        sock.close(0)
    ctx.term()


def _serve(sock: zmq.Socket, reply: Callable[[bytes], list[bytes]], count: int = 1) -> threading.Thread:
    def run() -> None:
        for _ in range(count):
            if not sock.poll(5000):
                return
            ident, payload = sock.recv_multipart()
            sock.send_multipart([ident, *reply(payload)])

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _answer(payload: bytes, **extra: object) -> bytes:
    import orjson

    req = orjson.loads(payload)
    return orjson.dumps({"id": req["id"], "ok": True, "result": {"verb": req["verb"], "args": req["args"], **extra}})


def test_a_request_and_its_reply_cross_a_libzmq_router(router):
    sock, path = router()
    thread = _serve(sock, lambda p: [_answer(p)])
    reply = call(f"ipc://{path}", "status", {"name": "x", "history": True}, timeout=5)
    assert reply == {"id": reply["id"], "ok": True, "result": {"verb": "status", "args": {"name": "x", "history": True}}}
    thread.join(5)


@pytest.mark.parametrize("size", [0, 200, 255, 256, 70_000, 3_000_000])
def test_replies_of_every_frame_length_arrive_whole(router, size):
    """Short frames (< 256 bytes) and long ones (8-byte sizes), and a reply much bigger than a socket buffer."""
    sock, path = router()
    _serve(sock, lambda p: [_answer(p, blob="x" * size)])
    assert call(f"ipc://{path}", "status", timeout=10)["result"]["blob"] == "x" * size


def test_a_stale_reply_and_garbage_before_the_answer_are_read_past(router):
    """Replies are matched by id: another request's reply, non-JSON and a multipart message come first."""
    sock, path = router()

    def run() -> None:
        sock.poll(5000)
        ident, payload = sock.recv_multipart()
        sock.send_multipart([ident, b'{"id": "someone-else", "ok": true}'])
        sock.send_multipart([ident, b"\xff not json"])
        sock.send_multipart([ident, b"[1, 2]"])
        sock.send_multipart([ident, b"first part", _answer(payload)])

    threading.Thread(target=run, daemon=True).start()
    assert call(f"ipc://{path}", "status", timeout=5)["ok"] is True


def test_a_router_that_never_answers_times_out_on_time(router):
    _, path = router()
    t = time.monotonic()
    with pytest.raises(Unreachable, match="did not answer 'status' within 0.5s"):
        call(f"ipc://{path}", "status", timeout=0.5)
    assert time.monotonic() - t < 3


def test_a_daemon_that_goes_away_mid_request_is_not_called_not_running(short_tmp):
    """The ROUTER takes the request and closes without answering (a daemon killed or shutting down)."""
    ctx = zmq.Context()
    sock = ctx.socket(zmq.ROUTER)
    sock.linger = 0
    path = str(short_tmp / "gone.sock")
    sock.bind(f"ipc://{path}")

    def take_and_leave() -> None:
        if sock.poll(5000):
            sock.recv_multipart()
        sock.close(0)

    threading.Thread(target=take_and_leave, daemon=True).start()
    try:
        with pytest.raises(Unreachable, match="closed the connection .* before answering 'status'"):
            call(f"ipc://{path}", "status", timeout=5)
    finally:
        ctx.term()


def test_heartbeat_pings_are_answered_while_a_reply_is_awaited(router):
    """A ROUTER with ZMTP heartbeats drops a peer that does not PONG within 100 ms; the reply comes after
    half a second, so it only arrives if every PING on the way was answered."""
    sock, path = router(heartbeat_ivl=20, heartbeat_timeout=100)

    def late(payload: bytes) -> list[bytes]:
        time.sleep(0.5)
        return [_answer(payload)]

    _serve(sock, late)
    assert call(f"ipc://{path}", "status", timeout=5)["ok"] is True


def test_a_zap_refusal_is_reported_as_a_refusal(short_tmp):
    """The daemon refuses a child's session at the handshake (ZAP): the dealer is told, not left waiting."""
    ctx = zmq.Context()
    zap = ctx.socket(zmq.REP)
    zap.linger = 0
    zap.bind("inproc://zeromq.zap.01")
    try:
        def deny() -> None:
            if zap.poll(5000):
                version, rid, *_ = zap.recv_multipart()
                zap.send_multipart([version, rid, b"400", b"not for you", b"", b""])

        threading.Thread(target=deny, daemon=True).start()
        sock = ctx.socket(zmq.ROUTER)
        sock.linger = 0
        sock.zap_domain = b"control"
        path = str(short_tmp / "zap.sock")
        sock.bind(f"ipc://{path}")
        try:
            with pytest.raises(Unreachable, match="refused this connection") as info:
                call(f"ipc://{path}", "status", timeout=5)
            assert info.value.denied
        finally:
            sock.close(0)
    finally:
        zap.close(0)
        ctx.term()


def test_a_router_with_a_security_mechanism_closes_and_the_client_says_so(router):
    _, path = router(plain_server=True)
    with pytest.raises(Unreachable, match="closed the connection during the handshake"):
        call(f"ipc://{path}", "status", timeout=5)


def test_a_socket_of_another_type_is_named(short_tmp):
    ctx = zmq.Context()
    sock = ctx.socket(zmq.PULL)
    sock.linger = 0
    path = str(short_tmp / "pull.sock")
    sock.bind(f"ipc://{path}")
    try:
        with pytest.raises(Unreachable, match="(not a ROUTER|closed the connection)"):
            call(f"ipc://{path}", "status", timeout=5)
    finally:
        sock.close(0)
        ctx.term()


# --------------------------------------------------------------------------- peers that are not ZeroMQ
class RawPeer:
    """A Unix socket server that sends ``script`` (bytes, or a callable given what the client sent) to the
    first client and then holds the connection open (or closes it with ``close=True``)."""

    def __init__(self, path: str, script: bytes, close: bool = False) -> None:
        self.path = path
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(path)
        self.server.listen(4)
        self.script, self.close = script, close
        self.conns: list[socket.socket] = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            conn, _ = self.server.accept()
        except OSError:
            return
        self.conns.append(conn)
        try:
            conn.sendall(self.script)
            if self.close:
                conn.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def stop(self) -> None:
        self.server.close()
        for conn in self.conns:
            conn.close()


def _cmd(name: bytes, body: bytes = b"") -> bytes:
    return zmtp.command(name, body)


ROUTER_READY = zmtp.command(b"READY", b"\x0bSocket-Type" + struct.pack(">I", 6) + b"ROUTER")
GREETING = zmtp.GREETING


@pytest.mark.parametrize(("script", "close", "message"), [
    (b"HTTP/1.1 400 Bad Request\r\n\r\n" + b"x" * 64, False, "not a ZeroMQ socket"),
    (b"", True, "closed the connection"),
    (GREETING[:30], True, "closed the connection during the handshake"),
    (GREETING[:10] + b"\x02\x00" + GREETING[12:], False, "ZMTP 2.0"),
    (GREETING + zmtp.frame(b"hello"), False, "before the handshake finished"),
    (GREETING[:12] + b"PLAIN".ljust(20, b"\x00") + GREETING[32:], False, "PLAIN security mechanism"),
    (GREETING + b"\x06" + struct.pack(">Q", 1 << 40), False, "a command of"),
    (GREETING + _cmd(b"HELLO"), False, "where READY belongs"),
    (GREETING + zmtp.command(b"READY", b"\x0bSocket-Type" + struct.pack(">I", 3) + b"PUB"), False, "PUB socket"),
    (GREETING + zmtp.command(b"READY", b"\x0bSocket-Type" + struct.pack(">I", 900) + b"ROUTER"), False, "malformed"),
    (GREETING + ROUTER_READY + b"\x02" + struct.pack(">Q", 1 << 62), False, "a reply of more than"),
    (GREETING + ROUTER_READY + b"\x80\x01x", False, "frame flags"),
    (GREETING + ROUTER_READY + zmtp.frame(b"part", more=True) + _cmd(b"PING"), False, "inside a multipart"),
    (GREETING + ROUTER_READY + _cmd(b"ERROR", b"\x03bye"), False, "refused this connection .*bye"),
])
def test_a_peer_that_is_not_a_wispd_control_socket_is_named(short_tmp, script, close, message):
    peer = RawPeer(str(short_tmp / "raw.sock"), script, close)
    try:
        t = time.monotonic()
        with pytest.raises(Unreachable, match=message):
            call(f"ipc://{peer.path}", "status", timeout=3)
        assert time.monotonic() - t < 2.5  # refused at once, not at the deadline
    finally:
        peer.stop()


def test_a_peer_that_stalls_mid_frame_times_out(short_tmp):
    peer = RawPeer(str(short_tmp / "raw.sock"), GREETING + ROUTER_READY + b"\x02" + struct.pack(">Q", 1000) + b"x")
    try:
        with pytest.raises(Unreachable, match="did not answer"):
            call(f"ipc://{peer.path}", "status", timeout=0.5)
    finally:
        peer.stop()


@settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "25")) * 4, deadline=None, derandomize=True,
          database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(junk=st.one_of(st.binary(max_size=400),
                      st.binary(max_size=300).map(lambda b: GREETING + b),
                      st.binary(max_size=300).map(lambda b: GREETING + ROUTER_READY + b)))
def test_whatever_a_peer_sends_the_client_answers_or_says_unreachable(short_tmp, junk):
    path = str(short_tmp / "fuzz.sock")
    if os.path.exists(path):
        os.unlink(path)
    peer = RawPeer(path, junk, close=True)
    try:
        try:
            reply = call(f"ipc://{path}", "status", timeout=1)
        except Unreachable as exc:
            assert str(exc)
        else:  # only a well-formed reply to this request's id could get here, and junk has no such id
            raise AssertionError(f"junk produced a reply: {reply}")
    finally:
        peer.stop()


def test_a_child_of_the_daemon_is_refused_and_told_so(daemon, short_tmp):
    """The daemon refuses its children's sessions (strategies and what they start) at the handshake; the
    client says so instead of waiting out its timeout."""
    out = short_tmp / "asker.out"
    d = daemon(f'[processes.asker]\nentry = "tests.kinds:control_caller"\n'
               f'args = {{endpoint = "ipc://{short_tmp}/run/control.sock", out = "{out}"}}\n')
    text = wait_for(lambda: out.exists() and out.read_text(), 20, what="the child's attempt")
    assert text.startswith("unreachable denied=True") and "refused this connection" in text, text
    assert d.status()["daemon"]["ready"]  # and the daemon is unmoved
