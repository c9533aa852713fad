"""Per-destination encoding of records into the lines a batch carries, with per-record
validation, and the readers that parse those payloads back (for the local sink and tests).

- server mapping: the record's bytes pass through (checked when validation is on), one line
  per record; JSON spanning lines is re-serialised onto one line so ADX's ``json`` format
  reads it;
- client mapping: the record is decoded, mapped with :class:`CompiledMapping` and written as a
  CSV row in table column order.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol

import orjson

from shared.config import DELIMITERS, JSON_FORMATS, IngestionConfig
from shared.errors import RecordError
from shared.mapping.compiled import CompiledMapping, expected_fields
from shared.pipeline.destination import Destination
from shared.pipeline.records import Record

if TYPE_CHECKING:
    from shared.formats.registry import Registries

# A byte looked for in bytes as an int: ``b"\n" in value`` first tries the bytes as an int and
# builds (and drops) a TypeError before it searches, ~0.5 us a call; ``10 in value`` is a memchr.
_LF, _CR = ord("\n"), ord("\r")
_loads = orjson.loads

# One registered csv dialect per delimiter (RFC 4180 quoting, strict): a reader made from a
# dialect name starts faster than one made from keyword arguments, and one starts per record.
_DIALECTS = {delimiter: f"kafka-adx-{name}" for name, delimiter in DELIMITERS.items()}
for _delimiter, _dialect in _DIALECTS.items():
    csv.register_dialect(_dialect, delimiter=_delimiter, strict=True)


class Encoder(Protocol):
    """Turns one record into its line(s) for a batch, or raises :class:`RecordError`."""

    def encode(self, record: Record) -> bytes:
        """Encoded line(s) without a trailing newline."""
        ...


def _utf8(value: bytes) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RecordError(f"value is not valid UTF-8 (byte {exc.start})", stage="decode") from None


def _strip_eol(value: bytes) -> bytes:
    if value.endswith(b"\n"):
        value = value[:-1]
        if value.endswith(b"\r"):
            value = value[:-1]
    return value


def parse_json(value: bytes, fmt: str) -> Any:
    """Parse a JSON record: an object for ``json``; an object or array of objects for
    ``multijson`` (a record holding several objects back to back is read too)."""
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        if fmt == "multijson":
            try:
                return list(iter_json_values(_utf8(value)))
            except ValueError:
                pass
        raise RecordError(f"invalid JSON: {exc}", stage="decode") from None
    if isinstance(doc, dict):
        return doc
    if fmt == "multijson" and isinstance(doc, list) and all(isinstance(item, dict) for item in doc):
        return doc
    expected = "an object or an array of objects" if fmt == "multijson" else "an object"
    raise RecordError(f"JSON value is {type(doc).__name__}, expected {expected}", stage="decode")


def iter_json_values(text: str) -> Iterator[Any]:
    """JSON values written back to back (whitespace between them allowed)."""
    decoder = json.JSONDecoder()
    pos, end = 0, len(text)
    while True:
        while pos < end and text[pos] in " \t\r\n":
            pos += 1
        if pos >= end:
            return
        value, pos = decoder.raw_decode(text, pos)
        yield value


def _csv_reader(lines: Iterable[str], delimiter: str) -> Iterator[list[str]]:
    dialect = _DIALECTS.get(delimiter)
    if dialect is not None:
        return csv.reader(lines, dialect)
    return csv.reader(lines, delimiter=delimiter, strict=True)


def _split_quoted_line(text: str, delimiter: str) -> list[str]:
    """The fields of a one-line record with quotes (the reader gives exactly one row)."""
    dialect = _DIALECTS.get(delimiter)  # inlined _csv_reader: this runs once per record
    try:
        if dialect is not None:
            return next(csv.reader((text,), dialect))
        return next(csv.reader((text,), delimiter=delimiter, strict=True))
    except csv.Error as exc:
        raise RecordError(f"invalid CSV quoting: {exc}", stage="decode") from None


def split_delimited(text: str, delimiter: str) -> list[str]:
    """The fields of one delimited record, with CSV quoting as ADX reads it (RFC 4180)."""
    if "\n" not in text and "\r" not in text:
        return _split_quoted_line(text, delimiter) if '"' in text else text.split(delimiter)
    if '"' not in text:
        raise RecordError("record holds more than one line", stage="decode")
    try:
        rows = list(_csv_reader(io.StringIO(text, newline=""), delimiter))
    except csv.Error as exc:
        raise RecordError(f"invalid CSV quoting: {exc}", stage="decode") from None
    if len(rows) != 1:
        raise RecordError(f"record holds {len(rows)} rows, expected one", stage="decode")
    return rows[0]


def count_fields(text: str, delimiter: str, value: bytes | None = None) -> int:
    """``len(split_delimited(text, delimiter))`` (or its RecordError), without building the
    fields; ``value`` is ``text`` in UTF-8 when the caller has it (pinned against the csv
    module by tests/unit/pipeline/test_csv_count.py)."""
    if "\n" in text or "\r" in text:
        return len(split_delimited(text, delimiter))
    if '"' not in text:
        return text.count(delimiter) + 1
    count = None
    if delimiter.isascii():  # every delimiter of DELIMITERS is
        count = _count_quoted_line(text.encode("utf-8") if value is None else value, delimiter.encode())
    # None: broken quoting or an oversize field; the csv module decides, and words the error.
    return len(_split_quoted_line(text, delimiter)) if count is None else count


def _count_quoted_line(value: bytes, delimiter: bytes) -> int | None:
    """The number of fields of a one-line record holding quotes, as ``csv.reader`` with the
    strict dialect counts them, or None when the csv module raises (or might: a line longer than
    its field size limit). Works on the UTF-8 bytes (an ASCII delimiter or quote byte is never
    part of a multi-byte character) with C-level ``bytes`` calls only: ``find``/``count``
    between the quoted fields, and each quoted field's closing quote found with one ``find`` in
    the line with its doubled quotes masked (below), instead of a csv reader and its list of
    fields per record (~3 us for a 400-byte row with a quoted JSON column) or a regex step per
    doubled quote. Linear in the line: the mask is made once per line, not once per field."""
    if len(value) > csv.field_size_limit():
        return None
    count, pos, end = 1, 0, len(value)
    find, tally, sep = value.find, value.count, delimiter[0]
    masked_find = None
    while True:
        quote = find(b'"', pos)
        if quote < 0:
            return count + tally(delimiter, pos)
        if quote > pos:
            count += tally(delimiter, pos, quote)
            if value[quote - 1] != sep:
                # A quote inside an unquoted field is an ordinary character: the field runs on
                # to the next delimiter.
                pos = find(delimiter, quote)
                if pos < 0:
                    return count
                count += 1
                pos += 1
                continue
        # Inside a quoted field the reader takes a quote followed by a quote as one escaped
        # quote, left to right, and the first quote left over closes the field. replace() pairs
        # quotes the same way (left to right, without overlap), and two non-quote bytes in place
        # of each pair keep the positions. It pairs each run of quotes from the run's first
        # quote, as the field's content does for every run after a non-quote byte; only the run
        # the opening quote starts is paired from its second quote, so that run is counted here.
        run = quote + 1
        while run < end and value[run] == 34:
            run += 1
        if (run - quote) % 2 == 0:  # an odd number of quotes after the opening one: the last closes
            close = run - 1
        else:
            if masked_find is None:
                masked_find = value.replace(b'""', b"__").find
            close = masked_find(b'"', run)
            if close < 0:
                return None  # never closed
        pos = close + 1
        if pos == end:
            return count
        if value[pos] != sep:
            return None  # strict: only a delimiter may follow the closing quote
        count += 1
        pos += 1


class JsonPassthrough:
    """Server-mapped JSON: check that it parses, keep it on one line."""

    def __init__(self, fmt: str, validate: bool) -> None:
        self.fmt = fmt
        self.validate = validate

    def encode(self, record: Record) -> bytes:
        """The record's JSON on one line."""
        value = record.value or b""
        if self.validate:
            # parse_json, inlined for the common case (an object): anything else, or JSON that
            # does not parse, goes to parse_json, which reads multijson and words the errors.
            try:
                doc = _loads(value)
            except orjson.JSONDecodeError:
                doc = parse_json(value, self.fmt)
            if not isinstance(doc, dict):
                doc = parse_json(value, self.fmt)
            if self.fmt == "json" and (_LF in value or _CR in value):
                return orjson.dumps(doc)
            return value
        if self.fmt == "json" and (_LF in value or _CR in value):
            return orjson.dumps(parse_json(value, self.fmt))
        return value


def _wrong_field_count(count: int, expected: int, why: str) -> RecordError:
    return RecordError(f"has {count} fields, expected {expected} ({why})", stage="decode")


class DelimitedPassthrough:
    """Server-mapped CSV/TSV/PSV...: check UTF-8 and the exact field count, keep the bytes.

    ``fields`` None: no width to check (a mapping without ordinals)."""

    def __init__(self, delimiter: str, fields: int | None, why: str, validate: bool) -> None:
        self.delimiter = delimiter
        self.fields = fields
        self.why = why
        self.validate = validate
        self._delimiter_bytes = delimiter.encode() if delimiter.isascii() else None

    def encode(self, record: Record) -> bytes:
        """The record's row."""
        value = record.value or b""
        if value.endswith(b"\n"):
            value = _strip_eol(value)
        if not self.validate:
            return value
        try:
            text = value.decode("utf-8")
        except UnicodeDecodeError:
            text = _utf8(value)  # raises, naming the byte
        delimiter = self._delimiter_bytes
        if delimiter is not None and "\n" not in text and "\r" not in text:
            # count_fields of a one-line row, inlined: a row of the expected width is accepted
            # here; any other (a wrong count, broken quoting) takes the reference path below,
            # which counts again and words the error.
            count = _count_quoted_line(value, delimiter) if '"' in text else text.count(self.delimiter) + 1
            if count is not None and (count == self.fields or self.fields is None):
                return value
        if self.fields is None:
            count_fields(text, self.delimiter, value)  # still rejects broken quoting and several rows
            return value
        count = count_fields(text, self.delimiter, value)
        if count != self.fields:
            raise _wrong_field_count(count, self.fields, self.why)
        return value


def passes_through(encoder: Encoder) -> bool:
    """Whether ``encoder.encode(record)`` is ``record.value`` itself for every non-empty value
    that does not end with a newline: a delimited route without validation (the pipeline's hot
    path then skips the call; pinned by tests/unit/pipeline/test_process_fast_path.py)."""
    return type(encoder) is DelimitedPassthrough and not encoder.validate


class TextPassthrough:
    """txt/raw: one record is one row of a single string column."""

    def __init__(self, validate: bool) -> None:
        self.validate = validate

    def encode(self, record: Record) -> bytes:
        """The record's text on one line."""
        value = _strip_eol(record.value or b"")
        if _LF in value or _CR in value:
            raise RecordError("record contains a line break; txt ingests one row per line", stage="decode")
        if self.validate:
            _utf8(value)
        return value


class ClientMapped:
    """Client-side mapping: decode, map, convert, write a CSV row in table column order."""

    def __init__(self, config: IngestionConfig, dest: Destination) -> None:
        table = config.tables[dest.table]
        mapping = table.mappings[dest.mapping] if dest.mapping else None
        self.fmt = dest.format
        kind = "json" if dest.format in JSON_FORMATS else "csv"
        self.mapping = CompiledMapping(table, mapping, kind, strict=dest.validate)
        self.delimiter = DELIMITERS.get(dest.format)
        self.fields, self.why = expected_fields(table, mapping)

    def encode(self, record: Record) -> bytes:
        """One CSV row per object in the record."""
        value = record.value or b""
        location = f"{record.topic}/{record.partition}"
        rows = [self.mapping.csv_line(doc, record, location) for doc in self.documents(value)]
        return "\n".join(rows).encode("utf-8")

    def documents(self, value: bytes) -> list[Any]:
        """The decoded documents of one record."""
        if self.fmt in JSON_FORMATS:
            doc = parse_json(value, self.fmt)
            return doc if isinstance(doc, list) else [doc]
        text = _utf8(_strip_eol(value))
        if self.delimiter is None:  # txt / raw: the whole line is field 0
            if "\n" in text or "\r" in text:
                raise RecordError("record contains a line break; txt ingests one row per line", stage="decode")
            return [[text]]
        fields = split_delimited(text, self.delimiter)
        if self.mapping.strict and self.fields is not None and len(fields) != self.fields:
            raise _wrong_field_count(len(fields), self.fields, self.why)
        return [fields]


def encoder_for(config: IngestionConfig, dest: Destination, registries: Registries | None = None) -> Encoder:
    """The encoder of a destination; ``registries`` are where a schema format's schemas come
    from (None: the environment's, for a pipeline built without settings)."""
    if dest.format in ("avro", "jsonschema"):  # shared.config.SCHEMA_FORMATS: decoded with a registry's schema
        from shared.formats.encoder import SchemaMapped

        return SchemaMapped(config, dest, registries)
    if dest.apply == "client":
        return ClientMapped(config, dest)
    if dest.format in JSON_FORMATS:
        return JsonPassthrough(dest.format, dest.validate)
    delimiter = DELIMITERS.get(dest.format)
    if delimiter is None:
        return TextPassthrough(dest.validate)
    if config.is_external_mapping(dest.table, dest.mapping):
        # Only the cluster knows an external mapping's ordinals: no field count to check.
        return DelimitedPassthrough(delimiter, None, "", dest.validate)
    table = config.tables[dest.table]
    fields, why = expected_fields(table, config.declared_mapping(dest.table, dest.mapping))
    return DelimitedPassthrough(delimiter, fields, why, dest.validate)


def read_payload(data: bytes, wire_format: str) -> Iterator[Any]:
    """Parse an uncompressed batch payload the way ADX would: JSON objects, or lists of fields."""
    if wire_format == "json" or wire_format in DELIMITERS:
        yield from read_payload_stream(io.BytesIO(data), wire_format)
        return
    text = data.decode("utf-8", errors="replace")
    if wire_format == "multijson":
        for value in iter_json_values(text):
            if isinstance(value, list):
                yield from value
            else:
                yield value
        return
    for line in text.split("\n")[:-1] if text.endswith("\n") else text.split("\n"):
        yield [line]


def read_payload_stream(stream: BinaryIO, wire_format: str) -> Iterator[Any]:
    """:func:`read_payload` over a binary stream, holding one record at a time for ``json`` and
    the delimited formats (the others are read whole)."""
    if wire_format == "json":
        # Records are separated by "\n" only (a binary stream splits on nothing else; text
        # splitting would also split inside JSON strings at U+2028 and friends).
        for raw in stream:
            line = raw.decode("utf-8", errors="replace")
            if line.strip():
                yield orjson.loads(line)
        return
    delimiter = DELIMITERS.get(wire_format)
    if delimiter is not None:
        text = io.TextIOWrapper(stream, encoding="utf-8", errors="replace", newline="")
        yield from csv.reader(text, delimiter=delimiter)
        return
    yield from read_payload(stream.read(), wire_format)
