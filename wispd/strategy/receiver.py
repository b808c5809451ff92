"""The strategy process's background receiver: the only code that touches market-data sockets.

One thread with its own ZeroMQ context: a SUB and a snapshot DEALER per exchange, and a SUB for the
account executor's reports. Strategy code asks for things (watch a pair, fetch candle history) through a
command queue and waits on events; it never touches a socket.

- Books and tickers are conflated: of everything queued for one topic, only the newest is decoded, so a
  slow strategy acts on the current book, not one 0.35 s old.
- Trades and klines are never conflated; sequence gaps are counted, and a kline gap or an ingestor restart
  (epoch change) re-fetches the candle history, so the cache is whole again.
- Malformed frames are dropped and counted, never raised.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from bisect import bisect_left
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import orjson
import zmq

from wispd import protocol
from wispd.auth import Credentials
from wispd.metrics.registry import LATENCY_BUCKETS, Registry, labels_key
from wispd.strategy.cache import MarketCache, kline_from
from wispd.strategy.signals import Handle, Report
from wispd.strategy.types import Order, Position
from wispd.transport import limits

CONFLATED = (b".book", b".ticker")
WORKING = ("armed", "accepted", "open", "partially_filled", "intent")
ENDED_KEPT = 1000  # finished orders kept in the cache (for lookups by client id)
MAX_FRAME = 16 * 1024 * 1024  # from our own ingestors and executor: a bound, not a limit anyone reaches
TOPIC_CACHE = 10_000  # parsed topics kept (a strategy watches tens; a flood of odd topics cannot grow it)
KINDS_MD = frozenset(protocol.KINDS_MD)
SCHEMA_VERSION = protocol.SCHEMA_VERSION
LAG_SAMPLE_MASK = 15  # the lag histogram samples one message in 16: a distribution, not a census


class Receiver(threading.Thread):
    def __init__(self, strategy: str, exchanges: dict[str, dict[str, str]], reports_endpoint: str | None,
                 cache: MarketCache, log: Any, credentials: Credentials | None = None) -> None:
        super().__init__(name="wispd-receiver", daemon=True)
        self.strategy, self.exchanges, self.cache, self.log = strategy, exchanges, cache, log
        self.reports_endpoint = reports_endpoint
        self.credentials = credentials or Credentials()
        self.commands: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.handles: dict[str, Handle] = {}
        self.handles_lock = threading.Lock()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        self._stopping = threading.Event()
        self._pending: dict[str, Callable[[dict[str, Any]], None]] = {}
        self.subscriptions: dict[str, set[bytes]] = {name: set() for name in exchanges}
        self.error: BaseException | None = None
        self._lag: dict[bytes, list[Any]] = {}  # per topic: bucket counts, sum, count (labelled once a second)
        self._n = 0
        self._topics: dict[bytes, protocol.Topic] = {}
        self.prom: dict[str, Any] = {}  # the latest metrics snapshot, swapped in whole once a second
        self._next_snapshot = 0.0

    # ------------------------------------------------------------------ API for the strategy thread
    def submit(self, op: str, **args: Any) -> None:
        self.commands.put((op, args))
        if self._wake_w < 0:
            return  # closed: the thread is over and nothing waits to be woken
        try:
            os.write(self._wake_w, b"x")
        except BlockingIOError:
            pass

    def track(self, handle: Handle) -> None:
        with self.handles_lock:
            self.handles[handle.signal.id] = handle

    def stop(self) -> None:
        self._stopping.set()
        self.submit("noop")

    def close(self) -> None:
        """Release the wake pipe once the thread is over (or never ran). While the thread still runs it
        stays open: a closed descriptor number can be reused by the next file, and a wake-up written there
        would land in someone else's file."""
        if self.is_alive() or self._wake_w < 0:
            return
        for fd in (self._wake_r, self._wake_w):
            os.close(fd)
        self._wake_r = self._wake_w = -1

    # ------------------------------------------------------------------ thread
    def run(self) -> None:
        try:
            self._run()
        except BaseException as exc:  # noqa: BLE001 - surfaced to the strategy thread, which exits
            self.error = exc
            self.log.exception("receiver_crash")

    def _run(self) -> None:
        zctx = zmq.Context()
        self.subs: dict[str, zmq.Socket] = {}
        self.dealers: dict[str, zmq.Socket] = {}
        poller = zmq.Poller()
        owners: dict[zmq.Socket, str] = {}
        for name, eps in self.exchanges.items():
            sub = limits(zctx.socket(zmq.SUB), max_msg=MAX_FRAME, rcvhwm=100_000)
            self.credentials.client(sub, eps["pub"], plain=False)
            sub.connect(eps["pub"])
            dealer = limits(zctx.socket(zmq.DEALER), max_msg=MAX_FRAME)
            self.credentials.client(dealer, eps["snapshot"], plain=False)
            dealer.connect(eps["snapshot"])
            self.subs[name], self.dealers[name] = sub, dealer
            owners[sub] = owners[dealer] = name
            poller.register(sub, zmq.POLLIN)
            poller.register(dealer, zmq.POLLIN)
        reports = None
        if self.reports_endpoint:
            reports = limits(zctx.socket(zmq.SUB), max_msg=MAX_FRAME)
            self.credentials.client(reports, self.reports_endpoint)
            reports.setsockopt(zmq.SUBSCRIBE, f"exec.{self.strategy} ".encode())
            reports.connect(self.reports_endpoint)
            poller.register(reports, zmq.POLLIN)
        poller.register(self._wake_r, zmq.POLLIN)
        try:
            while not self._stopping.is_set():
                events = dict(poller.poll(500))
                if self._wake_r in events:
                    try:
                        while os.read(self._wake_r, 4096):
                            pass
                    except BlockingIOError:
                        pass
                self._commands()
                if time.monotonic() >= self._next_snapshot:
                    self._next_snapshot = time.monotonic() + 1.0
                    self.prom = self.snapshot()
                for sock in events:
                    if sock in self.subs.values():
                        self._market_data(owners[sock], sock)
                    elif sock in self.dealers.values():
                        self._replies(sock)
                    elif sock is reports:
                        self._reports(sock)
        finally:
            for sock in [*self.subs.values(), *self.dealers.values(), *([reports] if reports else [])]:
                sock.close()
            zctx.term()

    # ------------------------------------------------------------------ commands
    def _commands(self) -> None:
        while True:
            try:
                op, args = self.commands.get_nowait()
            except queue.Empty:
                return
            if op == "watch":
                self._subscribe(args["exchange"], args["prefixes"], True)
                for topic in args.get("snapshots", []):
                    self._request(args["exchange"], "snapshot", self._snapshot_handler(topic), topic=topic, wait=3.0)
            elif op == "unwatch":
                self._subscribe(args["exchange"], args["prefixes"], False)
            elif op == "history":
                self._history(args["exchange"], args["topic"], args["limit"], args.get("done"))

    def _subscribe(self, exchange: str, prefixes: list[bytes], on: bool) -> None:
        sub = self.subs[exchange]
        for prefix in prefixes:
            if on and prefix not in self.subscriptions[exchange]:
                sub.setsockopt(zmq.SUBSCRIBE, prefix)
                self.subscriptions[exchange].add(prefix)
            elif not on and prefix in self.subscriptions[exchange]:
                sub.setsockopt(zmq.UNSUBSCRIBE, prefix)
                self.subscriptions[exchange].discard(prefix)

    def _request(self, exchange: str, op: str, on_reply: Callable[[dict[str, Any]], None], **fields: Any) -> None:
        rid, frame = protocol.snap_request(op, **fields)
        self._pending[rid] = on_reply
        self.dealers[exchange].send(frame, zmq.NOBLOCK)

    def _history(self, exchange: str, topic: str, limit: int, done: threading.Event | None) -> None:
        key = topic.encode()

        def on_reply(reply: dict[str, Any]) -> None:
            if reply.get("ok"):
                klines = [k for k in (kline_from(c) for c in reply.get("candles") or []) if k is not None]
                self.cache.merge_klines(key, klines)
            else:
                self.log.warning("history_failed", topic=topic, error=reply.get("error"))
                if reply.get("code") == "unknown_symbol":
                    self.cache.errors[key] = str(reply.get("error"))
            if done is not None:
                done.set()
            self.cache.event(key).set()

        self._request(exchange, "history", on_reply, topic=topic, limit=limit)

    def _snapshot_handler(self, topic_name: str) -> Callable[[dict[str, Any]], None]:
        key = topic_name.encode()
        topic = protocol.parse_topic(key)

        def on_reply(reply: dict[str, Any]) -> None:
            env = reply.get("envelope")
            if reply.get("code") == "unknown_symbol":  # a typo: the strategy's watch_pair says so
                self.cache.errors[key] = str(reply.get("error"))
                self.cache.event(key).set()
                return
            if topic is None or not reply.get("ok") or not protocol.valid_envelope(env):
                return  # nothing published yet: the live stream fills the cache
            last = self.cache.last_seq.get(key)
            if last is None or last[0] != env["epoch"] or last[1] < env["seq"]:
                self.cache.last_seq[key] = (env["epoch"], env["seq"])
                self.cache.apply(key, topic, env)

        return on_reply

    def _replies(self, sock: zmq.Socket) -> None:
        while True:
            try:
                frame = sock.recv(zmq.NOBLOCK)
            except zmq.Again:
                return
            reply = protocol.loads_dict(frame)
            if reply is None:
                self.cache.dropped += 1
                continue
            handler = self._pending.pop(str(reply.get("id")), None)
            if handler is not None:
                handler(reply)

    # ------------------------------------------------------------------ market data
    def _market_data(self, exchange: str, sock: zmq.Socket) -> None:
        batch: list[bytes] = []
        for _ in range(5000):
            try:
                batch.append(sock.recv(zmq.NOBLOCK))
            except zmq.Again:
                break
        now_ms = time.time() * 1000
        newest: dict[bytes, int] = {}
        for i, frame in enumerate(batch):
            topic_bytes = frame.split(b" ", 1)[0]
            if topic_bytes.endswith(CONFLATED):
                newest[topic_bytes] = i
        for i, frame in enumerate(batch):
            topic_bytes = frame.split(b" ", 1)[0]
            if topic_bytes in newest and newest[topic_bytes] != i:
                continue  # an older book/ticker of this topic is in the same batch: conflated away
            self.ingest(frame, now_ms)

    def ingest(self, frame: bytes, now_ms: float | None = None) -> None:
        """Decode one market-data frame into the cache (the hot path: once per message, kept lean).

        The same checks as ``protocol.valid_envelope`` and the in-order case of ``MarketCache.sequence``,
        inlined: each field is read once, and a function call per check was a measurable share of a frame's
        cost (bench/fanout.py; tests/strategy/test_receiver.py holds both to their reference). A topic is
        parsed once and then looked up."""
        key, sep, payload = frame.partition(b" ")
        cache = self.cache
        topic = self._topics.get(key)
        if topic is None:
            topic = protocol.parse_topic(key) if sep and key.startswith(b"md.") else None
            if topic is None:
                cache.dropped += 1
                return
            if len(self._topics) < TOPIC_CACHE:
                self._topics[key] = topic
        try:
            env = orjson.loads(payload)
        except (orjson.JSONDecodeError, TypeError, ValueError):
            cache.dropped += 1
            return
        if type(env) is not dict:
            cache.dropped += 1
            return
        get = env.get
        kind, epoch, seq = get("kind"), get("epoch"), get("seq")
        if (get("v") != SCHEMA_VERSION or type(kind) is not str or kind not in KINDS_MD or type(seq) is not int
                or type(epoch) is not int or type(get("body")) is not dict):
            cache.dropped += 1
            return
        last = cache.last_seq.get(key)
        if last is not None and last[1] + 1 == seq and last[0] == epoch:
            cache.last_seq[key] = (epoch, seq)  # the next in order: what sequence() would answer "ok" to
        elif cache.sequence(key, topic.channel, epoch, seq) != "ok" and topic.interval is not None \
                and kind != "stale":
            self.log.info("kline_resync", topic=key.decode())
            self._history(topic.exchange, key.decode(), 500, None)
        cache.apply(key, topic, env)
        self._n += 1
        if now_ms is not None and not self._n & LAG_SAMPLE_MASK and type(ts_ingest := get("ts_ingest")) is float:
            lag = self._lag.get(key)
            if lag is None:
                lag = self._lag[key] = [[0] * (len(LATENCY_BUCKETS) + 1), 0.0, 0]
            seconds = max(0.0, now_ms - ts_ingest) / 1000
            lag[0][bisect_left(LATENCY_BUCKETS, seconds)] += 1
            lag[1] += seconds
            lag[2] += 1

    def snapshot(self) -> dict[str, Any]:
        """Cumulative counters by exchange and channel, plus the lag histogram (receiver thread only)."""
        reg = Registry()
        for key, (counts, total, n) in list(self._lag.items()):
            topic = protocol.parse_topic(key)
            if topic is None:
                continue
            lk = ("wispd_md_lag_seconds", labels_key({"exchange": topic.exchange,
                                                      "channel": topic.channel.split(".")[0]}))
            have = reg.hists.get(lk)
            if have is None:
                reg.hists[lk] = [LATENCY_BUCKETS, list(counts), total, n]
            else:
                have[1] = [a + b for a, b in zip(have[1], counts, strict=False)]
                have[2] += total
                have[3] += n
        for counts, name in ((dict(self.cache.received), "wispd_md_received_total"),
                             (dict(self.cache.gaps), "wispd_md_gaps_total")):
            for key, n in counts.items():
                topic = protocol.parse_topic(key)
                if topic is not None:
                    reg.inc(name, n, strategy=self.strategy, exchange=topic.exchange,
                            channel=topic.channel.split(".")[0])
        reg.inc("wispd_md_dropped_total", self.cache.dropped, strategy=self.strategy)
        reg.inc("wispd_md_resyncs_total", self.cache.resyncs, strategy=self.strategy)
        return reg.snapshot()

    # ------------------------------------------------------------------ execution reports
    def _reports(self, sock: zmq.Socket) -> None:
        while True:
            try:
                frame = sock.recv(zmq.NOBLOCK)
            except zmq.Again:
                return
            self.report_frame(frame)

    def report_frame(self, frame: bytes) -> None:
        """One frame of the executor's report stream (a report or a state) into the cache and handles."""
        _, _, payload = frame.partition(b" ")
        msg = protocol.loads_dict(payload)
        if msg is None or not isinstance(msg.get("body"), dict):
            self.cache.dropped += 1
            return
        if msg.get("kind") == "report":
            self._report(msg["body"])
        elif msg.get("kind") == "state":
            self._state(msg["body"])

    def _report(self, body: dict[str, Any]) -> None:
        order = body.get("order")
        if isinstance(order, dict) and _client_id(order):
            self.cache.orders[order["client_id"]] = order_from(order)
        with self.handles_lock:
            handle = self.handles.get(str(body.get("signal_id")))
        if handle is not None:
            status = str(body.get("status"))
            handle._resolve(Report(status, str(body.get("reason") or ""), [order] if order else [], body))

    def _state(self, body: dict[str, Any]) -> None:
        """The executor's view of this strategy: it replaces what the cache knew (working orders included:
        reports and state come in order on one socket, so nothing newer is lost)."""
        def dec(value: Any) -> Decimal | None:
            return protocol.to_decimal(value)

        positions = {}
        for p in _list(body.get("positions")):
            if not isinstance(p, dict):
                continue
            qty, avg = dec(p.get("qty")), dec(p.get("avg_price"))
            if qty is None or avg is None or not all(isinstance(p.get(k), str) for k in ("exchange", "market",
                                                                                         "symbol")):
                continue
            pos = Position(p["exchange"], p["market"], p["symbol"], qty, avg, dec(p.get("realized_pnl")) or Decimal(0),
                           dec(p.get("unrealized_pnl")), dec(p.get("fees")) or Decimal(0), dec(p.get("mark")))
            positions[(pos.exchange, pos.market, pos.symbol)] = pos
        self.cache.positions = positions

        def table(key: str) -> dict[str, Decimal]:
            raw = body.get(key) or {}
            return {k: d for k, v in raw.items() if (d := dec(v)) is not None} if isinstance(raw, dict) else {}

        self.cache.balances, self.cache.available = table("balances"), table("available")
        self.cache.reserved, self.cache.allocation = table("reserved"), table("allocation")
        pnl = body.get("pnl") if isinstance(body.get("pnl"), dict) else {}
        self.cache.pnl = {k: dec(v) for k, v in pnl.items()}
        halted = body.get("strategy_halted")
        self.cache.halted = (halted if isinstance(halted, str) and halted else "the strategy is halted" if halted
                             else "the account is halted" if body.get("halted") else None)
        working = {}
        for o in _list(body.get("orders")):
            if isinstance(o, dict) and _client_id(o):
                working[o["client_id"]] = order_from(o)
        ended = [(cid, o) for cid, o in self.cache.orders.items() if o.status not in WORKING][-ENDED_KEPT:]
        self.cache.orders = {**dict(ended), **working}
        seq = body.get("seq")
        self.cache.state_seq = seq if type(seq) is int else 0
        self.cache.state_known.set()


def _list(value: Any) -> list[Any]:
    return value if type(value) is list else []


def _client_id(o: dict[str, Any]) -> bool:
    """A report's order is kept by its client id: only a non-empty string is one (a list would not even hash)."""
    cid = o.get("client_id")
    return type(cid) is str and cid != ""


def order_from(o: dict[str, Any]) -> Order:
    def d(key: str) -> Decimal | None:
        return protocol.to_decimal(o.get(key))

    return Order(str(o.get("client_id")), str(o.get("signal_id", "")), str(o.get("exchange", "")),
                 str(o.get("market", "")), str(o.get("symbol", "")), str(o.get("side", "")), d("qty") or Decimal(0),
                 d("price"), str(o.get("status", "")), d("filled") or Decimal(0), d("avg_price"),
                 {k: v for k, v in o.items() if k not in ("client_id", "signal_id")})
