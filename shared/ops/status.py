"""``kafka-adx status``: recent ingestion failure reports from ADX's failure queue, and what the
dead-letter store holds.

Queued ingestion is asynchronous: ADX reports a failed blob (bad data, missing mapping, a
dropped table) on the failure queue named by ``.get ingestion resources``, because the sink asks
for ``FailuresOnly`` reports. By default this peeks (the reports stay for other readers);
``pop`` removes what it read.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from shared.deadletters.replay import ReplayFilter, ReplayMarks, iter_selected
from shared.pipeline.deadletter import DeadLetterStore
from shared.redact import redact


@dataclass(frozen=True)
class FailureReport:
    """One ingestion failure report (the fields ADX's data manager writes)."""

    operation_id: str | None
    database: str | None
    table: str | None
    source_id: str | None
    source_path: str | None
    failed_on: str | None
    error_code: str | None
    failure_status: str | None
    should_retry: bool | None
    details: str | None

    @classmethod
    def from_json(cls, text: str) -> FailureReport:
        """Parse a report's JSON text (already base64-decoded)."""
        data: dict[str, Any] = json.loads(text)
        path = data.get("IngestionSourcePath")
        return cls(
            operation_id=data.get("OperationId"),
            database=data.get("Database"),
            table=data.get("Table"),
            source_id=data.get("IngestionSourceId"),
            source_path=redact(path) if isinstance(path, str) else None,  # never print a SAS signature
            failed_on=data.get("FailedOn"),
            error_code=data.get("ErrorCode"),
            failure_status=data.get("FailureStatus"),
            should_retry=data.get("ShouldRetry"),
            details=data.get("Details"),
        )

    def line(self) -> str:
        """One line for the terminal."""
        retry = "" if self.should_retry is None else f" retry={'yes' if self.should_retry else 'no'}"
        details = redact((self.details or "").replace("\n", " "))
        if len(details) > 160:
            details = details[:157] + "..."
        return (
            f"{self.failed_on or '?'}  {self.database or '?'}.{self.table or '?'}  "
            f"{self.error_code or '?'} ({self.failure_status or '?'}{retry})  "
            f"source={self.source_id or '?'}  {details}"
        )


def failure_reports(queued_client: Any, count: int = 20, *, pop: bool = False) -> list[FailureReport]:
    """Up to ``count`` reports from the failure queue(s) of a ``QueuedIngestClient``, newest first."""
    from shared.sinks.adx import status_queues

    # Bounded queue clients: with storage down the SDK's defaults stall ``status`` ~80 s.
    queues = status_queues(queued_client)
    messages: Sequence[Any] = queues.failure.pop(count, raw=True) if pop else queues.failure.peek(count, raw=True)
    # The SDK's peek reads a queue twice when it holds fewer than ``count`` messages, so the
    # same message can come back twice: keep one per message id.
    seen: set[str] = set()
    reports = []
    for message in messages:
        if message.id in seen:
            continue
        seen.add(message.id)
        reports.append(FailureReport.from_json(message.content))
    reports.sort(key=lambda r: r.failed_on or "", reverse=True)
    return reports[:count]


@dataclass
class DeadLetterSummary:
    """Counts of the dead-letter store."""

    sets: int = 0
    letters: int = 0
    pending_sets: int = 0
    pending_letters: int = 0
    by_stage: dict[str, int] | None = None
    by_table: dict[str, int] | None = None


def deadletter_summary(store: DeadLetterStore, marks: ReplayMarks) -> DeadLetterSummary:
    """How many sets and letters the store holds, and how many are not replayed yet."""
    summary = DeadLetterSummary(by_stage={}, by_table={})
    assert summary.by_stage is not None and summary.by_table is not None
    for _set_id, letters, _digest, _already, todo in iter_selected(store, marks, ReplayFilter()):
        summary.sets += 1
        summary.letters += len(letters)
        if todo:
            summary.pending_sets += 1
            summary.pending_letters += len(todo)
        for index in todo:
            letter = letters[index]
            summary.by_stage[letter.stage] = summary.by_stage.get(letter.stage, 0) + 1
            dest = letter.destination
            name = f"{dest.database}.{dest.table}" if dest else "(unrouted)"
            summary.by_table[name] = summary.by_table.get(name, 0) + 1
    return summary
