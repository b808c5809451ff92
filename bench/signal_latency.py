"""Signal -> paper fill latency, and sustained journaled signals per second.

wispd: this process plays a strategy: it PUSHes market-order signals to a real paper executor (under a
real wispd on the sim exchange) and SUBscribes to its execution reports; latency = send -> "filled"
report received (validation, dedupe, risk, journal intent + commit (fsync), paper fill against the sim
book, fill journaled + commit, report). Baseline in the same run: a bare two-hop pyzmq loop, PUSH -> an
echo process that orjson-decodes, re-encodes and PUBlishes -> SUB, with no work at all.

    python bench/signal_latency.py [--rate 1000] [--seconds 5] [--burst 5000] [--write docs/BENCHMARKS.md]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import PRODUCTION, scratch_dir  # noqa: E402
from bench.report import replace_section  # noqa: E402
from tests.helpers import Daemon  # noqa: E402
from wispd.fdwait import readable as fd_readable  # noqa: E402

BODY = """
[exchanges.sim]
driver = "sim"
pairs = ["BTC-USDT"]
[exchanges.sim.sim]
update_hz = 20.0
prices = { BTC-USDT = 60000.0 }
[executors.paper]
exchanges = ["sim"]
[executors.paper.paper]
latency_ms = 0.0
balances = { USDT = "100000000", BTC = "1000" }
[executors.paper.risk]
max_open_orders = 100000
[strategies.bench]
module = "bench.strategies"
class = "Idle"
"""


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def echo(pull_ep: str, pub_ep: str, ready, auth: str = "none", server_secret: bytes | None = None) -> None:
    """The bare loop: decode, re-encode, publish. ``auth`` "plain" or "curve" puts the executor's own
    arrangement (PLAIN or CURVE, checked by a ZAP handler, User-Id read per frame) on both sockets."""
    import orjson
    import zmq

    from wispd.auth import ZapHandler

    ctx = zmq.Context()
    zap = ZapHandler(ctx, lambda *_: "bench") if auth != "none" else None
    pull, pub = ctx.socket(zmq.PULL), ctx.socket(zmq.PUB)
    pub.setsockopt(zmq.SNDHWM, 1_000_000)  # the default 1000 drops replies in a burst: not a fair floor
    pull.setsockopt(zmq.RCVHWM, 1_000_000)
    if zap is not None:  # the same arrangement as the executor's, to show what authentication costs
        for sock in (pull, pub):
            if auth == "plain":
                sock.plain_server = True
            else:
                sock.curve_server = True
                sock.curve_secretkey = server_secret
            sock.zap_domain = b"wispd"
        threading.Thread(target=lambda: [zap.handle() for _ in iter(lambda: zap.sock.poll(100) or True, None)],
                         daemon=True).start()
    pull.bind(pull_ep)
    pub.bind(pub_ep)
    ready.put(1)
    plain = zap is not None
    while True:
        frame = pull.recv(copy=False) if plain else pull.recv()
        if plain:
            frame.get("User-Id")  # what the executor reads of every signal
            frame = frame.bytes
        if frame == b"END":
            break
        msg = orjson.loads(frame)
        pub.send(b"exec.bench " + orjson.dumps({"v": 1, "kind": "report", "body": {"signal_id": msg["id"],
                                                                                     "status": "filled"}}))


def signal_frame(i: int) -> tuple[str, bytes]:
    import orjson

    sid = uuid.uuid4().hex
    side = "buy" if i % 2 == 0 else "sell"
    return sid, orjson.dumps({"v": 1, "id": sid, "strategy": "bench", "ts": time.time() * 1000, "ttl_ms": 10000,
                              "actions": [{"type": "order", "side": side, "exchange": "sim", "market": "spot",
                                           "symbol": "BTC-USDT", "qty": "0.001", "price": None,
                                           "order_type": "market"}]})


def drive(push_ep: str, sub_ep: str, rate: float, seconds: float, burst: int, creds=None) -> dict:
    """``creds``: (user, password) for PLAIN, or ("curve", server public, client public, client secret)."""
    import orjson
    import zmq

    ctx = zmq.Context.instance()
    push, sub = ctx.socket(zmq.PUSH), ctx.socket(zmq.SUB)
    for sock in (push, sub):
        if creds is not None and creds[0] == "curve":
            sock.curve_serverkey, sock.curve_publickey, sock.curve_secretkey = creds[1:]
        elif creds is not None:
            sock.plain_username, sock.plain_password = creds
    push.setsockopt(zmq.SNDHWM, 1_000_000)
    sub.setsockopt(zmq.RCVHWM, 1_000_000)
    sub.setsockopt(zmq.SUBSCRIBE, b"exec.bench ")
    push.connect(push_ep)
    sub.connect(sub_ep)
    time.sleep(0.5)
    sent: dict[str, float] = {}
    lat: list[float] = []

    def collect(timeout_ms: int) -> None:
        while sub.poll(timeout_ms):
            env = orjson.loads(sub.recv().split(b" ", 1)[1])
            body = env.get("body", {})
            if env.get("kind") == "report" and body.get("status") in ("filled", "rejected"):
                t0 = sent.pop(body.get("signal_id"), None)
                if t0 is not None:
                    lat.append((time.perf_counter() - t0) * 1000)
            timeout_ms = 0

    fd = sub.getsockopt(zmq.FD)

    def readable(timeout_s: float) -> bool:
        """zmq's FD is edge-triggered: ask EVENTS, wait on the FD (sub-millisecond), ask again."""
        if sub.getsockopt(zmq.EVENTS) & zmq.POLLIN:
            return True
        fd_readable(fd, timeout_s)
        return bool(sub.getsockopt(zmq.EVENTS) & zmq.POLLIN)

    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        due = start + n / rate
        while (now := time.perf_counter()) < due:  # paced without spinning (the driver must not take a core
            if readable(due - now):                 # from what it measures), woken at once by a reply
                collect(0)
        sid, frame = signal_frame(n)
        sent[sid] = time.perf_counter()
        push.send(frame)
        n += 1
    end = time.perf_counter() + 5
    while sent and time.perf_counter() < end:
        collect(50)
    paced = {"n": n, "done": len(lat), "p50": pct(lat, 0.5), "p99": pct(lat, 0.99), "max": max(lat or [0])}
    lat.clear()
    t0 = time.perf_counter()
    for i in range(burst):
        sid, frame = signal_frame(i)
        sent[sid] = time.perf_counter()
        push.send(frame)
    end = time.perf_counter() + 60
    while sent and time.perf_counter() < end:
        collect(50)
    took = time.perf_counter() - t0
    paced["burst_rate"] = (burst - len(sent)) / took
    paced["burst_lost"] = len(sent)
    push.close()
    sub.close()
    return paced


def _port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wispd_over_curve(tmp: Path, ns: argparse.Namespace) -> dict:
    """The same wispd path with the executor's endpoints on tcp:// (so CURVE on every frame); the bench
    presents the strategy ``bench``'s own CURVE key, derived from the boot key as the supervisor derives
    it for the strategy process (an authorized outside key is ``outside:NAME`` and may not trade)."""
    import subprocess

    from tests.helpers import BIN

    sub_dir = tmp / "curve"
    sub_dir.mkdir()
    done = subprocess.run([str(BIN / "wispctl"), "keygen", str(sub_dir / "daemon.key")], capture_output=True,
                          text=True, timeout=30, check=True)
    server_public = done.stdout.rsplit("public key: ", 1)[1].strip().encode()
    from wispd.auth import curve_public, curve_secret

    (sub_dir / "authorized").write_text("")
    sig, rep = _port(), _port()
    body = BODY.replace('exchanges = ["sim"]\n[executors.paper.paper]', f'exchanges = ["sim"]\n'
                        f'signals_endpoint = "tcp://127.0.0.1:{sig}"\nreports_endpoint = "tcp://127.0.0.1:{rep}"\n'
                        '[executors.paper.paper]')
    d = Daemon(sub_dir, body, uuid.uuid4().hex, **PRODUCTION,
               curve_secret_file=str(sub_dir / "daemon.key"), curve_authorized_keys=str(sub_dir / "authorized"))
    d.start()
    try:
        key = bytes.fromhex((sub_dir / "boot.key").read_text())
        secret = curve_secret(key, "bench")
        return drive(f"tcp://127.0.0.1:{sig}", f"tcp://127.0.0.1:{rep}", ns.rate, ns.seconds, ns.burst,
                     ("curve", server_public, curve_public(secret), secret))
    finally:
        d.stop()
        d.kill()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=float, default=1000.0)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--burst", type=int, default=5000)
    ap.add_argument("--write")
    ns = ap.parse_args()
    tmp = Path(scratch_dir())
    mpctx = mp.get_context("fork")
    ready = mpctx.Queue()
    bare_ep = (f"ipc://{tmp}/bare.pull", f"ipc://{tmp}/bare.pub")
    import zmq

    results = {}
    server_public, server_secret = zmq.curve_keypair()
    client_public, client_secret = zmq.curve_keypair()
    curve = ("curve", server_public, client_public, client_secret)
    tcp = tuple(f"tcp://127.0.0.1:{_port()}" for _ in range(2))
    for label, auth, eps in (("bare", "none", bare_ep), ("bare_plain", "plain", bare_ep),
                             ("bare_curve", "curve", tcp)):
        proc = mpctx.Process(target=echo, args=(*eps, ready, auth, server_secret))
        proc.start()
        ready.get(timeout=10)
        creds = {"none": None, "plain": (b"bench", b"x"), "curve": curve}[auth]
        results[label] = drive(*eps, ns.rate, ns.seconds, ns.burst, creds)
        end = zmq.Context.instance().socket(zmq.PUSH)
        if auth == "plain":
            end.plain_username, end.plain_password = b"bench", b"x"
        elif auth == "curve":
            end.curve_serverkey, end.curve_publickey, end.curve_secretkey = curve[1:]
        end.connect(eps[0])
        end.send(b"END")
        proc.join(5)
        end.close()
    bare = results["bare"]
    d = Daemon(tmp, BODY, uuid.uuid4().hex, **PRODUCTION)
    d.start()
    try:
        wispd = drive(f"ipc://{tmp}/run/exec-paper.pull", f"ipc://{tmp}/run/exec-paper.pub", ns.rate, ns.seconds,
                      ns.burst, d.credentials("bench"))
    finally:
        d.stop()
        d.kill()
    results["wispd_curve"] = wispd_over_curve(tmp, ns)
    for name, r in (("bare two-hop", bare), ("bare + PLAIN/ZAP", results["bare_plain"]),
                    ("bare + CURVE/ZAP, tcp", results["bare_curve"]), ("wispd signal->fill", wispd),
                    ("wispd, tcp + CURVE", results["wispd_curve"])):
        print(f"{name:<20} {r['done']}/{r['n']} at {ns.rate:.0f}/s: p50 {r['p50']:.3f} ms p99 {r['p99']:.3f} ms "
              f"max {r['max']:.1f} ms | burst {ns.burst}: {r['burst_rate']:,.0f}/s, unanswered {r['burst_lost']}",
              flush=True)
    if ns.write:
        table = [f"| path | paced {ns.rate:.0f}/s for {ns.seconds:g} s: answered | p50 ms | p99 ms | max ms | "
                 f"burst of {ns.burst}: signals/s | unanswered |", "| --- | --- | --- | --- | --- | --- | --- |"]
        for name, r in (("bare two-hop pyzmq + orjson echo (ipc)", bare),
                        ("the same with PLAIN auth + ZAP (as the executor on ipc)", results["bare_plain"]),
                        ("the same with CURVE + ZAP over tcp loopback", results["bare_curve"]),
                        ("wispd signal -> journaled paper fill (ipc, PLAIN)", wispd),
                        ("wispd signal -> journaled paper fill (tcp + CURVE)", results["wispd_curve"])):
            table.append(f"| {name} | {r['done']}/{r['n']} | {r['p50']:.3f} | {r['p99']:.3f} | {r['max']:.1f} | "
                         f"{r['burst_rate']:,.0f} | {r['burst_lost']} |")
        table.append("")
        table.append("The wispd path includes one fsynced SQLite commit (the intents, before any order of the batch "
                     "leaves) and one WAL commit without fsync (fills, before their reports; see docs/execution.md, "
                     "money-safety rules); a burst shares both across the batch. The tcp + CURVE rows put CURVE "
                     "on both hops (the executor's signal PULL and report PUB), as every tcp:// endpoint has.")
        replace_section(Path(ns.write), "signal-latency", "\n".join(table),
                        "python bench/signal_latency.py " + " ".join(sys.argv[1:]))
    _ = statistics


if __name__ == "__main__":
    main()
