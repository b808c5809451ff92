"""The systemd unit (checked by the real systemd-analyze) and the notify protocol on a fake socket."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time

import psutil
import pytest

from tests.helpers import BIN, ROOT, wait_for

UNIT = ROOT / "deploy" / "systemd" / "wispd.service"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None and not os.environ.get("CI"),
                    reason="systemd-analyze not installed (CI installs it and never skips this)")
def test_unit_verifies_without_any_warning(tmp_path):
    text = UNIT.read_text()
    exec_line = next(line for line in text.splitlines() if line.startswith("ExecStart="))
    assert exec_line.split()[1:3] == ["run", "--config"] or "wispd run" in exec_line
    unit = tmp_path / "wispd.service"
    # verify needs an executable that exists here; everything else is checked as shipped
    unit.write_text(text.replace(exec_line.split("=", 1)[1].split()[0], str(BIN / "wispd")))
    result = subprocess.run(["systemd-analyze", "verify", "--man=no", str(unit)], capture_output=True, text=True)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    for key in ("Type=notify", "WatchdogSec=", "Restart=on-failure", "RestartPreventExitStatus=78",
                "KillMode=mixed", "TimeoutStopSec=", "RuntimeDirectory=wispd", "StateDirectory=wispd",
                "LogsDirectory=wispd", "User=wispd", "NoNewPrivileges=yes", "ProtectSystem=strict",
                "ProtectHome=yes", "PrivateTmp=yes"):
        assert any(line.startswith(key) for line in text.splitlines()), key
    stop = int(next(line for line in text.splitlines() if line.startswith("TimeoutStopSec=")).split("=")[1])
    assert stop > 10 + 5  # above the default drain + stop timeouts


def test_notify_datagrams_and_children_do_not_inherit_the_socket(daemon, short_tmp):
    address = str(short_tmp / "notify.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(address)
    server.settimeout(0.2)
    messages: list[str] = []

    def drain() -> list[str]:
        try:
            while True:
                messages.append(server.recv(4096).decode())
        except TimeoutError:
            pass
        return messages

    try:
        d = daemon('[processes.alpha]\nentry = "tests.kinds:well_behaved"\n',
                   env={"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "400000"})
        wait_for(lambda: any("READY=1" in m for m in drain()), 10, what="READY=1")
        ready = next(m for m in messages if "READY=1" in m)
        assert "STATUS=1/1 children running" in ready
        wait_for(lambda: sum(m == "WATCHDOG=1" for m in drain()) >= 3, 5, what="watchdog pings")
        child = psutil.Process(d.child("alpha")["pid"])
        env = child.environ()
        assert "NOTIFY_SOCKET" not in env and "WATCHDOG_USEC" not in env
        d.stop()
        time.sleep(0.3)
        drain()
        assert any(m.startswith("STOPPING=1") for m in messages)
        assert any(m.startswith("EXTEND_TIMEOUT_USEC=") for m in messages)
    finally:
        server.close()
        os.unlink(address)
