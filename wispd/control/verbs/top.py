"""`wispctl top`: a live view refreshed in place (children, strategy statuses, feeds, positions and PnL).

Drawn with curses (the standard binding to ncurses: works in any terminal and over SSH). `q` or Ctrl-C
quits; an unreachable daemon is shown on screen and retried, never a traceback.
"""

from __future__ import annotations

import argparse
import curses
import time
from typing import Any

from wispd.control.client import Unreachable, call
from wispd.control.verbs._common import EXIT_OK
from wispd.control.verbs.positions import executor_states, shown
from wispd.control.verbs.status import _uptime

NAME = "top"
HELP = "live view of children, feeds, positions and PnL (q quits)"
MUTATING = False
TIMEOUT = 5.0
INTERACTIVE = True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--interval", type=float, default=1.0, help="refresh every N seconds (default 1)")


def request(ns: argparse.Namespace) -> dict[str, Any]:
    return {}


def handle(sup: Any, args: dict[str, Any], respond: Any) -> None:
    doc = sup.status_doc()
    feeds = []
    for child in sup.ordered():
        if child.kind == "ingestor" and child.metrics:
            feeds.append({"exchange": child.spec.args.get("exchange"), "sent": sum((child.metrics.get("md_sent")
                                                                                    or {}).values()),
                          "streams": child.metrics.get("streams", 0), "stale": child.metrics.get("stale", 0)})
    doc["feeds"] = feeds
    doc["accounts"] = executor_states(sup)
    respond(True, doc)


class View:
    def __init__(self) -> None:
        self.last_sent: dict[str, tuple[float, float]] = {}
        self.last_cpu: dict[str, tuple[float, float]] = {}

    def rate(self, store: dict[str, tuple[float, float]], key: str, value: float) -> float | None:
        now = time.monotonic()
        prev = store.get(key)
        store[key] = (now, value)
        if prev is None or now <= prev[0]:
            return None
        return max(0.0, (value - prev[1]) / (now - prev[0]))

    def lines(self, doc: dict[str, Any]) -> list[tuple[str, int]]:
        d = doc["daemon"]
        kids = doc["children"]
        running = sum(1 for c in kids if c["state"] == "RUNNING")
        out = [(f"wispd pid {d['pid']}  up {_uptime(d['uptime_s'])}  children {running}/{len(kids)} running  "
                f"trading {'HALTED' if d.get('trading_halted') else 'on'}   (q quits)", curses.A_BOLD), ("", 0),
               (f"{'NAME':<18} {'KIND':<9} {'STATE':<9} {'PID':>7} {'UPTIME':>9} {'RST':>4} {'CPU%':>5} "
                f"{'MEM':>6}  STATUS", curses.A_REVERSE)]
        for c in kids:
            cpu = self.rate(self.last_cpu, c["name"], c.get("cpu_s") or 0.0)
            status = c.get("status") or {}
            text = f"{status.get('phase', '')}: {status.get('summary', '')}" if status.get("phase") else c["reason"]
            attr = 0 if c["state"] == "RUNNING" else curses.A_BOLD
            out.append((f"{c['name']:<18} {c['kind']:<9} {c['state']:<9} {str(c.get('pid') or '-'):>7} "
                        f"{_uptime(c.get('uptime_s') or 0):>9} {c['restarts']:>4} "
                        f"{(cpu or 0) * 100:>5.1f} {(c.get('rss_bytes') or 0) / 1048576:>5.0f}M  {text}", attr))
        out += [("", 0), (f"{'FEED':<18} {'MSG/S':>8} {'STREAMS':>8} {'STALE':>6}", curses.A_REVERSE)]
        for f in doc.get("feeds", []):
            r = self.rate(self.last_sent, f["exchange"], f["sent"])
            out.append((f"{f['exchange']:<18} {r or 0:>8.1f} {f['streams']:>8} {f['stale']:>6}",
                        curses.A_BOLD if f["stale"] else 0))
        out += [("", 0), (f"{'ACCOUNT':<10} {'STRATEGY':<14} {'SYMBOL':<22} {'QTY':>12} {'AVG':>12} {'uPnL':>10} "
                          f"{'rPnL':>10}", curses.A_REVERSE)]
        for acc in doc.get("accounts", []):
            for p in acc.get("positions", []):
                out.append((f"{acc['account']:<10} {p['strategy']:<14} {p['exchange'] + ':' + p['symbol']:<22} "
                            f"{p['qty']:>12} {p['avg_price']:>12} {shown(p['unrealized_pnl']):>10} "
                            f"{p['realized_pnl']:>10}", 0))
            for strategy, pnl in sorted((acc.get("pnl") or {}).items()):
                out.append((f"{acc['account']:<10} {strategy:<14} {'PnL total':<22} {shown(pnl['total']):>12} "
                            f"(fees {pnl['fees']})", 0))
        return out


def run_interactive(ns: argparse.Namespace, endpoint: str) -> int:
    def loop(screen: Any) -> None:
        curses.curs_set(0)
        screen.timeout(int(ns.interval * 1000))
        view = View()
        while True:
            try:
                reply = call(endpoint, NAME, {}, TIMEOUT)
                lines = view.lines(reply["result"]) if reply.get("ok") else [(reply.get("error", "error"), 0)]
            except Unreachable as exc:
                lines = [(f"wispctl top: {exc} (retrying; q quits)", curses.A_BOLD)]
            screen.erase()
            height, width = screen.getmaxyx()
            for y, (text, attr) in enumerate(lines[: height - 1]):
                screen.addnstr(y, 0, text, width - 1, attr)
            screen.refresh()
            key = screen.getch()
            if key in (ord("q"), ord("Q"), 27):
                return

    try:
        curses.wrapper(loop)
    except KeyboardInterrupt:
        pass
    return EXIT_OK


def render(reply: dict[str, Any], ns: argparse.Namespace) -> int:  # non-interactive use (no terminal)
    for text, _ in View().lines(reply["result"]):
        print(text)
    return EXIT_OK
