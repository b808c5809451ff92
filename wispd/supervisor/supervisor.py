"""The wispd supervisor: one thread, one ``zmq.Poller``, never blocking on a child.

The poller watches the control ROUTER (wispctl), the link ROUTER (children's hello/ready/heartbeat/status),
one exit sentinel per child (written by the forkserver when it reaps), and a signal wake-up fd (SIGTERM and
SIGINT stop in order, SIGHUP reloads). Everything else is deadlines checked on each pass: start timeouts,
backoff ends, stop escalation, heartbeat ages, memory samples, the systemd watchdog.
"""

from __future__ import annotations

import math
import os
import signal
import socket
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

import zmq

from wispd import __version__, protocol
from wispd.auth import DaemonKeys, ZapHandler, peer_pid
from wispd.config import Config
from wispd.config.daemon import is_loopback
from wispd.config.secrets import SecretEnv, secret_env_names
from wispd.logs import EventLogger, LimitedLog
from wispd.metrics.aggregate import clean_series
from wispd.metrics.exposition import Auth, MetricsServer
from wispd.supervisor import observe
from wispd.supervisor.child import Child
from wispd.supervisor.desired import DesiredState
from wispd.supervisor.launcher import ChildProcess, Launcher
from wispd.supervisor.lifecycle import Lifecycle
from wispd.supervisor.lock import RunDirLock
from wispd.supervisor.notify import Notifier
from wispd.supervisor.operations import Operations
from wispd.supervisor.reload import apply_reload
from wispd.supervisor.stack_requests import StackRequests
from wispd.supervisor.states import State
from wispd.transport import bind, limits

LINK_MAX_BYTES = 4 * 1024 * 1024  # an executor's state and metrics with thousands of positions fit
CONTROL_MAX_BYTES = 64 * 1024  # a control request is a verb and a few arguments

Respond = Callable[[bool, dict[str, Any], str, str], None]


class StartError(RuntimeError):
    """wispd cannot start as configured (exit 78, nothing left running)."""


class Supervisor:
    def __init__(self, config: Config, log: EventLogger) -> None:
        self.config = config
        self.daemon = config.daemon
        self.log = log
        self.started = time.monotonic()
        self.children: dict[str, Child] = {}
        self.halting = False
        self.ready_sent = False
        self.notifier = Notifier()
        self.desired = DesiredState(self.daemon.state_dir)
        self.lock = RunDirLock(self.daemon.run_dir)
        self._signals: list[int] = []
        self._fds: dict[int, tuple[Child, ChildProcess]] = {}
        self._next_sample = 0.0
        self._soonest = 0.0  # the nearest child deadline, as the last poll timeout saw it
        self._idents: dict[bytes, tuple[str, int, str]] = {}  # link identities seen (name, generation, nonce)
        self._next_extend = 0.0
        self._boot_pending = 0
        self.control_counts: Counter[tuple[str, str]] = Counter()
        self.link_bad: Counter[str] = Counter()
        self.pass_errors = 0
        self.limited = LimitedLog(log)
        self.metrics_server: MetricsServer | None = None
        self._next_status_line = 0.0
        self.health_doc: dict[str, Any] = {"status": "failing", "healthy": False, "problems": ["starting"],
                                           "failing": ["starting"], "degraded": []}
        self.on_state_change: list[Callable[[Child, State, State, str], None]] = []
        self.keys = DaemonKeys(self.daemon.curve_secret_file, self.daemon.curve_authorized_keys)
        self.secrets = SecretEnv(secret_env_names(config))  # taken out of os.environ before any child exists
        self.stacks = StackRequests(self.daemon.run_dir)
        self.lifecycle = Lifecycle(self.daemon, Launcher(), log, self._watch_fd, self._state_changed,
                                   self._send_drain, self._boot_extra, self.stacks.ask)
        self.operations = Operations(self)

    # ------------------------------------------------------------------ setup
    def _prepare_dirs(self) -> None:
        d = self.daemon
        for path, mode in ((d.run_dir, 0o700), (d.state_dir, 0o700), (d.log_dir, 0o750)):
            path.mkdir(parents=True, exist_ok=True)
            if path.stat().st_uid == os.getuid():
                os.chmod(path, mode)

    def _bind(self) -> None:
        self.zmq = zmq.Context()
        self.link = self.zmq.socket(zmq.ROUTER)
        self.link.setsockopt(zmq.ROUTER_MANDATORY, 1)
        limits(self.link, max_msg=LINK_MAX_BYTES, rcvhwm=10_000)
        self.control = self.zmq.socket(zmq.ROUTER)
        limits(self.control, max_msg=CONTROL_MAX_BYTES, linger=1000)
        # Operators run wispctl; strategies (and what they start) do not: connections from inside a child's
        # session are refused at the handshake (the ZAP request carries the peer's pid on ipc).
        self.zap = ZapHandler(self.zmq, self._verify_control)
        self.control.zap_domain = b"control"
        bind(self.link, self.daemon.link_endpoint)
        bind(self.control, self.daemon.control_endpoint)
        self.poller = zmq.Poller()
        self.poller.register(self.link, zmq.POLLIN)
        self.poller.register(self.control, zmq.POLLIN)
        self.poller.register(self.zap.sock, zmq.POLLIN)
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        signal.set_wakeup_fd(self._wake_w.fileno(), warn_on_full_buffer=False)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, self._on_signal)
        self.poller.register(self._wake_r.fileno(), zmq.POLLIN)

    def _on_signal(self, signum: int, frame: Any) -> None:
        self._signals.append(signum)

    def _watch_fd(self, fd: int, child: Child | None) -> None:
        if child is None:
            if self._fds.pop(fd, None) is not None:
                self.poller.unregister(fd)
        elif child.proc is not None:
            self._fds[fd] = (child, child.proc)
            self.poller.register(fd, zmq.POLLIN)

    # ------------------------------------------------------------------ children and operations
    def _load_children(self) -> None:
        try:
            stopped = self.desired.load()
        except Exception as exc:  # noqa: BLE001 - a corrupt state file must not keep wispd down
            self.log.error("desired_state_unreadable", path=str(self.desired.path), error=str(exc))
            stopped = set()
        for spec in self.config.children:
            wanted = spec.autostart and spec.name not in stopped
            self.children[spec.name] = Child(spec, wanted)
            if spec.name in stopped:
                self.log.info("kept_stopped", name=spec.name, reason="stopped by an operator earlier")

    def ordered(self, reverse_stop: bool = False) -> list[Child]:
        key = (lambda c: (c.spec.stop_rank, c.name)) if reverse_stop else (lambda c: (c.spec.start_rank, c.name))
        return sorted(self.children.values(), key=key)

    def submit(self, children: Iterable[Child], verb: str, done: Callable[[dict[str, tuple[bool, str]]], None],
               persist: bool = True) -> None:
        """Queue ``verb`` on each child (ordered by rank) and call ``done`` once all have finished."""
        self.operations.submit(children, verb, done, persist)

    def _advance(self) -> None:
        self.operations.advance()

    def _state_changed(self, child: Child, old: State, new: State, reason: str) -> None:
        for hook in self.on_state_change:
            hook(child, old, new, reason)

    # ------------------------------------------------------------------ link
    def _boot_extra(self, child: Child) -> dict[str, Any]:
        """What only this child may know: its credential (and, for servers, how to check others'); for a
        live executor, the values of its own secret variables. Travels in the boot arguments (memory)."""
        extra: dict[str, Any] = {"auth": {"client": self.keys.client(child.name)}}
        if child.kind == "executor":
            extra["auth"]["server"] = self.keys.server(list(child.spec.args.get("strategies") or []))
            creds = child.spec.args.get("credentials") or {}
            extra["secrets"] = self.secrets.values([creds.get("api_key_env"), creds.get("secret_env")])
        elif child.kind == "ingestor":
            extra["auth"]["server"] = self.keys.server([c.name for c in self.children.values()
                                                        if c.kind in ("strategy", "executor", "recorder")])
        return extra

    def _send_link(self, child: Child, kind: str, **fields: Any) -> bool:
        try:
            self.link.send_multipart([protocol.link_identity(child.name, child.generation, child.nonce),
                                      protocol.link_message(kind, **fields)], zmq.NOBLOCK)
            return True
        except zmq.ZMQError:
            return False

    def _send_drain(self, child: Child) -> bool:
        return self._send_link(child, protocol.LINK_DRAIN)

    def executors_of(self, strategy: str | None) -> list[Child]:
        """The executors to tell about ``strategy`` (the one it trades on), or every executor (None)."""
        return [c for c in self.children.values() if c.kind == "executor" and
                (strategy is None or strategy in (c.spec.args.get("strategies") or {}))]

    def tell_executors(self, strategy: str | None, **command: Any) -> list[str]:
        reached = []
        for child in self.executors_of(strategy):
            if child.state.alive and child.linked and self._send_link(child, protocol.LINK_COMMAND,
                                                                       strategy=strategy, **command):
                reached.append(child.name)
        return reached

    def set_halt(self, halted: bool, cancel: bool = False, strategy: str | None = None,
                 flatten: bool = False) -> tuple[list[str], str | None]:
        """Halt or resume new orders on every executor (or for one strategy), then keep it across restarts.

        The executors are told first: a halt that cannot be written down still halts (in memory); the
        second value says why it could not be saved, so the operator learns it would not survive a restart."""
        reached = self.tell_executors(strategy, cmd="halt" if halted else "resume", cancel=cancel, flatten=flatten)
        unsaved = self.desired.set_halted(halted, strategy)
        self.log.warning("trading_halted" if halted else "trading_resumed", strategy=strategy or "*",
                         executors=reached, cancel=cancel, flatten=flatten, saved=unsaved is None, error=unsaved)
        return reached, unsaved

    def _handle_link(self, now: float) -> None:
        for _ in range(1000):
            if not self.link.get(zmq.EVENTS) & zmq.POLLIN:  # drained (cheaper than an Again raised per pass)
                return
            try:
                frames = self.link.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            if len(frames) != 2:
                self._bad_link(None, "not one frame after the identity")
                continue
            ident = self._idents.get(frames[0])
            if ident is None:
                ident = protocol.parse_link_identity(frames[0])
                if ident is not None and len(self._idents) < 10_000:  # a child's identity, parsed once
                    self._idents[frames[0]] = ident
            child = self.children.get(ident[0]) if ident else None
            if child is None or ident[1] != child.generation or ident[2] != child.nonce or not child.state.alive:
                continue  # a previous incarnation, a removed child, an impostor, or garbage
            msg = protocol.parse_link_message(frames[1])
            if msg is None:
                self._bad_link(child, "not a link message")
                continue
            try:
                self._link_message(child, msg, now)
            except Exception as exc:  # noqa: BLE001 - one message from one child never takes wispd down
                self.log.exception("link_message_failed", name=child.name, kind=msg.get("t"), error=str(exc))
                self._bad_link(child, f"{type(exc).__name__}: {exc}")

    def _verify_control(self, domain: bytes, address: bytes, mechanism: bytes, creds: list[bytes]) -> str | None:
        pid = peer_pid(address)
        if pid is None:
            return "operator"
        try:
            session = os.getsid(pid)
        except OSError:
            return None  # gone before we could look
        owner = next((c for c in self.children.values() if c.pid is not None and c.pid == session), None)
        if owner is not None:
            self.limited("warning", "control_refused", kind=owner.name, peer_pid=pid, child=owner.name,
                         reason="the control socket is for operators, not for children or what they start")
            return None
        return "operator"

    def _bad_link(self, child: Child | None, why: str) -> None:
        name = child.name if child is not None else "?"
        self.link_bad[name] += 1
        self.limited("warning", "link_bad_message", kind=name, name=name, reason=why)

    def _link_message(self, child: Child, msg: dict[str, Any], now: float) -> None:
        child.last_seen = now
        kind = msg["t"]
        if kind == protocol.LINK_HEARTBEAT:
            return  # last_seen is all a heartbeat says
        if kind == protocol.LINK_HELLO:
            child.linked = True
            if child.kind == "executor":  # halts outlive the executor's restart
                if self.desired.halted:
                    self._send_link(child, protocol.LINK_COMMAND, cmd="halt", cancel=False)
                for name in sorted(self.desired.halted_strategies & set(child.spec.args.get("strategies") or {})):
                    self._send_link(child, protocol.LINK_COMMAND, cmd="halt", strategy=name, cancel=False,
                                    reason="halted by wispctl halt")
        elif kind == protocol.LINK_READY:
            self.lifecycle.ready(child, now)
        elif kind == protocol.LINK_STATUS:
            entry = protocol.clean_status(msg)
            if entry is None:
                self._bad_link(child, "status fields out of bounds")
                return
            child.status = entry
            child.status_history.append(entry)
        elif kind == protocol.LINK_METRICS:
            snapshot = msg.get("m")
            if not isinstance(snapshot, dict):
                self._bad_link(child, "metrics without a snapshot")
                return
            prom, dropped = clean_series(snapshot.get("prom") or {})
            if dropped:
                self._bad_link(child, f"{dropped} malformed metric series dropped")
            child.metrics = snapshot
            child.series.update(prom)
        elif kind == protocol.LINK_DRAINING:
            extend = msg.get("extend")
            if isinstance(extend, int | float) and not isinstance(extend, bool) and math.isfinite(extend) \
                    and extend >= 0:
                granted = self.lifecycle.extend_drain(child, float(extend), now)
                if granted and self.halting:
                    self.notifier.extend_timeout(granted + child.spec.limits.stop_timeout + 5)
            else:
                self._bad_link(child, "draining needs a finite extend of 0 or more seconds")
        elif kind == protocol.LINK_EXIT:
            child.exit_reason = protocol.bounded_text(msg.get("error"), 500)
        else:
            self._bad_link(child, f"unknown link message kind {str(kind)[:40]!r}")

    # ------------------------------------------------------------------ control
    def _handle_control(self) -> None:
        from wispd.control.server import dispatch

        for _ in range(100):
            try:
                frames = self.control.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            envelope, payload = frames[:-1], frames[-1]

            def send(data: bytes, envelope: list[bytes] = envelope) -> None:
                try:
                    self.control.send_multipart([*envelope, data], zmq.NOBLOCK)
                except zmq.ZMQError as exc:
                    self.log.warning("control_reply_failed", error=str(exc))

            dispatch(self, payload, send)

    def on_control_result(self, verb: str, ok: bool) -> None:
        self.control_counts[(verb, "ok" if ok else "error")] += 1

    def _start_metrics(self) -> None:
        """A metrics bind that fails is a start error (exit 78): a daemon that silently serves no /metrics
        (another project on the same port) is worse than one that says so."""
        if not self.daemon.metrics_bind:
            return
        host, _, port = self.daemon.metrics_bind.rpartition(":")
        bearer_env, basic_env = self.daemon.metrics_auth_env
        auth = Auth(self.secrets.take(bearer_env) if bearer_env else None,
                    self.secrets.take(basic_env) if basic_env else None)
        try:
            self.metrics_server = MetricsServer(host.strip("[]"), int(port), self._health_http, auth,
                                                on_want=self._want_metrics)
        except OSError as exc:
            self.log.error("metrics_bind_failed", bind=self.daemon.metrics_bind, error=str(exc))
            raise StartError(f"cannot serve /metrics on {self.daemon.metrics_bind}: {exc.strerror or exc} "
                             "(set daemon.metrics.bind to a free port, or port 0 for any)") from exc
        self.metrics_server.start()
        if not is_loopback(host) and not auth.enabled:
            self.log.warning("metrics_unauthenticated", bind=self.daemon.metrics_bind,
                             fix="set daemon.metrics.bearer_token_env or basic_auth_env")
        self.log.info("metrics_listening", url=self.metrics_url, auth=auth.enabled)
        self._write_metrics_port()

    def _write_metrics_port(self) -> None:
        """The port actually bound (port 0 picks any free one), for status and for tools: run_dir/metrics.port."""
        assert self.metrics_server is not None
        try:
            (self.daemon.run_dir / "metrics.port").write_text(f"{self.metrics_server.port}\n")
        except OSError:
            pass

    def _health_http(self, strict: bool = False) -> tuple[int, dict[str, Any]]:
        """200 ok; degraded is 200 too (wispd runs: a liveness probe must not restart it for a halt) unless
        ``/health?strict``; failing is 503."""
        doc = self.health_doc
        ok = doc.get("status") == "ok" or (doc.get("status") == "degraded" and not strict)
        return (200 if ok else 503), doc

    @property
    def metrics_url(self) -> str | None:
        if self.metrics_server is None:
            return None
        host = self.daemon.metrics_bind.rpartition(":")[0]
        return f"http://{host}:{self.metrics_server.port}/metrics"

    def _observe(self) -> None:
        self.health_doc = observe.health(self)

    def _want_metrics(self) -> None:
        """From the metrics thread: a scrape waits for fresh series; wake the loop to build them."""
        try:
            self._wake_w.send(b"m")
        except OSError:
            pass

    # ------------------------------------------------------------------ status, reload, shutdown
    def status_doc(self, names: list[str] | None = None, history: bool = True) -> dict[str, Any]:
        """``history``: each child's last 20 status lines too (``wispctl status NAME`` or ``--history``);
        without it a status of 100 children stays small and fast."""
        now = time.monotonic()
        children = [c for c in self.ordered() if names is None or c.name in names]
        return {
            "daemon": {
                "pid": os.getpid(),
                "version": __version__,
                "uptime_s": round(now - self.started, 3),
                "config": str(self.daemon.config_path),
                "run_dir": str(self.daemon.run_dir),
                "state_dir": str(self.daemon.state_dir),
                "log_dir": str(self.daemon.log_dir),
                "ready": self.ready_sent,
                "halting": self.halting,
                "trading_halted": self.desired.halted,
                "metrics_url": self.metrics_url,
            },
            "children": [c.snapshot(now, history) for c in children],
        }

    def reload(self, respond: Respond) -> None:
        """Re-read the config; start added children, stop removed ones, restart changed ones only."""
        apply_reload(self, respond)

    def shutdown(self, reason: str) -> None:
        if self.halting:
            self.log.warning("forced_stop", reason=reason)
            for child in self.children.values():
                if child.proc is not None:
                    child.proc.signal_group(signal.SIGKILL)
            return
        self.halting = True
        self.lifecycle.halting = True
        self.log.info("shutdown", reason=reason)
        self.notifier.stopping("stopping children: strategies, then executors, then ingestors")
        for child in self.children.values():
            for op in list(child.ops):
                if not op.begun:
                    child.ops.remove(op)
                    op.finish(False, "wispd is shutting down")
        alive = [c for c in self.ordered(reverse_stop=True) if c.state.alive or c.state == State.BACKOFF]
        self.submit(alive, "stop", lambda results: None, persist=False)

    def _status_line(self) -> str:
        wanted = [c for c in self.children.values() if c.wanted]
        running = sum(1 for c in wanted if c.state == State.RUNNING)
        bad = [f"{c.name} {c.state.value}" for c in wanted if not c.healthy()]
        return f"{running}/{len(wanted)} children running" + (f"; {', '.join(bad[:5])}" if bad else "")

    # ------------------------------------------------------------------ main loop
    def run(self) -> int:
        self._prepare_dirs()
        self.lock.acquire()
        try:
            self._bind()
            self._start_metrics()
            self.log.info("wispd_start", pid=os.getpid(), version=__version__, config=str(self.daemon.config_path),
                          run_dir=str(self.daemon.run_dir), children=len(self.config.children))
            self._load_children()
            boot = [c for c in self.ordered() if c.wanted]
            self._boot_pending = 1

            def booted(results: dict[str, tuple[bool, str]]) -> None:
                self._boot_pending = 0

            self.submit(boot, "start", booted, persist=False)
            self._loop()
            return 0
        finally:
            self._close()

    def _timeout_ms(self, now: float) -> int:
        deadlines = [c.deadline for c in self.children.values() if c.deadline is not None]
        self._soonest = min(deadlines) if deadlines else math.inf
        deadlines.append(self._next_sample)
        if self.stacks.pending:
            deadlines.append(self.stacks.next_due() or now)
        if self.notifier.watchdog_interval:
            deadlines.append(now + self.notifier.watchdog_interval)
        nearest = min(deadlines) - now if deadlines else 1.0
        return max(0, min(1000, int(nearest * 1000) + 1))

    def _loop(self) -> None:
        while True:
            try:
                if self._pass():
                    return
            except Exception as exc:  # noqa: BLE001 - a bug in one pass must not take every child down
                self.pass_errors += 1
                self.limited("error", "supervisor_pass_failed", kind=type(exc).__name__,
                             error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc(limit=12))
                time.sleep(0.01)  # a bug that repeats every pass must not spin the CPU

    def _pass(self) -> bool:
        """One turn of the loop; True once wispd has stopped every child after a shutdown."""
        now = time.monotonic()
        events = dict(self.poller.poll(self._timeout_ms(now)))
        now = time.monotonic()
        if self._wake_r.fileno() in events:
            try:
                while self._wake_r.recv(512):
                    pass
            except BlockingIOError:
                pass
        while self._signals:
            sig = self._signals.pop(0)
            if sig == signal.SIGHUP:
                self.reload(lambda ok, res, code, err: None)
            else:
                self.shutdown(signal.Signals(sig).name)
        if self.zap.sock in events:
            self.zap.handle()
        if self.link in events:
            self._handle_link(now)
        for fd in [fd for fd in events if fd in self._fds]:
            child, proc = self._fds[fd]
            self.lifecycle.on_exit(child, proc, now)
        if self.control in events:
            self._handle_control()
        if now >= self._soonest:  # deadlines set during this pass are due later: the next poll's timeout has them
            for child in list(self.children.values()):
                self.lifecycle.on_deadline(child, now)
        self.stacks.collect(now)
        if now >= self._next_sample:
            self._next_sample = now + self.daemon.sample_interval
            for child in list(self.children.values()):
                self.lifecycle.sample(child)
                self.lifecycle.check_health(child, now)
            self._observe()
        if self.metrics_server is not None and self.metrics_server.wanted:
            self.metrics_server.publish(observe.series(self))
        self._advance()
        self._systemd(now)
        if self.halting and not any(c.state.alive or c.ops for c in self.children.values()):
            self.log.info("wispd_stopped")
            return True
        return False

    def _systemd(self, now: float) -> None:
        self.notifier.watchdog(now)
        if self.halting:
            if now >= self._next_extend:
                self._next_extend = now + 1.0
                longest = max((c.spec.limits.drain_timeout + c.spec.limits.stop_timeout
                               for c in self.children.values()), default=10.0)
                self.notifier.extend_timeout(longest + 5.0)
            return
        if not self.ready_sent and not self._boot_pending and all(c.settled() for c in self.children.values()):
            self.ready_sent = True
            self.notifier.ready(self._status_line())
            self.log.info("ready", status=self._status_line())
        elif self.ready_sent and now >= self._next_status_line:
            self._next_status_line = now + 1.0  # systemd's STATUS=: once a second is plenty, not every pass
            self.notifier.status(self._status_line())

    def _close(self) -> None:
        for child in self.children.values():
            if child.proc is not None:
                child.proc.signal_group(signal.SIGKILL)
        signal.set_wakeup_fd(-1)
        if self.metrics_server is not None:
            self.metrics_server.stop()
        if hasattr(self, "zap"):
            self.zap.close()
        for sock in ("link", "control"):
            if hasattr(self, sock):
                getattr(self, sock).close()
        if hasattr(self, "zmq"):
            self.zmq.term()
        for endpoint in (self.daemon.link_endpoint, self.daemon.control_endpoint):
            try:
                os.unlink(endpoint[len("ipc://"):])
            except OSError:
                pass
        self.lifecycle.launcher.close()
        self.lock.release()
