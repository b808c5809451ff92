"""A data directory: segment files by exchange and day, listed, pruned and read back in time order.

Layout: ``<root>/<exchange>/<YYYY-MM-DD>/<HHMMSS>-<origin>.wseg`` (plus its ``.idx``), where the time is the
segment's first record (UTC) and the origin says what wrote it (a recorder's name, ``tardis``, ``ohlcv``,
``download``, ``generated``). Everything under the root is one collection: a backtest merges every segment
that overlaps its window by receive time.
"""

from __future__ import annotations

import heapq
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from wispd.data import segments
from wispd.data.segments import PART, SUFFIX, Index, Record


def segment_path(root: Path, exchange: str, t_us: int, origin: str) -> Path:
    """Where a new segment starting at ``t_us`` goes (a counter suffix if that name is taken)."""
    stamp = time.gmtime(t_us / 1e6)
    day = root / exchange / time.strftime("%Y-%m-%d", stamp)
    base = time.strftime("%H%M%S", stamp) + f"-{origin}"
    path, n = day / (base + SUFFIX), 1
    while path.exists() or path.with_name(path.name[:-len(SUFFIX)] + PART).exists():
        path, n = day / f"{base}.{n}{SUFFIX}", n + 1
    return path


_NAME = re.compile(r"^\d{6}-(.+?)(?:\.\d+)?\.wseg(?:\.part)?$")


def origin_of(path: Path) -> str | None:
    """What wrote a segment (from its name: ``<HHMMSS>-<origin>[.n].wseg``)."""
    match = _NAME.match(path.name)
    return match.group(1) if match else None


def finished(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*" + SUFFIX) if p.is_file())


def open_parts(root: Path) -> list[Path]:
    """Segments left open (a recorder running now, or one killed): their finished names."""
    return sorted(p.with_name(p.name[:-len(PART)] + SUFFIX) for p in root.rglob("*" + PART))


@dataclass
class Segment:
    path: Path
    index: Index

    @property
    def size(self) -> int:
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0


def segments_of(root: Path, t_from_us: int | None = None, t_to_us: int | None = None) -> list[Segment]:
    out = []
    for path in finished(root):
        index = segments.read_index(path)
        if index.t_first is None or index.t_last is None:
            continue
        if (t_to_us is not None and index.t_first >= t_to_us) or (t_from_us is not None and index.t_last < t_from_us):
            continue
        out.append(Segment(path, index))
    return out


def replay(root: Path, t_from_us: int | None = None, t_to_us: int | None = None,
           topics: set[bytes] | None = None) -> Iterator[Record]:
    """Every record in [from, to) of every segment, merged by receive time (ties: segment order, then file
    order, so the merge is the same on every machine)."""
    segs = segments_of(root, t_from_us, t_to_us)
    streams = [segments.read_records(s.path, t_from_us, t_to_us) for s in segs]
    merged = streams[0] if len(streams) == 1 else heapq.merge(*streams, key=lambda r: r.recv_us)
    for rec in merged:
        if topics is None or rec.type != segments.T_FRAME or rec.topic in topics:
            yield rec


def summary(root: Path) -> dict[str, Any]:
    """What is recorded: per exchange and topic, records, first and last time; and the total size."""
    topics: dict[str, dict[str, Any]] = {}
    total_bytes, count, gaps = 0, 0, 0
    segs = segments_of(root)
    for seg in segs:
        total_bytes += seg.size
        count += seg.index.count
        gaps += seg.index.gaps
        for name, (n, t0, t1) in seg.index.topics.items():
            have = topics.setdefault(name, {"records": 0, "first_us": t0, "last_us": t1})
            have["records"] += n
            have["first_us"] = min(have["first_us"], t0)
            have["last_us"] = max(have["last_us"], t1)
    return {"root": str(root), "segments": len(segs), "open": [str(p) for p in open_parts(root)],
            "bytes": total_bytes, "records": count, "gaps": gaps, "topics": dict(sorted(topics.items()))}


def prune(root: Path, keep_s: float, keep_bytes: int, now_s: float | None = None) -> list[Path]:
    """Delete finished segments older than ``keep_s`` (0: no age limit), then the oldest while the total is
    above ``keep_bytes`` (0: no size limit). Open segments are never touched."""
    now_s = time.time() if now_s is None else now_s
    segs = sorted(segments_of(root), key=lambda s: s.index.t_last or 0)
    removed = []
    total = sum(s.size for s in segs)
    for seg in segs:
        old = keep_s > 0 and (seg.index.t_last or 0) / 1e6 < now_s - keep_s
        big = keep_bytes > 0 and total > keep_bytes
        if not (old or big):
            continue
        total -= seg.size
        for p in (seg.path, seg.path.with_name(seg.path.name[:-len(SUFFIX)] + segments.INDEX)):
            p.unlink(missing_ok=True)
        removed.append(seg.path)
    for day in sorted({p.parent for p in removed}, reverse=True):
        try:
            os.rmdir(day)
        except OSError:
            pass
    return removed


def meta_record(t_us: int, doc: dict[str, Any]) -> Record:
    return Record(t_us, segments.T_META, orjson.dumps(doc))


def history_record(t_us: int, topic: bytes, candles: list[dict[str, Any]]) -> Record:
    return Record(t_us, segments.T_HISTORY, orjson.dumps({"topic": topic.decode(), "candles": candles}))


def gap_record(t_us: int, topic: bytes, epoch: int, after: int, nxt: int) -> Record:
    return Record(t_us, segments.T_GAP, orjson.dumps({"topic": topic.decode(errors="replace"), "epoch": epoch,
                                                      "after": after, "next": nxt}))


def markets(root: Path, t_to_us: int | None = None) -> dict[str, dict[str, Any]]:
    """Market rules per ``exchange`` -> ``market:symbol`` from the meta records (the newest before ``t_to``)."""
    out: dict[str, dict[str, Any]] = {}
    metas = [m for seg in segments_of(root, None, t_to_us) for m in seg.index.meta
             if t_to_us is None or m.get("t_us", 0) < t_to_us]
    for doc in sorted(metas, key=lambda m: m.get("t_us", 0)):
        if isinstance(doc.get("markets"), dict) and isinstance(doc.get("exchange"), str):
            out.setdefault(doc["exchange"], {}).update(doc["markets"])
    return out
