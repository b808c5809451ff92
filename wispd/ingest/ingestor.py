"""The ingestor process: one per exchange, streams in, ZeroMQ fan-out and snapshots out.

- Streams start when somebody watches: a SUB subscription reaching the XPUB (a pair prefix starts book,
  trades, ticker and, for perps, funding; an exact topic starts just that one, e.g. ``kline.5m``), an
  explicit ``watch`` request, or a pair pre-declared in config. The last watcher leaving stops them.
- Each stream runs in its own task with reconnect/backoff: ccxt.pro does not reconnect or resubscribe on
  its own, so every stream calls its ``watch_*`` again after an error, after an exponential delay with
  jitter. A stream silent for ``stale_after`` gets a stale flag published on its topic (cleared by the next
  update); silent for three times that, it is restarted.
- The ROUTER snapshot endpoint serves the latest message of a topic, candle history, market rules, and
  explicit watch/unwatch, so a (re)starting strategy has its book and klines at once.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from typing import Any

import zmq
import zmq.asyncio

from wispd import protocol
from wispd.auth import ZapHandler
from wispd.ingest.publisher import SNDHWM, MdPublisher
from wispd.ingest.source import Source
from wispd.logs import LimitedLog
from wispd.metrics.registry import Registry
from wispd.protocol import Topic
from wispd.runtime.context import ChildContext
from wispd.transport import bind, limits, unlink_ipc

HISTORY_MAX = 1500
MAX_STREAMS = 2000  # topics one ingestor streams at most: subscriptions beyond it are refused (and logged)
MAX_PENDING = 1000  # snapshot requests being answered at once; more are told "busy"
SUBSCRIPTION_MAX_BYTES = 1024  # an XPUB subscription is a topic prefix
REQUEST_MAX_BYTES = 64 * 1024  # a snapshot/history/markets/watch request


class UnknownSymbol(ValueError):
    """A request for a pair the exchange does not have (the reply says so, with code unknown_symbol)."""


def pair_channels(market: str) -> list[str]:
    return ["book", "trades", "ticker"] + (["funding"] if market == "perp" else [])


class Ingestor:
    def __init__(self, ctx: ChildContext, args: dict[str, Any], source: Source) -> None:
        self.ctx, self.args, self.source = ctx, args, source
        self.exchange: str = args["exchange"]
        self.log = ctx.log
        self.stale_after = float(args.get("stale_after", 10.0))
        self.backoff_initial = float(args.get("backoff_initial", 0.5))
        self.backoff_max = float(args.get("backoff_max", 30.0))
        self.zctx = zmq.asyncio.Context()
        # Market data is open to any local process of this user on ipc:// (docs/security.md); tcp:// is CURVE.
        self.zap = ZapHandler(self.zctx, lambda _d, _a, mech, creds: ctx.server_keys.verify(mech, creds)) \
            if any(args[k].startswith("tcp://") for k in ("pub_endpoint", "snapshot_endpoint")) else None
        # The market-data socket is a plain one on the asyncio context: a send on a zmq.asyncio socket builds
        # a Future per frame (2.9 us against 0.45 us, a fifth of the ingestor's profile), and a send here
        # never waits (XPUB drops per subscriber at the high-water mark). Subscriptions are read on FD
        # readiness and on every housekeeping tick (_drain_subscriptions says why).
        self.pub = zmq.Socket(self.zctx, zmq.XPUB)
        limits(self.pub, max_msg=SUBSCRIPTION_MAX_BYTES, sndhwm=SNDHWM)
        ctx.server_keys.server(self.pub, args["pub_endpoint"], authenticate=False)
        bind(self.pub, args["pub_endpoint"])
        self.snap = self.zctx.socket(zmq.ROUTER)
        limits(self.snap, max_msg=REQUEST_MAX_BYTES, rcvhwm=10_000)
        ctx.server_keys.server(self.snap, args["snapshot_endpoint"], authenticate=False)
        bind(self.snap, args["snapshot_endpoint"])
        self.publisher = MdPublisher(self.pub, ctx.name, float(args.get("coalesce_ms", 0.0)),
                                     lambda delay, fn: asyncio.get_running_loop().call_later(delay, fn),
                                     self._sent)
        self._check_due = False
        self.holders: dict[bytes, set[str]] = {}
        self.leases: dict[tuple[bytes, str], float] = {}  # (topic, client holder) -> when its watch ends
        self.tasks: dict[bytes, asyncio.Task[None]] = {}
        self.started: dict[bytes, float] = {}
        self.last_update: dict[bytes, float] = {}
        self.first: dict[bytes, asyncio.Event] = {}
        self.stale: set[bytes] = set()
        self.reconnects: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.bad_requests = 0
        self.refused_streams = 0
        self.connect_error = ""
        self.ready_wait = float(args.get("ready_wait", 30.0))  # longest wait for first books before ready
        self.pending = 0
        self.limited = LimitedLog(self.log)

    # ------------------------------------------------------------------ watching
    def topics_for(self, market: str, symbol: str, channel: str | None) -> list[Topic]:
        channels = [channel] if channel else pair_channels(market)
        return [Topic(self.exchange, market, symbol, ch) for ch in channels
                if not (ch == "funding" and market != "perp")]

    def hold(self, topic: Topic, holder: str) -> None:
        key = topic.encode()
        why = self.source.unknown(topic.market, topic.symbol)
        if why is not None:
            self.refused_streams += 1
            self.limited("warning", "stream_refused", topic=key.decode(), holder=holder[:80], reason=why)
            return
        if key not in self.tasks and len(self.tasks) >= MAX_STREAMS:
            self.refused_streams += 1
            self.limited("warning", "stream_refused", topic=key.decode(), holder=holder[:80],
                         reason=f"this ingestor already streams {MAX_STREAMS} topics")
            return
        holders = self.holders.setdefault(key, set())
        holders.add(holder)
        if key not in self.tasks:
            self.first.setdefault(key, asyncio.Event())
            self.started[key] = time.monotonic()
            self.tasks[key] = asyncio.get_running_loop().create_task(self._stream(topic))
            self.log.info("stream_start", topic=key.decode(), holder=holder)

    def release(self, topic: Topic, holder: str) -> None:
        key = topic.encode()
        holders = self.holders.get(key)
        if holders is None:
            return
        holders.discard(holder)
        if not holders:
            del self.holders[key]
            task = self.tasks.pop(key, None)
            if task is not None:
                task.cancel()
            self.stale.discard(key)
            self.log.info("stream_stop", topic=key.decode())

    def _on_sub(self, prefix: bytes) -> None:
        parsed = protocol.parse_subscription(prefix)
        if parsed is None or parsed[0] != self.exchange:
            return  # b"" (everything) or another exchange: nothing to start
        for topic in self.topics_for(parsed[1], parsed[2], parsed[3]):
            self.hold(topic, "sub:" + prefix.decode(errors="replace"))

    def _on_unsub(self, prefix: bytes) -> None:
        parsed = protocol.parse_subscription(prefix)
        if parsed is None or parsed[0] != self.exchange:
            return
        for topic in self.topics_for(parsed[1], parsed[2], parsed[3]):
            self.release(topic, "sub:" + prefix.decode(errors="replace"))

    # ------------------------------------------------------------------ streams
    async def _stream(self, topic: Topic) -> None:
        key = topic.encode()
        attempt = 0
        while True:
            stream = self.source.stream(topic)
            try:
                async for kind, body, ts_exch in stream:
                    if attempt:
                        self.log.info("stream_recovered", topic=key.decode(), attempts=attempt)
                        attempt = 0
                    self.last_update[key] = time.monotonic()
                    if key in self.stale:
                        self.stale.discard(key)
                        self.publisher.publish(key, "stale", {"stale": False, "silent_s": 0}, None)
                    self.publisher.publish(key, kind, body, ts_exch)
                    self.first[key].set()
                raise ConnectionError("stream ended")
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any exchange error means: back off, call watch again
                attempt += 1
                self.reconnects[topic.channel] += 1
                self.errors[type(exc).__name__] += 1
                delay = min(self.backoff_max, self.backoff_initial * 2 ** (attempt - 1)) * random.uniform(0.8, 1.2)
                self.log.warning("stream_error", topic=key.decode(), error=f"{type(exc).__name__}: {exc}"[:300],
                                 attempt=attempt, retry_in_s=round(delay, 3))
                await asyncio.sleep(delay)
            finally:
                await stream.aclose()

    async def _staleness(self) -> None:
        while True:
            await asyncio.sleep(min(0.5, self.stale_after / 4))
            now = time.monotonic()
            self.expire_leases(now)
            for key, task in list(self.tasks.items()):
                silent = now - self.last_update.get(key, self.started[key])
                channel = key.rsplit(b".", 1)[-1].decode() if b".kline." not in key else "kline"
                limit = max(self.stale_after, 3 * getattr(self.source, "intervals", {}).get(channel, 0.0))
                if silent > limit and key not in self.stale:
                    self.stale.add(key)
                    self.log.warning("stream_stale", topic=key.decode(), silent_s=round(silent, 3))
                    self.publisher.publish(key, "stale", {"stale": True, "silent_s": round(silent, 3)}, None)
                if silent > 3 * limit and key in self.stale and now - self.started[key] > 3 * limit:
                    topic = protocol.parse_topic(key)
                    if topic is None:
                        continue
                    self.log.warning("stream_restart", topic=key.decode(), silent_s=round(silent, 3))
                    task.cancel()
                    self.reconnects[topic.channel] += 1
                    self.started[key] = now
                    self.tasks[key] = asyncio.get_running_loop().create_task(self._stream(topic))

    def _sent(self) -> None:
        if not self._check_due:  # once per event-loop pass with sends, not once per frame
            self._check_due = True
            asyncio.get_running_loop().call_soon(self._after_sends)

    def _after_sends(self) -> None:
        self._check_due = False
        if self.pub.getsockopt(zmq.EVENTS) & zmq.POLLIN:
            self._drain_subscriptions()

    def _drain_subscriptions(self) -> None:
        """Read every subscription event waiting on the XPUB socket.

        ZeroMQ's FD is edge-triggered and a send processes the socket's commands, so a send can consume the
        edge that announced a subscription (it does, every time one arrives just before a send). So this
        runs when the FD is readable, after every event-loop pass that sent (``_after_sends`` asks the
        socket itself), and on every housekeeping tick as the last resort."""
        for _ in range(10_000):
            try:
                frame = self.pub.recv(zmq.NOBLOCK)
            except zmq.Again:
                return
            MdPublisher.subscription_events([frame], self._on_sub, self._on_unsub)
        asyncio.get_running_loop().call_soon(self._drain_subscriptions)  # more: after the loop's other work

    # ------------------------------------------------------------------ snapshot endpoint
    async def _snapshots(self) -> None:
        while True:
            frames = await self.snap.recv_multipart()
            if len(frames) < 2:
                self.bad_requests += 1
                continue
            if self.pending >= MAX_PENDING:
                await self.snap.send_multipart([*frames[:-1], protocol.dumps(
                    {"id": "", "ok": False, "error": "busy: too many requests in flight"})])
                continue
            self.pending += 1
            asyncio.get_running_loop().create_task(self._answer(frames[:-1], frames[-1]))

    async def _answer(self, envelope: list[bytes], payload: bytes) -> None:
        try:
            await self._answer_one(envelope, payload)
        finally:
            self.pending -= 1

    async def _answer_one(self, envelope: list[bytes], payload: bytes) -> None:
        req = protocol.parse_snap_request(payload)
        if req is None:
            self.bad_requests += 1
            rid = (protocol.loads_dict(payload) or {}).get("id")
            reply = {"id": rid if isinstance(rid, str) else "", "ok": False, "error": "malformed request"}
        else:
            try:
                reply = {"id": req["id"], "ok": True, **await self._op(req, envelope[0])}
            except UnknownSymbol as exc:
                reply = {"id": req["id"], "ok": False, "code": "unknown_symbol", "error": str(exc)}
            except (ValueError, KeyError, TypeError) as exc:
                self.bad_requests += 1
                reply = {"id": req["id"], "ok": False, "error": str(exc)}
            except Exception as exc:  # noqa: BLE001 - an exchange error answers the request, never kills us
                self.log.warning("snapshot_op_failed", op=req.get("op"), error=f"{type(exc).__name__}: {exc}")
                reply = {"id": req["id"], "ok": False, "error": f"{type(exc).__name__}: {exc}"}
        await self.snap.send_multipart([*envelope, protocol.dumps(reply)])

    def _topic(self, raw: Any) -> Topic:
        topic = protocol.parse_topic(raw) if isinstance(raw, str) else None
        if topic is None or topic.exchange != self.exchange:
            raise ValueError(f"not a topic of exchange {self.exchange!r}: {raw!r}")
        why = self.source.unknown(topic.market, topic.symbol)
        if why is not None:
            raise UnknownSymbol(why)
        return topic

    async def _op(self, req: dict[str, Any], client: bytes = b"") -> dict[str, Any]:
        op = req["op"]
        if op == "snapshot":
            topic = self._topic(req.get("topic"))
            key = topic.encode()
            if key in self.holders and key not in self.publisher.latest:
                wait = req.get("wait", 2.0)
                if isinstance(wait, bool) or not isinstance(wait, int | float) or not 0 <= wait <= 10:
                    raise ValueError("wait must be 0 to 10 seconds")
                try:
                    await asyncio.wait_for(self.first[key].wait(), float(wait))
                except TimeoutError:
                    pass
            return {"envelope": self.publisher.snapshot(key)}
        if op == "history":
            topic = self._topic(req.get("topic"))
            if topic.interval is None:
                raise ValueError("history needs a kline topic (md....kline.<interval>)")
            limit = req.get("limit", 200)
            if isinstance(limit, bool) or not isinstance(limit, int) or not 0 < limit <= HISTORY_MAX:
                raise ValueError(f"limit must be 1..{HISTORY_MAX}")
            return {"candles": await self.source.history(topic, limit)}
        if op == "markets":
            symbols = req.get("symbols") or []
            if not isinstance(symbols, list) or len(symbols) > 1000:
                raise ValueError("symbols must be a list of at most 1000 [market, SYMBOL] pairs")
            wanted = [(x[0], x[1]) for x in symbols if isinstance(x, list) and len(x) == 2
                      and x[0] in protocol.MARKETS and isinstance(x[1], str) and protocol.valid_symbol(x[1])]
            return {"markets": await self.source.markets(wanted)}
        raw_topics = req.get("topics") or []
        if not isinstance(raw_topics, list) or len(raw_topics) > 1000:
            raise ValueError("topics must be a list of at most 1000 topics")
        ttl = req.get("ttl")
        if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, int | float)
                                or not 1 <= ttl <= protocol.WATCH_TTL_MAX):
            raise ValueError(f"ttl must be 1 to {protocol.WATCH_TTL_MAX:.0f} seconds")
        topics = [self._topic(t) for t in raw_topics]
        holder = "client:" + client.hex()  # each client's watches are its own: another's unwatch cannot stop them
        for topic in topics:
            key = topic.encode()
            if op == "watch":
                self.hold(topic, holder)
                if ttl is None:
                    self.leases.pop((key, holder), None)
                else:
                    self.leases[(key, holder)] = time.monotonic() + float(ttl)
            else:
                self.leases.pop((key, holder), None)
                self.release(topic, holder)
        return {"watching": sorted(k.decode() for k, h in self.holders.items() if holder in h)}

    def expire_leases(self, now: float) -> None:
        """Release watches whose ttl passed (a client that went away without unwatching)."""
        for (key, holder), until in list(self.leases.items()):
            if until <= now:
                del self.leases[(key, holder)]
                topic = protocol.parse_topic(key)
                if topic is not None:
                    self.release(topic, holder)

    # ------------------------------------------------------------------ process
    def metrics(self) -> dict[str, Any]:
        reg = Registry()
        ex = self.exchange
        for topic_bytes, n in self.publisher.by_topic.items():
            topic = protocol.parse_topic(topic_bytes)
            if topic is not None:
                reg.inc("wispd_md_messages_total", n, exchange=ex, channel=topic.channel)
        for channel, n in self.reconnects.items():
            reg.inc("wispd_md_reconnects_total", n, exchange=ex, channel=channel)
        reg.inc("wispd_md_bad_requests_total", self.bad_requests, exchange=ex)
        reg.set("wispd_md_streams", len(self.tasks), exchange=ex)
        now = time.monotonic()
        stale: Counter[str] = Counter()
        silence: dict[str, float] = {}
        for key in self.tasks:
            topic = protocol.parse_topic(key)
            if topic is None:
                continue
            silence[topic.channel] = max(silence.get(topic.channel, 0.0),
                                         now - self.last_update.get(key, self.started[key]))
            stale[topic.channel] += key in self.stale
        for channel, seconds in silence.items():
            reg.set("wispd_md_staleness_seconds", seconds, exchange=ex, channel=channel)
            reg.set("wispd_md_stale_streams", stale[channel], exchange=ex, channel=channel)
        return {"md_sent": self.publisher.by_kind, "reconnects": dict(self.reconnects), "errors": dict(self.errors),
                "stale": len(self.stale), "streams": len(self.tasks), "bad_requests": self.bad_requests,
                "prom": reg.snapshot()}

    async def _connect(self) -> bool:
        """One attempt to reach the exchange, heartbeating while it runs. A failure is not fatal: the
        streams retry on their own (each with backoff), and status and stale flags say what is wrong."""
        task = asyncio.get_running_loop().create_task(self.source.connect())
        while not task.done():
            self.ctx.beat()
            self.ctx.handle_link()
            if self.ctx.stopping:
                task.cancel()
                return False
            await asyncio.wait({task}, timeout=0.1)
        if task.cancelled() or task.exception() is None:
            self.connect_error = ""
            return True
        exc = task.exception()
        self.connect_error = f"{type(exc).__name__}: {exc}"[:300]
        self.log.warning("exchange_unreachable", error=self.connect_error,
                         effect="streams retry with backoff; topics go stale until data flows")
        return False

    async def run(self) -> int:
        connected = await self._connect()
        loop = asyncio.get_running_loop()
        background = [loop.create_task(c) for c in (self._snapshots(), self._staleness())]
        loop.add_reader(self.pub.FD, self._drain_subscriptions)
        self._drain_subscriptions()
        if self.zap is not None:
            background.append(loop.create_task(self.zap.serve()))
        try:
            pairs = self.args.get("pairs") or []
            for market, symbol in pairs:
                for topic in self.topics_for(market, symbol, None):
                    self.hold(topic, "config")
                for interval in self.args.get("klines") or []:
                    self.hold(Topic(self.exchange, market, symbol, f"kline.{interval}"), "config")
            books = [self.first[Topic(self.exchange, m, s, "book").encode()] for m, s in pairs]
            give_up = time.monotonic() + self.ready_wait
            while connected and not all(e.is_set() for e in books) and time.monotonic() < give_up:
                if self.ctx.stopping:
                    return 0
                self.ctx.beat()
                self.ctx.handle_link()
                self._drain_subscriptions()
                await asyncio.sleep(0.05)
            # Ready = serving its endpoints. Without the exchange (or without first books in time) it is
            # still ready: one unreachable venue must not hold back strategies that trade elsewhere.
            self.ctx.ready(pairs=len(pairs), connected=connected, books=sum(e.is_set() for e in books))
            last_metrics = 0.0
            while not self.ctx.stopping:
                self.ctx.beat()
                self.ctx.handle_link()
                for task in background:
                    if task.done() and task.exception() is not None:
                        raise task.exception()  # type: ignore[misc]
                now = time.monotonic()
                if now - last_metrics >= 1.0:
                    last_metrics = now
                    self.ctx.metrics(self.metrics())
                    if self.connect_error and any(e.is_set() for e in self.first.values()):
                        self.connect_error = ""  # data flows again
                    phase = "unreachable" if self.connect_error else "streaming"
                    self.ctx.status(phase, f"{len(self.tasks)} streams, {len(self.stale)} stale"
                                    + (f"; exchange unreachable: {self.connect_error}" if self.connect_error else ""),
                                    sent=self.publisher.sent, reconnects=sum(self.reconnects.values()))
                self._drain_subscriptions()
                await asyncio.sleep(0.1)
            self.log.info("ingestor_stop", reason=self.ctx.stop_reason)
            return 0
        finally:
            for task in [*background, *self.tasks.values()]:
                task.cancel()
            await asyncio.gather(*background, *self.tasks.values(), return_exceptions=True)
            await self.source.close()
            loop.remove_reader(self.pub.FD)
            self.pub.close()
            self.snap.close()
            if self.zap is not None:
                self.zap.close()
            self.zctx.term()
            for endpoint in (self.args["pub_endpoint"], self.args["snapshot_endpoint"]):
                unlink_ipc(endpoint)
