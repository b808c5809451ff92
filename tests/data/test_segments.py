"""Segment files: what was appended is what reads back, and a crash at any byte loses nothing appended."""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wispd.data import segments, store
from wispd.data.segments import T_FRAME, T_GAP, Record, SegmentWriter


def frames(n: int, start_us: int = 1_000_000) -> list[Record]:
    return [Record(start_us + i * 1000, T_FRAME, b"md.sim.spot.BTC-USDT.book " + b'{"seq":%d,"x":"%s"}' % (i, b"y" * (i % 50)))
            for i in range(n)]


def test_a_finished_segment_reads_back_exactly_with_its_index(tmp_path: Path):
    path = tmp_path / "000000-rec.wseg"
    w = SegmentWriter(path, fsync=False)
    recs = frames(10_000) + [Record(20_000_000, T_GAP, b'{"topic":"x"}')]
    for i in range(0, len(recs), 333):
        w.append(recs[i:i + 333], now_s=i)
    index = w.finish()
    assert list(segments.read_records(path)) == recs
    assert index.count == len(recs) and index.gaps == 1
    assert index.topics["md.sim.spot.BTC-USDT.book"][0] == 10_000
    assert not path.with_name("000000-rec.wseg.part").exists() and not path.with_name("000000-rec.wseg.tail").exists()
    # a window reads only what is in it
    window = list(segments.read_records(path, 2_000_000, 3_000_000))
    assert window == [r for r in recs if 2_000_000 <= r.recv_us < 3_000_000]
    # the index can be rebuilt from the blocks
    path.with_name("000000-rec.wseg.idx").unlink()
    assert segments.read_index(path).count == len(recs)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=st.lists(st.integers(1, 900), min_size=1, max_size=12), cut_part=st.floats(0, 1),
       cut_tail=st.floats(0, 1), kill_after=st.integers(0, 11))
def test_kill_9_at_any_byte_loses_no_record_that_was_appended_and_corrupts_nothing(tmp_path: Path, batches, cut_part,
                                                                                 cut_tail, kill_after):
    """A kill -9 leaves the part file and the tail at whatever was written; the OS may also not have written
    the last bytes of either (a torn write). Recovery keeps every record the tail or a whole block holds, in
    order, and never a damaged one."""
    d = tmp_path / f"k{os.urandom(4).hex()}"
    d.mkdir()
    path = d / "000000-rec.wseg"
    w = SegmentWriter(path, fsync=False)
    recs = frames(sum(batches))
    pos, appended = 0, []
    for i, n in enumerate(batches):
        w.append(recs[pos:pos + n], now_s=i * 0.7)  # a block every ~3 batches (BLOCK_SECONDS = 2)
        appended += recs[pos:pos + n]
        pos += n
        if i == kill_after:
            break
    w.abandon()  # kill -9: nothing flushed, nothing finished
    part, tail = path.with_name(path.name + ".part"), path.with_name(path.name + ".tail")
    blocks = list(segments.read_blocks(part, strict=False))
    in_blocks = sum(len(r) for _, r in blocks)
    # tear the end of the tail (the last write may be partial); whole blocks were written before the tail
    # was emptied, so they are complete on disk
    tail_bytes = tail.read_bytes()
    torn = tail_bytes[:int(len(tail_bytes) * cut_tail)] if cut_tail < 1 else tail_bytes
    tail.write_bytes(torn)
    survivors = in_blocks + len(segments.read_tail(tail))
    index = segments.recover(path)
    got = list(segments.read_records(path)) if index is not None else []
    assert got == appended[:len(got)], "recovered records are the appended ones, in order"
    assert len(got) == survivors
    if cut_tail >= 1:
        assert got == appended, "an untorn tail: nothing lost"
    # a torn block at the end of the part file (a crash while writing a block) is dropped, never read
    if blocks and cut_part < 1:
        d2 = tmp_path / f"t{os.urandom(4).hex()}"
        d2.mkdir()
        raw = (d / path.name).read_bytes()
        cut = len(segments.MAGIC) + int((len(raw) - len(segments.MAGIC)) * cut_part)
        (d2 / "000000-rec.wseg.part").write_bytes(raw[:cut])
        again = segments.recover(d2 / "000000-rec.wseg")
        kept = list(segments.read_records(d2 / "000000-rec.wseg")) if again is not None else []
        assert kept == got[:len(kept)]


def test_store_merges_segments_by_time_and_prunes_by_age_and_size(tmp_path: Path):
    a = store.segment_path(tmp_path, "sim", 3_600_000_000, "rec")
    segments.write_segment(a, frames(100, 3_600_000_000))
    b = store.segment_path(tmp_path, "simx", 3_600_000_500, "rec")
    segments.write_segment(b, frames(100, 3_600_000_500))
    merged = [r.recv_us for r in store.replay(tmp_path)]
    assert merged == sorted(merged) and len(merged) == 200
    info = store.summary(tmp_path)
    assert info["segments"] == 2 and info["records"] == 200
    assert store.origin_of(a) == "rec"
    removed = store.prune(tmp_path, keep_s=60, keep_bytes=0, now_s=3_600 + 3_600)
    assert set(removed) == {a, b} and store.summary(tmp_path)["segments"] == 0
    c = store.segment_path(tmp_path, "sim", 7_200_000_000, "rec")
    segments.write_segment(c, frames(100, 7_200_000_000))
    d = store.segment_path(tmp_path, "sim", 10_800_000_000, "rec")
    segments.write_segment(d, frames(100, 10_800_000_000))
    assert store.prune(tmp_path, keep_s=0, keep_bytes=c.stat().st_size + 10) == [c]  # oldest first
