"""Avro records straight to CSV rows: the decode and client mapping of one writer schema under
one compiled mapping, planned once from the schema's field types, with exactly the output of
the reference path (:meth:`AvroSchema.decode`, then :meth:`CompiledMapping.csv_line`).

Why: with the schema known, most columns' types are known before any record is read, and the
reference path's per-value work is mostly checking them. A plan (:class:`AvroRows`) reads the
top-level fields a mapping names with one ``itemgetter`` and writes each with the cheapest
writer that is exact for its Avro type:

- ``long`` (and ``int``) into a ``long`` column: ``str`` (fastavro's compiled reader returns a
  64-bit int for both, which is what the column's writer checks for);
- ``float``/``double`` into ``real``: ``repr`` when finite, else the column's own writer;
- ``string`` (no logical type) into ``string``: ``csv_field`` (the text is known to be text);
- ``timestamp-millis``/``-micros`` into ``datetime``: the field is decoded as its plain
  ``long`` (no datetime object made) and written from the integer, as fastavro would have
  made the datetime (``epoch + timedelta(microseconds=...)``) and the column's writer written
  it; only when no other column, path or transform reads that field;
- ``record``/``array``/``map`` into ``dynamic``: the JSON text by orjson, quoted;
- anything else (unions, other logical types, ``int`` into ``int`` whose range must be
  checked, transforms): the column's own cell writer, as ``csv_line`` calls it.

Columns that do not read a top-level field (metadata, deeper paths, constants, unmapped) are
written by their compiled cells, as ``csv_line`` writes them.

Any exception in a plan (a bad record, a value a fast writer does not take) means "not here":
the encoder then runs the reference path for that record, which gives its exact outcome —
its row, or the dead-letter reason the reference gives. Pinned by
tests/unit/formats/test_avro_rows.py (hypothesis, against the reference path).
"""

from __future__ import annotations

import io
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
from fastavro import parse_schema, schemaless_reader

from shared.config import Mapping, MappingProperties
from shared.mapping.compiled import CompiledMapping
from shared.mapping.types import csv_field
from shared.pipeline.records import Record

Writer = Callable[[Any], str]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MIN_US = (datetime(1, 1, 1, tzinfo=UTC) - _EPOCH) // timedelta(microseconds=1)
_MAX_US = (datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC) - _EPOCH) // timedelta(microseconds=1)
_US_PER_DAY = 86_400_000_000
_EPOCH_DATE = date(1970, 1, 1)
_HOURS = [f"T{h:02d}" for h in range(24)]
_MINUTES_SECONDS = [f":{m:02d}:{s:02d}" for m in range(60) for s in range(60)]
_MILLIS = [f".{ms:03d}0000Z" if ms else ".0000000Z" for ms in range(1000)]
_DAYS: dict[int, str] = {}
_DAYS_KEPT = 100_000
"""Dates remembered as text (a few MB at most; then forgotten all at once)."""

_TIMESTAMPS = {"timestamp-millis": 1000, "timestamp-micros": 1}
"""The logical types written from their integer, and microseconds per unit."""

# fastavro's compiled reader returns every long within 64 bits (its pure-Python one need not):
# only then is ``str`` the exact writer of a long column.
_COMPILED_READER = schemaless_reader.__module__ == "fastavro._read"


def _day_text(days: int) -> str:
    text = _DAYS.get(days)
    if text is None:
        if len(_DAYS) >= _DAYS_KEPT:
            _DAYS.clear()
        text = _DAYS[days] = (_EPOCH_DATE + timedelta(days=days)).isoformat()
    return text


def micros_text(micros: int) -> str:
    """``epoch + timedelta(microseconds=micros)`` as a ``datetime`` column writes it
    (``YYYY-MM-DDThh:mm:ss.fffffff`` and Z); OverflowError outside datetime's range, where
    fastavro's decoding of the datetime fails."""
    if not _MIN_US <= micros <= _MAX_US:
        raise OverflowError("timestamp out of range")
    days, rest = divmod(micros, _US_PER_DAY)
    seconds, fraction = divmod(rest, 1_000_000)
    hours, minutes_seconds = divmod(seconds, 3600)
    tail = f".{fraction:06d}0Z" if fraction % 1000 else _MILLIS[fraction // 1000]
    return _day_text(days) + _HOURS[hours] + _MINUTES_SECONDS[minutes_seconds] + tail


def millis_text(millis: int) -> str:
    """:func:`micros_text` of ``millis * 1000`` (fastavro's ``timestamp-millis``)."""
    return micros_text(millis * 1000)


def _real_text(write: Writer) -> Writer:
    def real(value: Any) -> str:
        # Avro float/double decode to float: finite ones are their repr (the column's fast path).
        return repr(value) if value - value == 0.0 else write(value)

    return real


def _json_text(value: Any) -> str:
    # a record/array/map: what to_text gives a dict or list (orjson; a TypeError falls back)
    return csv_field(orjson.dumps(value).decode())


def _field_kinds(parsed: Any) -> dict[str, Any]:
    """Top-level field name -> its type as parsed (a name, or a dict with ``type``)."""
    if not isinstance(parsed, dict) or parsed.get("type") != "record":
        return {}
    return {field["name"]: field["type"] for field in parsed.get("fields", ())}


def _kind(avro_type: Any) -> tuple[str | None, str | None]:
    """(base type, logical type) of a field's type; (None, None) for unions."""
    if isinstance(avro_type, str):
        return avro_type, None
    if isinstance(avro_type, dict):
        base = avro_type.get("type")
        return (base if isinstance(base, str) else None), avro_type.get("logicalType")
    return None, None


def _properties(mapping: CompiledMapping, declared: Mapping | None) -> list[MappingProperties | None]:
    """Each column's mapping properties as declared (None: unmapped, or no mapping at all, where
    each column reads ``$['<its name>']``: a key cell, no transform)."""
    if declared is None:
        return [None for _ in mapping.cells]
    by_column = {entry.column: entry.properties for entry in declared.columns}
    return [by_column.get(cell.name) for cell in mapping.cells]


Line = Callable[[bytes, int, Record], str]
"""(record value, where the Avro bytes start, the record) -> its CSV row."""


@dataclass(frozen=True)
class Column:
    """How a plan writes one column that reads a top-level field."""

    key: str
    write: Writer
    """Exact for any value the field's type decodes to (it may raise: the reference path then)."""


class AvroRows:
    """The plan of one writer schema under one mapping (see the module docstring)."""

    def __init__(self, schema_id: str, reader_schema: Any, plain: Callable[[Any], Any], columns: Sequence[Column],
                 others: Sequence[tuple[int, Any, Writer]], needs_location: bool) -> None:  # fmt: skip
        self.schema_id = schema_id
        self.reader_schema = reader_schema
        self.columns = tuple(columns)
        self.others = tuple(sorted(others, key=lambda other: other[0]))
        self.line: Line = _compile(reader_schema, plain, self.columns, self.others, needs_location)
        """The record's CSV row (any exception: run the reference path for this record)."""


def _getter(keys: Sequence[str]) -> Callable[[Any], Sequence[Any]]:
    get = operator.itemgetter(*keys)
    return get if len(keys) > 1 else (lambda doc: (get(doc),))


def _compile(reader_schema: Any, plain: Callable[[Any], Any], columns: tuple[Column, ...],
             others: tuple[tuple[int, Any, Writer], ...], needs_location: bool) -> Line:  # fmt: skip
    get = _getter([c.key for c in columns])
    writers = tuple(c.write for c in columns)
    call, reader, stream_of = operator.call, schemaless_reader, io.BytesIO

    def line(value: bytes, start: int, record: Record) -> str:
        stream = stream_of(value)  # shares the bytes (no copy), unlike a BytesIO of a memoryview slice
        stream.seek(start)
        doc = plain(reader(stream, reader_schema, None))
        if stream.tell() != len(value):
            raise ValueError("bytes left after the value")
        fields: list[str] = list(map(call, writers, get(doc)))  # each writer of its value
        if others:
            location = f"{record.topic}/{record.partition}" if needs_location else ""
            for position, getter, write in others:  # ascending positions: each lands in its place
                fields.insert(position, write(getter(doc, record, location)) if getter is not None else "")
        return ",".join(fields) or '""'

    return line


def plan(schema_id: str, parsed: Any, plain: Callable[[Any], Any], source: Any, named_sources: Sequence[Any],
         mapping: CompiledMapping, declared: Mapping | None) -> AvroRows | None:  # fmt: skip
    """The plan of ``parsed`` (fastavro's parse of ``source``, whose named dependencies are
    ``named_sources``) under ``mapping``; None when no column reads a top-level field."""
    fields = _field_kinds(parsed)
    if not fields:
        return None
    props = _properties(mapping, declared)
    cells = list(zip(props, mapping.cells, strict=True))
    deep = any(p is not None and p.path is not None and cell.key is None for p, cell in cells)
    readers: dict[str, set[str]] = {}  # field -> the column types of the cells reading it ("other": a transform)
    for p, cell in cells:
        if cell.key is not None and cell.key in fields:
            readers.setdefault(cell.key, set()).add(cell.type if p is None or p.transform is None else "other")
    as_ints: dict[str, int] = {}  # timestamp fields decoded as their long -> microseconds per unit
    if not deep:
        for name, kinds in readers.items():
            base, logical = _kind(fields[name])
            if base == "long" and logical in _TIMESTAMPS and kinds == {"datetime"}:
                as_ints[name] = _TIMESTAMPS[logical]
    columns: list[Column] = []
    others: list[tuple[int, Any, Writer]] = []
    for position, (p, cell) in enumerate(cells):
        if cell.key is None or cell.key not in fields:
            others.append((position, cell.getter, cell.write))
        elif p is not None and p.transform is not None:
            columns.append(Column(cell.key, cell.write))
        else:
            columns.append(_column(cell.key, fields[cell.key], cell.type, cell.write, as_ints.get(cell.key)))
    if not columns:
        return None
    reader_schema = _reparsed(source, named_sources, set(as_ints)) if as_ints else parsed
    needs_location = any(p is not None and p.transform == "SourceLocation" for p in props)
    return AvroRows(schema_id, reader_schema, plain, columns, others, needs_location)


def _column(key: str, avro_type: Any, column: str, write: Writer, unit: int | None) -> Column:
    if unit is not None:
        return Column(key, millis_text if unit == 1000 else micros_text)
    base, logical = _kind(avro_type)
    if logical is not None and base not in ("record", "array", "map"):
        return Column(key, write)
    if column == "long" and base in ("int", "long"):
        # fastavro's compiled reader returns 64-bit ints for both; its pure-Python one need not.
        return Column(key, str) if _COMPILED_READER else Column(key, write)
    if column == "real" and base in ("float", "double"):
        return Column(key, _real_text(write))
    if column == "string" and base == "string":
        return Column(key, csv_field)
    if column == "dynamic" and base in ("record", "array", "map"):
        return Column(key, _json_text)
    return Column(key, write)


def _reparsed(source: Any, named_sources: Sequence[Any], as_ints: set[str]) -> Any:
    """``source`` parsed with the timestamp fields of ``as_ints`` as plain longs."""
    fields = [
        {**field, "type": "long"} if field["name"] in as_ints else field
        for field in source["fields"]
    ]  # fmt: skip
    named: dict[str, Any] = {}
    for dependency in named_sources:
        parse_schema(dependency, named_schemas=named)
    return parse_schema({**source, "fields": fields}, named_schemas=named)
