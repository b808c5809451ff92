"""systemd's notify protocol, spoken directly (one AF_UNIX datagram per message; no library).

The notify socket and watchdog settings are taken out of the environment when the supervisor starts, so
no child ever inherits them: with NotifyAccess=main systemd would ignore a child's messages anyway, and a
child must never be able to report wispd ready or alive.
"""

from __future__ import annotations

import os
import socket
import time

_NOTIFY_ENV = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")


class Notifier:
    def __init__(self) -> None:
        self.address = os.environ.get("NOTIFY_SOCKET", "")
        watchdog_usec = os.environ.get("WATCHDOG_USEC", "")
        watchdog_pid = os.environ.get("WATCHDOG_PID", "")
        for key in _NOTIFY_ENV:
            os.environ.pop(key, None)
        self.watchdog_interval: float | None = None
        if watchdog_usec.isdigit() and (not watchdog_pid or watchdog_pid == str(os.getpid())):
            self.watchdog_interval = int(watchdog_usec) / 1e6 / 2  # ping at half the timeout
        self._last_watchdog = 0.0
        self._last_status = ""

    @property
    def enabled(self) -> bool:
        return bool(self.address)

    def send(self, message: str) -> bool:
        """Send ``KEY=VALUE\\n...``; returns False when not under systemd or the socket is gone."""
        if not self.address:
            return False
        addr = self.address
        if addr.startswith("@"):
            addr = "\0" + addr[1:]
        elif not addr.startswith("/"):
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.connect(addr)
                sock.sendall(message.encode())
            return True
        except OSError:
            return False

    def ready(self, status: str) -> None:
        self.send(f"READY=1\nSTATUS={status}")
        self._last_status = status

    def status(self, status: str) -> None:
        if status != self._last_status:
            self._last_status = status
            self.send(f"STATUS={status}")

    def stopping(self, status: str) -> None:
        self.send(f"STOPPING=1\nSTATUS={status}")

    def extend_timeout(self, seconds: float) -> None:
        self.send(f"EXTEND_TIMEOUT_USEC={int(seconds * 1e6)}")

    def reloading(self) -> None:
        self.send(f"RELOADING=1\nMONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}")

    def watchdog(self, now: float) -> None:
        """Ping if due. Called from the main loop iteration itself, so the ping proves the loop runs."""
        if self.watchdog_interval is not None and now - self._last_watchdog >= self.watchdog_interval:
            self._last_watchdog = now
            self.send("WATCHDOG=1")
