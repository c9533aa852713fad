"""ADX mapping semantics in Python: turn one decoded record into a row in table column order.

The same engine serves client-side mapping in the pipeline, ``kafka-adx preview`` and the local
DuckDB sink (which plays ADX's part for server-side mappings). Rules, as ADX documents them:

- a JSON ``Path`` that does not exist gives null; ``$`` is the whole document;
- a CSV ``Ordinal`` past the last field gives null;
- ``ConstValue`` gives the constant for every row;
- DateTimeFromUnix{Seconds,Milliseconds,Microseconds,Nanoseconds} turn numbers into datetimes;
- SourceLocation / SourceLineNumber give where the record came from and its line (offset);
- columns the mapping does not name are null;
- without a mapping, CSV maps by ordinal in table order and JSON by column name.
``Metadata`` (key, topic, partition, offset, timestamp, header:<name>) is this project's
extension for client-side mapping.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.config import Mapping, MappingProperties, Table
from shared.errors import RecordError
from shared.mapping import types as adxtypes
from shared.mapping.generated import LineWriter, Source, line_writer
from shared.mapping.jsonpath import parse_path, resolve
from shared.pipeline.records import Record

Getter = Callable[[Any, Record, str], Any]
"""(decoded document, record, source location) -> raw value."""


def _decode_bytes(data: bytes | None, what: str) -> str | None:
    if data is None:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{what} is not valid UTF-8 (byte {exc.start})") from None


def _metadata_getter(source: str) -> Getter:
    if source == "key":
        return lambda doc, rec, loc: _decode_bytes(rec.key, "the record key")
    if source == "topic":
        return lambda doc, rec, loc: rec.topic
    if source == "partition":
        return lambda doc, rec, loc: rec.partition
    if source == "offset":
        return lambda doc, rec, loc: rec.offset
    if source == "timestamp":
        return lambda doc, rec, loc: rec.timestamp
    name = source.split(":", 1)[1]
    return lambda doc, rec, loc: _decode_bytes(rec.header(name), f"header {name!r}")


def _one_key(props: MappingProperties | None) -> str | None:
    """The name of a ``$.name`` path, the common case, which resolves with one dict lookup."""
    if props is None or props.path is None:
        return None
    steps = parse_path(props.path)
    return steps[0] if len(steps) == 1 and isinstance(steps[0], str) else None


def _missing(key: str) -> None:
    return None


def _getter(props: MappingProperties) -> Getter:
    if props.path is not None:
        key = _one_key(props)
        if key is not None:
            return lambda doc, rec, loc: doc.get(key) if isinstance(doc, dict) else None
        steps = parse_path(props.path)
        return lambda doc, rec, loc: resolve(doc, steps)
    if props.ordinal is not None:
        index = props.ordinal
        return lambda doc, rec, loc: doc[index] if isinstance(doc, list) and index < len(doc) else None
    if props.const_value is not None:
        const = props.const_value
        return lambda doc, rec, loc: const
    if props.metadata is not None:
        return _metadata_getter(props.metadata)
    if props.transform == "SourceLocation":
        return lambda doc, rec, loc: loc
    # SourceLineNumber
    return lambda doc, rec, loc: rec.offset


@dataclass(frozen=True, slots=True)
class Cell:
    """One table column as the compiled mapping reads, converts and writes it."""

    name: str
    type: str
    key: str | None
    """The key of a ``$.name`` path, read with one dict lookup; else None."""
    getter: Getter | None
    """Reads the raw value (None: the mapping does not name this column, it is null)."""
    convert: Callable[[Any], Any]
    """The column type's converter, with a DateTimeFromUnix* transform folded in."""
    write: adxtypes.CellWriter
    """Converts a raw value and writes its CSV field in one call, the transform folded in."""


class CompiledMapping:
    """A mapping compiled once into one :class:`Cell` (getter, converter, writer) per column.

    ``strict`` (per-record validation on): a value that does not convert to its column type
    raises :class:`RecordError` naming the column; otherwise it becomes null, as in ADX.
    """

    def __init__(self, table: Table, mapping: Mapping | None, kind: str, *, strict: bool) -> None:
        self.table = table
        self.kind = kind
        self.strict = strict
        by_column = {entry.column: entry.properties for entry in mapping.columns} if mapping else None
        self.cells: list[Cell] = []
        sources: list[Source] = []
        unix_transforms: list[bool] = []
        for index, column in enumerate(table.columns):
            props: MappingProperties | None
            if by_column is None:
                props = MappingProperties.model_validate(
                    {"Ordinal": index} if kind == "csv" else {"Path": f"$[{_quote(column.name)}]"}
                )
            else:
                props = by_column.get(column.name)
            transform = props.transform if props is not None else None
            unix = transform if transform and transform.startswith("DateTimeFromUnix") else None
            scalar = adxtypes.TYPES[column.type]
            sources.append(_source(props))
            unix_transforms.append(unix is not None)
            self.cells.append(Cell(
                name=column.name,
                type=column.type,
                key=_one_key(props),
                getter=_getter(props) if props is not None else None,
                convert=scalar.convert if unix is None else _after_unix(scalar.convert, unix),
                write=scalar.cell if unix is None else _after_unix(scalar.cell, unix),
            ))
        # The per-record loops read the cells as plain tuples: unpacking an exact tuple is the
        # fastest way to get at six values per column in CPython (attribute reads, or unpacking
        # a NamedTuple, cost ~10% of `make bench` case (c)).
        self._unpacked = tuple((c.name, c.type, c.key, c.getter, c.convert, c.write) for c in self.cells)
        kinds = {source.kind for source in sources}
        doc_kind = "dict" if "key" in kinds else "list" if "ordinal" in kinds else None
        if doc_kind == "dict" and "ordinal" in kinds:  # keys and ordinals in one mapping: ordinals by getter
            sources = [Source("getter", c.getter) if s.kind == "ordinal" else s for s, c in zip(sources, self.cells, strict=True)]
        self.csv_line: LineWriter = line_writer(
            [c.type for c in self.cells], sources, [c.write for c in self.cells], unix_transforms, doc_kind,
            self.csv_line_reference,
        )
        """The row as the CSV line the client mapping sends: exactly
        ``adxtypes.csv_line(self.row(doc, record, location))``, in one call of a function
        generated for this mapping (see :mod:`shared.mapping.generated`); its reference is
        :meth:`csv_line_reference`."""

    def row(self, doc: Any, record: Record, location: str = "") -> list[Any]:
        """Map one decoded document to converted values in table column order."""
        values: list[Any] = []
        append = values.append
        for name, adx_type, _key, getter, convert, _write in self._unpacked:
            if getter is None:
                append(None)
                continue
            try:
                append(convert(getter(doc, record, location)))
            except (ValueError, TypeError, OverflowError, ArithmeticError) as exc:
                if self.strict:
                    raise _column_error(name, adx_type, exc) from None
                append(None)
        return values

    def csv_line_reference(self, doc: Any, record: Record, location: str = "") -> str:
        """The row as the CSV line the client mapping sends: exactly
        ``adxtypes.csv_line(self.row(doc, record, location))``, one cell writer call per column.
        The reference of :attr:`csv_line`, which handles every value this does, faster, and hands
        the others (and every error) back to it."""
        get = doc.get if isinstance(doc, dict) else _missing
        fields: list[str] = []
        append = fields.append
        for name, adx_type, key, getter, _convert, write in self._unpacked:
            try:
                if key is not None:
                    append(write(get(key)))
                elif getter is not None:
                    append(write(getter(doc, record, location)))
                else:
                    append("")
            except (ValueError, TypeError, OverflowError, ArithmeticError) as exc:
                if self.strict:
                    raise _column_error(name, adx_type, exc) from None
                append("")
        return ",".join(fields) or '""'


def _source(props: MappingProperties | None) -> Source:
    """Where the generated line function reads a column's raw value (what :func:`_getter` reads)."""
    if props is None:
        return Source("none")
    key = _one_key(props)
    if key is not None:
        return Source("key", key)
    if props.path is None and props.ordinal is not None:
        return Source("ordinal", props.ordinal)
    if props.path is None and props.metadata in ("topic", "partition", "offset"):
        return Source("attr", props.metadata)
    return Source("getter", _getter(props))


def _column_error(name: str, adx_type: str, exc: Exception) -> RecordError:
    return RecordError(f"column {name} ({adx_type}): {exc}", stage="map", field=name)


def _after_unix(converter: Callable[[Any], Any], transform: str) -> Callable[[Any], Any]:
    # Typed with Any: also wraps the cell writers (which return str).
    return lambda raw: converter(adxtypes.from_unix(raw, transform))


def _quote(name: str) -> str:
    return "'" + name.replace("\\", "\\\\").replace("'", "\\'") + "'"


def expected_fields(table: Table, mapping: Mapping | None) -> tuple[int | None, str]:
    """How many fields every delimited record must have, exactly, and where that number comes
    from (for the dead-letter reason): without a mapping the table's column count (ADX maps by
    ordinal in table order); with one its ``source_fields``, else its highest ordinal + 1. None:
    the mapping reads no ordinal and declares no width, so any count maps the same.

    Exactly, not "at least": ADX fails a whole blob whose records disagree on their field count
    (Stream_WrongNumberOfFields), so one wide record would sink its batch's neighbours, and a
    record of another width means the producer's columns moved under the ordinals."""
    if mapping is None:
        if not table.columns:  # an external table that lists no columns: its width is unknown here
            return None, "the table's column count (unknown: the external table lists no columns)"
        return len(table.columns), "the table's column count"
    count = mapping.expected_fields
    if mapping.source_fields is not None:
        return count, "the mapping's source_fields"
    return count, "the mapping's highest Ordinal + 1; set source_fields if the source is wider"


def describe_row(table: Table, values: list[Any]) -> dict[str, Any]:
    """Column name to value, for previews."""
    out: dict[str, Any] = {}
    for column, value in zip(table.columns, values, strict=True):
        out[column.name] = adxtypes.format_datetime(value) if isinstance(value, datetime) else value
    return out
