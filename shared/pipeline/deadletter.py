"""The dead-letter interface the pipeline writes to: the :class:`DeadLetter`, the
:class:`DeadLetterStore` protocol and the deterministic set id.

It lives with the pipeline, below the stores (:mod:`shared.deadletters.local`,
:mod:`shared.deadletters.blob`), like the :class:`~shared.pipeline.sink.Sink` interface below
the sinks, so that every import points down. Letters are written in sets; a set's id is
derived from its records, so writing the same set again (a redelivered trigger batch)
overwrites it instead of duplicating it.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from shared.pipeline.destination import Destination
from shared.pipeline.records import Record


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One record that was not ingested, with the reason."""

    record: Record
    reason: str
    stage: str
    """decode, size, route, map (per record) or sink (the whole batch failed)."""
    field: str | None = None
    route: str | None = None
    """The topic pattern of the route that matched, if any."""
    destination: Destination | None = None
    batch_id: str | None = None
    attempt: int = 1
    time: datetime = dataclasses.field(default_factory=lambda: datetime.now(UTC))


def set_id_for(letters: Sequence[DeadLetter]) -> str:
    """Deterministic id of a set of letters from each record's stream, position and bytes and
    the stage: the same records redelivered give the same id (the set is overwritten, not
    duplicated); different records never do, even at the same positions."""
    digest = hashlib.sha256()
    for letter in letters:
        rec = letter.record
        digest.update(f"{letter.stage}|{rec.stream}|{rec.topic}|{rec.partition}|{rec.offset}|{rec.size}|".encode())
        digest.update(hashlib.sha256(rec.value or b"").digest())
        digest.update(hashlib.sha256(rec.key or b"").digest() if rec.key is not None else b"-")
    return digest.hexdigest()[:32]


class DeadLetterStore(Protocol):
    """Durable store of dead letters. ``write`` raises :class:`DeadLetterError` on failure."""

    def write(self, letters: Sequence[DeadLetter]) -> str:
        """Store a set of letters; return the set id. Idempotent for the same set."""
        ...

    def sets(self) -> Iterator[str]:
        """Ids of the stored sets, oldest first."""
        ...

    def read(self, set_id: str) -> list[DeadLetter]:
        """The letters of one set."""
        ...
