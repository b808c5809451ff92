"""wispctl against a running daemon: every verb, every exit code, and an unreachable daemon."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time

import orjson

from tests.helpers import BIN, wait_for

BODY = """
[processes.alpha]
entry = "tests.kinds:well_behaved"
[processes.beta]
entry = "tests.kinds:well_behaved"
"""


def test_status_lines_json_and_exit_codes(daemon):
    # beta waits 5 s before its restart: the window in which status must say "not all running" is wider
    # than one wispctl run takes on a loaded machine (the default 0.5 s backoff was sometimes missed)
    d = daemon(BODY + "[processes.beta.restart]\nbackoff_initial = 5.0\n")
    d.wait_state("alpha", "RUNNING")
    out = d.ctl("status")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 2 and lines[0].startswith("alpha") and "RUNNING" in lines[0] and "restarts 0" in lines[0]
    doc = orjson.loads(d.ctl("status", "--json").stdout)
    assert set(doc) >= {"daemon", "children"}
    child = doc["children"][0]
    for key in ("name", "kind", "state", "pid", "restarts", "uptime_s", "last_exit", "status"):
        assert key in child
    assert wait_for(lambda: d.child("alpha")["status"].get("phase") == "running", what="strategy status")
    assert "| running: tick" in d.ctl("status", "alpha").stdout
    unknown = d.ctl("status", "nope")
    assert unknown.returncode == 4 and "no such child" in unknown.stderr
    assert d.ctl("stop", "nope").returncode == 4
    os.kill(d.child("beta")["pid"], signal.SIGKILL)
    wait_for(lambda: d.ctl("status").returncode == 3, 4, what="exit 3 while beta restarts")


def test_start_stop_all_and_restart(daemon):
    d = daemon(BODY)
    stop = d.ctl("stop", "--all")
    assert stop.returncode == 0, stop.stderr
    assert "alpha: stopped" in stop.stdout and "beta: stopped" in stop.stdout
    assert {c["state"] for c in d.status()["children"]} == {"STOPPED"}
    start = d.ctl("start", "--all")
    assert start.returncode == 0 and "running (pid" in start.stdout
    again = d.ctl("start", "alpha")
    assert again.returncode == 0
    restart = d.ctl("restart", "beta")
    assert restart.returncode == 0 and "beta: running" in restart.stdout


def test_mutating_commands_are_logged_with_arguments(daemon):
    d = daemon(BODY)
    d.ctl("stop", "alpha")
    logged = [e for e in d.log_events() if e.get("event") == "control_command"]
    assert logged and logged[-1]["verb"] == "stop" and logged[-1]["args"] == {"name": "alpha", "all": False}


def test_reload_applies_only_the_difference(daemon):
    d = daemon(BODY)
    alpha = d.wait_state("alpha", "RUNNING")
    beta = d.wait_state("beta", "RUNNING")
    text = d.config.read_text().replace("[processes.beta]", "[processes.gamma]")
    text += '[processes.alpha.restart]\nbackoff_initial = 0.3\n'
    d.config.write_text(text)
    out = d.ctl("reload")
    assert out.returncode == 0, out.stderr
    assert "added: gamma; removed: beta; changed: alpha; unchanged: 0" in out.stdout
    names = [c["name"] for c in d.status()["children"]]
    assert names == ["alpha", "gamma"]
    assert d.child("alpha")["pid"] != alpha["pid"]
    assert d.child("gamma")["state"] == "RUNNING"
    assert not any(p == beta["pid"] for p in [c["pid"] for c in d.status()["children"]])
    # unchanged children are not touched
    gamma = d.child("gamma")
    assert d.ctl("reload").returncode == 0
    assert d.child("gamma")["pid"] == gamma["pid"]


def test_reload_with_bad_config_changes_nothing(daemon):
    d = daemon(BODY)
    alpha = d.wait_state("alpha", "RUNNING")
    d.config.write_text(d.config.read_text() + "[processes.alpha.limits]\nstart_timeout = -1\n")
    out = d.ctl("reload")
    assert out.returncode == 1
    assert "processes.alpha.limits.start_timeout = -1" in out.stderr
    assert d.child("alpha")["pid"] == alpha["pid"]


def test_logs_verb(daemon):
    d = daemon(BODY)
    d.wait_state("alpha", "RUNNING")
    out = d.ctl("logs", "alpha", "-n", "5")
    assert out.returncode == 0 and "child_start" in out.stdout
    raw = d.ctl("logs", "wispd", "--json", "-n", "3")
    assert all(orjson.loads(line)["child"] == "wispd" for line in raw.stdout.splitlines())
    assert d.ctl("logs", "nope").returncode == 4
    follow = subprocess.Popen([str(BIN / "wispctl"), "--config", str(d.config), "logs", "alpha", "-f", "-n", "0", "--json"],
                              env=d.env(), stdout=subprocess.PIPE, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.append(follow.stdout.readline()), daemon=True)
    reader.start()
    try:
        for _ in range(10):  # the follower may open the log only after a restart's lines: restart again
            d.ctl("restart", "alpha")
            reader.join(3)
            if lines:
                break
        assert lines, "logs -f printed nothing across ten restarts"
        # whichever line of alpha's log came first (the supervisor's child_start, the child's own "ready"):
        # it is a whole JSON line from alpha's log, not from another child's or the daemon's
        assert orjson.loads(lines[0])["child"] == "alpha", lines[0]
    finally:
        follow.send_signal(signal.SIGINT)
        follow.wait(5)


def test_logs_follow_prints_a_line_only_once_it_is_whole(daemon):
    """A writer's line can reach the file in two writes; the follower must not print the first half as a
    line of its own (the pretty printer would print the raw half, then the rest as a second line)."""
    d = daemon(BODY)
    d.wait_state("alpha", "RUNNING")
    assert d.ctl("shutdown", "--wait").returncode == 0 and d.proc.wait(10) == 0
    log = d.tmp / "log" / "alpha.log"
    follow = subprocess.Popen([str(BIN / "wispctl"), "--config", str(d.config), "logs", "alpha", "-f", "-n", "0"],
                              env=d.env(), stdout=subprocess.PIPE, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.append(follow.stdout.readline()), daemon=True)
    reader.start()
    try:
        time.sleep(1.0)  # the follower is at the end of the file
        record = orjson.dumps({"ts": "t", "level": "info", "child": "alpha", "pid": 1, "event": "split"}).decode()
        with open(log, "a") as fh:
            fh.write(record[:20])
            fh.flush()
            time.sleep(0.6)  # the follower polls every 0.2 s: it sees the half line, more than once
            fh.write(record[20:] + "\n")
        reader.join(5)
        assert lines and lines[0].split() == ["t", "INFO", "split"], lines
    finally:
        follow.send_signal(signal.SIGINT)
        follow.wait(5)


def test_logs_follow_started_mid_line_prints_that_line_whole(daemon):
    """A follower that starts while the last line is half written (with -n 0 or any -n) holds the half
    until the rest arrives: it once printed the rest as a line of its own."""
    d = daemon(BODY)
    d.wait_state("alpha", "RUNNING")
    assert d.ctl("shutdown", "--wait").returncode == 0 and d.proc.wait(10) == 0
    log = d.tmp / "log" / "alpha.log"
    record = orjson.dumps({"ts": "t", "level": "info", "child": "alpha", "pid": 1, "event": "split"}).decode()
    with open(log, "a") as fh:
        fh.write(record[:20])
    for n in ("0", "2"):
        follow = subprocess.Popen([str(BIN / "wispctl"), "--config", str(d.config), "logs", "alpha", "-f", "-n", n],
                                  env=d.env(), stdout=subprocess.PIPE, text=True)
        lines: list[str] = []
        expected = max(1, int(n))

        def read(out=follow.stdout, got=lines, want=expected) -> None:  # noqa: ANN001
            while len(got) < want and (line := out.readline()):
                got.append(line)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        try:
            if n == "0":
                time.sleep(1.5)  # the follower has read the half line
                with open(log, "a") as fh:
                    fh.write(record[20:] + "\n")
            reader.join(10)
            assert len(lines) == expected and lines[-1].split() == ["t", "INFO", "split"], lines
            assert all("nfo" not in line.split()[0] for line in lines), lines
        finally:
            follow.send_signal(signal.SIGINT)
            follow.wait(5)
    whole = d.ctl("logs", "alpha", "-n", "1")
    assert whole.stdout.split() == ["t", "INFO", "split"], whole.stdout


def test_shutdown_and_unreachable(daemon):
    d = daemon(BODY)
    out = d.ctl("shutdown", "--wait")
    assert out.returncode == 0 and "wispd stopped" in out.stdout
    assert d.proc.wait(10) == 0
    down = d.ctl("status")
    assert down.returncode == 1
    assert down.stderr.strip().startswith("wispctl: wispd is not running")
    assert "Traceback" not in down.stderr and len(down.stderr.strip().splitlines()) == 1
    # logs still readable from the config when the daemon is down
    assert "wispd_stopped" in d.ctl("logs", "wispd").stdout


def test_garbage_on_control_socket_is_answered_not_fatal(daemon):
    import zmq

    d = daemon(BODY)
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(d.endpoint)
    try:
        for frame in (b"\xff\x00garbage", b"[1,2]", orjson.dumps({"id": "x", "verb": "explode"})):
            sock.send(frame)
            assert sock.poll(5000)
            reply = orjson.loads(sock.recv())
            assert reply["ok"] is False
    finally:
        sock.close()
    assert d.status()["daemon"]["pid"] == d.proc.pid
    time.sleep(0.1)


def test_status_says_what_killed_a_child_once(daemon):
    d = daemon('[processes.boom]\nentry = "tests.kinds:crasher"\n[processes.boom.restart]\nbackoff_initial = 0.1\n'
               'max_restarts = 2\n[processes.cfg]\nentry = "tests.kinds:config_error"\n', wait_ready=False)
    d.wait_state("boom", "FATAL", timeout=20)
    d.wait_state("cfg", "FATAL", timeout=20)
    lines = {line.split()[0]: line for line in d.ctl("status").stdout.splitlines() if line.strip()}
    assert "last exit: exit 70: RuntimeError: deliberate crash from tests.kinds.crasher" in lines["boom"], lines
    assert "crash loop: 2 restarts within" in lines["boom"]
    cfg = lines["cfg"]
    assert "exit 78 (configuration error)" in cfg and cfg.count("configuration error") == 2, cfg
    assert "(exit 78)" not in cfg and "restarting cannot fix a configuration error" in cfg


def test_a_child_in_backoff_at_shutdown_is_logged_as_what_happened(daemon):
    d = daemon('[processes.boom]\nentry = "tests.kinds:crasher"\n[processes.boom.restart]\nbackoff_initial = 60.0\n',
               wait_ready=False)
    d.wait_state("boom", "BACKOFF", timeout=20)
    assert d.ctl("shutdown", "--wait").returncode == 0
    assert d.proc.wait(10) == 0
    stopped = [e for e in d.log_events() if e.get("event") == "child_state" and e.get("name") == "boom"
               and e.get("new") == "STOPPED"]
    assert stopped, [e for e in d.log_events() if e.get("name") == "boom"]
    reason = stopped[-1]["reason"]
    assert reason.startswith("wispd shutting down: no process was running (its pending restart cancelled; "
                             "last exit: exit 70: RuntimeError"), reason


def test_a_command_line_parses_the_same_with_its_verb_alone_as_with_every_verb():
    """wispctl builds its parser with only the verb a command line runs (``verb_of``): for every verb, with
    the global options before it in either form, that gives what the parser with every verb gives, and a
    line whose verb is not plain to see (help, a value that looks like a verb) gets the full parser."""
    from wispd.cli.ctl import build_parser, verb_of
    from wispd.control import verbs

    def outcome(parser, line):
        try:
            return vars(parser.parse_args(line))
        except SystemExit as exc:  # a verb whose arguments are required: the same refusal either way
            return exc.code

    full = build_parser()
    for name in verbs.NAMES:
        for line in ([name], ["--config", "/tmp/x.toml", name], ["--config=/tmp/x.toml", "--timeout", "3", name],
                     ["--socket", "/tmp/s.sock", name, "--help"]):
            assert verb_of(line) == name, line
            if "--help" not in line:
                assert outcome(build_parser(verb_of(line)), line) == outcome(full, line), line
    assert verb_of(["--help"]) is None and verb_of([]) is None and verb_of(["--version", "status"]) is None
    assert verb_of(["--socket", "status"]) is None  # "status" is the socket's path there
    assert verb_of(["nope"]) is None
