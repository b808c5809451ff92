"""The recorder child kind: one more subscriber of an ingestor, writing what it hears to segment files.

What it writes is what every strategy received, byte for byte, with the receive time: a backtest replays
the feed the live strategies saw, not someone else's capture. Sequence numbers are checked per topic; a
gap (frames the bus dropped before the recorder got them, e.g. at its high-water mark) is written as a
gap record, so a replay knows what it lacks. Each segment starts with the market rules of the recorded
pairs (a meta record), so a backtest knows their tick, lot and fee sizes.

Crash safety: see ``segments.py`` (every received batch is in the tail file at once; a restart finishes
what a kill -9 left open). A full disk keeps what was received in memory (bounded) and retries each
second; status and ``wispd_recorder_backlog`` say so.
"""

from __future__ import annotations

import errno
import time
from pathlib import Path
from typing import Any

import orjson
import zmq

from wispd import protocol
from wispd.data import segments, store
from wispd.data.segments import Record, SegmentWriter
from wispd.protocol import Topic
from wispd.runtime.context import ChildContext
from wispd.transport import limits

EX_CONFIG = 78
BACKLOG_MAX = 2_000_000  # records held in memory while the disk refuses them; beyond, the oldest go (counted)
MAX_FRAME = 16 * 1024 * 1024
HISTORY_CANDLES = 1000  # per recorded kline topic, at the start of every segment


class Recorder:
    def __init__(self, ctx: ChildContext, args: dict[str, Any]) -> None:
        self.ctx, self.log = ctx, ctx.log
        self.exchange: str = args["exchange"]
        self.endpoints: dict[str, str] = args["endpoints"]
        self.root = Path(args["path"])
        self.pairs = [(m, s) for m, s in args["pairs"]]
        self.channels: list[str] = list(args["channels"])
        self.segment_s = float(args.get("segment_seconds", 3600.0))
        self.segment_bytes = int(args.get("segment_bytes", 256 * 1024 * 1024))
        self.keep_s = float(args.get("keep_days", 30.0)) * 86_400
        self.keep_bytes = int(args.get("keep_bytes", 0))
        self.writer: SegmentWriter | None = None
        self.segment_end = 0.0
        self.last_seq: dict[bytes, tuple[int, int]] = {}
        self.backlog: list[Record] = []
        self.lost = 0
        self.records = 0
        self.gaps = 0
        self.disk_error = ""
        self.markets: dict[str, Any] = {}
        self.finished_bytes = 0
        self.zctx = zmq.Context()

    def topics(self) -> list[bytes]:
        out = []
        for market, symbol in self.pairs:
            for channel in self.channels:
                if channel == "funding" and market != "perp":
                    continue
                out.append(Topic(self.exchange, market, symbol, channel).encode() + b" ")
        return out

    # ------------------------------------------------------------------ segments
    def _open(self, now_s: float) -> None:
        t_us = int(now_s * 1e6)
        head = [store.meta_record(t_us, {"exchange": self.exchange, "markets": self.markets, "recorder": self.ctx.name}),
                *self._history(t_us)]  # asked before the file exists: a segment is never opened empty
        path = store.segment_path(self.root, self.exchange, t_us, self.ctx.name)
        self.writer = SegmentWriter(path)
        self.segment_end = (now_s // self.segment_s + 1) * self.segment_s  # on the hour (or period) boundary
        self.writer.append(head, now_s)

    def _rotate(self, now_s: float) -> None:
        if self.writer is not None:
            index = self.writer.finish()
            self.log.info("segment_finished", path=str(self.writer.path), records=index.count, gaps=index.gaps,
                          bytes=self.writer.bytes_written)
            self.writer = None
        removed = store.prune(self.root, self.keep_s, self.keep_bytes, now_s)
        if removed:
            self.log.info("segments_pruned", count=len(removed), oldest=str(removed[0]))
        self.finished_bytes = sum(s.size for s in store.segments_of(self.root))
        self._open(now_s)

    def _write(self, records: list[Record], now_s: float) -> None:
        if self.backlog:
            records = self.backlog + records
            self.backlog = []
        try:
            if self.writer is None or now_s >= self.segment_end or self.writer.bytes_written >= self.segment_bytes:
                self._rotate(now_s)
            assert self.writer is not None
            if records:
                self.writer.append(records, now_s)
            elif self.writer.due(now_s):
                self.writer.flush_block()
            if self.disk_error:
                self.log.warning("recorder_disk_ok", path=str(self.root))
                self.disk_error = ""
        except OSError as exc:
            if not self.disk_error:
                self.log.error("recorder_disk_error", path=str(self.root), error=str(exc),
                               effect="what arrives is kept in memory and written once the disk takes it")
            self.disk_error = f"{exc.strerror or exc} ({errno.errorcode.get(exc.errno or 0, '?')})"
            self.backlog = records[-BACKLOG_MAX:]
            self.lost += max(0, len(records) - BACKLOG_MAX)
            if self.writer is not None:
                try:
                    self.writer.abandon()  # recover() finishes it on the next open
                except OSError:
                    pass
                self.writer = None

    # ------------------------------------------------------------------ the feed
    def _frames(self, sub: zmq.Socket) -> list[Record]:
        out: list[Record] = []
        for _ in range(20_000):
            try:
                frame = sub.recv(zmq.NOBLOCK)
            except zmq.Again:
                break
            recv_us = time.time_ns() // 1000
            topic, _, payload = frame.partition(b" ")
            try:
                env = orjson.loads(payload)
                epoch, seq = int(env["epoch"]), int(env["seq"])
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                continue  # not a market-data frame (the ingestor never sends one): nothing to replay
            last = self.last_seq.get(topic)
            if last is not None and last[0] == epoch and seq > last[1] + 1:
                out.append(store.gap_record(recv_us, topic, epoch, last[1], seq))
                self.gaps += 1
            self.last_seq[topic] = (epoch, seq)
            out.append(Record(recv_us, segments.T_FRAME, frame))
        self.records += sum(1 for r in out if r.type == segments.T_FRAME)
        return out

    def _request(self, op: str, timeout: float, **fields: Any) -> dict[str, Any] | None:
        """One request to the ingestor's snapshot endpoint (heartbeating while it waits); None if unanswered."""
        sock = self.zctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        try:
            self.ctx.credentials.client(sock, self.endpoints["snapshot"], plain=False)
            sock.connect(self.endpoints["snapshot"])
            rid, frame = protocol.snap_request(op, **fields)
            sock.send(frame)
            end = time.monotonic() + timeout
            while time.monotonic() < end and not self.ctx.stopping:
                self.ctx.beat()
                if sock.poll(100):
                    reply = protocol.loads_dict(sock.recv_multipart()[-1]) or {}
                    if reply.get("id") == rid:
                        return reply if reply.get("ok") else None
            return None
        finally:
            sock.close()

    def _fetch_markets(self) -> None:
        reply = self._request("markets", 10.0, symbols=[list(p) for p in self.pairs])
        if reply is not None:
            self.markets = dict(reply.get("markets") or {})
            return
        self.log.warning("recorder_no_markets", exchange=self.exchange,
                         effect="segments carry no market rules; a backtest needs them from another segment")

    def _history(self, t_us: int) -> list[Record]:
        """The candle history the ingestor serves now, per recorded kline topic (so a backtest that starts in
        this segment answers ``klines()`` as live did)."""
        out = []
        for prefix in self.topics():
            topic = prefix.rstrip(b" ")
            if b".kline." not in topic:
                continue
            reply = self._request("history", 5.0, topic=topic.decode(), limit=HISTORY_CANDLES)
            if reply is not None:
                out.append(store.history_record(t_us, topic, list(reply.get("candles") or [])))
        return out

    def _status(self) -> None:
        data_bytes = self.finished_bytes + (self.writer.bytes_written if self.writer is not None else 0)
        phase = "recording" if not self.disk_error else "disk error"
        note = f"; disk: {self.disk_error}, {len(self.backlog)} held" if self.disk_error else ""
        self.ctx.status(phase, f"{self.records} frames, {self.gaps} gaps, {data_bytes / 1e6:.1f} MB in "
                        f"{self.root}{note}", records=self.records, gaps=self.gaps, bytes=data_bytes,
                        lost=self.lost)
        labels = {"recorder": self.ctx.name, "exchange": self.exchange}
        self.ctx.metrics({"prom": {"c": [["wispd_recorder_records_total", labels, self.records],
                                         ["wispd_recorder_gaps_total", labels, self.gaps]],
                                   "g": [["wispd_recorder_bytes", {"recorder": self.ctx.name}, data_bytes],
                                         ["wispd_recorder_backlog", {"recorder": self.ctx.name}, len(self.backlog)]],
                                   "h": []}})

    def run(self) -> int:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe = self.root / f".probe-{self.ctx.name}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            msg = f"the data directory {self.root} is not writable: {exc.strerror or exc}"
            self.log.error("recorder_config_error", error=msg)
            self.ctx.exiting(msg)
            return EX_CONFIG
        for left_open in store.open_parts(self.root / self.exchange):
            if store.origin_of(left_open) == self.ctx.name:
                index = segments.recover(left_open)
                self.log.warning("segment_recovered", path=str(left_open), records=index.count if index else 0)
        sub = limits(self.zctx.socket(zmq.SUB), max_msg=MAX_FRAME, rcvhwm=1_000_000)
        self.ctx.credentials.client(sub, self.endpoints["pub"], plain=False)
        sub.connect(self.endpoints["pub"])
        for prefix in self.topics():
            sub.setsockopt(zmq.SUBSCRIBE, prefix)
        self._fetch_markets()
        self._write([], time.time())
        self.ctx.ready(topics=len(self.topics()), path=str(self.root))
        poller = zmq.Poller()
        poller.register(sub, zmq.POLLIN)
        poller.register(self.ctx.link_socket, zmq.POLLIN)
        next_status = 0.0
        try:
            while not self.ctx.stopping:
                events = dict(poller.poll(200))
                if self.ctx.link_socket in events:
                    self.ctx.handle_link()
                records = self._frames(sub) if sub in events else []
                self._write(records, time.time())
                self.ctx.beat()
                if time.monotonic() >= next_status:
                    next_status = time.monotonic() + 5.0
                    self._status()
            self._write(self._frames(sub), time.time())
            if self.writer is not None:
                self.writer.finish()
                self.writer = None
        finally:
            sub.close()
            self.zctx.term()
        self.log.info("recorder_stop", records=self.records, gaps=self.gaps, held=len(self.backlog))
        return 0


def main(ctx: ChildContext) -> int:
    return Recorder(ctx, ctx.args).run()
