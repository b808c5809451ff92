"""Segment files: market data at rest, exactly as it crossed the bus, with its receive time.

One format for everything that lands in a data directory: what the recorder heard on the bus, what the
importers convert (Tardis CSV, OHLCV files) and what ``wispctl data download`` fetched through ccxt. The
backtest replayer reads only this.

Layout of one segment (``<hour>.wseg``)::

    b"WSEG1\\n"
    block*    block = header (BLOCK: magic, records, raw bytes, compressed bytes, first/last time, crc32)
                      + zlib(records)
    record    = recv_us (int64) | type (uint8) | length (uint32) | bytes
                type 0: a market-data frame (topic, space, envelope), byte for byte as received
                type 1: a gap (JSON: topic, epoch, after, next): frames the bus dropped before us
                type 2: meta (JSON: market rules, the source), so a backtest knows tick and lot sizes
                type 3: candle history (JSON: topic, candles) as the ingestor served it at that time, so
                        a backtest starting here answers ``klines()`` as live did

An open segment is ``<hour>.wseg.part`` plus ``<hour>.wseg.tail``: every received batch is appended to the
tail at once (uncompressed, numbered), and every ``BLOCK_RECORDS`` records or ``BLOCK_SECONDS`` the tail's
records are compressed into one block of the part file and the tail is emptied. A kill -9 at any point
loses nothing that was received: ``recover`` keeps the part file's whole blocks (CRC-checked), appends the
tail records that no block holds (by number), and finishes the segment. Finishing writes the index
(``<hour>.wseg.idx``: per topic counts and times, per block offsets) and renames the part file into place
(atomic), so a finished segment is never half-written.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

MAGIC = b"WSEG1\n"
BLOCK = struct.Struct("<4sIIIqqI")  # b"BLK1", records, raw length, compressed length, first us, last us, crc32
BLOCK_MAGIC = b"BLK1"
RECORD = struct.Struct("<qBI")  # recv_us, type, length
TAIL_RECORD = struct.Struct("<QqBI")  # number in the segment, recv_us, type, length
T_FRAME, T_GAP, T_META, T_HISTORY = 0, 1, 2, 3
BLOCK_RECORDS = 4000
BLOCK_SECONDS = 2.0
SUFFIX, PART, TAIL, INDEX = ".wseg", ".wseg.part", ".wseg.tail", ".wseg.idx"


@dataclass
class Record:
    recv_us: int
    type: int
    data: bytes

    @property
    def topic(self) -> bytes:
        if self.type == T_FRAME:
            return self.data.split(b" ", 1)[0]
        return b""


@dataclass
class Index:
    """What a segment holds: counts and time range per topic, and where each block starts."""

    count: int = 0
    t_first: int | None = None
    t_last: int | None = None
    gaps: int = 0
    topics: dict[str, list[int]] = field(default_factory=dict)  # topic -> [count, first us, last us]
    blocks: list[list[int]] = field(default_factory=list)  # [offset, records, first us, last us]
    meta: list[dict[str, Any]] = field(default_factory=list)  # the meta records (market rules), in order

    def add(self, rec: Record) -> None:
        self.count += 1
        self.t_first = rec.recv_us if self.t_first is None else min(self.t_first, rec.recv_us)
        self.t_last = rec.recv_us if self.t_last is None else max(self.t_last, rec.recv_us)
        if rec.type == T_GAP:
            self.gaps += 1
        elif rec.type == T_META:
            try:
                doc = orjson.loads(rec.data)
            except orjson.JSONDecodeError:
                return
            if isinstance(doc, dict):
                self.meta.append({"t_us": rec.recv_us, **doc})
        elif rec.type == T_FRAME:
            name = rec.topic.decode(errors="replace")
            have = self.topics.get(name)
            if have is None:
                self.topics[name] = [1, rec.recv_us, rec.recv_us]
            else:
                have[0] += 1
                have[2] = rec.recv_us

    def doc(self) -> dict[str, Any]:
        return {"v": 1, "count": self.count, "t_first": self.t_first, "t_last": self.t_last, "gaps": self.gaps,
                "topics": self.topics, "blocks": self.blocks, "meta": self.meta}

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Index:
        return cls(doc.get("count", 0), doc.get("t_first"), doc.get("t_last"), doc.get("gaps", 0),
                   dict(doc.get("topics") or {}), list(doc.get("blocks") or []), list(doc.get("meta") or []))


class CorruptSegment(Exception):
    pass


def encode_records(records: list[Record]) -> bytes:
    return b"".join(RECORD.pack(r.recv_us, r.type, len(r.data)) + r.data for r in records)


def decode_records(raw: bytes) -> Iterator[Record]:
    pos, end, size = 0, len(raw), RECORD.size
    while pos < end:
        recv_us, kind, length = RECORD.unpack_from(raw, pos)
        pos += size
        yield Record(recv_us, kind, raw[pos:pos + length])
        pos += length


def _block_bytes(records: list[Record]) -> bytes:
    raw = encode_records(records)
    comp = zlib.compress(raw, 6)
    return BLOCK.pack(BLOCK_MAGIC, len(records), len(raw), len(comp), records[0].recv_us, records[-1].recv_us,
                      zlib.crc32(comp)) + comp


class SegmentWriter:
    """Appends records to one open segment (see the module docstring for what survives a kill -9)."""

    def __init__(self, path: Path, *, fsync: bool = True) -> None:
        self.path = path  # the finished name (<hour>.wseg)
        self.part = path.with_name(path.name[:-len(SUFFIX)] + PART)
        self.tail_path = path.with_name(path.name[:-len(SUFFIX)] + TAIL)
        self.fsync = fsync
        path.parent.mkdir(parents=True, exist_ok=True)
        if self.part.exists() or self.tail_path.exists():
            recover(path)
        if path.exists():
            raise FileExistsError(f"segment {path} is already finished")
        self.fd = os.open(self.part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.write(self.fd, MAGIC)
        self.offset = len(MAGIC)
        self.tail = os.open(self.tail_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        self.index = Index()
        self.pending: list[Record] = []
        self.numbered = 0  # records given a number (in a block or in the tail)
        self.first_pending_s: float | None = None
        self.bytes_written = self.offset

    def append(self, records: list[Record], now_s: float) -> None:
        """Add received records: in the tail at once (one write), in a compressed block soon."""
        if not records:
            return
        out = []
        for rec in records:
            out.append(TAIL_RECORD.pack(self.numbered, rec.recv_us, rec.type, len(rec.data)))
            out.append(rec.data)
            self.numbered += 1
        os.write(self.tail, b"".join(out))
        self.pending.extend(records)
        if self.first_pending_s is None:
            self.first_pending_s = now_s
        if len(self.pending) >= BLOCK_RECORDS or now_s - self.first_pending_s >= BLOCK_SECONDS:
            self.flush_block()

    def due(self, now_s: float) -> bool:
        return self.first_pending_s is not None and now_s - self.first_pending_s >= BLOCK_SECONDS

    def flush_block(self) -> None:
        if not self.pending:
            return
        data = _block_bytes(self.pending)
        os.write(self.fd, data)
        self.index.blocks.append([self.offset, len(self.pending), self.pending[0].recv_us, self.pending[-1].recv_us])
        for rec in self.pending:
            self.index.add(rec)
        self.offset += len(data)
        self.bytes_written += len(data)
        self.pending = []
        self.first_pending_s = None
        os.ftruncate(self.tail, 0)
        os.lseek(self.tail, 0, os.SEEK_SET)

    def finish(self) -> Index:
        """Flush, write the index, move the segment into place (it is read-only from here on)."""
        self.flush_block()
        if self.fsync:
            os.fsync(self.fd)
        os.close(self.fd)
        os.close(self.tail)
        _write_index(self.path, self.index)
        os.replace(self.part, self.path)
        self.tail_path.unlink(missing_ok=True)
        if self.fsync:
            _fsync_dir(self.path.parent)
        return self.index

    def abandon(self) -> None:
        """Close without finishing (tests of crash recovery; ``recover`` finishes it later)."""
        os.close(self.fd)
        os.close(self.tail)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_index(path: Path, index: Index) -> None:
    idx = path.with_name(path.name[:-len(SUFFIX)] + INDEX)
    tmp = idx.with_name(idx.name + ".tmp")
    tmp.write_bytes(orjson.dumps(index.doc()))
    os.replace(tmp, idx)


def read_blocks(path: Path, strict: bool = True) -> Iterator[tuple[int, list[Record]]]:
    """(offset, records) of every block. ``strict`` raises on damage; otherwise stops at the first bad
    block (what a kill -9 can leave at the end of a part file)."""
    with open(path, "rb") as fh:
        if fh.read(len(MAGIC)) != MAGIC:
            if strict:
                raise CorruptSegment(f"{path}: not a wispd segment")
            return
        offset = len(MAGIC)
        while True:
            head = fh.read(BLOCK.size)
            if not head:
                return
            if len(head) < BLOCK.size:
                if strict:
                    raise CorruptSegment(f"{path}: truncated block header at byte {offset}")
                return
            magic, n, raw_len, comp_len, _t0, _t1, crc = BLOCK.unpack(head)
            comp = fh.read(comp_len)
            if magic != BLOCK_MAGIC or len(comp) != comp_len or zlib.crc32(comp) != crc:
                if strict:
                    raise CorruptSegment(f"{path}: damaged block at byte {offset}")
                return
            raw = zlib.decompress(comp)
            records = list(decode_records(raw))
            if len(raw) != raw_len or len(records) != n:
                if strict:
                    raise CorruptSegment(f"{path}: block at byte {offset} does not hold what its header says")
                return
            yield offset, records
            offset += BLOCK.size + comp_len


def read_tail(path: Path) -> list[tuple[int, Record]]:
    """The numbered records of a tail file, up to the first incomplete one."""
    out = []
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return out
    pos, size = 0, TAIL_RECORD.size
    while pos + size <= len(raw):
        number, recv_us, kind, length = TAIL_RECORD.unpack_from(raw, pos)
        if pos + size + length > len(raw):
            break
        out.append((number, Record(recv_us, kind, raw[pos + size:pos + size + length])))
        pos += size + length
    return out


def recover(path: Path) -> Index | None:
    """Finish a segment left open by a crash: its whole blocks, then the tail records no block holds."""
    part = path.with_name(path.name[:-len(SUFFIX)] + PART)
    tail = path.with_name(path.name[:-len(SUFFIX)] + TAIL)
    blocks: list[tuple[int, list[Record]]] = list(read_blocks(part, strict=False)) if part.exists() else []
    held = sum(len(r) for _, r in blocks)
    rest = [rec for number, rec in read_tail(tail) if number >= held]
    if not blocks and not rest:
        part.unlink(missing_ok=True)
        tail.unlink(missing_ok=True)
        return None
    index = Index()
    tmp = path.with_name(path.name + ".recover")
    with open(tmp, "wb") as fh:
        fh.write(MAGIC)
        for records in [r for _, r in blocks] + ([rest] if rest else []):
            offset = fh.tell()
            fh.write(_block_bytes(records))
            index.blocks.append([offset, len(records), records[0].recv_us, records[-1].recv_us])
            for rec in records:
                index.add(rec)
        fh.flush()
        os.fsync(fh.fileno())
    _write_index(path, index)
    os.replace(tmp, path)
    part.unlink(missing_ok=True)
    tail.unlink(missing_ok=True)
    return index


def read_index(path: Path) -> Index:
    """A finished segment's index (rebuilt from its blocks when the index file is missing)."""
    idx = path.with_name(path.name[:-len(SUFFIX)] + INDEX)
    try:
        return Index.from_doc(orjson.loads(idx.read_bytes()))
    except (OSError, orjson.JSONDecodeError):
        index = Index()
        for offset, records in read_blocks(path):
            index.blocks.append([offset, len(records), records[0].recv_us, records[-1].recv_us])
            for rec in records:
                index.add(rec)
        _write_index(path, index)
        return index


def read_records(path: Path, t_from_us: int | None = None, t_to_us: int | None = None) -> Iterator[Record]:
    """Every record of a finished segment in file order, skipping whole blocks outside [from, to)."""
    index = read_index(path)
    with open(path, "rb") as fh:
        for offset, _n, t0, t1 in index.blocks:
            if (t_to_us is not None and t0 >= t_to_us) or (t_from_us is not None and t1 < t_from_us):
                continue
            fh.seek(offset)
            magic, _n2, _raw_len, comp_len, _a, _b, crc = BLOCK.unpack(fh.read(BLOCK.size))
            comp = fh.read(comp_len)
            if magic != BLOCK_MAGIC or zlib.crc32(comp) != crc:
                raise CorruptSegment(f"{path}: damaged block at byte {offset}")
            for rec in decode_records(zlib.decompress(comp)):
                if (t_from_us is None or rec.recv_us >= t_from_us) and (t_to_us is None or rec.recv_us < t_to_us):
                    yield rec


def write_segment(path: Path, records: list[Record]) -> Index:
    """Write a whole segment at once (importers, downloads, generated data): sorted by receive time."""
    records = sorted(records, key=lambda r: r.recv_us)
    writer = SegmentWriter(path, fsync=False)
    for i in range(0, len(records), BLOCK_RECORDS):
        writer.pending = records[i:i + BLOCK_RECORDS]
        writer.flush_block()
    return writer.finish()
