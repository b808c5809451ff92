"""Fixtures with real processes that leave nothing behind."""

from __future__ import annotations

import gc
import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.helpers import Daemon, marked_processes

FD_LEAK_LIMIT = 48  # descriptors a test may leave open (lazy caches, a zmq context's own)


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture(autouse=True)
def no_leaked_descriptors() -> Iterator[None]:
    """Every test gives back the descriptors it opened. A test that leaked ~2 per hypothesis example once
    took a worker past 1024 descriptors, and a later test on that worker failed in ``select()``: a leak
    fails where it happens, not three tests later."""
    before = _open_fds()
    yield
    if _open_fds() - before > FD_LEAK_LIMIT:
        gc.collect()  # sockets and files only waiting for the collector are not leaks
        leaked = _open_fds() - before
        assert leaked <= FD_LEAK_LIMIT, f"this test left {leaked} more file descriptors open than it found"


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A short temp dir: ipc socket paths must stay under 108 bytes."""
    import shutil
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="wt-", dir="/tmp"))
    yield path
    if not os.environ.get("WISPD_TEST_KEEP_TMP"):  # set it to look at a failed test's state afterwards
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def mark() -> Iterator[str]:
    """A marker for every process this test starts; any left at the end is killed and fails the test."""
    value = uuid.uuid4().hex
    yield value
    deadline = time.monotonic() + 5
    leaked = marked_processes(value)
    while leaked and time.monotonic() < deadline:
        time.sleep(0.1)
        leaked = [p for p in marked_processes(value) if p.status() != "zombie"]
    for proc in leaked:
        proc.kill()
    assert not leaked, f"test leaked processes: {[(p.pid, p.cmdline()) for p in leaked]}"


@pytest.fixture
def daemon(short_tmp: Path, mark: str) -> Iterator[Callable[..., Daemon]]:
    """``daemon(body_toml, **daemon_settings)`` starts a real wispd; it is stopped (and swept) afterwards."""
    started: list[Daemon] = []

    def make(body: str, start: bool = True, env: dict[str, str] | None = None, **settings: object) -> Daemon:
        wait_ready = bool(settings.pop("wait_ready", True))
        d = Daemon(short_tmp, body, mark, env=env, **settings)
        started.append(d)
        return d.start(wait_ready=wait_ready) if start else d

    yield make
    for d in started:
        try:
            d.stop()
        finally:
            d.kill()


class FakeServer:
    """A loopback fake exchange in its own process, driven over its /_ctl endpoints."""

    def __init__(self, module: str, tmp: Path, mark: str) -> None:
        import os
        import subprocess
        import sys

        from tests.helpers import MARK_ENV, ROOT, wait_for

        port_file = tmp / f"{module.rsplit('.', 1)[-1]}.port"
        env = {**os.environ, MARK_ENV: mark, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen([sys.executable, "-m", module, "--port-file", str(port_file)], env=env,
                                     stdout=subprocess.DEVNULL, stderr=open(tmp / "fake.log", "ab"),  # noqa: SIM115
                                     start_new_session=True)
        self.port = int(wait_for(lambda: port_file.exists() and port_file.read_text(), 15, what="fake exchange"))
        self.base = f"http://127.0.0.1:{self.port}"

    def ctl(self, action: str, **query: object) -> dict:
        import urllib.parse
        import urllib.request

        import orjson

        url = f"{self.base}/_ctl/{action}" + ("?" + urllib.parse.urlencode(query) if query else "")
        method = "GET" if action in ("log", "orders") else "POST"
        return orjson.loads(urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=5).read())

    def stop(self) -> None:
        import os
        import signal

        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(5)


@pytest.fixture
def fake_exchange(short_tmp: Path, mark: str) -> Iterator[Callable[[str], FakeServer]]:
    servers: list[FakeServer] = []

    def start(module: str) -> FakeServer:
        server = FakeServer(module, short_tmp, mark)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def tmpfs(short_tmp: Path) -> Iterator[Callable[..., Path]]:
    """``tmpfs(name, size)`` mounts a small tmpfs (a disk that fills up, or goes read-only, on demand).
    Request it before ``daemon`` so the daemon stops before the mount goes."""
    import os
    import subprocess

    mounts: list[Path] = []

    def make(name: str, size: str = "4m") -> Path:
        path = short_tmp / name
        path.mkdir(exist_ok=True)
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)],
                              capture_output=True, text=True)
        if done.returncode:
            if os.environ.get("CI"):
                raise AssertionError(f"cannot mount a tmpfs in CI: {done.stderr}")
            pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()}); needs root")
        mounts.append(path)
        return path

    yield make
    for path in reversed(mounts):
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def remount(path: Path, mode: str) -> None:
    import subprocess

    subprocess.run(["mount", "-o", f"remount,{mode}", str(path)], check=True, capture_output=True)
