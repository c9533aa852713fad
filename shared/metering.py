"""The metrics of :mod:`shared.metrics` for a pipeline that runs in this process (``kafka-adx
consume``), measured from outside the pipeline: its sink and dead-letter store are wrapped, and
its ``on_batch`` callback records each batch written. The pipeline's code is not touched.

* a written batch: records ingested, batches and bytes queued per table, records received and
  the end-to-end lag (now minus the oldest record's timestamp) per source partition;
* a dead-letter set written: records dead-lettered per table and stage, and received;
* each sink write: its duration, and whether it retried a batch whose previous write failed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from shared import metrics as m
from shared.pipeline.batching import Batch
from shared.pipeline.core import UNROUTED, Pipeline
from shared.pipeline.deadletter import DeadLetter, DeadLetterStore
from shared.pipeline.records import Record
from shared.pipeline.sink import Sink


class MeteredSink:
    """A sink that times each write and counts a write of a batch that failed before as a retry."""

    def __init__(self, sink: Sink, metrics: m.Metrics) -> None:
        self.sink = sink
        self.metrics = metrics
        self._failed: str | None = None

    def write(self, batch: Batch) -> None:
        """Write through, timing it."""
        dest = batch.destination
        table = {m.TABLE: f"{dest.database}.{dest.table}"}
        if self._failed == batch.batch_id:
            self.metrics.add(m.RETRIES, 1, table | {m.RETRY_KIND: "sink"})
        started = time.perf_counter()
        try:
            self.sink.write(batch)
        except Exception as exc:
            self._failed = batch.batch_id
            self.metrics.record(m.SINK_DURATION, time.perf_counter() - started, table | {m.ERROR_TYPE: type(exc).__name__})
            raise
        self._failed = None
        self.metrics.record(m.SINK_DURATION, time.perf_counter() - started, table)

    def close(self) -> None:
        """Close the sink."""
        self.sink.close()

    def __getattr__(self, name: str) -> Any:
        # Anything else a caller asks of the sink (DuckDB's query, ...) is the sink's.
        return getattr(self.sink, name)


class MeteredDeadLetters:
    """A dead-letter store that counts each set once it is written."""

    def __init__(self, store: DeadLetterStore, metrics: m.Metrics, received: Callable[[Sequence[Record]], None]) -> None:
        self.store = store
        self.metrics = metrics
        self.received = received

    def write(self, letters: Sequence[DeadLetter]) -> str:
        """Write through; count the letters when the write succeeded."""
        set_id = self.store.write(letters)
        counts: dict[tuple[str, str], int] = {}
        for letter in letters:
            dest = letter.destination
            key = (f"{dest.database}.{dest.table}" if dest else UNROUTED, letter.stage)
            counts[key] = counts.get(key, 0) + 1
        for (table, stage), count in counts.items():
            self.metrics.add(m.DEAD_LETTERED, count, {m.TABLE: table, m.STAGE: stage, m.SYSTEM: _system(letters)})
        self.received([letter.record for letter in letters])
        return set_id

    def sets(self) -> Iterator[str]:
        """The store's sets."""
        return self.store.sets()

    def read(self, set_id: str) -> list[DeadLetter]:
        """One set of the store."""
        return self.store.read(set_id)

    def close(self) -> None:
        """Close the store, if it holds a client."""
        close = getattr(self.store, "close", None)
        if callable(close):
            close()

    def __getattr__(self, name: str) -> Any:
        # Replay marks and the like are the store's.
        return getattr(self.store, name)


def _system(records: Sequence[Any]) -> str | None:
    first = records[0] if records else None
    record = getattr(first, "record", first)
    return m.system_of(record.source) if record is not None else None


def instrument(pipeline: Pipeline, metrics: m.Metrics, *, group: str | None = None,
               clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
    """Measure ``pipeline`` from now on (``group``: the consumer group, an attribute of the
    records received). Keeps an ``on_batch`` callback already set, calling it first."""

    def received(records: Sequence[Record]) -> None:
        counts: dict[tuple[str, str, int], int] = {}
        for record in records:
            key = (record.source, record.topic, record.partition)
            counts[key] = counts.get(key, 0) + 1
        for (source, topic, partition), count in counts.items():
            metrics.add(m.RECEIVED, count, {m.SYSTEM: m.system_of(source), m.OPERATION: "receive",
                                            m.DESTINATION: topic, m.PARTITION: str(partition), m.GROUP: group})  # fmt: skip

    previous = pipeline.on_batch

    def on_batch(batch: Batch) -> None:
        if previous is not None:
            previous(batch)
        dest = batch.destination
        table = {m.TABLE: f"{dest.database}.{dest.table}"}
        metrics.add(m.INGESTED, batch.count, table | {m.SYSTEM: _system(batch.records)})
        metrics.add(m.BATCHES_QUEUED, 1, table)
        metrics.add(m.BYTES_QUEUED, len(batch.payload), table)
        received(batch.records)
        now = clock()
        oldest: dict[tuple[str, str, int], datetime] = {}
        for record in batch.records:
            ts = record.timestamp
            key = (record.source, record.topic, record.partition)
            if ts is not None and (key not in oldest or ts < oldest[key]):
                oldest[key] = ts
        for (source, topic, partition), ts in oldest.items():
            metrics.record(m.LAG, max(0.0, (now - ts).total_seconds()),
                           {m.SYSTEM: m.system_of(source), m.DESTINATION: topic, m.PARTITION: str(partition)})

    pipeline.on_batch = on_batch
    pipeline.sink = MeteredSink(pipeline.sink, metrics)
    pipeline.deadletters = MeteredDeadLetters(pipeline.deadletters, metrics, received)
