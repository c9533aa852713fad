"""Avro values, decoded with fastavro, as values the client mapping reads.

fastavro decodes logical types into Python objects (docs/formats.md has the full table); the
ones the ADX converters and the JSON writer of ``dynamic`` columns do not take as they are are
turned into text here, so that a ``$.path`` over a decoded record behaves as over the same
record in JSON:

- ``bytes`` and ``fixed`` -> base64 text (a ``string`` column holds it; ``dynamic`` a JSON string);
- ``decimal`` -> its exact decimal text (a ``decimal`` column reads it without rounding);
- ``uuid`` -> the UUID's text; ``date`` -> ``YYYY-MM-DD`` (midnight UTC in a ``datetime``
  column); ``time-millis``/``time-micros`` -> ``hh:mm:ss.ffffff`` (a ``timespan``);
- ``timestamp-*`` stay datetimes (UTC; ``local-timestamp-*`` are taken as UTC).

The schema is the writer's (the one the record's id names): evolution needs no reader schema,
since a field an older version lacks is simply missing, and its column null.
"""

from __future__ import annotations

import base64
import io
import re
import uuid
from collections.abc import Callable
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

import orjson
from fastavro import parse_schema, schemaless_reader

from shared.config import Mapping
from shared.errors import RecordError
from shared.formats.avro_rows import AvroRows, plan
from shared.formats.registry import RegisteredSchema, UnknownSchema
from shared.mapping.compiled import CompiledMapping

_NEEDS_TEXT = frozenset({"bytes", "fixed"})
_STREAM = re.compile(r" (?:from|in) <_io\.BytesIO object at 0x[0-9a-fA-F]+>")
"""fastavro names the stream it read in some errors ("cannot read double from <_io.BytesIO
object at 0x...>"): an address in a dead letter's reason says nothing, and makes equal records'
reasons differ."""
_LOGICAL_TEXT = frozenset({"decimal", "uuid", "date", "time-millis", "time-micros"})


class AvroSchema:
    """A parsed writer schema and the decoder of its records."""

    def __init__(self, schema_id: str, parsed: Any, source: Any = None, named_sources: tuple[Any, ...] = ()) -> None:
        self.schema_id = schema_id
        self.parsed = parsed
        self.source = source
        """The schema as JSON (before parsing), and those it references (dependencies first):
        a plan (:mod:`shared.formats.avro_rows`) parses a variant of it."""
        self.named_sources = named_sources
        # Most schemas hold no bytes/decimal/uuid/date/time: their records skip the walk that
        # turns those into text.
        self.plain: Callable[[Any], Any] = _to_plain if _needs_plain(parsed) else _identity

    def decode(self, payload: bytes | memoryview) -> Any:
        """The record's value as plain Python (dicts, lists, text, numbers, datetimes)."""
        stream = io.BytesIO(payload)
        try:
            value = schemaless_reader(stream, self.parsed, None)
        except Exception as exc:  # fastavro raises whatever the bytes provoke: all mean "bad record"
            raise RecordError(
                f"schema id {self.schema_id}: bytes do not decode as Avro with this schema: "
                f"{type(exc).__name__}: {_STREAM.sub('', str(exc))}",
                stage="decode",
            ) from None
        left = len(payload) - stream.tell()
        if left:
            raise RecordError(
                f"schema id {self.schema_id}: {left} byte(s) left after the Avro value (written with another schema?)",
                stage="decode",
            )
        return self.plain(value)

    def rows(self, mapping: CompiledMapping, declared: Mapping | None) -> AvroRows | None:
        """The plan that decodes and maps this schema's records under ``mapping`` straight to
        CSV rows (None: nothing to plan; see :mod:`shared.formats.avro_rows`)."""
        if self.source is None:
            return None
        plain = None if self.plain is _identity else self.plain
        return plan(self.schema_id, self.parsed, plain, self.source, self.named_sources, mapping, declared)


def parse_avro(schema: RegisteredSchema) -> AvroSchema:
    """Parse a registered Avro schema (:class:`UnknownSchema` when it is not one fastavro reads)."""
    if schema.kind != "AVRO":
        raise UnknownSchema(f"schema id {schema.schema_id} is a {schema.kind} schema, the route's format is avro")
    try:
        named: dict[str, Any] = {}
        dependencies = tuple(orjson.loads(text) for text in schema.references)
        for dependency in dependencies:  # dependencies first, so each parses with those before it
            parse_schema(dependency, named_schemas=named)
        source = orjson.loads(schema.text)
        parsed = parse_schema(source, named_schemas=named)
    except Exception as exc:  # fastavro's SchemaParseException, UnknownType, JSON errors...
        raise UnknownSchema(f"schema id {schema.schema_id} is not an Avro schema fastavro can parse: {exc}") from None
    return AvroSchema(schema.schema_id, parsed, source, dependencies)


def _needs_plain(schema: Any, seen: set[str] | None = None) -> bool:
    seen = set() if seen is None else seen
    if isinstance(schema, str):
        return schema in _NEEDS_TEXT
    if isinstance(schema, list):
        return any(_needs_plain(branch, seen) for branch in schema)
    if not isinstance(schema, dict):
        return False
    if schema.get("logicalType") in _LOGICAL_TEXT or schema.get("type") in _NEEDS_TEXT:
        return True
    name = schema.get("name")
    if isinstance(name, str):
        if name in seen:
            return False
        seen.add(name)
    kind = schema.get("type")
    if kind == "record":
        return any(_needs_plain(field["type"], seen) for field in schema.get("fields", ()))
    if kind == "array":
        return _needs_plain(schema.get("items"), seen)
    if kind == "map":
        return _needs_plain(schema.get("values"), seen)
    return _needs_plain(kind, seen) if isinstance(kind, (dict, list)) else False


def _identity(value: Any) -> Any:
    return value


def _to_plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _to_plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_to_plain(item) for item in value]
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):  # before date: a datetime is a date
        return value
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, time):
        return value.isoformat()
    return value
