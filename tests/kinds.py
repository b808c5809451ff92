"""Test-only child kinds (entry points for ``[processes.<name>]``); nothing like them ships in wispd/.

Each behaves badly in one precise way so the supervisor's handling of it can be checked with real
processes: crash, hang, ignore SIGTERM, fork a grandchild, never get ready, exit with a config error,
leak memory.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path


def _write(path: str | None, text: str) -> None:
    if path:
        tmp = Path(path + ".tmp")
        tmp.write_text(text)
        os.replace(tmp, path)


def well_behaved(ctx):  # noqa: ANN001, ANN201
    """Ready at once, status every tick, leaves on a drain request."""
    ctx.ready()
    n = 0
    while not ctx.wait(float(ctx.args.get("tick", 0.2))):
        n += 1
        ctx.status("running", f"tick {n}", ticks=n)
    return 0


def crasher(ctx):  # noqa: ANN001, ANN201
    """Dies at once every time (after ``delay`` seconds when given, ready first if ``ready``)."""
    if ctx.args.get("ready"):
        ctx.ready()
    ctx.wait(float(ctx.args.get("delay", 0)))
    if ctx.args.get("code") is not None:
        return int(ctx.args["code"])
    raise RuntimeError("deliberate crash from tests.kinds.crasher")


def hanger(ctx):  # noqa: ANN001, ANN201
    """Ready, heartbeats for ``after`` seconds, then its loop hangs (no heartbeat, deaf to SIGTERM)."""
    ctx.ready()
    ctx.wait(float(ctx.args.get("after", 0.5)))
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    while True:
        time.sleep(3600)


def sigterm_ignorer(ctx):  # noqa: ANN001, ANN201
    """Ignores drain and SIGTERM, and forks a grandchild that ignores SIGTERM too."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    pid = os.fork()
    if pid == 0:
        while True:
            time.sleep(3600)
    _write(ctx.args.get("pidfile"), str(pid))
    ctx.ready()
    while True:
        ctx.beat()
        ctx.handle_link()
        time.sleep(0.05)


def forker(ctx):  # noqa: ANN001, ANN201
    """Forks a grandchild that would outlive it, then behaves (drains on request)."""
    pid = os.fork()
    if pid == 0:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        while True:
            time.sleep(3600)
    _write(ctx.args.get("pidfile"), str(pid))
    ctx.ready()
    while not ctx.wait(0.2):
        pass
    return 0


def never_ready(ctx):  # noqa: ANN001, ANN201
    """Heartbeats but never reports ready."""
    while not ctx.wait(0.2):
        pass
    return 0


def config_error(ctx):  # noqa: ANN001, ANN201
    """Exits 78 like a child that found its configuration unusable."""
    print("config_error kind: exiting 78", file=sys.stderr)
    return 78


def memory_hog(ctx):  # noqa: ANN001, ANN201
    """Ready, then holds ``mb`` megabytes of touched memory while heartbeating."""
    ctx.ready()
    hog = bytearray(int(ctx.args.get("mb", 200)) * 1024 * 1024)
    for i in range(0, len(hog), 4096):
        hog[i] = 1
    while not ctx.wait(0.2):
        pass
    return 0


def exit_clean(ctx):  # noqa: ANN001, ANN201
    """Ready, then exits 0 after ``delay`` seconds."""
    ctx.ready()
    ctx.wait(float(ctx.args.get("delay", 0.3)))
    return 0


def slow_drainer(ctx):  # noqa: ANN001, ANN201
    """On a drain request asks for more time (ctx.draining), finishes its work, exits 0; deaf to SIGTERM
    so that being signalled would show."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    ctx.ready()
    while not ctx.wait(0.1):
        pass
    ctx.draining(float(ctx.args.get("extend", 3.0)))
    deadline = time.monotonic() + float(ctx.args.get("work", 1.5))
    while time.monotonic() < deadline:
        ctx.beat()
        time.sleep(0.05)
    return 0


def link_abuser(ctx):  # noqa: ANN001, ANN201
    """Sends every kind of malformed message a buggy child could send over its own supervisor link, then
    keeps heartbeating: wispd must drop them, count them, and carry on."""
    import orjson

    junk = [
        {"t": "metrics", "m": {"prom": {"c": [["x"]]}}},
        {"t": "metrics", "m": {"prom": {"c": [["wispd_fills_total", {"account": "a"}, "NaN"]],
                                        "h": [["wispd_md_lag_seconds", {}, [1, 0.5], [1], 1.0, 1]]}}},
        {"t": "metrics", "m": {"prom": "not a table"}},
        {"t": "metrics", "m": [1, 2]},
        {"t": "status", "phase": "x" * 10_000, "summary": None, "fields": {"big": "y" * 100_000}},
        {"t": "status", "fields": "not a dict", "ts": "yesterday"},
        {"t": "draining", "extend": 1e308},
        {"t": "draining", "extend": -5},
        {"t": "teleport"},
        {"t": "exit", "error": ["not", "text"]},
    ]
    for doc in junk:
        ctx._link.send(orjson.dumps(doc))
    ctx._link.send(b"\xff\xfe not json")
    ctx._link.send_multipart([b"two", b"parts"])
    ctx.ready()
    ctx.status("abused", "sent garbage, still fine", sent=len(junk) + 2)
    while not ctx.wait(0.2):
        pass
    return 0


def control_caller(ctx):  # noqa: ANN001, ANN201
    """Asks the daemon's control socket for ``status`` from inside a child's session, as a strategy that
    shells out to wispctl would, and writes what it was told to ``out``."""
    from wispd.control.client import Unreachable, call

    ctx.ready()
    try:
        reply = call(ctx.args["endpoint"], "status", {}, timeout=5.0)
        _write(ctx.args["out"], f"answered {reply.get('ok')}")
    except Unreachable as exc:
        _write(ctx.args["out"], f"unreachable denied={exc.denied} {exc}")
    while not ctx.wait(0.2):
        pass
    return 0
