"""The dead-letter envelope: the JSON codec of a record that could not be ingested.

An envelope keeps the original bytes (base64), where the record came from, where it was going
and why it failed, so that ``kafka-adx replay`` can read it back. The letter type, the store
protocol and the set id live with the pipeline (:mod:`shared.pipeline.deadletter`), the local
store in :mod:`shared.deadletters.local`.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson

from shared.errors import DeadLetterError
from shared.pipeline.deadletter import DeadLetter
from shared.pipeline.destination import Destination
from shared.pipeline.records import Record

ENVELOPE_VERSION = 1


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
