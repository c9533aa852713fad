"""Files as a source: JSON lines, delimited rows (quoted line breaks respected) or raw lines,
optionally gzip-compressed. Records stream: memory stays bounded whatever the file size.

Each file gets its own partition number (its position in the list) and each record its 1-based
record number as offset, so batch ids stay deterministic and errors name ``file:record``.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO, Literal

from shared.records import Record

FileKind = Literal["lines", "delimited"]

DELIMITED_SUFFIXES = frozenset({".csv", ".tsv", ".psv", ".scsv"})


def kind_for(path: str | Path, fmt: str | None = None) -> FileKind:
    """How to split a file into records: delimited formats respect quoted line breaks."""
    if fmt is not None:
        return "delimited" if fmt in ("csv", "tsv", "psv", "scsv", "sohsv") else "lines"
    name = Path(path).name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    return "delimited" if Path(name).suffix in DELIMITED_SUFFIXES else "lines"


def open_binary(path: str | Path) -> BinaryIO:
    """Open a file for reading bytes; ``.gz`` is decompressed; ``-`` is standard input."""
    import sys

    if str(path) == "-":
        return sys.stdin.buffer
    if str(path).endswith(".gz"):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb")


def split_lines(stream: BinaryIO) -> Iterator[bytes]:
    """Lines without their line ending; blank lines are kept (the pipeline dead-letters them)."""
    for line in stream:
        if line.endswith(b"\n"):
            line = line[:-1]
            if line.endswith(b"\r"):
                line = line[:-1]
        yield line


def split_delimited(stream: BinaryIO, max_record_bytes: int = 4 * 1024 * 1024) -> Iterator[bytes]:
    """Delimited records: a line break inside double quotes belongs to the record (RFC 4180,
    where a quote inside a field is doubled, so quote parity tells whether a field is open).

    A quote that never closes would swallow the rest of the file: once the pending record
    passes ``max_record_bytes`` it is handed on as it is (the pipeline dead-letters it) and
    splitting starts afresh on the next line.
    """
    pending: list[bytes] = []
    pending_size = 0
    open_quotes = False
    for line in stream:
        pending.append(line)
        pending_size += len(line)
        if line.count(b'"') % 2:
            open_quotes = not open_quotes
        if open_quotes and pending_size <= max_record_bytes:
            continue
        open_quotes = False
        pending_size = 0
        record = b"".join(pending)
        pending = []
        if record.endswith(b"\n"):
            record = record[:-1]
            if record.endswith(b"\r"):
                record = record[:-1]
        yield record
    if pending:  # unterminated quote at end of file: hand it on, validation will reject it
        yield b"".join(pending)


def read_records(
    paths: Sequence[str | Path],
    topic: str,
    *,
    fmt: str | None = None,
    skip_header: bool = False,
    skip_blank: bool = True,
    max_record_bytes: int = 4 * 1024 * 1024,
) -> Iterator[Record]:
    """Records of one or more files, in order."""
    for partition, path in enumerate(paths):
        kind = kind_for(path, fmt)
        with open_binary(path) as stream:
            splitter = split_delimited(stream, max_record_bytes) if kind == "delimited" else split_lines(stream)
            for number, value in enumerate(splitter, start=1):
                if number == 1 and skip_header:
                    continue
                if skip_blank and not value.strip():
                    continue
                yield Record(value=value, topic=topic, partition=partition, offset=number, origin=str(path))
