"""A strategy process in virtual time: what stands in for the receiver thread and the signal socket.

In a backtest the same strategy process runs the same code; only where its time and its data come from
changes. One framed Unix socket to the backtest's replayer (``wispd.framing``) carries everything, in order: market data, the
executor's reports, signals, subscriptions and requests. Nothing runs on a side thread, and the strategy's
clock (``wispd.clock``) moves only when the replayer says so. So every run of the same backtest sees the
same frames at the same virtual instants and makes the same decisions.

The protocol (every message is one JSON request and, except ``signal``, one reply; the replayer serves
one strategy at a time, so the order of work is fixed):

- ``hello`` -> ``{t}``: the start time;
- ``sub`` / ``unsub`` ``{prefixes}``; ``snap {topic}`` -> the newest envelope at this instant;
  ``history {topic, limit}`` -> closed candles so far; ``flush`` (not answered: it only carries what
  every request carries, below, when the strategy has nothing else to say: its last signals on the way out);
- ``idle {until, wake, reports}``: the strategy waits (``ctx.sleep``, ``every``, ``updates``, a handle's
  ``wait``) until the virtual time ``until`` (ms, or null), or until a frame of a topic in ``wake`` (``["*"]``:
  any) or a report arrives. The reply is a step: a header ``{t, stop}`` and the frames delivered, each
  prefixed ``m`` (market data) or ``r`` (a report). The strategy applies them with the live receiver's own
  decoding (``Receiver.ingest`` and its report handling), moves its clock to ``t`` and checks whether its
  wait is over; if not, it says ``idle`` again.

Every request also carries ``consumed`` (run-ahead frames applied since the last request) and ``signals``
(the frames the strategy emitted since then, in order). A signal is not a request of its own: nothing can
happen in virtual time between an emit and the strategy's next request (its clock moves only when a reply
says so, and the frames it was handed ahead are given back at the emit), so it rides on that request and
the replayer carries it out first, at the instant it was emitted; one message fewer per order.

Run ahead: an ``idle`` reply may instead hand over the coming frames (``{t, ahead, lead}``, then ``lead``
step frames, then the frames ahead, packed with their receive times). The strategy applies the step frames
at once, then the frames ahead one by one at their own instants, each time checking whether its wait is
over, never past its own timer; whatever it has not applied when it next talks is given back.
"""

from __future__ import annotations

import itertools
import struct
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import orjson

from wispd import clock, framing
from wispd.strategy import signals
from wispd.strategy.receiver import Receiver

RUN_AHEAD = struct.Struct(">qI")  # a run-ahead frame: receive time (us), length, then the frame
STEP_TIMEOUT_S = 600.0  # real seconds a replayer may take to answer (it is replaying, not hung)


class ReplayerGone(RuntimeError):
    pass


class Flag:
    """``threading.Event``'s set/clear/is_set without its lock and condition: in a backtest the strategy
    process has one thread, and the cache's "a watched book changed" flag is set and cleared once per
    replayed update (the Event's locking was a tenth of the strategy's time per update)."""

    __slots__ = ("_set",)

    def __init__(self) -> None:
        self._set = False

    def set(self) -> None:
        self._set = True

    def clear(self) -> None:
        self._set = False

    def is_set(self) -> bool:
        return self._set

    def wait(self, timeout: float | None = None) -> bool:  # noqa: ARG002 - nothing else could set it meanwhile
        return self._set


class VirtualLink:
    """The strategy's one socket to the replayer (main thread only)."""

    def __init__(self, path: str, name: str, token: str, beat: Callable[[], None]) -> None:
        self.sock = framing.connect(path)
        self.sock.send([name.encode(), token.encode()])  # whose link this is: the replayer's first read
        self.beat = beat
        self.stop = False
        self.before: Callable[[], dict[str, Any]] = dict  # what every request says first (VirtualTime's run-ahead)
        self.signals: list[str] = []  # emitted since the last request: they ride on the next one

    def _message(self, op: str, fields: dict[str, Any]) -> list[bytes]:
        doc = {"op": op, **fields, **self.before()}
        if self.signals:
            doc["signals"], self.signals = self.signals, []
        return [orjson.dumps(doc)]

    def call(self, op: str, **fields: Any) -> list[bytes]:
        self.sock.send(self._message(op, fields))
        end = time.monotonic() + STEP_TIMEOUT_S
        while (reply := self.sock.recv(0.25)) is None:
            if self.sock.closed:
                raise ReplayerGone("the backtest replayer closed the replay link")
            self.beat()
            if time.monotonic() > end:
                raise ReplayerGone(f"the backtest replayer did not answer {op} for {STEP_TIMEOUT_S:.0f} s")
        return reply

    def tell(self, op: str, **fields: Any) -> None:
        """A message the replayer does not answer."""
        self.sock.send(self._message(op, fields))

    def request(self, op: str, **fields: Any) -> dict[str, Any]:
        reply = orjson.loads(self.call(op, **fields)[0])
        return reply if isinstance(reply, dict) else {}

    def close(self) -> None:
        if self.signals and not self.sock.closed:  # emitted on the way out (on_stop): carried out, as live
            try:
                self.tell("flush")
            except OSError:
                pass
        self.sock.close()


class VirtualReceiver(Receiver):
    """The live receiver's decoding and bookkeeping without its thread and sockets: commands are carried
    out at once over the replayer link, frames arrive in steps."""

    def __init__(self, *args: Any, link: VirtualLink, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.link = link

    def start(self) -> None:  # no thread: the strategy's own thread applies every step
        return None

    def stop(self) -> None:
        return None

    def join(self, timeout: float | None = None) -> None:
        return None

    def submit(self, op: str, **args: Any) -> None:
        if op == "watch":
            new = [p.decode() for p in args["prefixes"] if p not in self.subscriptions[args["exchange"]]]
            self.subscriptions[args["exchange"]].update(args["prefixes"])
            if new:
                self.link.request("sub", prefixes=new)
            for topic in args.get("snapshots", []):
                self._snapshot_handler(topic)(self.link.request("snap", topic=topic))
        elif op == "unwatch":
            gone = [p.decode() for p in args["prefixes"] if p in self.subscriptions[args["exchange"]]]
            self.subscriptions[args["exchange"]].difference_update(args["prefixes"])
            if gone:
                self.link.request("unsub", prefixes=gone)
        elif op == "history":
            self._history(args["exchange"], args["topic"], args["limit"], args.get("done"))

    def _request(self, exchange: str, op: str, on_reply: Callable[[dict[str, Any]], None], **fields: Any) -> None:
        on_reply(self.link.request(op, **fields))

    def apply(self, frames: list[bytes]) -> None:
        """One step's frames, in order, through the live receiver's own code."""
        for frame in frames:
            kind, body = frame[:1], frame[1:]
            if kind == b"m":
                self.ingest(body, None)
            elif kind == b"r":
                self.report_frame(body)


# |int(round(t * 1000, 3) * 1000) - t * 1e6| stays below this for epoch times t up to the year 2286 (about 1.5 us
# today; tests/strategy/test_virtual.py). The replayer reads a timer that way, to the microsecond and rounded
# down, and wakes the strategy at that microsecond: a wait is over once the clock is within this of its end (a
# timer off the microsecond grid, ``every(0.37)``, was asked for again and again at the same instant: the
# backtest never moved on).
UNTIL_SLACK_US = 4


class VirtualTime:
    """The strategy's waits in virtual time: each asks the replayer for the next step."""

    def __init__(self, link: VirtualLink, receiver: VirtualReceiver, on_stop: Callable[[], None]) -> None:
        self.link, self.receiver, self.on_stop = link, receiver, on_stop
        self.local: deque[tuple[int, bytes]] = deque()  # frames handed over ahead of time (run-ahead)
        self.consumed = 0  # of them, applied since the replayer last heard from us
        self.given_back = 0  # ... and handed back unapplied (an emit ends a run ahead)
        self._wake_key: tuple[str, ...] = ()
        self._wake_names: set[bytes] = set()
        self._wake_any = False
        self._wake_list: list[str] | None = None
        link.before = self._before
        counter = itertools.count(1)
        # The same run makes the same signal ids (and so the same client order ids).
        signals.new_signal_id = lambda: f"bt{next(counter):010d}"

    def start(self) -> None:
        reply = self.link.request("hello")
        clock.install(clock.VirtualClock(_instant(reply["t"])))

    def _before(self) -> dict[str, Any]:
        """Every request first says how many run-ahead frames were applied; frames not yet applied are given
        back (the replayer hands them over again after whatever this request causes)."""
        out = {"consumed": self.consumed, "dropped": self.given_back + len(self.local)}
        self.consumed = self.given_back = 0
        self.local.clear()
        return out

    def _run_ahead(self, wake: list[str], until_s: float | None) -> bool:
        """Apply frames handed over ahead of time, one by one at their own instants, up to the first one
        that ends the wait (True) — exactly what a step per frame would have done, without the round trips.
        It stops before a frame past its own timer (False): that wait is the replayer's to end."""
        vc = clock.virtual()
        if wake is not self._wake_list:  # the same wait, frame after frame, is the same list (Runtime._wake)
            key = tuple(wake)
            if key != self._wake_key:  # ... and its topic set is built once
                self._wake_key, self._wake_names = key, {w.encode() for w in wake}
                self._wake_any = "*" in key
            self._wake_list = wake
        wake_any, names = self._wake_any, self._wake_names
        local = self.local
        # The timer's instant as the replayer reads it, exactly, only when a frame held here could reach it:
        # the exact form (a float rounded to the microsecond) is within UNTIL_SLACK_US of until_s * 1e6, and
        # rounding a float to 3 places was a twentieth of a replayed update's cost in this process
        until_us = None
        if until_s is not None and local and local[-1][0] >= until_s * 1e6 - UNTIL_SLACK_US:
            until_us = int(round(until_s * 1000, 3) * 1000)
        while local:
            if until_us is not None and local[0][0] >= until_us:
                return False
            t_us, frame = local.popleft()
            self.consumed += 1
            if vc is not None and t_us / 1e6 > vc.t:  # VirtualClock.advance_to, inlined (once per update)
                vc.t = t_us / 1e6
            self.receiver.ingest(frame, None)
            if wake_any or frame[:frame.find(b" ")] in names:
                return True
        return False

    def step(self, until_s: float | None, wake: list[str] | None = None, reports: bool = False) -> bool:
        """Wait for one step; True once the backtest is over (the strategy is asked to stop)."""
        wake = wake or []
        if self.local and self._run_ahead(wake, until_s):
            return False
        parts = self.link.call("idle", until=None if until_s is None else round(until_s * 1000, 3),
                               wake=wake, reports=reports)
        head = orjson.loads(parts[0])
        vc = clock.virtual()
        if head.get("ahead"):
            lead = head.get("lead") or 0
            blob, pos, size = parts[1 + lead], 0, RUN_AHEAD.size
            while pos < len(blob):
                t_us, length = RUN_AHEAD.unpack_from(blob, pos)
                self.local.append((t_us, blob[pos + size:pos + size + length]))
                pos += size + length
            if lead:  # a step (what woke it) with the frames after it: the wait is checked before those
                self.receiver.apply(parts[1:1 + lead])
            if vc is not None:
                vc.advance_to(_instant(head["t"]))
            if not lead:
                self._run_ahead(wake, until_s)
            return False
        self.receiver.apply(parts[1:])
        if vc is not None:
            vc.advance_to(_instant(head["t"]))
        if head.get("stop"):
            self.link.stop = True
            self.on_stop()
        return bool(head.get("stop"))

    def sleep_until(self, end_s: float, stopping: Callable[[], bool]) -> None:
        due = end_s - UNTIL_SLACK_US / 1e6
        while not stopping() and clock.now() < due:
            self.step(end_s)

    def wait_for(self, done: Callable[[], bool], end_s: float | None, stopping: Callable[[], bool],
                 wake: list[str], reports: bool) -> None:
        due = None if end_s is None else end_s - UNTIL_SLACK_US / 1e6
        while not done() and not stopping() and (due is None or clock.now() < due):
            self.step(end_s, wake, reports)

    def signal(self, frame: bytes) -> None:
        """An emitted signal: it rides on the next request (see the module docstring); the frames handed
        over ahead and not applied yet are given back now, so none is applied before it is carried out."""
        self.given_back += len(self.local)
        self.local.clear()
        self.link.signals.append(frame.decode())


def _instant(t_ms: Any) -> float:
    """A replayer's instant (ms, to the microsecond) as this process's clock reads it: the same float as a
    frame's receive time gives (``t_us / 1e6``, ``_run_ahead``), so a strategy stepped to an instant and one
    run ahead to it read the same clock (a signal's ``ts`` is written from it into the journal)."""
    return round(float(t_ms) * 1000) / 1e6


def topic_names(keys: set[bytes]) -> list[str]:
    return sorted(k.decode() for k in keys)

