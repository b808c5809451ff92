"""The /metrics and /health HTTP endpoints: a small asyncio server on its own thread, bounded so that no
client can exhaust it.

- One event loop, no thread per connection. At most ``MAX_CONNECTIONS`` are open at once; when a new one
  arrives at the cap, the oldest connection that has not finished sending its request is dropped (a slow
  or idle client loses its place, a scraper never waits behind a thousand held sockets).
- A request (line and headers, at most 8 KiB) must arrive within ``REQUEST_TIMEOUT`` seconds; every
  response closes the connection. Only GET and HEAD of /metrics, / and /health.
- Optional auth for both paths: a bearer token and/or HTTP basic credentials, read from environment
  variables named in the config (never the secret itself); compared in constant time.
- A scrape asks the supervisor's main loop for fresh series (``on_want``) and waits for them, at most
  ``FRESH_WAIT_S``; the loop builds a plain snapshot of every series on its next pass and swaps it in whole,
  and the text is rendered once per snapshot (``render``), so a scrape never sees half-updated state and
  nothing is built when nobody scrapes.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import resource
import socket
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import orjson
from prometheus_client.utils import floatToGoString

from wispd.metrics.catalogue import CATALOGUE

Series = dict[str, Any]  # {"c": {(name, labels): v}, "g": {...}, "h": {...}}
Health = Callable[[bool], tuple[int, dict[str, Any]]]  # (strict) -> (HTTP status, document)

MAX_CONNECTIONS = 1024  # (wispd raises its fd limit at start; never more than half of it)
REQUEST_TIMEOUT = 5.0
FRESH_WAIT_S = 1.0  # how long a scrape waits for the supervisor to build fresh series
MAX_REQUEST = 8192
BACKLOG = 1024


def render(series: Series) -> bytes:
    """The Prometheus text exposition (0.0.4) of a snapshot: every catalogue family with samples, its HELP
    and TYPE, one line per series (labels in name order, every catalogue label present), histograms as
    cumulative ``_bucket`` lines with ``_count`` and ``_sum``. Written here rather than through
    prometheus_client's generic collector: with 100 children that took most of a scrape's ~60 ms."""
    by_name: dict[str, list[str]] = {}
    if len(_PREFIXES) > PREFIXES_MAX:  # children come and go (a reload): the label sets of the gone ones
        _PREFIXES.clear()
    for kind, want in (("c", "counter"), ("g", "gauge")):
        for key, value in series[kind].items():
            name = key[0]
            meta = CATALOGUE.get(name)
            if meta is not None and meta.type == want:
                by_name.setdefault(name, []).append(f"{_prefixes(key)}{floatToGoString(value)}\n")
    for (name, labels), (bounds, counts, total, _count) in series["h"].items():
        meta = CATALOGUE.get(name)
        if meta is None or meta.type != "histogram":
            continue
        lines = by_name.setdefault(name, [])
        acc = 0
        prefixes = _histogram_prefixes(name, labels, tuple(bounds))
        for prefix, n in zip(prefixes, counts, strict=False):
            acc += n
            lines.append(f"{prefix}{floatToGoString(acc)}\n")
        lines.append(f"{prefixes[-2]}{floatToGoString(acc)}\n")
        lines.append(f"{prefixes[-1]}{floatToGoString(total)}\n")
    out: list[str] = []
    for name, meta in CATALOGUE.items():
        lines = by_name.get(name)
        if not lines:
            continue
        doc = meta.help.replace("\\", r"\\").replace("\n", r"\n")
        out.append(f"# HELP {name} {doc}\n# TYPE {name} {'untyped' if meta.type not in TYPES else meta.type}\n")
        out.extend(lines)
    return "".join(out).encode()


TYPES = ("counter", "gauge", "histogram")
# A line's name and labels, rendered once per label set rather than on every scrape: the label sets of 100
# children stay the same scrape after scrape, and rendering them was half of a scrape's CPU (~5,500 lines
# with 200 children). Only the value is formatted each time.
_PREFIXES: dict[Any, Any] = {}
PREFIXES_MAX = 50_000  # ~9x what 200 children use


def _prefixes(key: tuple[str, tuple[tuple[str, str], ...]]) -> str:
    """``name{labels} `` of a counter or gauge line."""
    prefix = _PREFIXES.get(key)
    if prefix is None:
        prefix = _PREFIXES[key] = f"{key[0]}{_label_text(key[0], key[1])} "
    return prefix  # type: ignore[no-any-return]


def _histogram_prefixes(name: str, labels: tuple[tuple[str, str], ...], bounds: tuple[float, ...]) -> list[str]:
    """The ``_bucket`` line prefixes of a histogram (one per bound, then +Inf), then ``_count`` and ``_sum``."""
    key = ("h", name, labels, bounds)
    have = _PREFIXES.get(key)
    if have is None:
        plain = _label_text(name, labels)
        have = _PREFIXES[key] = [f"{name}_bucket{_label_text(name, labels, bound)} "
                                 for bound in [*map(str, bounds), "+Inf"]] + [f"{name}_count{plain} ",
                                                                             f"{name}_sum{plain} "]
    return have  # type: ignore[no-any-return]


def _label_text(name: str, labels: tuple[tuple[str, str], ...], le: str | None = None) -> str:
    given = dict(labels)
    pairs = [(label, str(given.get(label, ""))) for label in CATALOGUE[name].labels]
    if le is not None:
        pairs.append(("le", le))
    if not pairs:
        return ""
    pairs.sort()
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in pairs) + "}"


def _escape(value: str) -> str:
    if "\\" in value or '"' in value or "\n" in value:
        return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r'\"')
    return value


class Auth:
    """Bearer token and/or basic credentials (``user:password``); no auth when neither is given."""

    def __init__(self, bearer: str | None = None, basic: str | None = None) -> None:
        self.bearer = bearer.encode() if bearer else None
        self.basic = base64.b64encode(basic.encode()) if basic else None

    @property
    def enabled(self) -> bool:
        return bool(self.bearer or self.basic)

    def allows(self, header: bytes | None) -> bool:
        if not self.enabled:
            return True
        if header is None:
            return False
        scheme, _, value = header.strip().partition(b" ")
        value = value.strip()
        if self.bearer and scheme.lower() == b"bearer" and hmac.compare_digest(value, self.bearer):
            return True
        return bool(self.basic and scheme.lower() == b"basic" and hmac.compare_digest(value, self.basic))


class MetricsServer:
    def __init__(self, host: str, port: int, health: Health, auth: Auth | None = None,
                 on_want: Callable[[], None] | None = None) -> None:
        self.series: Series = {"c": {}, "g": {}, "h": {}}
        # A scrape asks for fresh series (``on_want`` wakes the supervisor's loop, which builds them on its
        # next pass and ``publish``es); it waits at most FRESH_WAIT_S, then serves the last snapshot.
        self.on_want = on_want
        self.wanted = False
        self._waiters: list[asyncio.Future[None]] = []
        self.health = health
        self.auth = auth or Auth()
        self._rendered: bytes | None = None
        self._render_lock = threading.Lock()
        # Bound here, in the caller's thread, so that a port in use is an error at start, not in a thread.
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.create_server((host, port), family=family, backlog=BACKLOG)
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]
        self.loop = asyncio.new_event_loop()
        self.conns: OrderedDict[int, tuple[asyncio.StreamWriter, bool]] = OrderedDict()  # id -> (writer, busy)
        self.evicted = 0
        self.thread = threading.Thread(target=self._run, name="wispd-metrics", daemon=True)
        self._server: asyncio.Server | None = None
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        self.max_connections = min(MAX_CONNECTIONS, max(16, soft // 2))

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self._server = self.loop.run_until_complete(
            asyncio.start_server(self._serve, sock=self.sock, limit=MAX_REQUEST, backlog=BACKLOG))
        self.loop.run_forever()
        self._server.close()
        for writer, _ in list(self.conns.values()):
            writer.transport.abort()
        self.loop.run_until_complete(asyncio.sleep(0))
        self.loop.close()

    def stop(self) -> None:
        if self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)
        self.sock.close()

    def publish(self, series: Series) -> None:
        """From the supervisor's loop: new series; scrapes waiting for them go on."""
        self.series = series
        self._rendered = None
        self.wanted = False
        if self.thread.is_alive():
            try:
                self.loop.call_soon_threadsafe(self._release)
            except RuntimeError:  # the loop is closed (shutting down)
                pass

    def _release(self) -> None:
        waiters, self._waiters = self._waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    async def _fresh(self) -> None:
        if self.on_want is None:
            return
        fut = self.loop.create_future()
        self._waiters.append(fut)
        if not self.wanted:
            self.wanted = True
            self.on_want()
        try:
            await asyncio.wait_for(fut, FRESH_WAIT_S)
        except TimeoutError:
            pass

    # ------------------------------------------------------------------ serving
    def _admit(self, key: int, writer: asyncio.StreamWriter) -> bool:
        """Make room for a new connection: drop the oldest one still sending its request."""
        if len(self.conns) >= self.max_connections:
            idle = next((k for k, (_, busy) in self.conns.items() if not busy), None)
            if idle is None:
                return False
            old, _ = self.conns.pop(idle)
            old.transport.abort()
            self.evicted += 1
        self.conns[key] = (writer, False)
        return True

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        key = id(writer)
        if not self._admit(key, writer):
            writer.transport.abort()
            return
        try:
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), REQUEST_TIMEOUT)
            except (asyncio.LimitOverrunError, ValueError):
                await self._respond(writer, 431, b"text/plain", b"request header too large\n")
                return
            except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
                return
            self.conns[key] = (writer, True)
            status, ctype, body = self._route(head)
            if body is None:  # the exposition: built for this scrape
                await self._fresh()
                body = self.render()
            await self._respond(writer, status, ctype, body, head_only=head.startswith(b"HEAD "))
        except ConnectionError:
            pass
        finally:
            self.conns.pop(key, None)
            writer.transport.abort() if writer.transport.is_closing() else writer.close()

    def _route(self, head: bytes) -> tuple[int, bytes, bytes | None]:
        """(status, content type, body); body None for the metrics exposition (rendered once it is fresh)."""
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ")
        if len(parts) != 3 or parts[0] not in (b"GET", b"HEAD"):
            return 405, b"text/plain", b"only GET and HEAD\n"
        path, _, query = parts[1].partition(b"?")
        auth = next((ln.split(b":", 1)[1] for ln in lines[1:] if ln.lower().startswith(b"authorization:")), None)
        if path not in (b"/metrics", b"/", b"/health"):
            return 404, b"text/plain", b"wispd serves /metrics and /health\n"
        if not self.auth.allows(auth):
            return 401, b"text/plain", b"authorization required\n"
        if path == b"/health":
            status, doc = self.health(b"strict" in query.split(b"&") or query.startswith(b"strict="))
            return status, b"application/json", orjson.dumps(doc)
        return 200, b"text/plain; version=0.0.4; charset=utf-8", None

    def render(self) -> bytes:
        """The exposition text of the current snapshot, rendered once per snapshot."""
        rendered = self._rendered
        if rendered is None:
            with self._render_lock:
                rendered = self._rendered = render(self.series)
        return rendered

    async def _respond(self, writer: asyncio.StreamWriter, status: int, ctype: bytes, body: bytes,
                       head_only: bool = False) -> None:
        reason = {200: b"OK", 401: b"Unauthorized", 404: b"Not Found", 405: b"Method Not Allowed",
                  431: b"Request Header Fields Too Large", 503: b"Service Unavailable"}.get(status, b"OK")
        extra = b'WWW-Authenticate: Bearer realm="wispd"\r\n' if status == 401 else b""
        writer.write(b"HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\nConnection: close\r\n%s\r\n"
                     % (status, reason, ctype, len(body), extra) + (b"" if head_only else body))
        await asyncio.wait_for(writer.drain(), REQUEST_TIMEOUT)
