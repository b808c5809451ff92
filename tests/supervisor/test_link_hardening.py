"""One malformed message from one child never takes the supervisor (and with it every child) down, and no
other local process can take over a child's supervisor link."""

from __future__ import annotations

import time

import orjson
import zmq

from tests.helpers import wait_for

BODY = """
[processes.abuser]
entry = "tests.kinds:link_abuser"
[processes.good]
entry = "tests.kinds:well_behaved"
"""


def test_malformed_link_messages_are_dropped_and_counted(daemon):
    d = daemon(BODY)
    d.wait_state("abuser", "RUNNING")
    good_pid = d.wait_state("good", "RUNNING")["pid"]
    wait_for(lambda: d.child("abuser")["status"].get("phase") == "abused", 10, what="abuser status")
    daemon_pid = d.status()["daemon"]["pid"]
    time.sleep(1.5)  # several observe passes over whatever the abuser left behind
    status = d.status()
    assert status["daemon"]["pid"] == daemon_pid
    assert d.child("good")["pid"] == good_pid and d.child("good")["state"] == "RUNNING"
    url = status["daemon"]["metrics_url"]
    import urllib.request

    text = urllib.request.urlopen(url, timeout=5).read().decode()
    (line,) = [ln for ln in text.splitlines() if ln.startswith('wispd_link_bad_messages_total{child="abuser"}')]
    assert float(line.rsplit(" ", 1)[1]) >= 9
    assert "wispd_fills_total" not in text  # the NaN counter was refused, not exposed
    events = [e for e in d.log_events() if e.get("event") == "link_bad_message"]
    assert events and len(events) <= 12 and {e["name"] for e in events} <= {"abuser", "?"}  # rate-limited
    assert d.ctl("stop", "abuser").returncode == 0


def test_a_guessed_link_identity_cannot_take_the_next_childs_link(daemon):
    d = daemon('[processes.p]\nentry = "tests.kinds:well_behaved"\n')
    child = d.wait_state("p", "RUNNING")
    link = f"ipc://{d.tmp / 'run' / 'link.sock'}"
    impostors = []
    for guess in (f"p#{child['generation'] + 1}".encode(), f"p#{child['generation'] + 1}#0000".encode()):
        sock = zmq.Context.instance().socket(zmq.DEALER)
        sock.setsockopt(zmq.IDENTITY, guess)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(link)
        sock.send(orjson.dumps({"t": "hello", "pid": 1}))
        impostors.append(sock)
    time.sleep(0.3)
    assert d.ctl("restart", "p").returncode == 0  # the next generation links and reports ready as usual
    after = d.wait_state("p", "RUNNING")
    assert after["generation"] == child["generation"] + 1 and after["pid"] != child["pid"]
    for sock in impostors:
        sock.send(orjson.dumps({"t": "status", "phase": "impostor", "summary": "took over"}))
    time.sleep(0.5)
    assert d.child("p")["status"].get("phase") == "running"
    for sock in impostors:
        sock.close()
