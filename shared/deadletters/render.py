"""How a dead letter is shown to a person (``kafka-adx deadletters show``) or to a script
(``--json``): values decoded when they are text, hex-dumped when not, cut to a width.

Text is UTF-8 without control characters other than tab and line breaks (JSON, CSV, log
lines); anything else (Avro, protobuf, gzip, a truncated multi-byte character) is binary.
Control characters in text are escaped, so a value cannot move the cursor or change the
terminal's colours.
"""

from __future__ import annotations

import base64
import re
from typing import Any

from shared.deadletters.browse import LetterRef
from shared.deadletters.filters import reason_text, table_of

HEX_ROW = 16
"""Bytes per hex-dump row."""
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def as_text(data: bytes) -> str | None:
    """The value as text, or None when it is binary (see the module docstring)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return None if _CONTROL.search(text) else text


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\r", "\\r").replace("\n", "\\n").replace("\t", "\\t")


def clip(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters, saying how much was cut."""
    if len(text) <= width:
        return text
    rest = len(text) - width
    return f"{text[:width]}... (+{rest:,} chars)"


def hexdump(data: bytes, max_bytes: int) -> list[str]:
    """``xxd``-style rows (offset, hex bytes, printable ASCII) of the first ``max_bytes`` bytes."""
    rows = []
    for start in range(0, min(len(data), max_bytes), HEX_ROW):
        chunk = data[start : min(start + HEX_ROW, max_bytes)]
        hexes = " ".join(f"{b:02x}" for b in chunk)
        printable = "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in chunk)
        rows.append(f"{start:08x}  {hexes:<{HEX_ROW * 3 - 1}}  {printable}")
    if len(data) > max_bytes:
        rows.append(f"... (+{len(data) - max_bytes:,} bytes)")
    return rows


def show_bytes(data: bytes | None, width: int, max_bytes: int) -> list[str]:
    """A value as lines: ``null``, text (escaped, cut to ``width``) or a hex dump."""
    if data is None:
        return ["null"]
    text = as_text(data)
    if text is not None:
        return [clip(_escape(text), width)]
    return [f"binary, {len(data):,} bytes:", *hexdump(data, max_bytes)]


def describe(ref: LetterRef, *, width: int = 120, max_bytes: int = 128) -> list[str]:
    """The lines of one letter: its id, stage, table and time; where the record came from; the
    reason; key, value and headers decoded."""
    letter, rec = ref.letter, ref.letter.record
    head = f"{ref.id}  stage={letter.stage}  table={table_of(letter)}  at {letter.time.isoformat()}"
    if ref.replayed:
        head += "  (replayed)"
    source = f"{rec.source} {rec.topic} partition {rec.partition} offset {rec.offset}"
    if rec.origin:
        source += f" ({rec.origin})"
    if rec.timestamp is not None:
        source += f", record time {rec.timestamp.isoformat()}"
    lines = [head, f"  from    {source}"]
    extra = [f"route {letter.route}"] if letter.route else []
    extra += [f"field {letter.field}"] if letter.field else []
    extra += [f"batch {letter.batch_id}"] if letter.batch_id else []
    extra += [f"attempt {letter.attempt}"]
    lines.append(f"  where   {', '.join(extra)}")
    lines.append(f"  reason  {clip(_escape(reason_text(letter)), max(width, 200))}")
    if rec.key is not None:
        lines += _labelled("key", show_bytes(rec.key, width, max_bytes))
    lines += _labelled("value", show_bytes(rec.value, width, max_bytes))
    for name, value in rec.headers:
        lines += _labelled(f"header {_escape(name)}", show_bytes(value, width, max_bytes))
    return lines


def _labelled(label: str, lines: list[str]) -> list[str]:
    first, *rest = lines
    return [f"  {label:<7} {first}", *(f"          {line}" for line in rest)]


def _json_bytes(data: bytes | None) -> dict[str, Any] | None:
    if data is None:
        return None
    text = as_text(data)
    if text is not None:
        return {"text": text, "bytes": len(data)}
    return {"base64": base64.b64encode(data).decode("ascii"), "bytes": len(data)}


def to_json(ref: LetterRef) -> dict[str, Any]:
    """A letter for scripts: every field, values as ``{"text"}`` or ``{"base64"}`` (never cut)."""
    letter, rec = ref.letter, ref.letter.record
    return {
        "id": ref.id,
        "set_id": ref.set_id,
        "index": ref.index,
        "replayed": ref.replayed,
        "stage": letter.stage,
        "reason": letter.reason,
        "field": letter.field,
        "table": table_of(letter),
        "route": letter.route,
        "batch_id": letter.batch_id,
        "attempt": letter.attempt,
        "time": letter.time.isoformat(),
        "source": rec.source,
        "topic": rec.topic,
        "partition": rec.partition,
        "offset": rec.offset,
        "origin": rec.origin or None,
        "timestamp": rec.timestamp.isoformat() if rec.timestamp else None,
        "key": _json_bytes(rec.key),
        "value": _json_bytes(rec.value),
        "headers": [{"key": name, "value": _json_bytes(value)} for name, value in rec.headers],
    }
