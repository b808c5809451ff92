"""`wispctl logs NAME [-n N] [-f] [--json]`: read a child's JSON-lines log file (``wispd`` for the daemon).

The daemon tells where the logs are; when it is not running, the directory comes from the config, so the
logs of a crashed daemon can still be read.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any

import orjson

from wispd.control import envelope
from wispd.control.verbs._common import EXIT_ERROR, EXIT_OK, EXIT_UNKNOWN
from wispd.logs import log_path

NAME = "logs"
HELP = "show a child's log (wispd for the daemon's own); -f follows"
MUTATING = False
TIMEOUT = 10.0
_FIXED = ("ts", "level", "child", "pid", "event", "traceback")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="child name, or wispd")
    parser.add_argument("-n", "--lines", type=int, default=50, help="how many lines from the end (default 50)")
    parser.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    parser.add_argument("--json", action="store_true", help="print the raw JSON lines")


def request(ns: argparse.Namespace) -> dict[str, Any]:
    return {"name": ns.name}


def handle(sup: Any, args: dict[str, Any], respond: Any) -> None:
    name = args.get("name")
    if name != "wispd" and name not in sup.children:
        respond(False, {"known": sorted(sup.children)}, envelope.ERR_UNKNOWN_NAME, f"no such child: {name!r}")
        return
    respond(True, {"log_dir": str(sup.daemon.log_dir)})


def pretty(line: str) -> str:
    try:
        doc = orjson.loads(line)
    except orjson.JSONDecodeError:
        return line.rstrip("\n")
    if not isinstance(doc, dict):
        return line.rstrip("\n")
    fields = " ".join(f"{k}={orjson.dumps(v).decode() if not isinstance(v, str) else v}"
                      for k, v in doc.items() if k not in _FIXED)
    text = f"{doc.get('ts', '')} {str(doc.get('level', '')).upper():<7} {doc.get('event', '')} {fields}".rstrip()
    if doc.get("traceback"):
        text += "\n" + str(doc["traceback"]).rstrip()
    return text


def _emit(line: str, ns: argparse.Namespace) -> None:
    sys.stdout.write(line if ns.json else pretty(line) + "\n")
    sys.stdout.flush()


def show(path: Path, ns: argparse.Namespace) -> int:
    if not path.exists():
        print(f"error: no log file yet at {path}", file=sys.stderr)
        return EXIT_ERROR
    with open(path, encoding="utf-8", errors="replace") as fh:
        tail: deque[str] = deque(maxlen=max(0, ns.lines))
        partial = ""  # a line the writer has not finished yet: printed only once its newline arrives
        for line in fh:
            if line.endswith("\n"):
                tail.append(line)
            else:  # only the last can lack its newline: not a line yet, whatever -n says
                partial = line
        for line in tail:
            _emit(line, ns)
        if not ns.follow:
            if partial:  # the file ends there (a writer killed mid-line): show what there is
                _emit(partial + "\n", ns)
            return EXIT_OK
        inode = os.fstat(fh.fileno()).st_ino
        try:
            while True:
                line = fh.readline()
                if line:
                    if not line.endswith("\n"):
                        partial += line
                        continue
                    _emit(partial + line, ns)
                    partial = ""
                    continue
                time.sleep(0.2)
                try:
                    st = os.stat(path)
                except FileNotFoundError:
                    continue
                if st.st_ino != inode or st.st_size < fh.tell():  # rotated or truncated: reopen
                    fh.close()
                    fh = open(path, encoding="utf-8", errors="replace")  # noqa: SIM115
                    partial = ""
                    inode = os.fstat(fh.fileno()).st_ino
        except KeyboardInterrupt:
            return EXIT_OK


def render(reply: dict[str, Any], ns: argparse.Namespace) -> int:
    if not reply.get("ok"):
        print(f"error: {reply.get('error')}", file=sys.stderr)
        return EXIT_UNKNOWN if reply.get("code") == envelope.ERR_UNKNOWN_NAME else EXIT_ERROR
    return show(log_path(Path(reply["result"]["log_dir"]), ns.name), ns)


def offline(ns: argparse.Namespace, paths: Any) -> int:
    """The daemon is down: read the file named by the config."""
    if ns.name != "wispd" and ns.name not in paths.children:
        print(f"error: no such child: {ns.name!r}", file=sys.stderr)
        return EXIT_UNKNOWN
    return show(log_path(paths.log_dir, ns.name), ns)
