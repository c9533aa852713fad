"""Dead letters: the envelope of a record that could not be ingested, and the local store.

An envelope keeps the original bytes (base64), where the record came from, where it was going
and why it failed, so that ``kafka-adx replay`` can read it back. Letters are written in sets;
a set's id is derived from its records, so writing the same set again (a redelivered trigger
batch) overwrites it instead of duplicating it.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import orjson

from shared.errors import DeadLetterError
from shared.pipeline.destination import Destination
from shared.pipeline.records import Record

ENVELOPE_VERSION = 1


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


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode("ascii")


def _unb64(text: str | None) -> bytes | None:
    return None if text is None else base64.b64decode(text)


def to_envelope(letter: DeadLetter) -> dict[str, Any]:
    """The JSON-able envelope of a dead letter (original bytes in base64)."""
    rec = letter.record
    dest = letter.destination
    return {
        "version": ENVELOPE_VERSION,
        "reason": letter.reason,
        "stage": letter.stage,
        "field": letter.field,
        "source": rec.source,
        "origin": rec.origin or None,
        "stream": rec.stream or None,
        "topic": rec.topic,
        "partition": rec.partition,
        "offset": rec.offset,
        "timestamp": rec.timestamp.isoformat() if rec.timestamp else None,
        "key": _b64(rec.key),
        "value": _b64(rec.value),
        "headers": [{"key": k, "value": _b64(v)} for k, v in rec.headers],
        "route": letter.route,
        "destination": None
        if dest is None
        else {
            "database": dest.database,
            "table": dest.table,
            "format": dest.format,
            "mapping": dest.mapping,
            "apply": dest.apply,
            "ingestion": dest.ingestion,
            "dedup": dest.dedup,
            "validate": dest.validate,
        },
        "batch_id": letter.batch_id,
        "attempt": letter.attempt,
        "time": letter.time.isoformat(),
    }


def from_envelope(data: dict[str, Any]) -> DeadLetter:
    """Read back an envelope written by :func:`to_envelope`."""
    ts = data.get("timestamp")
    record = Record(
        value=_unb64(data.get("value")),
        key=_unb64(data.get("key")),
        headers=tuple((h["key"], _unb64(h.get("value"))) for h in data.get("headers") or ()),
        topic=data.get("topic") or "",
        partition=int(data.get("partition") or 0),
        offset=int(data.get("offset") or 0),
        timestamp=datetime.fromisoformat(ts) if ts else None,
        source=data.get("source") or "file",
        origin=data.get("origin") or "",
        stream=data.get("stream") or "",
    )
    dest_data = data.get("destination")
    destination = Destination(**dest_data) if dest_data else None
    return DeadLetter(
        record=record,
        reason=data["reason"],
        stage=data["stage"],
        field=data.get("field"),
        route=data.get("route"),
        destination=destination,
        batch_id=data.get("batch_id"),
        attempt=int(data.get("attempt") or 1),
        time=datetime.fromisoformat(data["time"]),
    )


def encode_letters(letters: Sequence[DeadLetter]) -> bytes:
    """JSON lines of the envelopes."""
    return b"".join(orjson.dumps(to_envelope(letter)) + b"\n" for letter in letters)


def decode_letters(data: bytes, source: str = "<dead letters>") -> list[DeadLetter]:
    """Parse JSON lines of envelopes; a damaged line raises with its file and line number."""
    letters = []
    for number, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            letters.append(from_envelope(orjson.loads(line)))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise DeadLetterError(f"{source}:{number}: not a dead-letter envelope: {exc}") from None
    return letters


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


class LocalDeadLetterStore:
    """A folder of JSON-lines files, one per set: ``<dir>/<set id>.jsonl``."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    def write(self, letters: Sequence[DeadLetter]) -> str:
        """Write the set atomically (temp file, then rename)."""
        set_id = set_id_for(letters)
        target = self.directory / f"{set_id}.jsonl"
        tmp = target.with_suffix(".jsonl.tmp")
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as fh:
                fh.write(encode_letters(letters))
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except OSError as exc:
            raise DeadLetterError(f"cannot write dead letters to {target}: {exc}") from exc
        return set_id

    def sets(self) -> Iterator[str]:
        """Set ids by modification time."""
        if not self.directory.is_dir():
            return iter(())
        files = sorted(self.directory.glob("*.jsonl"), key=lambda p: (p.stat().st_mtime, p.name))
        return (p.stem for p in files)

    def read(self, set_id: str) -> list[DeadLetter]:
        """Read one set back."""
        path = self.directory / f"{set_id}.jsonl"
        return decode_letters(path.read_bytes(), str(path))

    def path_of(self, set_id: str) -> Path:
        """File of a set."""
        return self.directory / f"{set_id}.jsonl"
