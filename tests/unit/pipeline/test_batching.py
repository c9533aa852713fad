"""shared/pipeline/batching.py: batches capped by records and bytes, deterministic ids, offset
ranges per stream/topic/partition, the gzip payload."""

from __future__ import annotations

from pathlib import Path

from shared.deadletters.local import LocalDeadLetterStore
from shared.pipeline.core import Pipeline, RetryPolicy
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
