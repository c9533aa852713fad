"""shared/pipeline/batching.py: batches capped by records and bytes, deterministic ids, offset
ranges per stream/topic/partition, the gzip payload."""

from __future__ import annotations

import gzip
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from shared.deadletters.local import LocalDeadLetterStore
from shared.pipeline.batching import Batch, BatchBuilder, OffsetRange, iter_lines, next_offsets, offset_ranges
from shared.pipeline.core import Pipeline, RetryPolicy
from shared.pipeline.destination import Destination
from shared.pipeline.sink import MemorySink
from tests.support.records import make_config, rec

NO_WAIT = RetryPolicy(attempts=3, base_delay=0.0)


def pipeline(tmp_path: Path, sink: MemorySink | None = None, **limits: int) -> Pipeline:
    config = make_config(limits=limits) if limits else make_config()
    return Pipeline(config, sink or MemorySink(), LocalDeadLetterStore(tmp_path / "dl"), retry=NO_WAIT,
                    sleep=lambda _: None)


def good_json(i: int) -> bytes:
    return b'{"a": "x%d", "n": %d, "ts": "2024-01-01T00:00:00Z", "d": {"i": %d}}' % (i, i, i)


def test_batches_are_capped_and_ids_are_deterministic(tmp_path: Path) -> None:
    records = [rec(good_json(i), "json", i) for i in range(25)]
    first, second = MemorySink(), MemorySink()
    pipeline(tmp_path, first, max_batch_records=10).process(records)
    pipeline(tmp_path, second, max_batch_records=10).process(records)
    assert [b.count for b in first.batches] == [10, 10, 5]
    assert [b.batch_id for b in first.batches] == [b.batch_id for b in second.batches]
    assert len({b.batch_id for b in first.batches}) == 3
    assert [str(r) for r in first.batches[1].ranges] == ["json[0]@10-19"]


def test_batches_are_capped_by_bytes(tmp_path: Path) -> None:
    sink = MemorySink()
    pipeline(tmp_path, sink, max_batch_bytes=500).process([rec(good_json(i), "json", i) for i in range(20)])
    assert len(sink.batches) >= 3
    assert all(b.raw_size <= 500 for b in sink.batches)
    assert sum(b.count for b in sink.batches) == 20


def test_batch_id_changes_with_offsets(tmp_path: Path) -> None:
    a, b = MemorySink(), MemorySink()
    pipeline(tmp_path, a).process([rec(good_json(1), "json", 1)])
    pipeline(tmp_path, b).process([rec(good_json(1), "json", 2)])
    assert a.batches[0].batch_id != b.batches[0].batch_id


# --- what batching adds to the pipeline's tests ----------------------------------------------

DEST = Destination(database="db", table="Raw", format="txt", mapping=None, apply="server")


def sealed(lines: list[bytes], level: int = 1, offset: int = 0) -> Batch:
    builder = BatchBuilder(DEST, level)
    for i, line in enumerate(lines):
        builder.add(rec(line, "raw", offset + i), line)
    return builder.seal()


def test_a_batch_exceeds_max_batch_bytes_only_when_one_record_alone_does(tmp_path: Path) -> None:
    sink = MemorySink()
    small = [rec(good_json(i), "json", i) for i in range(3)]
    big = rec(b'{"a": "%s"}' % (b"x" * 400), "json", 3)
    pipeline(tmp_path, sink, max_batch_bytes=200).process([*small[:2], big, small[2]])
    assert [[r.offset for r in b.records] for b in sink.batches] == [[0, 1], [3], [2]]
    assert [b.raw_size > 200 for b in sink.batches] == [False, True, False]
    assert sink.batches[1].raw_size == len(big.value or b"") + 1


def test_each_destination_is_capped_on_its_own(tmp_path: Path) -> None:
    sink = MemorySink()
    records = [rec(good_json(i), "json", i) for i in range(3)] + [rec(b"a,1,2024-01-01,{}", "csv", i) for i in range(3)]
    pipeline(tmp_path, sink, max_batch_records=2).process(records)
    assert sorted((b.destination.format, b.count) for b in sink.batches) == [
        ("csv", 1), ("csv", 2), ("json", 1), ("json", 2)
    ]


def test_the_payload_is_gzip_of_newline_terminated_lines() -> None:
    batch = sealed([b"one", b"", b"three"])
    assert gzip.decompress(batch.payload) == b"one\n\nthree\n" == batch.decompressed()
    assert batch.raw_size == len(b"one\n\nthree\n")
    assert list(iter_lines(batch)) == [b"one", b"", b"three"]
    assert batch.count == 3 and batch.records[2].offset == 2


def test_the_builder_starts_afresh_after_seal() -> None:
    builder = BatchBuilder(DEST)
    builder.add(rec(b"a", "raw", 1), b"a")
    first = builder.seal()
    assert len(builder) == 0 and builder.raw_size == 0
    builder.add(rec(b"b", "raw", 2), b"b")
    second = builder.seal()
    assert (first.decompressed(), second.decompressed()) == (b"a\n", b"b\n")
    assert [str(r) for r in second.ranges] == ["raw[0]@2-2"]


def test_the_gzip_level_changes_the_bytes_but_not_the_batch_id() -> None:
    lines = [b"line %d " % i * 20 for i in range(50)]
    fast, small = sealed(lines, level=1), sealed(lines, level=9)
    assert fast.decompressed() == small.decompressed()
    assert len(small.payload) <= len(fast.payload)
    assert fast.batch_id == small.batch_id


def test_the_batch_id_names_the_content_and_the_offsets() -> None:
    assert sealed([b"a", b"b"]).batch_id == sealed([b"a", b"b"]).batch_id
    assert sealed([b"a", b"b"]).batch_id != sealed([b"a", b"c"]).batch_id
    assert sealed([b"a", b"b"]).batch_id != sealed([b"a", b"b"], offset=5).batch_id


def test_source_id_dedup_tag_and_describe_derive_from_the_batch() -> None:
    batch = sealed([b"secret payload", b"more"], offset=7)
    assert batch.source_id == uuid.UUID(batch.batch_id[:32])
    assert batch.dedup_tag == f"kafka-adx-{batch.batch_id[:32]}"
    text = batch.describe()
    assert text.startswith(f"batch {batch.batch_id[:12]} -> db.Raw: 2 records, 20 B raw, ")
    assert text.endswith("raw[0]@7-8")
    assert "secret" not in text


def test_offset_ranges_per_stream_topic_and_partition_in_order_of_first_appearance() -> None:
    records = [
        rec(b"", "t", 5, 0), rec(b"", "t", 3, 1), rec(b"", "t", 2, 0), rec(b"", "u", 9, 0), rec(b"", "t", 7, 0),
        replace(rec(b"", "t", 1, 0), stream="cluster-b"),
    ]
    assert offset_ranges(records) == (
        OffsetRange("t", 0, 2, 7), OffsetRange("t", 1, 3, 3), OffsetRange("u", 0, 9, 9),
        OffsetRange("t", 0, 1, 1, "cluster-b"),
    )
    assert offset_ranges([]) == ()


def test_a_batch_keeps_the_oldest_timestamp() -> None:
    builder = BatchBuilder(DEST)
    for offset, day in ((1, 3), (2, 1), (3, 2)):
        builder.add(replace(rec(b"x", "raw", offset), timestamp=datetime(2024, 1, day, tzinfo=UTC)), b"x")
    builder.add(replace(rec(b"x", "raw", 4), timestamp=None), b"x")
    assert builder.seal().oldest_timestamp == datetime(2024, 1, 1, tzinfo=UTC)


def test_next_offsets_is_one_past_the_highest_offset_per_topic_and_partition() -> None:
    records = [rec(b"", "t", 5, 0), rec(b"", "t", 9, 1), rec(b"", "t", 2, 0), rec(b"", "u", 0, 0)]
    assert next_offsets(records) == {("t", 0): 6, ("t", 1): 10, ("u", 0): 1}
    assert next_offsets([]) == {}
