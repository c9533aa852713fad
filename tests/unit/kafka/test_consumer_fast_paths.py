"""The consumer's hot path gives exactly what the reference path gives: ``_take_all`` (one
``consume`` call's messages, records built inline, timestamps converted once per distinct
millisecond, no header tuple for a message without headers) hands the pipeline the same records,
in the same batches, and commits the same offsets as ``_take`` + :func:`to_record` per message
with a flush whenever the batch is due (what the loop did with one ``poll`` per message)."""

from __future__ import annotations

import gc
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from confluent_kafka import (
    TIMESTAMP_CREATE_TIME,
    TIMESTAMP_LOG_APPEND_TIME,
    TIMESTAMP_NOT_AVAILABLE,
    Message,
    TopicPartition,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.kafka.consumer import ConsumerOptions, ConsumeStats, KafkaIngestor, to_record
from shared.pipeline.batching import next_offsets
from shared.pipeline.core import Result
from shared.pipeline.records import Record
from tests.unit.kafka.test_consumer import TOPIC, FakeConsumer, FakeMessage, no_admin


@pytest.fixture(autouse=True, scope="module")
def _frozen_by_the_caller() -> Iterator[None]:
    """Each run's start-up would gc.collect() and freeze the whole test process (hundreds of ms a
    run under the full suite, 600 runs here); a caller's own freeze makes the ingestor skip that
    (see ``_start_up_frozen``), and it changes nothing the properties compare."""
    gc.collect()
    gc.freeze()
    yield
    gc.unfreeze()


class CapturingPipeline:
    """Stands in for :class:`Pipeline`: keeps every batch it is given, ingests everything."""

    def __init__(self) -> None:
        self.batches: list[list[Record]] = []

    def process(self, records: list[Record], *, attempt: int = 1, final_attempt: bool = False) -> Result:
        self.batches.append(list(records))
        return Result(received=len(records), ingested=len(records))


class ReferenceIngestor(KafkaIngestor):
    """The per-message path: ``_take`` (which builds the record with ``to_record``) and a flush
    as soon as the batch is due, stopping at a stop request."""

    def _take_all(self, messages: list[Any]) -> None:
        for message in messages:
            if self.stopping:
                break
            self._take(message)
            if self._due():
                self._flush_and_commit()


# Timestamps: runs of equal milliseconds (the cache), any type, negative ones (not available).
millis = st.one_of(st.integers(-5, 5), st.integers(0, 2**42), st.sampled_from([1_704_067_200_000, 1_704_067_200_001]))
timestamps = st.tuples(st.sampled_from([TIMESTAMP_NOT_AVAILABLE, TIMESTAMP_CREATE_TIME, TIMESTAMP_LOG_APPEND_TIME]),
                       millis)  # fmt: skip
headers = st.one_of(
    st.none(), st.just([]), st.lists(st.tuples(st.sampled_from(["a", "b", "ce"]), st.none() | st.binary(max_size=4)),
                                     min_size=1, max_size=3)
)  # fmt: skip
message_fields = st.tuples(
    st.sampled_from([0, 1, 2]),  # partition 2 is not assigned: its records are dropped
    st.none() | st.binary(max_size=12),
    st.none() | st.binary(max_size=4),
    headers,
    timestamps,
)


OTHER = "other"
"""A second topic, assigned the same partition numbers as TOPIC (runs are told apart by both)."""


def build(fields: Sequence[tuple[int, bytes | None, bytes | None, Any, tuple[int, int]]],
          topics: Sequence[str] = (TOPIC,), real: bool = False) -> list[Any]:
    """Messages of ``fields``; with several topics, the i-th message's topic is
    ``topics[(partition + i // 3) % len(topics)]`` (runs of one topic and partition, interleaved);
    ``real``: confluent-kafka's own ``Message`` instead of the stand-in."""
    next_offset: dict[tuple[str, int], int] = {}
    out: list[Any] = []
    for index, (partition, value, key, hdrs, ts) in enumerate(fields):
        topic = topics[(partition + index // 3) % len(topics)]
        offset = next_offset.get((topic, partition), 100 * partition)
        next_offset[(topic, partition)] = offset + 1
        if real:
            out.append(Message(topic=topic, partition=partition, offset=offset, value=value, key=key, headers=hdrs,
                               timestamp=ts))  # fmt: skip
        else:
            out.append(FakeMessage(topic, partition, offset, value, key, hdrs, ts))
    return out


def run(
    cls: type[KafkaIngestor], messages: list[Any], topics: Sequence[str] = (TOPIC,), **options: Any
) -> tuple[CapturingPipeline, FakeConsumer, ConsumeStats]:
    fake = FakeConsumer(messages, **{k: options.pop(k) for k in ("revoke_after", "lose_after") if k in options})
    fake.partitions = [TopicPartition(topic, p) for topic in topics for p in (0, 1)]
    pipeline = CapturingPipeline()
    ingestor = cls(
        pipeline,  # type: ignore[arg-type]
        {"bootstrap.servers": "fake:9092"},
        ConsumerOptions(topics=tuple(topics), group="g", idle_exit=1.0, **options),
        consumer_factory=fake.factory,
        admin_factory=no_admin,
        sleep=fake.sleep,
        clock=fake.clock,
    )
    stats = ingestor.run()
    return pipeline, fake, stats


@settings(max_examples=300, deadline=None)
@given(
    st.lists(message_fields, max_size=40),
    st.integers(1, 9),
    st.integers(1, 200),
    st.none() | st.integers(1, 45),
    st.none() | st.integers(0, 40),
    st.none() | st.integers(0, 40),
    st.sampled_from([(TOPIC,), (TOPIC, OTHER)]),
    st.booleans(),
)
def test_take_all_gives_the_reference_batches_and_commits(
    fields: list[Any], batch_records: int, batch_bytes: int, max_records: int | None, revoke_after: int | None,
    lose_after: int | None, topics: tuple[str, ...], real: bool,
) -> None:
    options = {"batch_records": batch_records, "batch_bytes": batch_bytes, "max_records": max_records}
    fast, fast_consumer, fast_stats = run(KafkaIngestor, build(fields, topics, real), topics, revoke_after=revoke_after,
                                          lose_after=lose_after, **options)
    reference, reference_consumer, reference_stats = run(
        ReferenceIngestor, build(fields, topics, real), topics, revoke_after=revoke_after, lose_after=lose_after,
        **options,
    )
    assert fast.batches == reference.batches
    assert fast_stats == reference_stats  # flushes, commits, raw bytes, ...
    assert fast_stats.raw_bytes == sum(r.size for batch in fast.batches for r in batch)
    assert fast_consumer.events == reference_consumer.events  # same commits, in the same order
    assert fast_consumer.committed == reference_consumer.committed
    # The offsets kept as records come are next_offsets of each flushed batch.
    commits = [event for event in fast_consumer.events if event.startswith("commit")]
    assert commits == [
        "commit " + ",".join(f"{p}@{o}" for (_, p), o in sorted(next_offsets(batch).items())) for batch in fast.batches
    ]
    # Every message of an assigned partition is in a batch, and the last commit of each
    # partition is one past its highest offset.
    taken = [record for batch in fast.batches for record in batch]
    if lose_after is None and fast_stats.stopped_by.startswith("no record"):  # nothing dropped, nor stopped early
        assert len(taken) == sum(1 for m in build(fields, topics) if m.partition() in (0, 1))
    assert fast_consumer.committed == next_offsets(taken)


@settings(max_examples=300, deadline=None)
@given(st.lists(message_fields, max_size=30))
def test_records_equal_to_record_of_each_assigned_message(fields: list[Any]) -> None:
    messages = build(fields)
    pipeline, _, _ = run(KafkaIngestor, list(messages))
    taken = [record for batch in pipeline.batches for record in batch]
    stream = taken[0].stream if taken else ""
    assert taken == [to_record(m, stream) for m in messages if m.partition() in (0, 1)]
    for record in taken:  # the conversion's promises
        assert record.timestamp is None or record.timestamp.utcoffset() is not None
        assert isinstance(record.headers, tuple)
