"""What one invocation did, as one structured log line and as metrics: source, partitions and
offset ranges, counts, bytes, duration and lag. Never payloads."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.pipeline.batching import ranges_and_span
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

    MAX_RANGES = 20

    def describe_input(self, records: Sequence[Record], now: datetime) -> None:
        """Fill in what the batch holds: counts, bytes, offset ranges and the lag of its oldest
        record at ``now``."""
        self.received = len(records)
        self.bytes = sum(record.size for record in records)
        # One stream per topic within an invocation, so these are the (topic, partition) ranges.
        ranges, oldest, _ = ranges_and_span(records)
        self.ranges = [str(span) for span in ranges]
        self.lag_seconds = None if oldest is None else max(0.0, (now - oldest).total_seconds())

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
