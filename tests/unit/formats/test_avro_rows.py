"""shared/formats/avro_rows.py: a plan's row equals the reference path's outcome for every record
(the row, or the same dead-letter reason), for schemas of every Avro type under mappings that
read them in every way (top-level keys of matching and mismatching column types, a timestamp
also read as text, deeper paths, the whole document, metadata, transforms, constants, unmapped
columns), strict and not; and the timestamp writer equals fastavro's datetime as the column's
writer writes it over the whole range of longs."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import fastavro
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.config import parse_config
from shared.errors import RecordError
from shared.formats import avro_rows
from shared.formats import encoder as encoder_module
from shared.formats.encoder import SchemaMapped
from shared.formats.registry import RegisteredSchema, Registries
from shared.mapping import types as adxtypes
from shared.pipeline.destination import Destination
from shared.pipeline.records import Record

TOPIC = "rows"
_MS = {"type": "long", "logicalType": "timestamp-millis"}
_US = {"type": "long", "logicalType": "timestamp-micros"}

SCHEMA: dict[str, Any] = {
    "type": "record", "name": "Row", "namespace": "t",
    "fields": [
        {"name": "ms", "type": _MS}, {"name": "us", "type": _US}, {"name": "ms2", "type": _MS},
        {"name": "i", "type": "int"}, {"name": "l", "type": "long"},
        {"name": "d", "type": "double"}, {"name": "f", "type": "float"},
        {"name": "s", "type": "string"}, {"name": "b", "type": "boolean"},
        {"name": "raw", "type": "bytes"},
        {"name": "dec", "type": {"type": "bytes", "logicalType": "decimal", "precision": 9, "scale": 2}},
        {"name": "day", "type": {"type": "int", "logicalType": "date"}},
        {"name": "sub", "type": {"type": "record", "name": "Sub", "fields": [
            {"name": "x", "type": "long"}, {"name": "at", "type": _MS}, {"name": "t", "type": "string"}]}},
        {"name": "arr", "type": {"type": "array", "items": "double"}},
        {"name": "m", "type": {"type": "map", "values": "string"}},
        {"name": "opt", "type": ["null", "string"], "default": None},
        {"name": "optms", "type": ["null", _MS], "default": None},
        {"name": "color", "type": {"type": "enum", "name": "Color", "symbols": ["RED", "GREEN"]}},
    ],
}  # fmt: skip


def _raw(schema: Any) -> Any:
    """The schema with every logical type dropped: the same binary encoding, raw values."""
    if isinstance(schema, list):
        return [_raw(s) for s in schema]
    if isinstance(schema, dict):
        out = {k: _raw(v) for k, v in schema.items() if k not in ("logicalType", "precision", "scale")}
        return out
    return schema


RAW = fastavro.parse_schema(_raw(SCHEMA))
SCHEMA_NO_BYTES = {**SCHEMA, "name": "Lean", "fields": [f for f in SCHEMA["fields"] if f["name"] not in ("raw", "dec")]}
RAW_NO_BYTES = fastavro.parse_schema(_raw(SCHEMA_NO_BYTES))

# Mappings: column name -> (ADX type, properties).
TYPED = {  # each top-level field into the column type it is meant for
    "Ms": ("datetime", {"Path": "$.ms"}), "Us": ("datetime", {"Path": "$.us"}),
    "Ms2": ("datetime", {"Path": "$.ms2"}), "I": ("int", {"Path": "$.i"}), "L": ("long", {"Path": "$.l"}),
    "D": ("real", {"Path": "$.d"}), "F": ("real", {"Path": "$.f"}), "S": ("string", {"Path": "$.s"}),
    "B": ("bool", {"Path": "$.b"}), "Sub": ("dynamic", {"Path": "$.sub"}), "Arr": ("dynamic", {"Path": "$.arr"}),
    "M": ("dynamic", {"Path": "$.m"}), "Opt": ("string", {"Path": "$.opt"}), "OptMs": ("datetime", {"Path": "$.optms"}),
    "Day": ("datetime", {"Path": "$.day"}), "Color": ("string", {"Path": "$.color"}),
}  # fmt: skip
MIXED = {  # mismatching types, one timestamp also read as text, metadata, constants, unmapped
    "Id": ("long", {"Path": "$.l"}), "MsText": ("string", {"Path": "$.ms2"}), "Ms2": ("datetime", {"Path": "$.ms2"}),
    "Ms": ("datetime", {"Path": "$.ms"}), "SAsInt": ("int", {"Path": "$.s"}), "LAsInt": ("int", {"Path": "$.l"}),
    "DAsLong": ("long", {"Path": "$.d"}), "IAsReal": ("real", {"Path": "$.i"}), "BAsString": ("string", {"Path": "$.b"}),
    "Partition": ("int", {"Metadata": "partition"}), "Offset": ("long", {"Metadata": "offset"}),
    "Topic": ("string", {"Metadata": "topic"}), "Header": ("string", {"Metadata": "header:h"}),
    "Where": ("string", {"Transform": "SourceLocation"}), "Const": ("string", {"ConstValue": "k,1"}),
    "Unix": ("datetime", {"Path": "$.l", "Transform": "DateTimeFromUnixMilliseconds"}),
    "Unmapped": ("string", None), "Missing": ("string", {"Path": "$.nope"}), "UsAsLong": ("long", {"Path": "$.us"}),
    "Raw": ("string", {"Path": "$.raw"}), "Dec": ("decimal", {"Path": "$.dec"}),
}  # fmt: skip
DEEP = {  # deeper paths and the whole document: nothing may be decoded as raw longs
    "Ms": ("datetime", {"Path": "$.ms"}), "SubAt": ("datetime", {"Path": "$.sub.at"}),
    "SubX": ("long", {"Path": "$.sub.x"}), "Arr0": ("real", {"Path": "$.arr[0]"}),
    "Whole": ("dynamic", {"Path": "$"}), "S": ("string", {"Path": "$.s"}),
}  # fmt: skip
MAPPINGS = {"typed": TYPED, "mixed": MIXED, "deep": DEEP}


def setup(mapping: dict[str, tuple[str, dict[str, Any] | None]], strict: bool, schema: dict[str, Any]) -> SchemaMapped:
    columns = [{"name": name, "type": kind} for name, (kind, _) in mapping.items()]
    entries = [{"column": name, "Properties": props} for name, (_, props) in mapping.items() if props is not None]
    config = parse_config({
        "database": "db",
        "tables": {"T": {"columns": columns, "mappings": {"M": {"kind": "json", "columns": entries}}}},
        "routes": [{"topic": TOPIC, "table": "T", "format": "avro", "mapping": "M", "validate": strict}],
    })  # fmt: skip
    text = json.dumps(schema)

    class Source:
        name = "test registry"

        def fetch(self, schema_id: str) -> RegisteredSchema:
            return RegisteredSchema(schema_id, "AVRO", text)

    dest = Destination("db", "T", "avro", "M", "client", validate=strict)
    return SchemaMapped(config, dest, Registries(confluent=Source()))


@pytest.fixture(autouse=True)
def fresh_caches() -> None:
    encoder_module._CACHES.clear()


INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
MS_RANGE = (-62_135_596_800_000, 253_402_300_799_999)  # datetime's range in milliseconds since the epoch
TIMES_MS = st.one_of(st.integers(*MS_RANGE), st.integers(MS_RANGE[0] - 5, MS_RANGE[0] + 5),
                     st.integers(MS_RANGE[1] - 5, MS_RANGE[1] + 5), INT64)  # fmt: skip
TIMES_US = st.one_of(st.integers(MS_RANGE[0] * 1000, MS_RANGE[1] * 1000 + 999), INT64)
TEXT = st.one_of(st.text(max_size=12), st.sampled_from(["", " a", "a ", 'q"q', "a,b", "l\nm", "r\rs", "\u2003x", "ok"]))
FLOATS = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.0, -0.0, 1e300, 5e-324]))


def raw_values(lean: bool) -> st.SearchStrategy[dict[str, Any]]:
    fields: dict[str, st.SearchStrategy[Any]] = {
        "ms": TIMES_MS, "us": TIMES_US, "ms2": TIMES_MS, "i": st.integers(-(2**31), 2**31 - 1), "l": INT64,
        "d": FLOATS, "f": FLOATS.filter(lambda x: x != x or abs(x) < 3e38 or abs(x) == float("inf")),
        "s": TEXT, "b": st.booleans(),
        "day": st.integers(-800_000, 3_000_000),
        "sub": st.fixed_dictionaries({"x": INT64, "at": TIMES_MS, "t": TEXT}),
        "arr": st.lists(FLOATS, max_size=3), "m": st.dictionaries(TEXT, TEXT, max_size=3),
        "opt": st.one_of(st.none(), TEXT), "optms": st.one_of(st.none(), TIMES_MS),
        "color": st.sampled_from(["RED", "GREEN"]),
    }  # fmt: skip
    if not lean:
        fields["raw"] = st.binary(max_size=6)
        fields["dec"] = st.binary(min_size=1, max_size=5)
    return st.fixed_dictionaries(fields)


def framed(raw: dict[str, Any], lean: bool) -> bytes:
    buffer = io.BytesIO()
    buffer.write(b"\x00" + (1).to_bytes(4, "big"))
    fastavro.schemaless_writer(buffer, RAW_NO_BYTES if lean else RAW, raw)
    return buffer.getvalue()


def outcome(fn: Any, record: Record) -> Any:
    try:
        return fn(record)
    except RecordError as exc:
        return ("error", exc.reason, exc.stage, exc.field)


def reference(encoder: SchemaMapped, record: Record) -> bytes:
    decoder, payload = encoder.decoder(record)
    return encoder.reference(record, decoder, payload)


def record(value: bytes, offset: int = 3) -> Record:
    return Record(value=value, topic=TOPIC, partition=2, offset=offset, headers=(), source="kafka",
                  timestamp=datetime(2024, 1, 1, tzinfo=UTC))  # fmt: skip


ENCODERS: dict[tuple[str, bool, bool], SchemaMapped] = {}


def encoder(name: str, strict: bool, lean: bool) -> SchemaMapped:
    key = (name, strict, lean)
    if key not in ENCODERS:
        ENCODERS[key] = setup(MAPPINGS[name], strict, SCHEMA_NO_BYTES if lean else SCHEMA)
    return ENCODERS[key]


@pytest.mark.parametrize("lean", [True, False], ids=["no-bytes", "bytes"])
@pytest.mark.parametrize("strict", [True, False], ids=["strict", "lenient"])
@pytest.mark.parametrize("name", sorted(MAPPINGS))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_plan_gives_every_record_the_reference_outcome(name: str, strict: bool, lean: bool, data: st.DataObject) -> None:
    enc = encoder(name, strict, lean)
    value = framed(data.draw(raw_values(lean)), lean)
    damage = data.draw(st.sampled_from(["none", "none", "truncate", "trailing", "flip", "long-varint"]))
    if damage == "truncate":
        value = value[: data.draw(st.integers(5, len(value) - 1))]
    elif damage == "trailing":
        value += data.draw(st.binary(min_size=1, max_size=3))
    elif damage == "flip":
        at = data.draw(st.integers(5, len(value) - 1))
        value = value[:at] + bytes([value[at] ^ data.draw(st.integers(1, 255))]) + value[at + 1 :]
    elif damage == "long-varint":  # an "int" field holding more than 32 bits: the int column must refuse it
        value = value[:5] + _reencode_int_field(value[5:], lean, data.draw(st.integers(2**31, 2**40)))
    rec = record(value)
    assert outcome(enc.encode, rec) == outcome(lambda r: reference(enc, r), rec)


def _reencode_int_field(body: bytes, lean: bool, big: int) -> bytes:
    doc = fastavro.schemaless_reader(io.BytesIO(body), RAW_NO_BYTES if lean else RAW, None)
    doc["i"] = 0
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, RAW_NO_BYTES if lean else RAW, doc)
    data = buffer.getvalue()
    prefix = _prefix_before_i(doc, lean)
    zigzag = (big << 1) ^ (big >> 63)
    varint = bytearray()
    while True:
        byte = zigzag & 0x7F
        zigzag >>= 7
        if zigzag:
            varint.append(byte | 0x80)
        else:
            varint.append(byte)
            break
    return data[:prefix] + bytes(varint) + data[prefix + 1 :]  # "i" = 0 was the one byte 0x00


def _prefix_before_i(doc: dict[str, Any], lean: bool) -> int:
    schema = {**_raw(SCHEMA_NO_BYTES if lean else SCHEMA)}
    fields = schema["fields"][: [f["name"] for f in schema["fields"]].index("i")]
    head = fastavro.parse_schema({**schema, "name": "Head", "fields": fields})
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, head, {f["name"]: doc[f["name"]] for f in fields})
    return len(buffer.getvalue())


def test_the_typed_mapping_is_planned_with_raw_timestamps_and_the_deep_one_is_not() -> None:
    typed = encoder("typed", True, True)
    value = framed({"ms": 0, "us": 0, "ms2": 0, "i": 1, "l": 2, "d": 1.5, "f": 0.5, "s": "x", "b": True,
                    "day": 0, "sub": {"x": 1, "at": 0, "t": ""}, "arr": [], "m": {}, "opt": None, "optms": None,
                    "color": "RED"}, True)  # fmt: skip
    typed.encode(record(value))
    [plan] = typed._plans.values()
    assert plan is not None and plan.reader_schema is not next(iter(typed._plans)).parsed  # timestamps as longs
    deep = encoder("deep", True, True)
    deep.encode(record(value))
    [deep_plan] = deep._plans.values()
    assert deep_plan is not None and deep_plan.reader_schema is next(iter(deep._plans)).parsed


@settings(max_examples=3000, deadline=None)
@given(micros=st.one_of(st.integers(MS_RANGE[0] * 1000 - 10, MS_RANGE[1] * 1000 + 1010), INT64))
def test_micros_text_is_fastavros_datetime_as_the_column_writes_it(micros: int) -> None:
    try:
        expected: str | None = adxtypes.TYPES["datetime"].cell(datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros))
    except OverflowError:
        expected = None
    try:
        got: str | None = avro_rows.micros_text(micros)
    except OverflowError:
        got = None
    assert got == expected
    if -(2**63) // 1000 <= micros // 1000 <= (2**63 - 1) // 1000:
        millis = micros // 1000
        try:
            want: str | None = adxtypes.TYPES["datetime"].cell(
                fastavro.schemaless_reader(io.BytesIO(_long(millis)), fastavro.parse_schema(
                    {"type": "record", "name": "One", "fields": [{"name": "t", "type": _MS}]}), None)["t"])
        except (OverflowError, ValueError):
            want = None
        try:
            have: str | None = avro_rows.millis_text(millis)
        except OverflowError:
            have = None
        assert have == want


def _long(value: int) -> bytes:
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, fastavro.parse_schema(
        {"type": "record", "name": "L", "fields": [{"name": "t", "type": "long"}]}), {"t": value})
    return buffer.getvalue()

