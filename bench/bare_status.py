"""The floor for ``wispctl status``: the same work with nothing but the standard library and no structure.

Parses the same command line with argparse, reads the config with tomllib, derives the control socket the
way the daemon does (``run_dir`` or ``$XDG_RUNTIME_DIR/wispd`` or ``/tmp/wispd-UID``), speaks ZMTP 3.1 to the
daemon's ROUTER inline (greeting, READY, one frame out, frames in), decodes the reply with ``json`` and prints
one line per child. No error handling beyond what makes it run: it is the like-for-like bare loop that
``bench/scale.py`` times beside the real command, not a client.

    python bench/bare_status.py --config FILE status
"""

import argparse
import json
import os
import socket
import struct
import sys
import tomllib


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config")
    ap.add_argument("verb")
    ns = ap.parse_args()
    path = os.path.abspath(ns.config)
    with open(path, "rb") as f:
        daemon = tomllib.load(f).get("daemon", {})
    run_dir = daemon.get("run_dir") or os.environ.get("XDG_RUNTIME_DIR", f"/tmp/wispd-{os.getuid()}")
    run_dir = os.path.join(os.path.dirname(path), run_dir)
    endpoint = daemon.get("control_endpoint") or f"ipc://{run_dir}/control.sock"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(endpoint[6:])
    s.sendall(b"\xff" + bytes(8) + b"\x7f\x03\x01" + b"NULL".ljust(20, b"\0") + bytes(32))
    buf = b""

    def read(n: int) -> bytes:
        nonlocal buf
        while len(buf) < n:
            buf += s.recv(65536)
        out, buf = buf[:n], buf[n:]
        return out

    read(64)
    s.sendall(b"\x04\x1c\x05READY\x0bSocket-Type" + struct.pack(">I", 6) + b"DEALER")
    rid = os.urandom(16).hex()
    req = json.dumps({"id": rid, "verb": ns.verb, "args": {"name": None, "history": False}}).encode()
    s.sendall(bytes([0, len(req)]) + req if len(req) < 256 else b"\x02" + struct.pack(">Q", len(req)) + req)
    while True:
        flags = read(1)[0]
        size = struct.unpack(">Q", read(8))[0] if flags & 2 else read(1)[0]
        body = read(size)
        if not flags & 4:
            break
    doc = json.loads(body)
    for c in doc["result"]["children"]:
        print(f"{c['name']:<20} {c['kind']:<9} {c['state']:<9} pid {c.get('pid') or '-'!s:<7} "
              f"restarts {c.get('restarts', 0):<3} cpu {c.get('cpu_s', 0):.1f}s")


if __name__ == "__main__":
    main()
    sys.stdout.flush()
