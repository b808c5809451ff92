"""Waiting on one descriptor works for any descriptor number: ``select.select`` refuses 1024 and above,
which a busy process (a test worker, a replayer with many links) reaches; the replay link once failed
with ``ValueError: filedescriptor out of range in select()`` in the full suite."""

from __future__ import annotations

import os
import resource
import socket
import threading
import time

import pytest

from wispd import framing
from wispd.fdwait import readable

HIGH = 1500


@pytest.fixture
def high_pair():
    """A connected socket pair whose descriptors are numbered above 1024."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard <= HIGH + 2:
        pytest.skip(f"RLIMIT_NOFILE hard limit {hard} is too low to open a descriptor numbered {HIGH}")
    if soft != resource.RLIM_INFINITY and soft <= HIGH + 2:
        resource.setrlimit(resource.RLIMIT_NOFILE, (HIGH + 16, hard))
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    fa, fb = os.dup2(a.fileno(), HIGH), os.dup2(b.fileno(), HIGH + 1)
    a.close()
    b.close()
    sa, sb = socket.socket(fileno=fa), socket.socket(fileno=fb)
    try:
        yield sa, sb
    finally:
        sa.close()
        sb.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_readable_on_a_descriptor_above_1024(high_pair):
    a, b = high_pair
    assert b.fileno() > 1024
    assert readable(b, 0) is False
    assert readable(b.fileno(), 0.01) is False
    a.sendall(b"x")
    assert readable(b, 1.0) is True
    a.close()  # a hang-up counts as readable: the next read tells
    b.recv(1)
    assert readable(b, 1.0) is True and b.recv(1) == b""


def test_readable_waits_for_data_that_comes_later(high_pair):
    a, b = high_pair
    timer = threading.Timer(0.05, a.sendall, args=(b"late",))
    timer.start()
    t0 = time.monotonic()
    try:
        assert readable(b, 10.0) is True
        assert time.monotonic() - t0 < 5.0  # woken by the data, not by the timeout
    finally:
        timer.join()


def test_a_replay_link_on_a_descriptor_above_1024(high_pair):
    a, b = high_pair
    left, right = framing.Link(a), framing.Link(b)
    assert right.recv(0.01) is None and not right.closed
    left.send([b"head", b"body" * 1000])
    assert right.recv(5.0) == [b"head", b"body" * 1000]


def test_a_pidfd_wait_sees_the_process_end():
    """The supervisor watch in every child waits on a pidfd this way."""
    import subprocess

    proc = subprocess.Popen(["sleep", "0.2"])
    fd = os.pidfd_open(proc.pid)
    try:
        assert readable(fd, 0) is False
        assert readable(fd, 10.0) is True
    finally:
        os.close(fd)
        proc.wait()
