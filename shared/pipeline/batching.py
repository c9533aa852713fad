"""Per-destination batches: encoded lines streamed into gzip, capped, with offset ranges and a
deterministic id.

The id names the batch's source and its content: the destination, each stream's identity
(``Record.stream``: file fingerprint, Kafka cluster and topic id, Event Hubs namespace and hub)
with the exact offsets covered, the oldest and newest record timestamps and a SHA-256 of the
encoded lines. A redelivery of the same records gets the same id (so the same blob name and
``ingest-by`` tag); different records never do, even at the same positions (two files, a
recreated topic, one topic name on two clusters).
"""

from __future__ import annotations

import hashlib
import uuid
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from shared.pipeline.destination import Destination
from shared.pipeline.records import Record


@dataclass(frozen=True, slots=True)
class OffsetRange:
    """The first and last offset of one (topic, partition) inside a batch."""

    topic: str
    partition: int
    first: int
    last: int
    stream: str = ""
    """The identity of the stream the offsets count in (``Record.stream``)."""

    def __str__(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.first}-{self.last}"


@dataclass(frozen=True, slots=True)
class Batch:
    """A sealed, gzip-compressed batch for one destination.

    ``payload`` is what the sink sends (newline-separated records in ``destination.wire_format``,
    gzipped); ``records`` are the originals, kept so that a failed batch can be dead-lettered
    with its original bytes.
    """

    destination: Destination
    payload: bytes
    raw_size: int
    records: tuple[Record, ...]
    ranges: tuple[OffsetRange, ...]
    batch_id: str
    oldest_timestamp: datetime | None

    @property
    def count(self) -> int:
        """Number of records in the batch."""
        return len(self.records)

    @property
    def source_id(self) -> uuid.UUID:
        """A UUID derived from the batch id (the ADX SDK wants a ``uuid.UUID``)."""
        return uuid.UUID(self.batch_id[:32])

    @property
    def dedup_tag(self) -> str:
        """The extent tag value used for ``ingest-by``/``ingestIfNotExists`` on dedup routes."""
        return f"kafka-adx-{self.batch_id[:32]}"

    def describe(self) -> str:
        """Short form for logs: destination, count, sizes and offset ranges (never payloads)."""
        ranges = ", ".join(str(r) for r in self.ranges)
        return (
            f"batch {self.batch_id[:12]} -> {self.destination.database}.{self.destination.table}: "
            f"{self.count} records, {self.raw_size} B raw, {len(self.payload)} B gzip, {ranges}"
        )

    def decompressed(self) -> bytes:
        """The uncompressed payload (for local sinks and tests)."""
        return zlib.decompress(self.payload, wbits=31)


def batch_id_for(
    destination: Destination,
    ranges: tuple[OffsetRange, ...],
    count: int,
    content: bytes = b"",
    timestamps: tuple[datetime | None, datetime | None] = (None, None),
) -> str:
    """Deterministic id from the destination, the streams and exact offsets covered, the
    timestamp span and ``content`` (a digest of the encoded lines)."""
    digest = hashlib.sha256()
    digest.update(repr(destination).encode())
    for r in ranges:
        digest.update(f"|{r.stream}|{r.topic}|{r.partition}|{r.first}|{r.last}".encode())
    oldest, newest = timestamps
    digest.update(f"|{count}|{oldest.isoformat() if oldest else ''}|{newest.isoformat() if newest else ''}|".encode())
    digest.update(content)
    return digest.hexdigest()


class BatchBuilder:
    """Accumulates encoded lines for one destination and seals them into a :class:`Batch`."""

    #: Lines are handed to the compressor in chunks of about this many bytes: a compressor
    #: call per record costs more than the compression itself when records are small.
    CHUNK_BYTES = 128 * 1024

    __slots__ = ("_compressor", "_content", "chunks", "compressed", "destination", "level", "lines", "raw_size",
                 "records")  # fmt: skip

    def __init__(self, destination: Destination, level: int = 1) -> None:
        self.destination = destination
        self.level = level
        self._reset()

    def _reset(self) -> None:
        self._compressor = zlib.compressobj(self.level, zlib.DEFLATED, 31)
        # The content half of the batch id: the encoded lines, hashed in the chunks the
        # compressor gets (one update per chunk, not per record).
        self._content = hashlib.sha256()
        self.chunks: list[bytes] = []
        """The gzip stream so far."""
        self.lines: list[bytes] = []
        """Encoded lines not compressed yet."""
        self.compressed = 0
        """How much of ``raw_size`` the compressor has had."""
        self.records: list[Record] = []
        """The records added so far (read-only outside :meth:`add`)."""
        self.raw_size = 0

    def __len__(self) -> int:
        return len(self.records)

    def add(self, record: Record, line: bytes) -> int:
        """Append one encoded record (``line`` has no trailing newline); returns how many
        records the batch now holds. (:meth:`Pipeline.process` does the same inline.)"""
        self.records.append(record)
        self.lines.append(line)
        self.raw_size += len(line) + 1
        if self.raw_size - self.compressed >= self.CHUNK_BYTES:
            self.compress_lines()
        return len(self.records)

    def compress_lines(self) -> None:
        """Hand the lines added since the last call to the compressor (and the content digest)."""
        self.lines.append(b"")  # so that the join ends with a newline too
        data = b"\n".join(self.lines)
        self._content.update(data)
        out = self._compressor.compress(data)
        if out:
            self.chunks.append(out)
        self.lines = []
        self.compressed = self.raw_size

    def seal(self) -> Batch:
        """Finish the gzip stream and return the batch; the builder starts a new one."""
        if self.lines:
            self.compress_lines()
        self.chunks.append(self._compressor.flush())
        records = tuple(self.records)
        ranges, oldest, newest = ranges_and_span(records)
        batch = Batch(
            destination=self.destination,
            payload=b"".join(self.chunks),
            raw_size=self.raw_size,
            records=records,
            ranges=ranges,
            batch_id=batch_id_for(self.destination, ranges, len(records), self._content.digest(), (oldest, newest)),
            oldest_timestamp=oldest,
        )
        self._reset()
        return batch


def offset_ranges(records: Iterable[Record]) -> tuple[OffsetRange, ...]:
    """The offset range of each (stream, topic, partition) among ``records``, in order of first
    appearance (records need not be sorted)."""
    return ranges_and_span(records)[0]


def ranges_and_span(
    records: Iterable[Record],
) -> tuple[tuple[OffsetRange, ...], datetime | None, datetime | None]:
    """The offset range of each (stream, topic, partition), in order of first appearance, and
    the oldest and newest timestamps, in one pass over ``records``."""
    spans: dict[tuple[str, str, int], list[int]] = {}
    oldest: datetime | None = None
    newest: datetime | None = None
    # Records come in runs of one partition, and runs of one timestamp object (the Kafka
    # consumer converts each distinct millisecond once): the span of the current run and the
    # last timestamp compared are kept, so most records cost a few identity checks.
    stream: str | None = None
    topic = ""
    partition = -1
    span: list[int] = []
    last_ts: datetime | None = None
    for record in records:
        offset = record.offset
        if record.partition != partition or record.topic != topic or record.stream != stream:
            stream, topic, partition = record.stream, record.topic, record.partition
            key = (stream, topic, partition)
            found = spans.get(key)
            if found is None:
                span = spans[key] = [offset, offset]
            else:
                span = found
        if offset > span[1]:
            span[1] = offset
        elif offset < span[0]:
            span[0] = offset
        ts = record.timestamp
        if ts is not last_ts and ts is not None:
            last_ts = ts
            if oldest is None or ts < oldest:
                oldest = ts
            if newest is None or ts > newest:
                newest = ts
    ranges = tuple(
        OffsetRange(topic, partition, first, last, stream)
        for (stream, topic, partition), (first, last) in spans.items()
    )
    return ranges, oldest, newest


def next_offsets(records: Iterable[Record]) -> dict[tuple[str, int], int]:
    """The offset to commit for each (topic, partition) among ``records``: one past the
    highest offset seen."""
    offsets: dict[tuple[str, int], int] = {}
    for record in records:
        key = (record.topic, record.partition)
        offsets[key] = max(offsets.get(key, -1), record.offset + 1)
    return offsets


def iter_lines(batch: Batch) -> Iterator[bytes]:
    """The records' encoded lines of a batch whose format is line-based (not for CSV with
    quoted line breaks; use the csv module over :meth:`Batch.decompressed` for those)."""
    data = batch.decompressed()
    yield from data.split(b"\n")[:-1]
