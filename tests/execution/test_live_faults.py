"""Exchange faults are states, not crash loops: refused credentials end FATAL with the exchange's words; an
exchange that cannot be reached at boot leaves its ingestor and executor up (saying so) and retrying; a
stop during a connect is quick; no signed URL or secret reaches a log or another child's environment."""

from __future__ import annotations

import socket
import time

import psutil

from tests.execution.test_live import VENUES, body
from tests.helpers import wait_for

BN = VENUES["binance"]


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_refused_credentials_end_fatal_with_the_exchanges_message(daemon, fake_exchange):
    fake = fake_exchange(BN["module"])
    d = daemon(body(BN, fake.base), env={"WT_API_KEY": BN["key"], "WT_API_SECRET": "the-wrong-secret"},
               wait_ready=False)
    fatal = d.wait_state("executor.live", "FATAL", 60)
    assert fatal["last_exit"].startswith("exit 78 (configuration error): the exchange refused the credentials")
    assert "-1022" in fatal["last_exit"] or "Signature" in fatal["last_exit"], fatal["last_exit"]
    assert fatal["restarts"] == 0
    logs = (d.tmp / "log" / "executor.live.log").read_text()
    assert "the-wrong-secret" not in logs and "signature=" not in logs.replace("signature=***", "")


def test_an_unreachable_exchange_at_boot_is_a_state_and_the_secrets_stay_with_the_executor(daemon):
    base = f"http://127.0.0.1:{_closed_port()}"
    d = daemon(body(BN, base), env={"WT_API_KEY": BN["key"], "WT_API_SECRET": BN["secret"]}, wait_ready=False)
    wait_for(lambda: d.child("ingestor.ex")["state"] == "RUNNING" and
             d.child("ingestor.ex")["status"].get("phase") == "unreachable", 30, what="ingestor up, unreachable")
    wait_for(lambda: d.child("executor.live")["status"].get("phase") == "unreachable", 30,
             what="executor up, unreachable")
    time.sleep(4)
    for name in ("ingestor.ex", "executor.live"):
        child = d.child(name)
        assert child["state"] == "RUNNING" and child["restarts"] == 0, child
    for child in d.status()["children"]:
        if child["pid"]:
            env = psutil.Process(child["pid"]).environ()
            assert "WT_API_KEY" not in env and "WT_API_SECRET" not in env, child["name"]
    t0 = time.monotonic()
    assert d.ctl("stop", "executor.live").returncode == 0  # a stop during a connect retry is quick
    assert time.monotonic() - t0 < 8
