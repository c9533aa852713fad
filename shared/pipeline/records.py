"""The source-agnostic record every adapter produces and the pipeline consumes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

SourceKind = Literal["kafka", "eventhub", "file"]

Header = tuple[str, bytes | None]


# Not ``frozen``: a frozen dataclass sets each of the ten fields with ``object.__setattr__``
# (~1.1 us a record on CPython 3.11, against ~0.2 us for plain slot stores), and every record
# of every source is built once. Treat a record as immutable all the same (nothing assigns to
# one; ``dataclasses.replace`` makes a changed copy); ``unsafe_hash`` keeps it hashable by its
# fields, as the frozen class was.
@dataclass(slots=True, unsafe_hash=True)
class Record:
    """One message as it arrived, before any decoding (immutable by convention: never assign
    to a field, use ``dataclasses.replace``).

    ``offset`` is the Kafka offset, the Event Hubs sequence number, or the 1-based line/row
    number of a file. ``timestamp`` is the producer/broker timestamp (Kafka) or the enqueued
    time (Event Hubs), always timezone-aware UTC when known.
    """

    value: bytes | None
    key: bytes | None = None
    headers: tuple[Header, ...] = ()
    topic: str = ""
    partition: int = 0
    offset: int = 0
    timestamp: datetime | None = None
    source: SourceKind = "file"
    origin: str = ""
    """For file records: the file path (errors then name ``file:line``)."""
    stream: str = ""
    """Identity of the stream that ``topic``/``partition``/``offset`` count in: a file's content
    fingerprint, the Kafka cluster id and topic id, or the Event Hubs namespace and hub. It is
    part of every batch id and dead-letter set id, so that two sources whose positions coincide
    (two files, a recreated topic, the same topic name on two clusters) never share an id."""

    def header(self, name: str) -> bytes | None:
        """The value of the last header called ``name`` (Kafka allows repeats; last one wins)."""
        for key, value in reversed(self.headers):
            if key == name:
                return value
        return None

    def has_header(self, name: str) -> bool:
        """Whether any header is called ``name`` (even with a null value)."""
        return any(key == name for key, _ in self.headers)

    @property
    def where(self) -> str:
        """Where the record came from, for error messages: ``topic[partition]@offset``, and for
        file records also ``file:line``."""
        where = f"{self.topic}[{self.partition}]@{self.offset}"
        return f"{self.origin}:{self.offset} ({where})" if self.origin else where

    @property
    def size(self) -> int:
        """Size of the value in bytes (0 for a null value)."""
        return 0 if self.value is None else len(self.value)
