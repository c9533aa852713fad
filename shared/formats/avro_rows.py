"""Avro records straight to CSV rows: the decode and client mapping of one writer schema under
one compiled mapping, planned once from the schema's field types, with exactly the output of
the reference path (:meth:`AvroSchema.decode`, then :meth:`CompiledMapping.csv_line`).

Why: with the schema known, most columns' types are known before any record is read, and the
reference path's per-value work is mostly checking them and calling a writer per column. A plan
(:class:`AvroRows`) generates one function per (schema, mapping) that decodes the record and
writes its row in one expression, each column in the cheapest form that is exact for its Avro
type (:data:`_TEMPLATES`; the generated text holds no name from the schema or the mapping, which
are bound as constants):

- ``long`` (and ``int``) into a ``long`` column: ``str`` (fastavro's compiled reader returns a
  64-bit int for both, which is what the column's writer checks for);
- ``int`` into ``int``: ``str`` after an inline range check (a long varint in an ``int`` field
  decodes beyond 32 bits: the column's writer then refuses it, as in the reference);
- ``float``/``double`` into ``real``: ``repr`` when finite (inline), else the column's writer;
- ``string`` (no logical type) into ``string``: the text, quoted by ``csv_field`` only when the
  inline check says it needs it;
- ``timestamp-millis``/``-micros`` into ``datetime``: the field is decoded as its plain
  ``long`` (no datetime object made) and written from the integer (:func:`micros_text`), as
  fastavro would have made the datetime (``epoch + timedelta(microseconds=...)``) and the
  column's writer written it; only when no other column, path or transform reads that field;
- ``record``/``array``/``map`` into ``dynamic``: the JSON text by orjson, quoted;
- anything else (unions, other logical types, ``long`` into ``int``, transforms): the column's
  own cell writer, as ``csv_line`` calls it; columns that read no top-level field (metadata,
  deeper paths, constants, unmapped): their compiled cell, as ``csv_line`` calls it.

Any exception in a plan (a bad record, a value a fast writer does not take) means "not here":
the encoder then runs the reference path for that record, which gives its exact outcome —
its row, or the dead-letter reason the reference gives. Pinned by
tests/unit/formats/test_avro_rows.py (hypothesis, against the reference path).
"""

from __future__ import annotations

import io
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
    how: str = "call"
    """Its template in the generated line (:data:`_TEMPLATES`): ``call`` calls ``write``; the
    others check the value inline and call ``write`` only for what the check does not take."""


class AvroRows:
    """The plan of one writer schema under one mapping (see the module docstring)."""

    def __init__(self, schema_id: str, reader_schema: Any, plain: Callable[[Any], Any] | None, columns: Sequence[Column],
                 others: Sequence[tuple[int, Any, Writer]], needs_location: bool) -> None:  # fmt: skip
        self.schema_id = schema_id
        self.reader_schema = reader_schema
        self.columns = tuple(columns)
        self.others = tuple(sorted(others, key=lambda other: other[0]))
        self.line: Line
        """The record's CSV row (any exception: run the reference path for this record)."""
        self.line, self.source = _compile(reader_schema, plain, self.columns, self.others, needs_location)


# The templates of a generated line function, by how a column is written. ``d`` is the decoded
# record, ``k<i>`` the column's key and ``w<i>`` its exact writer (bound as constants, so the
# generated text holds no name from the schema or the mapping). Each is exactly what the column's
# cell writer returns for a value of the field's Avro type, checked inline instead of in a call.
_TEMPLATES = {
    "call": "w{i}(d[k{i}])",
    "str": "str(d[k{i}])",
    "text": "(csv_field(v) if (v := d[k{i}]) and ('\"' in v or ',' in v or '\\n' in v or '\\r' in v or v[0].isspace() "
            "or v[-1].isspace()) else v)",
    "int32": "(str(v) if type(v := d[k{i}]) is int and -2147483648 <= v <= 2147483647 else w{i}(v))",
    "real": "(repr(v) if type(v := d[k{i}]) is float and v - v == 0.0 else w{i}(v))",
    "other": "w{i}(g{i}(d, record, location))",
    "null": "''",
}  # fmt: skip

_LINE = """\
def line(value, start, record):
    stream = BytesIO(value)
    stream.seek(start)
    d = {decoded}
    if stream.tell() != len(value):
        raise ValueError("bytes left after the value")
    location = {location}
    return {row}
"""


def _compile(reader_schema: Any, plain: Callable[[Any], Any] | None, columns: tuple[Column, ...],
             others: tuple[tuple[int, Any, Writer], ...], needs_location: bool) -> tuple[Line, str]:  # fmt: skip
    """The line function of a plan, generated once (one expression per column, in table order:
    a call per column would cost about as much again as the inline checks), and its source."""
    namespace: dict[str, Any] = {"BytesIO": io.BytesIO, "reader": schemaless_reader, "schema": reader_schema,
                                 "plain": plain, "csv_field": csv_field}  # fmt: skip
    at_position = {position: (getter, write) for position, getter, write in others}
    expressions = []
    keyed = iter(columns)
    for i in range(len(columns) + len(others)):
        if i in at_position:
            getter, write = at_position[i]
            namespace[f"g{i}"], namespace[f"w{i}"] = getter, write
            expressions.append(_TEMPLATES["other" if getter is not None else "null"].format(i=i))
            continue
        column = next(keyed)
        namespace[f"k{i}"], namespace[f"w{i}"] = column.key, column.write
        expressions.append(_TEMPLATES[column.how].format(i=i))
    row = f"','.join(({', '.join(expressions)},))" + (" or '\"\"'" if len(expressions) == 1 else "")
    source = _LINE.format(
        decoded="reader(stream, schema, None)" if plain is None else "plain(reader(stream, schema, None))",
        location="f'{record.topic}/{record.partition}'" if needs_location else "''",
        row=row,
    )
    exec(compile(source, "<avro row plan>", "exec"), namespace)  # our templates; every name bound as a constant
    line: Line = namespace["line"]
    return line, source


def plan(schema_id: str, parsed: Any, plain: Callable[[Any], Any] | None, source: Any, named_sources: Sequence[Any],
         mapping: CompiledMapping, declared: Mapping | None) -> AvroRows | None:  # fmt: skip
    """The plan of ``parsed`` (fastavro's parse of ``source``, whose named dependencies are
    ``named_sources``) under ``mapping``; ``plain`` turns decoded values into what the mapping
    reads (None: they are already). None when no column reads a top-level field."""
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
        return Column(key, write, "str") if _COMPILED_READER else Column(key, write)
    if column == "int" and base == "int":  # an Avro int may decode beyond 32 bits (a long varint)
        return Column(key, write, "int32")
    if column == "real" and base in ("float", "double"):
        return Column(key, write, "real")
    if column == "string" and base == "string":
        return Column(key, csv_field, "text")
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
