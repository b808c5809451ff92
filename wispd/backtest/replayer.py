"""The backtest replayer: recorded frames in, the configured strategies as their own processes, in virtual time.

It stands in for the ingestors (it serves subscriptions, snapshots and candle history from the data, as of
the current virtual instant only) and for the executors (``account.py``: the live core and paper engine).
The strategies are the same child processes with the same entry point, started by the same launcher;
their ``ctx`` runs on virtual time (``wispd/strategy/virtual.py``).

Determinism: one event at a time, in (time, kind, order of arrival) order, and one strategy at a time: a
strategy is stepped, then served until it waits again, before anything else happens. While a strategy
waits only on time (``ctx.sleep``, ``every``), the frames it subscribed to are batched into its next step
(it cannot look at them before it wakes); while it waits on data (``updates``) or on a report (a handle's
``wait``, its first state), it is stepped at the first frame that can end its wait. The same data, config
and code therefore give the same signals and fills on every run and every machine.

Lookahead is impossible by construction: a frame reaches a strategy, and the executor's books, only once
virtual time has reached its receive time; snapshots and history answer from what was replayed so far.
"""

from __future__ import annotations

import bisect
import heapq
import hmac
import itertools
import math
import os
import secrets
import struct
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import zmq

from wispd import clock, framing, protocol
from wispd.backtest.account import Account
from wispd.config.model import ChildSpec, Config
from wispd.data import segments, store
from wispd.data.segments import Record
from wispd.ingest.sim import market_rules, symbol_sizes

RUN_AHEAD = struct.Struct(">qI")  # a run-ahead frame: receive time (us), length, then the frame
AHEAD_MAX = 2000  # frames handed over ahead of time in one step (at most)
AHEAD_MIN = 16
REAL_TIMEOUT_S = 120.0  # real seconds a strategy may compute without waiting before it is called hung
BATCH = 4096  # frames held for a sleeping strategy before they are handed over anyway
PREFETCH = 4096  # records read and decoded ahead of the timeline while a strategy computes (at most)
PREFETCH_STEP = 64  # ... this many at a time between looks at its socket
EXIT_WORDS_S = 1.0  # how long a strategy that failed may take to be heard saying why (its exit came first)
HELLO_S = 2.0  # a connection to the replay socket must say whose it is within this (strategies do at once)
SETTLE_US = 10_000_000  # after the window: data read on for the signals and orders still in flight at its end
EV_SIGNAL, EV_REPORT, EV_TICK, EV_PERIODIC = 0, 1, 2, 3
STALE = b'"kind":"stale"'  # a stale notice: never a topic's newest frame for snapshots (_observe, _commit_ahead)


class Batch:
    """Frames scanned for a run ahead (``Replayer._scan``), in order: what is handed over (all of it, or the
    part ``prefix`` keeps), and what decides whether a batch scanned ahead of its time still holds when its
    moment comes (``Replayer._speculated_prefix``)."""

    __slots__ = ("start", "blob", "ordinals", "times", "offsets", "verdict", "first_other")

    def __init__(self, start: int, blob: bytes, ordinals: list[int], times: list[int], offsets: list[int],
                 verdict: dict[bytes, int], first_other: int) -> None:
        self.start = start  # the ordinal its scan began at: it says nothing of the records before
        self.blob, self.ordinals, self.times, self.offsets = blob, ordinals, times, offsets  # offsets: len + 1
        self.verdict = verdict  # every topic the scan met -> 0: skipped, 1: handed over, 2: stopped before it
        self.first_other = first_other  # the first record it met that is no frame (gap, meta, history), or NEVER

    @property
    def last_us(self) -> int:
        return self.times[-1]

    def prefix(self, start: int, cut_us: int, want: int) -> Batch | None:
        """Its frames from ordinal ``start`` on, before ``cut_us``, at most ``want`` (None when fewer than two)."""
        a = bisect.bisect_left(self.ordinals, start)
        b = min(bisect.bisect_left(self.times, cut_us, a), a + want)
        if b - a < 2:
            return None
        if a == 0 and b == len(self.ordinals):
            return self
        base = self.offsets[a]
        return Batch(self.start, self.blob[base:self.offsets[b]], self.ordinals[a:b], self.times[a:b],
                     [o - base for o in self.offsets[a:b + 1]], self.verdict, self.first_other)

    def then(self, after: Batch) -> Batch | None:
        """This scan followed by ``after`` (one that began no later than the record after this one's last
        frame), as one: None if they disagree on a topic's verdict (something changed between them)."""
        if after.start > self.ordinals[-1] + 1:
            return None
        a = bisect.bisect_right(after.ordinals, self.ordinals[-1])
        verdict = dict(self.verdict)
        for topic, v in after.verdict.items():
            if verdict.setdefault(topic, v) != v:
                return None
        end = self.offsets[-1]
        base = after.offsets[a]
        return Batch(self.start, self.blob + after.blob[base:], self.ordinals + after.ordinals[a:],
                     self.times + after.times[a:], self.offsets + [end + o - base for o in after.offsets[a + 1:]],
                     verdict, min(self.first_other, after.first_other))


NEVER = 1 << 62
Keepers = dict[bytes, tuple[tuple[str, str, str] | None, list[Account]]]  # topic -> its market, the accounts keeping it


@dataclass
class Lane:
    """One strategy process and what the replayer knows of its wait."""

    name: str
    spec: ChildSpec
    account: str | None
    proc: Any = None
    state: str = "new"  # new, running, idle, done
    until_us: int | None = None
    wake_any: bool = False
    wake: frozenset[bytes] = frozenset()
    reports: bool = False
    prefixes: list[bytes] = field(default_factory=list)
    buffer: list[bytes] = field(default_factory=list)
    buffered_report: bool = False
    buffered_wake: bool = False
    conn: framing.Link | None = None  # its replay link, once it connected and said its name and token
    token: str = field(default_factory=lambda: secrets.token_hex(16))  # what proves a connection is its own
    exit_code: int | None = None
    error: str = ""
    signals: int = 0
    steps: int = 0
    ready: bool = False
    start_us: int = 0  # when its first answer (its start, in virtual time) is given
    stop_us: int | None = None  # when it is asked to stop, if before the window's end (parity: as live did)
    status: dict[str, Any] = field(default_factory=dict)
    ahead: list[int] = field(default_factory=list)  # ordinals of the frames handed over ahead of time
    short_frames: int = 0  # frames of its run-aheads replayed the short way (``Replayer._commit_ahead``)
    ahead_steps: int = 0
    ahead_size: int = AHEAD_MIN
    batch: Batch | None = None  # the run ahead it holds now (its ordinals are ``ahead``)
    rest: Batch | None = None  # the last one, when it gave part of it back (handed over again from here)
    speculated: Batch | None = None  # the one after it, scanned while it computes (``Replayer._speculate``)
    tried: bool = False  # ... scanning it was tried for the batch it holds
    speculated_steps: int = 0  # run-aheads scanned while it computed (handed over the moment it asked: hits)
    speculated_hits: int = 0
    bad_requests: int = 0
    late_wakes: int = 0  # woken (or started) after the instant it asked for: a replay defect, counted and logged


@dataclass
class Result:
    out_dir: Path
    t_from_us: int
    t_to_us: int
    records: int = 0
    gaps: int = 0
    wall_s: float = 0.0
    cpu_s: float = 0.0  # the replayer's own CPU (its process: reading, replaying, the accounts), not the strategies'
    lanes: dict[str, dict[str, Any]] = field(default_factory=dict)
    accounts: dict[str, str] = field(default_factory=dict)  # account -> journal path
    events_to_strategies: int = 0
    samples: dict[str, list[list[float]]] = field(default_factory=dict)


class ReplayError(Exception):
    pass


class Cursor:
    """The data, in order, with look-ahead: ``n`` is the ordinal of the next record."""

    def __init__(self, it: Iterator[Record], first: Record | None) -> None:
        self.it = it
        self.buf: deque[Record] = deque([first] if first is not None else [])
        self.n = 0
        self.done = False

    def peek(self, i: int = 0) -> Record | None:
        while len(self.buf) <= i and not self.done:
            rec = next(self.it, None)
            if rec is None:
                self.done = True
            else:
                self.buf.append(rec)
        return self.buf[i] if i < len(self.buf) else None

    def pop(self) -> Record:
        self.n += 1
        return self.buf.popleft()

    def prefetch(self) -> bool:
        """Read a few more records into the look-ahead (False once it holds ``PREFETCH`` or the data is over).
        Only reads: the timeline does not move, so what is replayed and when is the same with or without it."""
        if self.done or len(self.buf) >= PREFETCH:
            return False
        self.peek(len(self.buf) + PREFETCH_STEP - 1)
        return True


class Replayer:
    def __init__(self, config: Config, data_root: Path, t_from_us: int, t_to_us: int, out_dir: Path, log: Any,
                 warmup_us: int = 0, entry_ms: float = 0.0, response_ms: float = 0.0,
                 paper_latency_ms: Any = None, strategies: list[str] | None = None,
                 params: dict[str, dict[str, Any]] | None = None, state_interval_s: float = 1.0,
                 run_ahead: bool = True, starts: dict[str, int] | None = None,
                 stops: dict[str, int] | None = None) -> None:
        self.run_ahead = run_ahead
        self.starts = dict(starts or {})  # strategy -> when it starts (us); default the window's start
        self.config, self.root, self.log = config, data_root, log
        self.t_from_us, self.t_to_us, self.warmup_us = t_from_us, t_to_us, warmup_us
        self.out_dir = out_dir
        self.entry_us, self.response_us = int(entry_ms * 1000), int(response_ms * 1000)
        self.state_us = int(state_interval_s * 1e6)
        self.heap: list[tuple[int, int, int, Any]] = []
        self.order = itertools.count()
        self.latest: dict[bytes, bytes] = {}
        self.klines: dict[bytes, dict[int, dict[str, Any]]] = {}
        self.routes: dict[bytes, list[Lane]] = {}
        self.channels: dict[bytes, tuple[tuple[str, str, str], bytes] | None] = {}  # topic -> (market, channel)
        self.markets = store.markets(data_root, t_to_us)
        self.known: set[str] = set()
        for seg in store.segments_of(data_root, t_from_us - warmup_us, t_to_us):
            self.known.update(seg.index.topics)
        self.pairs_known = {t.rsplit(".", 1)[0] if ".kline." not in t else t.split(".kline.")[0] for t in self.known}
        wanted = strategies or [c.name for c in config.children if c.kind == "strategy"]
        specs = {c.name: c for c in config.children if c.kind == "strategy"}
        unknown = [n for n in wanted if n not in specs]
        if unknown:
            raise ReplayError(f"no strategy named {', '.join(unknown)} in {config.daemon.config_path} "
                              f"(have: {', '.join(sorted(specs)) or 'none'})")
        self.lanes: dict[str, Lane] = {}
        for name in sorted(wanted):
            spec = specs[name]
            if params and name in params:
                spec = ChildSpec(**{**spec.__dict__, "args": {**spec.args, "params": {**(spec.args.get("params") or {}),
                                                                                       **params[name]}}})
            self.lanes[name] = Lane(name, spec, spec.args.get("account"))
            self.lanes[name].start_us = max(t_from_us, int(self.starts.get(name, t_from_us)))
            if name in (stops or {}):
                self.lanes[name].stop_us = int(stops[name])  # type: ignore[index]
        self.paper_latency_ms = paper_latency_ms
        self.log_stderr = False  # the strategies' logs go to <out>/logs (the terminal shows the summary)
        self.accounts: dict[str, Account] = {}
        self.records = 0
        self.spent: list[list[Record]] = []  # committed records not freed yet (``_commit_short``)
        self.gaps = 0
        self.delivered = 0
        self.samples: dict[str, list[list[float]]] = {}  # strategy -> [t_ms, total, realized, fees, exposure]
        self.sample_us = max(self.state_us, (t_to_us - t_from_us) // 4000)
        self.next_sample_us = 0

    # ------------------------------------------------------------------ the ingestor's answers, from the data
    def rules(self, key: tuple[str, str, str]) -> dict[str, Any] | None:
        exchange, market, symbol = key
        raw = (self.markets.get(exchange) or {}).get(f"{market}:{symbol}")
        if raw is not None:
            return raw
        ex = (self.config.sections.get("exchanges") or {}).get(exchange) or {}
        if ex.get("driver") == "sim" and f"md.{exchange}.{market}.{symbol}" in self.pairs_known:
            _, tick, step = symbol_sizes(ex.get("sim") or {}, symbol)
            return market_rules(market, symbol, tick, step)
        return None

    def latest_book(self, key: tuple[str, str, str]) -> bytes | None:
        return self.latest.get(f"md.{key[0]}.{key[1]}.{key[2]}.book".encode())

    def _snap(self, topic: str) -> dict[str, Any]:
        frame = self.latest.get(topic.encode())
        if frame is not None:
            parsed = protocol.parse_md_frame(frame)
            if parsed is not None:
                return {"ok": True, "envelope": parsed[1]}
        return self._unknown(topic) or {"ok": False, "error": "nothing replayed on this topic yet"}

    def _unknown(self, topic: str) -> dict[str, Any] | None:
        t = protocol.parse_topic(topic)
        if t is None:
            return {"ok": False, "error": f"not a market-data topic: {topic!r}"}
        pair = f"md.{t.exchange}.{t.market}.{t.symbol}"
        if pair in self.pairs_known:
            if topic not in self.known and t.interval is not None:
                have = sorted({k.split(".kline.")[1] for k in self.known if k.startswith(pair + ".kline.")})
                return {"ok": False, "code": "unknown_symbol", "error": f"no {t.channel} candles of {t.symbol} "
                        f"in the backtest's data (recorded intervals: {', '.join(have) or 'none'}; record the "
                        "interval, e.g. channels = [\"kline.15m\"] in the recorder)"}
            return None
        have = sorted({p.split(".", 2)[2] for p in self.pairs_known if p.startswith(f"md.{t.exchange}.")})
        return {"ok": False, "code": "unknown_symbol", "error": f"no data for {t.market} {t.symbol} on {t.exchange} "
                f"in {self.root} between the backtest's dates (have: {', '.join(have) or 'nothing'})"}

    def _history(self, topic: str, limit: int) -> dict[str, Any]:
        why = self._unknown(topic)
        if why is not None:
            return why
        candles = self.klines.get(topic.encode()) or {}
        return {"ok": True, "candles": [candles[t] for t in sorted(candles)[-max(1, min(limit, 5000)):]]}

    # ------------------------------------------------------------------ events
    def push(self, t_us: int, kind: int, payload: Any) -> None:
        heapq.heappush(self.heap, (t_us, kind, next(self.order), payload))

    def deliver_report(self, strategy: str, frame: bytes) -> None:
        self.push(int(clock.now() * 1e6) + self.response_us, EV_REPORT, (strategy, frame))

    def _schedule_tick(self, acct: Account) -> None:
        """Wake the account exactly when its next paper order goes live (rounded up: never a hair early)."""
        due = acct.engine.next_activation()
        if due is None:
            return
        at = clock.us_not_before(due)
        if at != acct.tick_at:
            acct.tick_at = at
            self.push(at, EV_TICK, acct)

    def _observe(self, rec: Record) -> bytes | None:
        """Keep what snapshots and history answer from; the frame's topic (None for gaps and meta)."""
        if rec.type == segments.T_HISTORY:
            doc = orjson.loads(rec.data)
            have = self.klines.setdefault(str(doc.get("topic")).encode(), {})
            for candle in doc.get("candles") or []:
                if isinstance(candle, dict) and isinstance(candle.get("t"), int) and candle.get("closed"):
                    have.setdefault(candle["t"], candle)
            return None
        if rec.type != segments.T_FRAME:
            self.gaps += rec.type == segments.T_GAP
            return None
        frame = rec.data
        topic = frame[:frame.find(b" ")]
        if STALE not in frame:
            self.latest[topic] = frame
        if b".kline." in topic and b'"closed":true' in frame:
            parsed = protocol.parse_md_frame(frame)
            if parsed is not None and isinstance(parsed[1]["body"].get("t"), int):
                self.klines.setdefault(topic, {})[parsed[1]["body"]["t"]] = parsed[1]["body"]
        return topic

    def _route(self, topic: bytes) -> list[Lane]:
        lanes = self.routes.get(topic)
        if lanes is None:
            probe = topic + b" "
            lanes = self.routes[topic] = [lane for lane in self.lanes.values()
                                          if any(probe.startswith(p) for p in lane.prefixes)]
        return lanes

    def _frame(self, rec: Record, holder: Lane | None = None) -> None:
        topic = self._observe(rec)
        if topic is None:
            return
        self.records += 1
        info = self._channel(topic)
        if info is not None:
            mkey, channel = info
            for acct in self.accounts.values():
                if acct.follows(mkey) and acct.market_frame(rec.data, mkey, channel):
                    self._schedule_tick(acct)  # a trigger that fired sends an order, which goes live later
        for lane in self._route(topic):
            if lane.state == "done" or lane is holder:
                continue
            lane.buffer.append(b"m" + rec.data)
            if lane.wake_any or topic in lane.wake or len(lane.buffer) >= BATCH:
                lane.buffered_wake = True

    def _event(self, kind: int, payload: Any) -> None:
        if kind == EV_SIGNAL:
            acct, msg = payload
            acct.signal(msg)
            self._schedule_tick(acct)
        elif kind == EV_REPORT:
            strategy, frame = payload
            lane = self.lanes.get(strategy)
            if lane is not None and lane.state != "done":
                lane.buffer.append(b"r" + frame)
                lane.buffered_report = True
        elif kind == EV_TICK:
            payload.tick()
            self._schedule_tick(payload)
        elif kind == EV_PERIODIC:
            for acct in self.accounts.values():
                acct.periodic()
            self._sample()
            if any(lane.state != "done" for lane in self.lanes.values()):
                self.push(int(clock.now() * 1e6) + self.state_us, EV_PERIODIC, None)

    def _sample(self) -> None:
        """Each strategy's PnL and exposure, for the equity curve (every ``sample_us`` of virtual time)."""
        now_us = int(clock.now() * 1e6)
        if now_us < self.next_sample_us:
            return
        self.next_sample_us = now_us + self.sample_us
        for acct in self.accounts.values():
            acct._materialize()
            core = acct.core
            for strategy in sorted(core.strategies):
                pnl = core.ledger.strategy_pnl(strategy, core.marks)
                total = pnl["total"] if pnl["total"] is not None else pnl["realized"] - pnl["fees"]  # type: ignore[operator]
                self.samples.setdefault(strategy, []).append(
                    [now_us // 1000, float(total), float(pnl["realized"] or 0), float(pnl["fees"] or 0),
                     float(core.ledger.exposure(strategy, core.marks))])

    # ------------------------------------------------------------------ strategy processes
    def _boot(self, lane: Lane, endpoint: str, link: str) -> dict[str, Any]:
        d = self.config.daemon
        args = {**lane.spec.args, "virtual": {"endpoint": endpoint, "token": lane.token}, "state_wait": 3600.0}
        return {"name": lane.name, "kind": "strategy", "gen": 1, "nonce": secrets.token_hex(8),
                "supervisor_pid": os.getpid(), "supervisor_start": None, "entry": lane.spec.entry, "args": args,
                "link_endpoint": link, "config_path": str(d.config_path), "run_dir": str(self.out_dir),
                "state_dir": str(self.out_dir / "state"), "log_dir": str(self.out_dir / "logs"),
                "log_level": d.log_level, "log_max_bytes": d.log_max_bytes, "log_backups": 1,
                "heartbeat_interval": d.heartbeat_interval, "python_path": list(d.python_path),
                "log_stderr": self.log_stderr}

    def _link_messages(self) -> None:
        while True:
            try:
                ident, frame = self.link.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            who = protocol.parse_link_identity(ident)
            msg = protocol.parse_link_message(frame)
            lane = self.lanes.get(who[0]) if who else None
            if lane is None or msg is None:
                continue
            if msg["t"] == protocol.LINK_READY:
                lane.ready = True
            elif msg["t"] == protocol.LINK_STATUS:
                lane.status = {k: msg.get(k) for k in ("phase", "summary")}
            elif msg["t"] == protocol.LINK_EXIT:
                lane.error = str(msg.get("error") or "")

    def _exited(self, lane: Lane) -> bool:
        if lane.proc is None or lane.state == "done":
            return True
        code = lane.proc.poll()
        if code is None:
            return False
        self._link_messages()
        # Its last words (why it exited) were sent before it exited, but ZeroMQ delivers them on its own
        # thread: a failed strategy's reason must not lose the race with its exit (a loaded machine did).
        deadline = time.monotonic() + EXIT_WORDS_S
        while code != 0 and not lane.error and time.monotonic() < deadline:
            if self.link.poll(50):
                self._link_messages()
        lane.exit_code, lane.state = code, "done"
        lane.proc.close()
        if code != 0 and not lane.error:
            lane.error = f"exited with code {code}"
        self.log.info("backtest_strategy_exit", strategy=lane.name, code=code, error=lane.error)
        return True

    def _recv(self, lane: Lane) -> dict[str, Any] | None:
        """The next request of ``lane`` (others wait in their own sockets); None once its process is gone."""
        end = 0.0
        while True:
            parts = self._take(lane)
            if parts is not None:
                break
            conn = lane.conn
            if self.spent:
                self.spent.clear()  # the records committed the short way are freed while it computes
                continue
            if conn is not None and not conn.closed and not end and not lane.tried and lane.batch is not None:
                self._speculate(lane)  # the batch after the one it works on (see "speculating")
                continue
            if conn is not None and not conn.closed and not end:
                # While the strategy works on what it was handed, read and decode the records after it (the
                # two processes would otherwise take turns: this is the replayer's share of the next batch)
                cursor = getattr(self, "cursor", None)
                while cursor is not None and not conn.readable(0) and cursor.prefetch():
                    pass
                if conn.readable(0.05):
                    conn.fill()  # the common case: the answer is here within microseconds
                    continue
            if not end:
                end = time.monotonic() + REAL_TIMEOUT_S
            if self._exited(lane):
                return None
            if time.monotonic() > end:
                lane.error = f"hung: computed for {REAL_TIMEOUT_S:.0f} s of real time without waiting"
                lane.proc.signal_group(9)
                continue
            waiting_on = conn.fileno() if conn is not None and not conn.closed else self.listener.fileno()
            poller = zmq.Poller()
            for fd in (waiting_on, self.link, lane.proc.sentinel):
                poller.register(fd, zmq.POLLIN)
            events = dict(poller.poll(200))
            if self.link in events:
                self._link_messages()
            if waiting_on in events:
                if conn is None or conn.closed:
                    self._accept()
                else:
                    conn.fill()
        if len(parts) != 1:  # a request is one part; anything else is answered as a bad request
            return {"op": "bad"}
        try:
            msg = orjson.loads(parts[0])
        except orjson.JSONDecodeError:
            return {"op": "bad"}
        return msg if isinstance(msg, dict) else {"op": "bad"}

    def _take(self, lane: Lane) -> list[bytes] | None:
        if lane.conn is None:
            return None
        try:
            return lane.conn.take()
        except framing.BadFrame as exc:  # not this link's framing: the strategy is cut off (and then exits)
            lane.bad_requests += 1
            self.log.warning("backtest_bad_link", strategy=lane.name, error=str(exc))
            lane.conn.close()
            return None

    def _accept(self) -> None:
        """A strategy process connecting: its first message is its name and the token it was launched with."""
        sock, _ = self.listener.accept()
        conn = framing.Link(sock)
        deadline = time.monotonic() + HELLO_S
        try:
            while (hello := conn.recv(0.2)) is None and not conn.closed and time.monotonic() < deadline:
                pass
        except framing.BadFrame:
            hello = None
        lane = self.lanes.get(hello[0].decode(errors="replace")) if hello and len(hello) == 2 else None
        if lane is not None and not hmac.compare_digest(hello[1], lane.token.encode()):  # type: ignore[index]
            lane = None  # its name, not its token: not its process
        if lane is None or lane.conn is not None:
            self.log.warning("backtest_link_refused", said=repr(hello[0][:40]) if hello else None)
            conn.close()
            return
        lane.conn = conn

    def _send(self, lane: Lane, parts: list[bytes]) -> None:
        if lane.conn is None or lane.conn.closed:
            return
        try:
            lane.conn.send(parts)
        except OSError:  # it is gone: its exit is noticed where it is waited for
            lane.conn.close()

    def _reply(self, lane: Lane, doc: dict[str, Any]) -> None:
        self._send(lane, [orjson.dumps(doc)])

    def _late(self, lane: Lane, due_us: int, what: str) -> None:
        """A strategy must wake exactly when it asked to: anything later means it decides on data it would
        not yet have had live, or misses data it would have had. Counted per strategy and logged."""
        now_us = int(clock.now() * 1e6)
        if now_us > due_us:
            lane.late_wakes += 1
            self.log.warning("backtest_late_wake", strategy=lane.name, what=what, late_us=now_us - due_us)

    def _step(self, lane: Lane, stop: bool = False) -> None:
        if not stop and lane.until_us is not None:
            self._late(lane, lane.until_us, "timer")
        self._wake(lane, stop)
        self._serve(lane)

    def _wake(self, lane: Lane, stop: bool = False) -> None:
        """Send ``lane`` what it was given while it waited (its step); when it waited on data, the frames
        after it too, ahead of time (``_ahead``): the step and the next run ahead in one message."""
        frames, lane.buffer = lane.buffer, []
        lane.buffered_report = lane.buffered_wake = False
        lane.steps += 1
        self.delivered += len(frames)
        head: dict[str, Any] = {"t": round(clock.now() * 1000, 3), "stop": stop}
        blob = None if stop or not self._may_run_ahead(lane) else self._ahead(lane, int(clock.now() * 1e6))
        if blob is None:
            self._send(lane, [orjson.dumps(head), *frames])
        else:
            head.update(ahead=True, lead=len(frames))
            self._send(lane, [orjson.dumps(head), *frames, blob])
        lane.state = "running"

    def _ready_to_wake(self, lane: Lane, now_us: int) -> bool:
        return (lane.until_us is not None and lane.until_us <= now_us) or lane.buffered_wake or \
            (lane.reports and lane.buffered_report)

    def _serve(self, lane: Lane) -> None:
        """Answer ``lane`` until it waits again (or exits): one strategy at a time. A request that cannot be
        carried out (a strategy sending garbage on its link) is answered with the reason and counted; the
        replay goes on."""
        while True:
            msg = self._recv(lane)
            if msg is None:
                return
            try:
                if self._handle(lane, msg):
                    return
            except (ValueError, TypeError, KeyError, AttributeError, OverflowError, UnicodeError) as exc:
                lane.bad_requests += 1
                self.log.warning("backtest_bad_request", strategy=lane.name, error=f"{type(exc).__name__}: {exc}")
                if msg.get("op") != "signal":  # a signal is never answered (the strategy does not wait for it)
                    self._reply(lane, {"ok": False, "error": f"bad request: {type(exc).__name__}"})

    def _handle(self, lane: Lane, msg: dict[str, Any]) -> bool:
        """One request of ``lane``; True once it waits (idle)."""
        op = msg.get("op")
        if op == "idle" and self._hand_speculated(lane, msg):
            return False
        if lane.ahead:
            self._commit_ahead(lane, _count(msg.get("consumed"), 0))
        lane.batch = None
        now_us = int(clock.now() * 1e6)
        for frame in _list(msg.get("signals")):  # emitted before this request, at this instant: carried out first
            self._signal(lane, frame, now_us)
        if op == "hello":
            self._late(lane, lane.start_us, "start")
            self._reply(lane, {"t": round(clock.now() * 1000, 3)})
            acct = self.accounts.get(lane.account or "")
            if acct is not None and lane.name in acct.strategies:
                acct.publish_state(lane.name)  # its state first, as a live executor sends on subscription
        elif op in ("sub", "unsub"):
            prefixes = [p.encode() for p in _list(msg.get("prefixes")) if isinstance(p, str)]
            if op == "sub":
                lane.prefixes += [p for p in prefixes if p not in lane.prefixes]
            else:
                lane.prefixes = [p for p in lane.prefixes if p not in prefixes]
            self.routes.clear()
            self._reply(lane, {"ok": True})
        elif op == "snap":
            self._reply(lane, self._snap(str(msg.get("topic"))))
        elif op == "history":
            self._reply(lane, self._history(str(msg.get("topic")), _count(msg.get("limit"), 200)))
        elif op == "flush":  # not answered: it only carried signals (a strategy's last ones, on its way out)
            pass
        elif op == "idle":
            lane.until_us, lane.wake_any, lane.wake, lane.reports = _wait(msg)
            lane.buffered_wake = any(lane.wake_any or f[1:f.find(b" ")] in lane.wake
                                     for f in lane.buffer if f[:1] == b"m")
            if self._ready_to_wake(lane, now_us) or (lane.until_us is None and not lane.wake_any and
                                                     not lane.wake and not lane.reports):
                self._wake(lane)
                return False
            if not lane.buffer and self._may_run_ahead(lane):
                blob = self._ahead(lane, now_us)
                if blob is not None:
                    lane.steps += 1
                    self._send(lane, [orjson.dumps({"t": round(clock.now() * 1000, 3), "stop": False, "ahead": True}),
                                      blob])
                    lane.state = "running"
                    return False
            lane.state = "idle"
            return True
        else:
            lane.bad_requests += 1
            self._reply(lane, {"ok": False, "error": f"unknown request {str(op)[:40]!r}"})
        return False

    # ------------------------------------------------------------------ running ahead
    def _may_run_ahead(self, lane: Lane) -> bool:
        """Its (last) wait was on data only: frames handed over ahead are what it is waiting for."""
        return self.run_ahead and not lane.reports and bool(lane.wake or lane.wake_any)

    def _ahead(self, lane: Lane, now_us: int) -> bytes | None:
        """The coming frames for ``lane`` (``_scan``, or the batch scanned while it computed, if it holds),
        handed over: packed, or None when fewer than two."""
        cut = self._cut(lane, now_us, lane.until_us)
        if cut is None:
            return None
        batch = self._speculated_prefix(lane, self.cursor.n, cut, lane.ahead_size)
        if batch is None:
            batch = self._scan(lane, self.cursor.n, cut, lane.ahead_size)
            if batch is None:
                return None
        else:
            lane.speculated_steps += 1
        self._hand(lane, batch)
        return batch.blob

    def _hand(self, lane: Lane, batch: Batch) -> None:
        lane.ahead, lane.batch, lane.rest, lane.tried = batch.ordinals, batch, None, False
        lane.ahead_steps += 1
        self.delivered += len(batch.ordinals)

    def _cut(self, lane: Lane, now_us: int, until_us: int | None) -> int | None:
        """Where a run ahead of ``lane`` must stop: the next timer or report, another strategy's wake, start
        or stop, the window's end (None: another strategy is due now, and is stepped first)."""
        cut = self.t_to_us
        if self.heap:
            cut = min(cut, self.heap[0][0])
        for other in self.lanes.values():
            if other is not lane and other.state == "idle" and self._ready_to_wake(other, now_us):
                return None
            if other.state == "idle" and other.until_us is not None and other is not lane:
                cut = min(cut, other.until_us)
            elif other.state == "new":  # a strategy starting later (parity) starts on time
                cut = min(cut, other.start_us)
            if other.stop_us is not None and other.state != "done":  # ... and one stopping earlier stops on time
                cut = min(cut, other.stop_us)
        if until_us is not None:
            cut = min(cut, until_us)
        return cut

    def _verdict(self, topic: bytes, lane: Lane) -> int:
        """0: a frame of ``topic`` is skipped by ``lane``'s run ahead, 1: handed over, 2: the run stops before it."""
        return 2 if self._matters(topic, lane) else 1 if lane in self._route(topic) else 0

    def _scan(self, lane: Lane, start: int, cut: int, want: int) -> Batch | None:
        """The frames for ``lane`` from the record with ordinal ``start`` on, before ``cut`` (``_cut``), at
        most ``want``, to apply one by one at their own instants up to the one that ends its wait (None when
        fewer than two). It stops before a frame that could matter to the order of events: one of a market
        where an account has a working order, or one another waiting strategy wakes on. The strategy itself
        stops at its own timer and gives back what it did not apply; an emit gives back the rest. A scan
        changes nothing (``_speculate`` relies on it)."""
        frames: list[bytes] = []
        ordinals: list[int] = []
        times: list[int] = []
        offsets = [0]
        # Nothing that decides whether a frame matters or reaches this strategy changes during the scan
        # (no frame is replayed yet): decided once per topic, not once per frame.
        verdict: dict[bytes, int] = {}
        cursor = self.cursor
        buf, n0, pack, frame_type, size = cursor.buf, cursor.n, RUN_AHEAD.pack, segments.T_FRAME, RUN_AHEAD.size
        i, scanning, first_other, end = start - n0, True, NEVER, 0
        while scanning:
            if i >= len(buf):
                cursor.peek(i + PREFETCH_STEP - 1)
                if i >= len(buf):
                    break
            for rec in itertools.islice(buf, i, None):  # the look-ahead in place (indexing a deque walks it)
                if rec.recv_us >= cut:
                    scanning = False
                    break
                if rec.type == frame_type:
                    data = rec.data
                    topic = data[:data.find(b" ")]
                    v = verdict.get(topic)
                    if v is None:
                        v = verdict[topic] = self._verdict(topic, lane)
                    if v == 2:
                        scanning = False
                        break
                    if v:
                        frames.append(pack(rec.recv_us, len(data)))
                        frames.append(data)
                        ordinals.append(n0 + i)
                        times.append(rec.recv_us)
                        end += size + len(data)
                        offsets.append(end)
                        if len(ordinals) >= want:
                            scanning = False
                            break
                elif first_other == NEVER:
                    first_other = n0 + i
                i += 1
        if len(ordinals) < 2:
            return None
        return Batch(start, b"".join(frames), ordinals, times, offsets, verdict, first_other)

    # ------------------------------------------------------------------ speculating
    # A strategy running ahead frame after frame (``updates``) asks for the next batch only once it applied
    # the one it holds; scanning that batch only then made the two processes take turns. So while it
    # computes, the replayer scans the batch after the one it holds (``_speculate``), past any cut (the next
    # second's state report, say: where it will stop is only known then). When its moment comes, what of it
    # is a prefix of what ``_scan`` would give then is handed over (``_speculated_prefix``): a scan changes
    # nothing and reads only the data, the cut and each topic's verdict, so it is such a prefix when it began
    # no later, is taken before the cut of that moment and every topic's verdict, taken again then, is the
    # one it had. When the strategy asks having applied all it held, said nothing and waits on the same data,
    # and committing that moves nothing a scan reads (only frames an account or a snapshot merely keeps,
    # ``_commits_short``), the next batch is handed over at once and the last committed while the strategy
    # works on it (``_hand_speculated``). The same frames reach the strategy at the same instants
    # (tests/backtest compare the journals); only who waits for whom changes.
    def _speculate(self, lane: Lane) -> None:
        batch, lane.tried = lane.batch, True
        if batch is None or not self._may_run_ahead(lane):
            return
        after, spec = batch.ordinals[-1] + 1, lane.speculated
        want = _ahead_size(len(batch.ordinals), len(batch.ordinals))  # its size once this one is all used
        if spec is not None and spec.start <= after and \
                len(spec.ordinals) - bisect.bisect_left(spec.ordinals, after) >= want:
            return  # the rest of the last one still covers what comes next
        lane.speculated = self._scan(lane, after, self.t_to_us, want)

    def _speculated_prefix(self, lane: Lane, start: int, cut: int, want: int) -> Batch | None:
        """What was scanned ahead for ``lane`` from ``start`` on, if it holds (see above): the frames it gave
        back of its last run ahead (an emit), followed by the scan made while it computed."""
        spec, rest = lane.speculated, lane.rest
        if rest is not None and rest.ordinals[-1] >= start:
            spec = rest if spec is None else rest.then(spec) or rest
        if spec is None or spec.start > start or any(self._verdict(t, lane) != v for t, v in spec.verdict.items()):
            return None
        return spec.prefix(start, cut, want)

    def _commits_short(self, lane: Lane, batch: Batch, last: int) -> Keepers | None:
        """When committing ``lane``'s run ahead up to ordinal ``last`` only keeps frames, what keeps each
        topic's (``_keepers``); else None."""
        if batch.first_other <= last:
            return None
        out = {}
        for topic in batch.verdict:
            how = self._keepers(topic, lane)
            if how is None:
                return None
            out[topic] = how
        return out

    def _hand_speculated(self, lane: Lane, msg: dict[str, Any]) -> bool:
        """Hand over the batch scanned while ``lane`` computed, if it holds (see above); True if it was."""
        batch = lane.batch
        if batch is None or lane.speculated is None or lane.buffer or msg.get("signals") or \
                msg.get("dropped") != 0 or msg.get("consumed") != len(batch.ordinals):
            return False
        until_us, wake_any, wake, reports = _wait(msg)
        last = batch.ordinals[-1]
        if (wake_any, wake, reports) != (lane.wake_any, lane.wake, lane.reports) or \
                self._commits_short(lane, batch, last) is None:
            return False
        vc = clock.virtual()
        assert vc is not None
        now_s = max(vc.t, batch.last_us / 1e6)  # the instant once it is committed, as _handle reads it
        now_us = int(now_s * 1e6)
        if until_us is not None and until_us <= now_us:
            return False  # its timer is due: it is stepped, not run ahead
        cut = self._cut(lane, now_us, until_us)
        size = _ahead_size(len(batch.ordinals), len(batch.ordinals))  # its run-ahead size once committed
        nxt = None if cut is None else self._speculated_prefix(lane, last + 1, cut, size)
        if nxt is None:
            return False
        lane.until_us, lane.wake_any, lane.wake, lane.reports = until_us, wake_any, wake, reports
        lane.steps += 1
        lane.speculated_steps += 1
        lane.speculated_hits += 1
        self._send(lane, [orjson.dumps({"t": round(now_s * 1000, 3), "stop": False, "ahead": True}), nxt.blob])
        lane.state = "running"
        self._commit_ahead(lane, len(batch.ordinals))
        self._hand(lane, nxt)
        return True

    def _channel(self, topic: bytes) -> tuple[tuple[str, str, str], bytes] | None:
        """A market-data topic's market key and channel, parsed once (None for what is not md.EX.MKT.SYM.CH)."""
        try:
            return self.channels[topic]
        except KeyError:
            parts = topic.split(b".")
            info = self.channels[topic] = ((parts[1].decode(), parts[2].decode(), parts[3].decode()), parts[4]) \
                if len(parts) >= 5 else None
            return info

    def _matters(self, topic: bytes, lane: Lane) -> bool:
        """Would this frame, replayed one by one, wake another strategy or move an account?"""
        info = self._channel(topic)
        if info is None:
            return False
        key = info[0]
        for acct in self.accounts.values():
            if acct.follows(key) and acct._working_on(key):
                return True
        for other in self._route(topic):
            if other is not lane and other.state == "idle" and (other.wake_any or topic in other.wake):
                return True
        return False

    def _keepers(self, topic: bytes, lane: Lane) -> tuple[tuple[str, str, str] | None, list[Account]] | None:
        """When replaying a frame of ``topic`` (during ``lane``'s commit) can only keep it: no other strategy
        takes it, it is no candle (closed candles feed history) and every account following its market keeps
        it as that market's raw book (a book, no working order there). Then its market and those accounts,
        else None (it needs the whole replay, ``_frame``)."""
        if b".kline." in topic or any(other is not lane and other.state != "done" for other in self._route(topic)):
            return None
        info = self._channel(topic)
        if info is None:
            return None, []
        key, channel = info
        followers = [a for a in self.accounts.values() if a.follows(key)]
        if followers and (channel != b"book" or any(a._working_on(key) for a in followers)):
            return None
        return key, followers

    def _commit_ahead(self, lane: Lane, consumed: int) -> None:
        """Make the timeline catch up with a strategy that ran ahead: every record up to the last frame it
        applied is replayed (accounts, other strategies) as if stepped one by one; what it gave back is
        handed over again in order later.

        Most frames only need keeping: one no other strategy takes, of a market no account follows or a book
        an account keeps raw (``Account.market_frame``: no working order there), leaves the newest frame of
        its topic for snapshots (unless it is a stale notice) and the account's raw book. Those effects are
        made in place, in order; every other record goes through ``_frame``, at its own instant, as stepping
        would have (``tests/backtest``: the journals are the same with and without running ahead)."""
        held, lane.ahead = lane.ahead, []
        if lane.batch is not None and lane.batch.ordinals is held and consumed < len(held):
            lane.rest = lane.batch  # what it gives back is handed over again from its scan (_speculated_prefix)
        lane.ahead_size = _ahead_size(consumed, len(held))
        if consumed <= 0:
            return
        last = held[min(consumed, len(held)) - 1]
        vc = clock.virtual()
        assert vc is not None
        batch = lane.batch
        keepers = self._commits_short(lane, batch, last) if batch is not None and batch.ordinals is held else None
        if keepers is not None:
            self._commit_short(lane, last, vc, keepers)
            return
        given = set(held[:consumed])
        cursor, latest = self.cursor, self.latest
        buf, n0, frame_type, short, t_us = cursor.buf, cursor.n, segments.T_FRAME, 0, None
        # topic -> the accounts whose raw book it is (None: it needs the whole replay). Only a whole replay
        # can change who follows a market or has an order there, so this is forgotten after each one.
        keep: dict[bytes, tuple[tuple[str, str, str] | None, list[Account]] | None] = {}
        for n in range(n0, last + 1):
            rec = buf.popleft()
            if rec.type == frame_type:
                data = rec.data
                topic = data[:data.find(b" ")]
                try:
                    how = keep[topic]
                except KeyError:
                    how = keep[topic] = self._keepers(topic, lane)
                if how is not None:
                    key, books = how
                    for acct in books:
                        acct.raw_books[key] = data  # type: ignore[index]
                    if STALE not in data:
                        latest[topic] = data
                    short += 1
                    t_us = rec.recv_us
                    continue
            cursor.n = n + 1
            self.records += short
            lane.short_frames += short
            short, t_us = 0, None
            vc.advance_to(rec.recv_us / 1e6)
            self._frame(rec, lane if n in given else None)
            keep.clear()
        cursor.n = last + 1
        self.records += short
        lane.short_frames += short
        if t_us is not None:
            vc.advance_to(t_us / 1e6)

    def _commit_short(self, lane: Lane, last: int, vc: clock.VirtualClock, keepers: Keepers) -> None:
        """``_commit_ahead`` when every record up to ``last`` is a frame that is only kept: what stays of them
        is each topic's newest frame (the accounts' raw book) and newest frame that is no stale notice (for
        snapshots), so only those are looked for, from the end; with several topics, the raw books are kept
        in the order the frames first came (an account applies them in that order)."""
        cursor, latest = self.cursor, self.latest
        buf, k = cursor.buf, last + 1 - cursor.n
        popleft = buf.popleft
        done = [popleft() for _ in range(k)]
        newest: dict[bytes, bytes] = {}
        fresh: dict[bytes, bytes] = {}
        topics = len(keepers)
        for rec in reversed(done):
            data = rec.data
            topic = data[:data.find(b" ")]
            if topic not in newest:
                newest[topic] = data
            if topic not in fresh and STALE not in data:
                fresh[topic] = data
                if len(fresh) == topics:
                    break
        self.spent.append(done)  # freeing a thousand records is itself a third of a commit: done in _recv
        t_us = done[-1].recv_us
        if len(newest) > 1:
            first: dict[bytes, None] = {}
            for rec in done:
                first.setdefault(rec.data[:rec.data.find(b" ")])
                if len(first) == len(newest):
                    break
            newest = {topic: newest[topic] for topic in first}
        for topic, data in newest.items():
            key, books = keepers[topic]
            for acct in books:
                acct.raw_books[key] = data  # type: ignore[index]
        for topic, data in fresh.items():
            latest[topic] = data
        cursor.n = last + 1
        self.records += k
        lane.short_frames += k
        vc.advance_to(t_us / 1e6)

    def _signal(self, lane: Lane, frame: Any, now_us: int) -> None:
        lane.signals += 1
        msg = protocol.loads_dict(frame.encode()) if isinstance(frame, str) else None
        if msg is not None:
            msg["strategy"] = lane.name  # who sent it is the connection, never the frame's say-so
        acct = self.accounts.get(lane.account or "")
        if acct is None:
            sid = msg.get("id") if msg else None
            self.deliver_report(lane.name, _rejection(lane.name, sid, "no executor is configured for this strategy"))
            return
        self.push(now_us + self.entry_us, EV_SIGNAL, (acct, msg))

    # ------------------------------------------------------------------ the run
    def _data(self) -> Iterator[Record]:
        return store.replay(self.root, self.t_from_us - self.warmup_us, self.t_to_us + SETTLE_US)

    def run(self) -> Result:
        from wispd.supervisor.launcher import Launcher

        t0, cpu0 = time.monotonic(), time.process_time()
        self.out_dir.mkdir(parents=True, exist_ok=True)
        clock.install(clock.VirtualClock((self.t_from_us - self.warmup_us) / 1e6))
        data = self._data()
        pending: Record | None = None
        for rec in data:  # warm-up: history and snapshots, before any strategy runs
            if rec.recv_us >= self.t_from_us:
                pending = rec
                break
            clock.virtual().advance_to(rec.recv_us / 1e6)  # type: ignore[union-attr]
            self._observe(rec)
        clock.virtual().advance_to(self.t_from_us / 1e6)  # type: ignore[union-attr]
        executors = {c.args["account"]: c for c in self.config.children if c.kind == "executor"}
        for account in sorted({lane.account for lane in self.lanes.values() if lane.account}):
            spec = executors.get(account)
            if spec is None:
                continue
            args = {**spec.args, "strategies": {k: v for k, v in (spec.args.get("strategies") or {}).items()
                                                if k in self.lanes}}
            self.accounts[account] = Account(args, self.out_dir / f"journal-{account}.sqlite", self.rules,
                                             self.latest_book, self.deliver_report, self.log, self.paper_latency_ms)
        zctx = zmq.Context()
        endpoint, link = str(self.out_dir / "replay.sock"), f"ipc://{self.out_dir}/link.sock"
        (self.out_dir / "replay.sock").unlink(missing_ok=True)
        self.listener = framing.listen(endpoint)
        self.link = zctx.socket(zmq.ROUTER)
        self.link.bind(link)
        launcher = Launcher()
        try:
            for lane in self.lanes.values():
                lane.proc = launcher.start(self._boot(lane, endpoint, link))
            self.push(self.t_from_us + self.state_us, EV_PERIODIC, None)
            self.cursor = Cursor(data, pending)
            for lane in self.lanes.values():
                if lane.start_us <= self.t_from_us:
                    self._serve(lane)
            self._loop()
            self._finish()
        finally:
            for lane in self.lanes.values():
                if lane.proc is not None and lane.state != "done":
                    lane.proc.signal_group(9)
                    deadline = time.monotonic() + 5
                    while lane.proc.poll() is None and time.monotonic() < deadline:
                        time.sleep(0.01)
                    lane.state = "done"
            launcher.close()
            for acct in self.accounts.values():
                acct.close()
            for lane in self.lanes.values():
                if lane.conn is not None:
                    lane.conn.close()
            self.listener.close()
            self.link.close(0)
            zctx.term()
            for name in ("replay.sock", "link.sock"):
                (self.out_dir / name).unlink(missing_ok=True)
            clock.install(None)
        result = Result(self.out_dir, self.t_from_us, self.t_to_us, self.records, self.gaps, time.monotonic() - t0,
                        cpu_s=time.process_time() - cpu0,
                        accounts={a: str(x.journal.path) for a, x in self.accounts.items()},
                        events_to_strategies=self.delivered, samples=self.samples)
        for lane in self.lanes.values():
            result.lanes[lane.name] = {"exit_code": lane.exit_code, "error": lane.error, "signals": lane.signals,
                                       "steps": lane.steps, "ahead_steps": lane.ahead_steps,
                                       "short_frames": lane.short_frames,
                                       "speculated_steps": lane.speculated_steps, "speculated_hits": lane.speculated_hits,
                                       "bad_requests": lane.bad_requests,
                                       "late_wakes": lane.late_wakes, "account": lane.account, "ready": lane.ready,
                                       "status": lane.status}
        return result

    def _loop(self) -> None:
        vc = clock.virtual()
        assert vc is not None
        while any(lane.state != "done" for lane in self.lanes.values()):
            nxt = self.cursor.peek()
            t_data = nxt.recv_us if nxt is not None and nxt.recv_us < self.t_to_us else None
            t_event = self.heap[0][0] if self.heap else None
            waits = [lane.until_us for lane in self.lanes.values() if lane.state == "idle" and lane.until_us is not None]
            waits += [lane.start_us for lane in self.lanes.values() if lane.state == "new"]
            waits += [lane.stop_us for lane in self.lanes.values() if lane.state == "idle" and lane.stop_us is not None]
            t_wake = min(waits) if waits else None
            candidates = [t for t in (t_data, t_event, t_wake) if t is not None]
            if not candidates:
                return
            t = min(candidates)
            if t >= self.t_to_us:
                return
            vc.advance_to(t / 1e6)
            if t_data == t:
                self._frame(self.cursor.pop())
            elif t_event == t:
                _, kind, _, payload = heapq.heappop(self.heap)
                self._event(kind, payload)
            for lane in self.lanes.values():
                if lane.state == "idle" and lane.stop_us is not None and lane.stop_us <= t:
                    self._step(lane, stop=True)  # its live session ended here (parity)
                elif lane.state == "idle" and self._ready_to_wake(lane, t):
                    self._step(lane)
                elif lane.state == "new" and lane.start_us <= t:
                    self._serve(lane)  # a strategy that starts later (parity: when the live one did)

    def _finish(self) -> None:
        """The data is over (or the window ends): each strategy is told to stop, runs on_stop, exits; what it
        sent on the way out is carried out."""
        vc = clock.virtual()
        assert vc is not None
        for lane in self.lanes.values():
            if lane.state == "new":  # it would have started after the window: it starts and stops at once
                self._serve(lane)
            if lane.state == "idle":
                self._step(lane, stop=True)
        # What was in flight at the window's end (a signal on its way, an order inside its latency) completes
        # as it would have live: against the data that followed (to the accounts only; the strategies are
        # gone), up to the last such event and at most SETTLE_US on.
        while self.heap:
            t, kind, _, payload = heapq.heappop(self.heap)
            if kind == EV_PERIODIC:
                continue
            while (nxt := self.cursor.peek()) is not None and nxt.recv_us < min(t, self.t_to_us + SETTLE_US):
                vc.advance_to(nxt.recv_us / 1e6)
                self._frame(self.cursor.pop())
            vc.advance_to(t / 1e6)
            self._event(kind, payload)
        for acct in self.accounts.values():
            acct.settle()
        self.next_sample_us = 0
        self._sample()  # the final state, whatever the sampling period


def _ahead_size(consumed: int, held: int) -> int:
    """The next hand-over's size, by how much of the last one was used: all of it, twice as many; stopped
    part-way (it acted), a little more than it used (a strategy acting every 50 updates gets ~80, not
    thousands it gives back)."""
    grow = 2 * consumed if consumed >= held else consumed + consumed // 4 + AHEAD_MIN
    return max(AHEAD_MIN, min(AHEAD_MAX, grow))


def _wait(msg: dict[str, Any]) -> tuple[int | None, bool, frozenset[bytes], bool]:
    """An ``idle`` request's wait: until (us, or None), on any frame, on these topics, on reports."""
    until = msg.get("until")
    wake = [w for w in _list(msg.get("wake")) if isinstance(w, str)]
    return (int(until * 1000) if isinstance(until, int | float) and math.isfinite(until) else None, "*" in wake,
            frozenset(w.encode() for w in wake if w != "*"), bool(msg.get("reports")))


def _count(value: Any, default: int) -> int:
    return value if type(value) is int and 0 <= value < 1 << 31 else default


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _rejection(strategy: str, signal_id: Any, why: str) -> bytes:
    from wispd.execution.reports import report_frame

    return report_frame("backtest", 0, strategy, "report", {"signal_id": str(signal_id or ""), "status": "rejected",
                                                            "reason": why, "code": "no_executor", "order": None,
                                                            "action": None})
