"""Files as a source: JSON lines, delimited rows (quoted line breaks respected) or raw lines,
optionally gzip-compressed. Records stream: memory stays bounded whatever the file size.

Each file gets its own partition number (its position in the list) and each record its 1-based
record number as offset, so errors name ``file:record``. A file's records carry its content
fingerprint as their ``stream``: batch and dead-letter ids then tell two files apart even when
their records sit at the same positions (``ingest day1.jsonl`` then ``ingest day2.jsonl``),
while a rerun of the same file gets the same ids (``dedup`` routes then skip what landed).

Blank and whitespace-only lines are not records (ADX skips empty lines too): they are skipped
and counted (:attr:`FileSource.blank_lines`), never dead-lettered. A file that cannot be read to
its end (a truncated or corrupt ``.gz``, an I/O error) raises :class:`InputError` naming the
file, the last record read and the byte reached.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import stat
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO, Literal

from shared.errors import InputError
from shared.pipeline.records import Record

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
    """Lines without their line ending; blank lines are kept (:class:`FileSource` skips and
    counts them)."""
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


def fingerprint(path: str | Path) -> str:
    """The stream identity of a file: ``file:`` and the SHA-256 of its bytes as stored (standard
    input has none: ``stdin``, and batch ids then rest on the records' content alone)."""
    if str(path) == "-":
        return "stdin"
    if not stat.S_ISREG(os.stat(path).st_mode):
        # A FIFO or a process substitution (``<(cmd)``) can be read once only: hashing it
        # first would consume its data. Ids then rest on the records' content, as for stdin.
        return f"stream:{path}"
    with open(path, "rb") as fh:
        return "file:" + hashlib.file_digest(fh, "sha256").hexdigest()[:32]


# What reading a damaged file raises: gzip's own errors, zlib's, and I/O errors.
_READ_ERRORS = (EOFError, gzip.BadGzipFile, zlib.error, OSError)


class FileSource:
    """The records of one or more files, in order (an iterable; read it once).

    ``blank_lines`` counts the blank lines skipped so far; ``records`` the records yielded.
    """

    def __init__(
        self,
        paths: Sequence[str | Path],
        topic: str,
        *,
        fmt: str | None = None,
        skip_header: bool = False,
        max_record_bytes: int = 4 * 1024 * 1024,
    ) -> None:
        self.paths = list(paths)
        self.topic = topic
        self.fmt = fmt
        self.skip_header = skip_header
        self.max_record_bytes = max_record_bytes
        self.blank_lines = 0
        self.records = 0

    def __iter__(self) -> Iterator[Record]:
        for partition, path in enumerate(self.paths):
            yield from self._read(partition, path)

    def _read(self, partition: int, path: str | Path) -> Iterator[Record]:
        topic, origin = self.topic, str(path)
        try:
            stream_id = fingerprint(path)
        except OSError as exc:
            raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
        number = 0
        with open_binary(path) as stream:
            kind = kind_for(path, self.fmt)
            splitter = split_delimited(stream, self.max_record_bytes) if kind == "delimited" else split_lines(stream)
            try:
                for number, value in enumerate(splitter, start=1):
                    if number == 1 and self.skip_header:
                        continue
                    if not value.strip():
                        self.blank_lines += 1
                        continue
                    self.records += 1
                    yield Record(
                        value=value, topic=topic, partition=partition, offset=number, origin=origin, stream=stream_id
                    )
            except _READ_ERRORS as exc:
                raise InputError(
                    f"{path}: cannot read past record {number} (byte {_position(stream)}"
                    f"{' of the compressed file' if isinstance(stream, gzip.GzipFile) else ''}): "
                    f"{type(exc).__name__}: {exc}"
                ) from None


def _position(stream: BinaryIO) -> int | str:
    """How far into the file reading got (for a gzip file: the compressed bytes consumed)."""
    raw = getattr(stream, "fileobj", stream)
    try:
        return int(raw.tell())
    except (OSError, ValueError, AttributeError):
        return "?"


def read_records(
    paths: Sequence[str | Path],
    topic: str,
    *,
    fmt: str | None = None,
    skip_header: bool = False,
    max_record_bytes: int = 4 * 1024 * 1024,
) -> Iterator[Record]:
    """Records of one or more files, in order (see :class:`FileSource`)."""
    return iter(FileSource(paths, topic, fmt=fmt, skip_header=skip_header, max_record_bytes=max_record_bytes))
