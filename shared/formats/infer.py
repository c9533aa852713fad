"""ADX columns inferred from what a user has: an Avro schema, a JSON Schema, or sample records
(JSON lines, or CSV with a header), for ``kafka-adx init``.

Each inferred column says where it comes from (a JSON path, or a CSV ordinal) and why it got
its type, so the user can review it before ingesting. Nested records become one ``dynamic``
column, or with ``flatten`` one column per leaf field (``address.city`` -> ``address_city``).

The Avro to ADX table (docs/formats.md, "Avro types"): boolean -> bool, int -> int, long ->
long, float/double -> real, string/enum -> string, bytes/fixed -> string (base64), array/map ->
dynamic, record -> dynamic (or flattened), a union of null and one type -> that type, other
unions -> dynamic; logical types decimal -> decimal, uuid -> guid, date and timestamp-* /
local-timestamp-* -> datetime, time-* -> timespan.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from shared.mapping import types as adxtypes

_NAME_CHARS = re.compile(r"[^A-Za-z0-9_.\-]")


@dataclass(frozen=True)
class Inferred:
    """One column of an inferred table."""

    name: str
    """Column name (only characters the ingestion file allows)."""
    type: str
    """ADX type."""
    path: str | None
    """JSON path of the value (JSON/Avro sources), else None."""
    ordinal: int | None
    """CSV field index (CSV samples), else None."""
    why: str
    """What the type was inferred from, for the user to review."""


def column_name(raw: str) -> str:
    """A column name the ingestion file accepts, from a field name."""
    name = _NAME_CHARS.sub("_", raw.strip()) or "column"
    return name


def _json_path(steps: Sequence[str]) -> str:
    out = "$"
    for step in steps:
        out += f".{step}" if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", step) else "['" + step.replace("'", "\\'") + "']"
    return out


# --- Avro ----------------------------------------------------------------------------------------

_AVRO_PRIMITIVES = {"boolean": "bool", "int": "int", "long": "long", "float": "real", "double": "real",
                    "string": "string", "enum": "string", "bytes": "string", "fixed": "string",
                    "array": "dynamic", "map": "dynamic", "record": "dynamic"}  # fmt: skip
_AVRO_LOGICAL = {"decimal": "decimal", "uuid": "guid", "date": "datetime", "time-millis": "timespan",
                 "time-micros": "timespan", "timestamp-millis": "datetime", "timestamp-micros": "datetime",
                 "timestamp-nanos": "datetime", "local-timestamp-millis": "datetime",
                 "local-timestamp-micros": "datetime", "local-timestamp-nanos": "datetime"}  # fmt: skip


def _avro_kind(schema: Any, named: dict[str, Any]) -> tuple[str, Any, str]:
    """(ADX type, the record schema when it is a record, a description) of an Avro type."""
    if isinstance(schema, list):
        branches = [b for b in schema if b != "null"]
        if len(branches) == 1:
            adx, record, text = _avro_kind(branches[0], named)
            return adx, record, f"{text} or null"
        return "dynamic", None, "union of " + ", ".join(str(b if isinstance(b, str) else b.get("type")) for b in schema)
    if isinstance(schema, str):
        if schema in named:
            return _avro_kind(named[schema], named)
        adx = _AVRO_PRIMITIVES.get(schema, "dynamic")
        return adx, None, f"avro {schema}" + (" (base64 text)" if schema == "bytes" else "")
    kind = schema.get("type")
    if isinstance(schema.get("name"), str) and kind in ("record", "enum", "fixed"):
        named[schema["name"]] = schema
        if "namespace" in schema:
            named[f"{schema['namespace']}.{schema['name']}"] = schema
    logical = schema.get("logicalType")
    if logical in _AVRO_LOGICAL:
        return _AVRO_LOGICAL[logical], None, f"avro {kind} logicalType {logical}"
    if kind == "record":
        return "dynamic", schema, f"avro record {schema.get('name', '')}".strip()
    if isinstance(kind, (dict, list)):
        return _avro_kind(kind, named)
    adx = _AVRO_PRIMITIVES.get(str(kind), "dynamic")
    return adx, None, f"avro {kind}" + (" (base64 text)" if kind in ("bytes", "fixed") else "")


def from_avro(schema: Any, *, flatten: bool = False) -> list[Inferred]:
    """The columns of an Avro record schema (parsed JSON)."""
    if not isinstance(schema, dict) or schema.get("type") != "record":
        raise ValueError("the Avro schema must be a record (its fields become the columns)")
    named: dict[str, Any] = {}
    _avro_kind(schema, named)
    out: list[Inferred] = []
    _avro_fields(schema, [], flatten, named, out)
    return _unique(out)


def _avro_fields(record: dict[str, Any], prefix: list[str], flatten: bool, named: dict[str, Any],
                 out: list[Inferred]) -> None:  # fmt: skip
    for field in record.get("fields", ()):
        steps = [*prefix, str(field["name"])]
        adx, nested, why = _avro_kind(field["type"], named)
        if nested is not None and flatten:
            _avro_fields(nested, steps, flatten, named, out)
            continue
        out.append(Inferred(column_name("_".join(steps)), adx, _json_path(steps), None, why))


# --- JSON Schema ------------------------------------------------------------------------------

_JSON_TYPES = {"boolean": "bool", "integer": "long", "number": "real", "string": "string",
               "array": "dynamic", "object": "dynamic"}  # fmt: skip
_JSON_STRING_FORMATS = {"date-time": "datetime", "date": "datetime", "uuid": "guid", "duration": "timespan"}


def from_json_schema(schema: Any, *, flatten: bool = False) -> list[Inferred]:
    """The columns of a JSON Schema whose top level is an object with ``properties``."""
    if not isinstance(schema, dict) or not isinstance(schema.get("properties"), dict):
        raise ValueError("the JSON Schema must describe an object with properties (they become the columns)")
    out: list[Inferred] = []
    _json_properties(schema, [], flatten, out)
    return _unique(out)


def _json_properties(schema: dict[str, Any], prefix: list[str], flatten: bool, out: list[Inferred]) -> None:
    for name, prop in schema["properties"].items():
        steps = [*prefix, str(name)]
        prop = prop if isinstance(prop, dict) else {}
        kind = prop.get("type")
        if isinstance(kind, list):
            kinds = [k for k in kind if k != "null"]
            kind = kinds[0] if len(kinds) == 1 else None
        if kind == "object" and flatten and isinstance(prop.get("properties"), dict):
            _json_properties(prop, steps, flatten, out)
            continue
        adx = _JSON_TYPES.get(str(kind), "dynamic")
        why = f"json schema type {kind}"
        if kind == "string" and prop.get("format") in _JSON_STRING_FORMATS:
            adx = _JSON_STRING_FORMATS[prop["format"]]
            why += f" format {prop['format']}"
        out.append(Inferred(column_name("_".join(steps)), adx, _json_path(steps), None, why))


# --- samples ----------------------------------------------------------------------------------

_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?)?\s*(Z|[+-]\d{2}:?\d{2})?$")
_WIDER = {("int", "long"): "long", ("int", "real"): "real", ("long", "real"): "real"}


def _text_type(text: str) -> str | None:
    """The ADX type a text value looks like (None: empty, says nothing)."""
    value = text.strip()
    if not value:
        return None
    if value.lower() in ("true", "false"):
        return "bool"
    try:
        number = int(value)
        return "int" if -(2**31) <= number < 2**31 else "long"
    except ValueError:
        pass
    try:
        float(value)
        return "real"
    except ValueError:
        pass
    if _GUID.match(value):
        return "guid"
    if _DATETIME.match(value):
        try:
            adxtypes.to_datetime(value)
            return "datetime"
        except ValueError:
            return "string"
    return "string"


def _value_type(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int" if -(2**31) <= value < 2**31 else "long"
    if isinstance(value, float):
        return "real"
    if isinstance(value, str):
        kind = _text_type(value)
        # Text that looks numeric stays text in JSON: the producer chose a string.
        return "string" if kind in ("int", "long", "real", "bool") else kind
    return "dynamic"


def _merge(seen: str | None, new: str | None) -> str | None:
    if new is None:
        return seen
    if seen is None or seen == new:
        return new
    pair = (seen, new) if (seen, new) in _WIDER else (new, seen)
    if pair in _WIDER:
        return _WIDER[pair]
    return "dynamic" if "dynamic" in (seen, new) else "string"


def from_json_lines(lines: Iterable[str], *, flatten: bool = False) -> tuple[list[Inferred], int]:
    """Columns of JSON objects, one per line, and how many records were read. A field's type is
    the widest its values need (int < long < real; disagreeing types give string, or dynamic
    when one is an object or array); a field always null gives string."""
    kinds: dict[tuple[str, ...], str | None] = {}
    count = 0
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            doc = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"line {number}: not JSON: {exc}") from None
        if not isinstance(doc, dict):
            raise ValueError(f"line {number}: a JSON {type(doc).__name__}, expected an object")
        count += 1
        _collect(doc, (), flatten, kinds)
    if not count:
        raise ValueError("the sample holds no record")
    columns = [
        Inferred(column_name("_".join(steps)), kind or "string", _json_path(steps), None,
                 f"{count} sample record(s)" if kind else "always null in the sample")
        for steps, kind in kinds.items()
    ]  # fmt: skip
    return _unique(columns), count


def _collect(doc: dict[str, Any], prefix: tuple[str, ...], flatten: bool, kinds: dict[tuple[str, ...], str | None]) -> None:
    for key, value in doc.items():
        steps = (*prefix, str(key))
        if flatten and isinstance(value, dict) and value:
            _collect(value, steps, flatten, kinds)
            continue
        kinds[steps] = _merge(kinds.get(steps), _value_type(value))


def from_csv(text: str, delimiter: str = ",") -> tuple[list[Inferred], int]:
    """Columns of a CSV sample with a header row, and how many records were read."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise ValueError("the sample is empty (expected a header row)") from None
    kinds: list[str | None] = [None] * len(header)
    count = 0
    for number, row in enumerate(reader, 2):
        if not row:
            continue
        if len(row) != len(header):
            raise ValueError(f"line {number}: {len(row)} field(s), the header has {len(header)}")
        count += 1
        for index, field in enumerate(row):
            kinds[index] = _merge(kinds[index], _text_type(field))
    if not count:
        raise ValueError("the sample holds a header and no record")
    columns = [
        Inferred(column_name(name), kind or "string", None, index,
                 f"{count} sample record(s)" if kind else "always empty in the sample")
        for index, (name, kind) in enumerate(zip(header, kinds, strict=True))
    ]  # fmt: skip
    return _unique(columns), count


def _unique(columns: list[Inferred]) -> list[Inferred]:
    """Column names made unique (``a``, ``a_2``...), as ADX requires."""
    seen: dict[str, int] = {}
    out = []
    for column in columns:
        name = column.name
        if name in seen:
            seen[name] += 1
            name = f"{name}_{seen[column.name]}"
        seen.setdefault(name, 1)
        out.append(Inferred(name, column.type, column.path, column.ordinal, column.why))
    return out
