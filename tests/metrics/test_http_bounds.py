"""/metrics and /health cannot be exhausted: a flood of held connections and concurrent requests leaves a
scrape answering at once and the daemon unchanged; auth, when configured, is required on both paths."""

from __future__ import annotations

import base64
import resource
import socket
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

BODY = '[processes.p]\nentry = "tests.kinds:well_behaved"\n'


@pytest.fixture
def many_fds():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def _get(url: str, timeout: float = 5.0, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def test_held_connections_and_a_request_flood_leave_metrics_answering(daemon, many_fds):
    d = daemon(BODY)
    before = d.status()
    url = before["daemon"]["metrics_url"]
    host, port = url.split("//")[1].split("/")[0].split(":")
    held = []
    for _ in range(1000):  # connect and say nothing: each holds a socket open on the server
        s = socket.create_connection((host, int(port)), timeout=5)
        held.append(s)

    def one(_: int) -> int:
        try:
            return _get(url, timeout=20)[0]
        except OSError:
            return 0

    with ThreadPoolExecutor(max_workers=500) as pool:
        codes = list(pool.map(one, range(500)))
    assert codes.count(200) >= 450, codes.count(200)  # served while 1000 sockets sat idle
    t0 = time.monotonic()
    status, text = _get(url, timeout=1.0)  # and right after: a scrape answers within a second
    assert status == 200 and b"wispd_up" in text and time.monotonic() - t0 < 1.0
    for s in held:
        s.close()
    after = d.status()
    assert after["daemon"]["pid"] == before["daemon"]["pid"]
    assert [(c["name"], c["pid"], c["state"]) for c in after["children"]] == \
        [(c["name"], c["pid"], c["state"]) for c in before["children"]]


def test_bad_requests_get_clear_status_codes(daemon):
    d = daemon(BODY)
    url = d.status()["daemon"]["metrics_url"]
    host, port = url.split("//")[1].split("/")[0].split(":")
    assert _get(url.replace("/metrics", "/nope"))[0] == 404
    s = socket.create_connection((host, int(port)), timeout=5)
    s.sendall(b"GET /metrics HTTP/1.1\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n")
    assert s.recv(64).startswith(b"HTTP/1.1 431")
    s.close()
    s = socket.create_connection((host, int(port)), timeout=5)
    s.sendall(b"DELETE /metrics HTTP/1.1\r\n\r\n")
    assert s.recv(64).startswith(b"HTTP/1.1 405")
    s.close()


def test_bearer_and_basic_auth_guard_both_paths(daemon):
    d = daemon(BODY, env={"WT_METRICS_TOKEN": "t0ken-123", "WT_METRICS_BASIC": "prom:s3cret"},
               metrics={"bind": "127.0.0.1:0", "bearer_token_env": "WT_METRICS_TOKEN",
                        "basic_auth_env": "WT_METRICS_BASIC"})
    url = d.status()["daemon"]["metrics_url"]
    health = url.replace("/metrics", "/health")
    for target in (url, health):
        assert _get(target)[0] == 401
        assert _get(target, headers={"Authorization": "Bearer wrong"})[0] == 401
        ok = (200, 503) if target == health else (200,)  # (health may still say "starting": not a 401)
        assert _get(target, headers={"Authorization": "Bearer t0ken-123"})[0] in ok
        basic = base64.b64encode(b"prom:s3cret").decode()
        assert _get(target, headers={"Authorization": f"Basic {basic}"})[0] in ok
    assert "t0ken-123" not in (d.tmp / "log" / "wispd.log").read_text()


def test_a_metrics_port_in_use_is_a_start_error(daemon, short_tmp):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    d = daemon(BODY, start=False, metrics={"bind": f"127.0.0.1:{port}"})
    import subprocess

    from tests.helpers import BIN

    done = subprocess.run([str(BIN / "wispd"), "run", "--config", str(d.config)], env=d.env(), capture_output=True,
                          text=True, timeout=30)
    taken.close()
    assert done.returncode == 78 and f"cannot serve /metrics on 127.0.0.1:{port}" in done.stderr
