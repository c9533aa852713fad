"""What one invocation did, as one structured log line and as metrics: source, partitions and
offset ranges, counts, bytes, duration and lag. Never payloads."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.pipeline.batching import OffsetRange
from shared.pipeline.core import Result, TableCounts
from shared.pipeline.records import Record


@dataclass
class BatchSummary:
    """What one invocation did; logged as one line and recorded as metrics. No payloads."""

    trigger: str
    source: str
    attempt: str
    received: int = 0
    ingested: int = 0
    dead_lettered: int = 0
    bytes: int = 0
    seconds: float = 0.0
    lag_seconds: float | None = None
    ranges: list[str] = field(default_factory=list)
    outcome: str = "ok"
    reasons: dict[str, int] = field(default_factory=dict)
    partition_lags: dict[tuple[str, int], float] = field(default_factory=dict)
    """(topic, partition) -> lag of its oldest record at the batch's start, in seconds."""
    partition_counts: dict[tuple[str, int], int] = field(default_factory=dict)
    """(topic, partition) -> records received."""
    tables: dict[str, TableCounts] = field(default_factory=dict)
    """Counts per ``database.table`` (filled by :meth:`take`)."""
    error_type: str | None = None
    """The class of the exception that ended the batch, if one did."""

    MAX_RANGES = 20

    def describe_input(self, records: Sequence[Record], now: datetime) -> None:
        """Fill in what the batch holds: counts, bytes, offset ranges and the lag of its oldest
        record at ``now``."""
        self.received = len(records)
        # One pass over the batch (this runs for every event of every invocation): per (stream,
        # topic, partition) the first and last offsets, as ranges_and_span finds them, the count
        # and the oldest timestamp; everything else from those.
        spans: dict[tuple[str, str, int], list[Any]] = {}
        size = 0
        for record in records:
            value = record.value
            if value is not None:
                size += len(value)
            offset, ts = record.offset, record.timestamp
            key = (record.stream, record.topic, record.partition)
            span = spans.get(key)
            if span is None:
                spans[key] = [offset, offset, 1, ts]
                continue
            if offset > span[1]:
                span[1] = offset
            elif offset < span[0]:
                span[0] = offset
            span[2] += 1
            if ts is not None and (span[3] is None or ts < span[3]):
                span[3] = ts
        self.bytes = size
        # One stream per topic within an invocation, so these are the (topic, partition) ranges.
        self.ranges = [str(OffsetRange(topic, partition, first, last, stream))
                       for (stream, topic, partition), (first, last, _, _) in spans.items()]  # fmt: skip
        counts = self.partition_counts = {}
        oldest_by_partition: dict[tuple[str, int], datetime] = {}
        for (_, topic, partition), (_, _, count, ts) in spans.items():
            where = (topic, partition)
            counts[where] = counts.get(where, 0) + count
            if ts is not None:
                known = oldest_by_partition.get(where)
                if known is None or ts < known:
                    oldest_by_partition[where] = ts
        oldest = min(oldest_by_partition.values(), default=None)
        self.lag_seconds = None if oldest is None else max(0.0, (now - oldest).total_seconds())
        self.partition_lags = {k: max(0.0, (now - ts).total_seconds()) for k, ts in oldest_by_partition.items()}

    def take(self, result: Result) -> None:
        """Copy the pipeline's counts: totals, dead letters by stage, and per table."""
        self.ingested = result.ingested
        self.dead_lettered = result.dead_lettered
        self.reasons = dict(result.reasons)
        self.tables = dict(result.tables)

    @property
    def attempt_number(self) -> int:
        """Which delivery of the batch this was (1: the first), from ``attempt`` (``2/6``)."""
        number = self.attempt.split("/", 1)[0]
        return int(number) if number.isdigit() else 1

    @property
    def final_attempt(self) -> bool:
        """Whether no retry follows (``6/6``; never with unlimited retries, ``3/inf``)."""
        number, _, total = self.attempt.partition("/")
        return total.isdigit() and number.isdigit() and int(number) >= int(total)

    def fields(self) -> dict[str, Any]:
        """The summary as flat fields (log ``extra`` and span attributes)."""
        shown = self.ranges[: self.MAX_RANGES]
        more = len(self.ranges) - len(shown)
        return {
            "trigger": self.trigger,
            "source": self.source,
            "attempt": self.attempt,
            "outcome": self.outcome,
            "received": self.received,
            "ingested": self.ingested,
            "dead_lettered": self.dead_lettered,
            "bytes": self.bytes,
            "duration_ms": round(self.seconds * 1000, 1),
            "lag_s": None if self.lag_seconds is None else round(self.lag_seconds, 3),
            "partitions": ",".join(shown) + (f",+{more} more" if more else ""),
            "reasons": ",".join(f"{k}:{v}" for k, v in sorted(self.reasons.items())),
        }

    def line(self) -> str:
        """``key=value`` text, parseable with KQL ``parse`` in Application Insights."""
        return "kafka-adx batch " + " ".join(f"{k}={'' if v is None else v}" for k, v in self.fields().items())
