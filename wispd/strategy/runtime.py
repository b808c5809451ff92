"""The strategy process runtime: the ``ctx`` a strategy's ``run`` receives, and what stands behind it.

Threads: the strategy's own code runs on the main thread and owns the supervisor link (so heartbeats
prove *its* loop is alive: a strategy stuck in an endless computation is detected and restarted) and the
signal PUSH socket (so ``emit`` is one non-blocking send, no thread hop). The receiver thread owns every
market-data socket.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any

import zmq

from wispd import clock, protocol
from wispd.runtime.context import ChildContext
from wispd.strategy import venues
from wispd.strategy.api import Domain, Strategy
from wispd.strategy.cache import MarketCache
from wispd.strategy.receiver import Receiver
from wispd.strategy.signals import Handle, Report, Signal, SignalBuilder
from wispd.strategy.types import Order, Position
from wispd.strategy.virtual import Flag, VirtualLink, VirtualReceiver, VirtualTime, topic_names

WORKING = ("armed", "intent", "accepted", "open", "partially_filled")
# A strategy's metrics snapshot goes to the supervisor this often (heartbeats stay at heartbeat_interval):
# decoding and checking 100 strategies' snapshots every second was most of the supervisor's own CPU, and a
# scraper reads them every 15 s or so.
METRICS_INTERVAL_S = 5.0

_active: dict[str, Runtime] = {}


def active() -> Runtime:
    rt = _active.get("rt")
    if rt is None:
        raise RuntimeError("no strategy is running in this process (spot/perp work inside a strategy)")
    return rt


class Runtime:
    def __init__(self, child: ChildContext, args: dict[str, Any]) -> None:
        self.child = child
        self.name = child.name
        self.log = child.log
        self.exchanges: dict[str, dict[str, str]] = args.get("exchanges") or {}
        self.venues = venues.Venues(args.get("venues") or {})
        self.cache = MarketCache()
        self.zctx = zmq.Context()
        self.push: zmq.Socket | None = None
        self.vt: VirtualTime | None = None  # set in a backtest: time and data come from the replayer
        if args.get("virtual"):
            link = VirtualLink(args["virtual"]["endpoint"], self.name, str(args["virtual"]["token"]), self._beat)
            self.receiver: Receiver = VirtualReceiver(self.name, self.exchanges, None, self.cache, self.log,
                                                      child.credentials, link=link)
            self.vt = VirtualTime(link, self.receiver, self._backtest_over)  # type: ignore[arg-type]
            self.cache.changed = Flag()  # type: ignore[assignment]  # one thread: no lock needed
        else:
            self.receiver = Receiver(self.name, self.exchanges, args.get("reports_endpoint"), self.cache, self.log,
                                     child.credentials)
        if args.get("signals_endpoint") and self.vt is None:
            self.push = self.zctx.socket(zmq.PUSH)
            self.push.setsockopt(zmq.IMMEDIATE, 1)  # never queue a signal for an executor that is not there
            self.push.setsockopt(zmq.SNDHWM, 10_000)
            self.push.setsockopt(zmq.LINGER, 2000)
            child.credentials.client(self.push, args["signals_endpoint"])  # the executor knows us by this
            self.push.connect(args["signals_endpoint"])
        self.unsent: deque[tuple[Handle, bytes]] = deque()
        self.watched: set[tuple[str, str, str]] = set()
        self.kline_limits: dict[bytes, int] = {}
        self.emitted = 0
        # when the strategy's loop last woke (a wait or sleep returned, run began): what it decides now, it
        # decides on what it knew then. Each signal carries it (``woke``), so a replay of a timer-driven
        # strategy can start it on the live one's schedule, not at its first signal's build time.
        self.woke = clock.now()
        self._next_metrics = 0.0
        self._serviced = 0.0
        self._wake: tuple[frozenset[bytes], list[str]] = (frozenset(), [])  # backtest: the wake topics, named
        self.domains = {"spot": Domain(self, "spot"), "perp": Domain(self, "perp")}

    def start(self) -> None:
        _active["rt"] = self
        venues.install(self.venues)
        self.receiver.start()
        if self.vt is not None:
            self.vt.start()

    def _beat(self) -> None:
        self.child.beat()
        self.child.handle_link()

    def _backtest_over(self) -> None:
        self.child.stop_reason = self.child.stop_reason or "backtest_end"

    def stopping(self) -> bool:
        return self.child.stopping

    def close(self) -> None:
        self.receiver.stop()
        self.receiver.join(2.0)
        self.receiver.close()
        if self.push is not None:
            self.push.close()
        if isinstance(self.receiver, VirtualReceiver):
            self.receiver.link.close()
        self.zctx.term()
        _active.pop("rt", None)

    def check_exchange(self, exchange: str) -> None:
        if exchange not in self.exchanges:
            import difflib

            close = difflib.get_close_matches(exchange, list(self.exchanges), n=3)
            raise ValueError(f"unknown exchange {exchange!r}; configured: {', '.join(sorted(self.exchanges))}"
                             + (f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""))

    def check_alive(self) -> None:
        if self.receiver.error is not None:
            raise RuntimeError("the market-data receiver thread died") from self.receiver.error

    def service(self) -> None:
        """Heartbeat, link messages, pending signals: called from every ctx wait."""
        if self.vt is not None:  # a backtest calls this once per replayed update: a few times a second is enough
            now = time.monotonic()
            if now - self._serviced < 0.05:
                return
            self._serviced = now
        now = time.monotonic()
        if now >= self._next_metrics:  # first: a metrics message is this second's heartbeat too
            self._next_metrics = now + METRICS_INTERVAL_S
            prom = dict(self.receiver.prom) or {"c": [], "g": [], "h": []}
            prom["c"] = [*prom.get("c", []), ["wispd_signals_emitted_total", {"strategy": self.name}, self.emitted]]
            self.child.metrics({"prom": prom})
        self.child.beat()
        self.child.handle_link()
        self.flush()
        self.check_alive()

    def wait_for_state(self, until: float | None = None) -> bool:
        """Wait (heartbeating) for the executor's first state report; True once it is here. Status says
        why while it waits."""
        if self.vt is not None:
            self.vt.wait_for(self.cache.state_known.is_set, None, self.stopping, [], True)
            return self.cache.state_known.is_set()
        said = False
        while not self.cache.state_known.is_set() and not self.child.stopping:
            if not said:
                self.child.status("waiting", "for the state of this strategy from its executor (positions, "
                                  "orders, balances) before deciding anything")
                said = True
            if until is not None and time.monotonic() >= until:
                return False
            self.cache.state_known.wait(0.1)
            self.service()
        return self.cache.state_known.is_set()

    def wait_event(self, event: threading.Event, timeout: float) -> bool:
        if self.vt is not None:
            if event is self.cache.changed:
                keys, wake = self._wake
                if keys != self.cache.wake_keys:  # named once per change of what is waited on, not per update
                    keys = frozenset(self.cache.wake_keys)
                    self._wake = (keys, (wake := topic_names(keys)))
            else:
                wake = ["*"]
            end = clock.now() + timeout
            vt = self.vt
            if vt.local and vt._run_ahead(wake, end) and event.is_set():  # the common case, frame after frame
                self.woke = clock.now()
                return True
            vt.wait_for(event.is_set, end, self.stopping, wake, False)
            self.woke = clock.now()
            return event.is_set()
        end = time.monotonic() + timeout
        while not event.is_set() and not self.child.stopping:
            left = end - time.monotonic()
            if left <= 0:
                break
            event.wait(min(left, 0.1))
            self.service()
        self.woke = clock.now()
        return event.is_set()

    def wake(self) -> None:
        """The strategy's loop woke (see ``woke``)."""
        self.woke = clock.now()

    # ------------------------------------------------------------------ signals
    def emit(self, sig: Signal | SignalBuilder) -> Handle:
        if isinstance(sig, SignalBuilder):
            sig = sig.build()
        handle = Handle(sig)
        handle._idle, handle._idle_thread, handle._on_wake = self.service, threading.current_thread(), self.wake
        self.emitted += 1
        if self.vt is not None:
            vt = self.vt
            def vwait(until: float) -> bool:
                vt.wait_for(handle._event.is_set, until, self.stopping, [], True)
                return self.child.stopping

            handle._vwait = vwait
            self.receiver.track(handle)
            handle.sent = True
            vt.signal(protocol.dumps(sig.wire(self.name, self.woke)))
            return handle
        if self.push is None:
            handle._resolve(Report("rejected", "no executor is configured for this strategy (set account)"))
            return handle
        self.receiver.track(handle)
        self._send(handle, protocol.dumps(sig.wire(self.name, self.woke)))
        return handle

    def _send(self, handle: Handle, frame: bytes) -> bool:
        assert self.push is not None
        try:
            self.push.send(frame, zmq.NOBLOCK)
            handle.sent = True
            return True
        except zmq.Again:
            self.unsent.append((handle, frame))
            return False

    def flush(self) -> None:
        """Retry signals no executor could take yet; give up on them once their TTL has passed."""
        for _ in range(len(self.unsent)):
            handle, frame = self.unsent.popleft()
            if handle.done():
                continue
            if not self._send(handle, frame):
                break


class StrategyContext:
    """The ``ctx`` handed to ``on_start``, ``run`` and ``on_stop``."""

    def __init__(self, rt: Runtime, strategy: Strategy) -> None:
        self._rt = rt
        self.name = rt.name
        self.params = strategy.p
        self.log = rt.log
        self.spot = rt.domains["spot"]
        self.perp = rt.domains["perp"]

    # ------------------------------------------------------------------ time and cancellation
    @property
    def cancelled(self) -> bool:
        """True once wispd asked this strategy to stop (drain or SIGTERM): finish up and return."""
        self._rt.service()
        return self._rt.child.stopping

    def now(self) -> float:
        """The time now, in epoch seconds: the wall clock live, the replayed instant in a backtest. Use it (not
        ``time.time()``) for anything a decision depends on, so a backtest decides as live would have."""
        return clock.now()

    def sleep(self, seconds: float) -> bool:
        """Sleep, returning early (True) as soon as a stop is requested."""
        if self._rt.vt is not None:
            self._rt.vt.sleep_until(clock.now() + max(0.0, seconds), self._rt.stopping)
            self._rt.wake()
            return self._rt.child.stopping
        end = time.monotonic() + max(0.0, seconds)
        while not self._rt.child.stopping:
            left = end - time.monotonic()
            if left <= 0:
                break
            self._rt.child.wait(min(left, 0.1))
            self._rt.service()
        self._rt.wake()
        return self._rt.child.stopping

    def every(self, seconds: float) -> Iterator[int]:
        """``for tick in ctx.every(5): ...`` on a fixed schedule (missed ticks are skipped, not bunched)."""
        if seconds <= 0:
            raise ValueError("every() needs a period greater than 0")
        n, next_t = 0, clock.monotonic()
        while not self.cancelled:
            yield n
            n += 1
            next_t += seconds
            now = clock.monotonic()
            if next_t < now:
                next_t = now + seconds
            if self.sleep(next_t - now):
                return

    async def asleep(self, seconds: float) -> bool:
        """``await ctx.asleep(s)`` in an async ``run``: like ``sleep``, True when a stop was requested.
        (In a backtest it moves virtual time and blocks the event loop while it does: concurrent tasks of one
        strategy take turns.)"""
        if self._rt.vt is not None:
            return self.sleep(seconds)
        end = time.monotonic() + max(0.0, seconds)
        while not self._rt.child.stopping and time.monotonic() < end:
            await asyncio.sleep(min(0.1, max(0.0, end - time.monotonic())))
            self._rt.service()
        self._rt.wake()
        return self._rt.child.stopping

    async def aevery(self, seconds: float) -> AsyncIterator[int]:
        """``async for tick in ctx.aevery(5)``: like ``every``, in an async ``run``."""
        n, next_t = 0, clock.monotonic()
        while not self.cancelled:
            yield n
            n += 1
            next_t = max(next_t + seconds, clock.monotonic())
            if await self.asleep(next_t - clock.monotonic()):
                return

    # ------------------------------------------------------------------ signals and status
    def emit(self, sig: Signal | SignalBuilder) -> Handle:
        """Send a signal to the executor without blocking; ``.wait()`` on the handle for the outcome."""
        return self._rt.emit(sig)

    def emit_status(self, phase: str, summary: str = "", **fields: Any) -> None:
        """Shown by ``wispctl status``; the supervisor keeps the last 20."""
        self._rt.child.status(phase, summary, **fields)

    # ------------------------------------------------------------------ account state (executor reports)
    # All of it is this strategy's own: its sub-ledger on the account, its positions, its working orders.
    # ``on_start`` runs only once the executor's first state report has arrived, so none of it is a guess.
    def balance(self, asset: str | None = None) -> Any:
        """What this strategy holds of ``asset`` (its sub-ledger), or all of it as a dict."""
        balances = self._rt.cache.balances
        return balances.get(asset.upper(), Decimal(0)) if asset else dict(balances)

    def available(self, asset: str) -> Decimal:
        """What a new order may use: held minus what working orders reserve."""
        return self._rt.cache.available.get(asset.upper(), Decimal(0))

    def allocation(self) -> dict[str, Decimal]:
        """What this strategy was given on its account (per asset)."""
        return dict(self._rt.cache.allocation)

    @property
    def state_known(self) -> bool:
        """True once the executor has reported this strategy's state (always, inside on_start and run)."""
        return self._rt.cache.state_known.is_set()

    @property
    def halted(self) -> str | None:
        """Why new orders of this strategy are refused right now (wispctl halt, a kill switch), or None."""
        return self._rt.cache.halted

    def positions(self) -> list[Position]:
        """This strategy's open positions in every market (flat ones left out)."""
        return [p for p in self._rt.cache.positions.values() if p.qty != 0]

    def open_orders(self) -> list[Order]:
        """This strategy's working orders (resting, partially filled, or armed stops and exits)."""
        return [o for o in self._rt.cache.orders.values() if o.status in WORKING]

    def pnl(self) -> dict[str, Decimal | None]:
        """realized, unrealized, fees and total for this strategy, as the executor computed them
        (unrealized and total are None while a position has no mark price)."""
        return dict(self._rt.cache.pnl)

    def stats(self) -> dict[str, Any]:
        """Market-data counters of this process: received per topic, gaps, drops, resyncs, signals emitted and unsent."""
        c = self._rt.cache
        return {"received": {k.decode(): v for k, v in dict(c.received).items()},
                "gaps": {k.decode(): v for k, v in dict(c.gaps).items()}, "dropped": c.dropped, "resyncs": c.resyncs,
                "emitted": self._rt.emitted, "unsent": len(self._rt.unsent)}
