"""Real-process test harness: a wispd per test, driven over its control socket and by the real CLI.

Every process a test starts carries ``WISPD_TEST_MARK`` in its environment (children inherit it through
the forkserver), so the leak check in conftest can find and kill anything left behind, grandchildren
included, and fail the test that leaked it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import psutil

from wispd.control.client import Unreachable, call

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
MARK_ENV = "WISPD_TEST_MARK"


def wait_for(predicate: Callable[[], Any], timeout: float = 15.0, interval: float = 0.05, what: str = "") -> Any:
    """Poll until ``predicate()`` is truthy; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}; last={last!r}")


def marked_processes(mark: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["pid"]):
        try:
            if proc.pid != os.getpid() and proc.environ().get(MARK_ENV) == mark:
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def base_config(tmp: Path, body: str, **daemon: Any) -> str:
    settings = {
        "run_dir": str(tmp / "run"),
        "state_dir": str(tmp / "state"),
        "log_dir": str(tmp / "log"),
        "python_path": [str(ROOT)],
        "heartbeat_interval": 0.2,
        "heartbeat_timeout": 2.0,
        "drain_timeout": 2.0,
        "stop_timeout": 1.5,
        "sample_interval": 0.2,
        "metrics": {"bind": "127.0.0.1:0"},  # any free port: tests never collide on 9464
        **daemon,
    }
    lines = ["[daemon]"]
    for key, value in settings.items():
        if isinstance(value, dict):  # a TOML inline table
            inner = ", ".join(f"{k} = {orjson.dumps(v).decode()}" for k, v in value.items())
            lines.append(f"{key} = {{ {inner} }}")
        else:
            lines.append(f"{key} = {orjson.dumps(value).decode()}")
    return "\n".join(lines) + "\n\n" + textwrap.dedent(body)


class Daemon:
    def __init__(self, tmp: Path, body: str, mark: str, env: dict[str, str] | None = None, **daemon: Any) -> None:
        self.tmp = tmp
        self.config = tmp / "wispd.toml"
        self.config.write_text(base_config(tmp, body, **daemon))
        self.mark = mark
        self.extra_env = env or {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.stderr_path = tmp / f"wispd-stderr-{uuid.uuid4().hex[:6]}.log"

    @property
    def endpoint(self) -> str:
        return f"ipc://{self.tmp / 'run' / 'control.sock'}"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env[MARK_ENV] = self.mark
        env["PYTHONPATH"] = str(ROOT)
        env["WISPD_TEST_BOOT_KEY_FILE"] = str(self.tmp / "boot.key")  # so tests can act as a strategy
        env.update(self.extra_env)
        return env

    def credentials(self, strategy: str) -> tuple[bytes, bytes]:
        """(user, password) of ``strategy`` on the data plane for the running boot of this daemon."""
        from wispd.auth import token

        key = bytes.fromhex(wait_for(lambda: (self.tmp / "boot.key").exists() and (self.tmp / "boot.key").read_text(),
                                     10, what="boot key"))
        return strategy.encode(), token(key, strategy).encode()

    def as_strategy(self, sock: Any, strategy: str) -> Any:
        """Make a PUSH/SUB socket present ``strategy``'s credentials to its executor."""
        sock.plain_username, sock.plain_password = self.credentials(strategy)
        return sock

    def start(self, wait_ready: bool = True) -> Daemon:
        self.proc = subprocess.Popen(
            [str(BIN / "wispd"), "run", "--config", str(self.config)],
            env=self.env(), stdout=subprocess.DEVNULL, stderr=open(self.stderr_path, "ab"),  # noqa: SIM115
            start_new_session=True,
        )
        wait_for(lambda: self._answers() or self.proc.poll() is not None, 20, what="wispd control socket")
        if self.proc.poll() is not None:
            raise AssertionError(f"wispd exited {self.proc.returncode}: {self.stderr()}")
        if wait_ready:
            wait_for(lambda: self.status()["daemon"]["ready"], 30, what="wispd ready")
        return self

    def _answers(self) -> bool:
        try:
            call(self.endpoint, "status", {}, timeout=1.0)
            return True
        except Unreachable:
            return False

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def call(self, verb: str, timeout: float = 30.0, **args: Any) -> dict[str, Any]:
        return call(self.endpoint, verb, args, timeout=timeout)

    def status(self) -> dict[str, Any]:
        reply = self.call("status")
        assert reply["ok"], reply
        return reply["result"]

    def child(self, name: str) -> dict[str, Any]:
        return next(c for c in self.status()["children"] if c["name"] == name)

    def wait_state(self, name: str, state: str, timeout: float = 15.0, **match: Any) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            c = self.child(name)
            ok = c["state"] == state and all(c.get(k) == v for k, v in match.items())
            return c if ok else None

        return wait_for(check, timeout, what=f"{name} {state} {match}")

    def ctl(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(BIN / "wispctl"), "--config", str(self.config), *args], env=self.env(),
                              capture_output=True, text=True, timeout=timeout)

    def child_log(self, name: str) -> str:
        """A child's whole log file as text (rotated parts not included)."""
        path = self.tmp / "log" / f"{name}.log"
        return path.read_text() if path.exists() else ""

    def log_events(self, name: str = "wispd") -> list[dict[str, Any]]:
        path = self.tmp / "log" / f"{name}.log"
        if not path.exists():
            return []
        return [orjson.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def stop(self, timeout: float = 30.0) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("wispd did not stop within the timeout") from None

    def kill(self) -> None:
        for proc in marked_processes(self.mark):
            try:
                proc.kill()
            except psutil.NoSuchProcess:
                pass
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
