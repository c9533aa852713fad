"""``BatchSummary.describe_input`` (one pass over the batch) fills in exactly what the reference
(``ranges_and_span`` and a second walk over the records) does: bytes, ranges in order, overall
lag, counts and lags per partition."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.functions.summary import BatchSummary
from shared.pipeline.batching import ranges_and_span
from shared.pipeline.records import Record

NOW = datetime(2024, 5, 1, 12, tzinfo=UTC)


def reference(summary: BatchSummary, records: Sequence[Record], now: datetime) -> None:
    summary.received = len(records)
    summary.bytes = sum(record.size for record in records)
    ranges, oldest, _ = ranges_and_span(records)
    summary.ranges = [str(span) for span in ranges]
    summary.lag_seconds = None if oldest is None else max(0.0, (now - oldest).total_seconds())
    oldest_by_partition: dict[tuple[str, int], datetime] = {}
    counts = summary.partition_counts = {}
    for record in records:
        key = (record.topic, record.partition)
        counts[key] = counts.get(key, 0) + 1
        ts = record.timestamp
        if ts is not None:
            known = oldest_by_partition.get(key)
            if known is None or ts < known:
                oldest_by_partition[key] = ts
    summary.partition_lags = {k: max(0.0, (now - ts).total_seconds()) for k, ts in oldest_by_partition.items()}


records = st.builds(
    Record,
    value=st.none() | st.binary(max_size=6),
    topic=st.sampled_from(["a", "b"]),
    partition=st.integers(0, 2),
    offset=st.integers(0, 30),
    timestamp=st.none() | st.integers(-120, 120).map(lambda s: NOW + timedelta(seconds=s)),
    source=st.just("kafka"),
    stream=st.sampled_from(["", "kafka:x/a"]),
)


@given(st.lists(records, max_size=40))
@settings(max_examples=400, deadline=None)
def test_one_pass_agrees_with_the_reference(batch: list[Record]) -> None:
    got, want = BatchSummary("t", "kafka", "1/1"), BatchSummary("t", "kafka", "1/1")
    got.describe_input(batch, NOW)
    reference(want, batch, NOW)
    assert got == want
    assert list(got.partition_counts) == list(want.partition_counts)  # the same order too
