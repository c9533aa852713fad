"""The Python mapping engine follows ADX's documented mapping semantics: one test per rule."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from shared.config import Mapping, Table
from shared.errors import RecordError
from shared.mapping.compiled import CompiledMapping
from shared.mapping.jsonpath import parse_path, resolve
from shared.mapping.types import convert, csv_line, from_unix, to_text
from shared.pipeline.encoding import read_payload, split_delimited
from shared.pipeline.records import Record

REC = Record(value=b"x", key=b"k1", headers=(("h", b"hv"),), topic="t", partition=3, offset=42,
             timestamp=datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC), source="kafka")


def table(*cols: tuple[str, str]) -> Table:
    return Table.model_validate({"columns": [{"name": n, "type": t} for n, t in cols]})


def json_mapping(**props: dict) -> Mapping:
    return Mapping.model_validate({"kind": "json", "columns": [{"column": c, "Properties": p} for c, p in props.items()]})


def csv_mapping(**props: dict) -> Mapping:
    return Mapping.model_validate({"kind": "csv", "columns": [{"column": c, "Properties": p} for c, p in props.items()]})


def row(tbl: Table, mapping: Mapping | None, doc: object, kind: str = "json", strict: bool = True) -> list:
    return CompiledMapping(tbl, mapping, kind, strict=strict).row(doc, REC, "loc://x")


# --- JSON paths ---------------------------------------------------------------------------------

def test_missing_path_gives_null() -> None:
    t = table(("a", "string"), ("b", "long"))
    assert row(t, json_mapping(a={"Path": "$.nope"}, b={"Path": "$.x.y"}), {"x": 1}) == [None, None]


def test_nested_path() -> None:
    t = table(("a", "string"))
    assert row(t, json_mapping(a={"Path": "$.x.y.z"}), {"x": {"y": {"z": "deep"}}}) == ["deep"]


def test_array_elements_and_negative_index() -> None:
    t = table(("first", "long"), ("last", "long"), ("missing", "long"))
    m = json_mapping(first={"Path": "$.a[0]"}, last={"Path": "$.a[-1]"}, missing={"Path": "$.a[9]"})
    assert row(t, m, {"a": [1, 2, 3]}) == [1, 3, None]


def test_bracket_notation_for_odd_names() -> None:
    assert parse_path("$['a b'].c[\"d.e\"][2]") == ("a b", "c", "d.e", 2)
    assert resolve({"a b": {"c": {"d.e": [0, 1, 2]}}}, parse_path("$['a b'].c[\"d.e\"][2]")) == 2


def test_root_path_is_whole_document_into_dynamic() -> None:
    t = table(("all", "dynamic"))
    assert row(t, json_mapping(all={"Path": "$"}), {"a": [1, {"b": None}]}) == [{"a": [1, {"b": None}]}]


def test_wildcards_are_rejected() -> None:
    with pytest.raises(ValueError, match="wildcard"):
        parse_path("$.a.*")


def test_dynamic_column_keeps_objects_arrays_and_scalars() -> None:
    t = table(("o", "dynamic"), ("l", "dynamic"), ("n", "dynamic"), ("s", "dynamic"))
    m = json_mapping(o={"Path": "$.o"}, l={"Path": "$.l"}, n={"Path": "$.n"}, s={"Path": "$.s"})
    assert row(t, m, {"o": {"x": 1}, "l": [1, "a"], "n": 1.5, "s": "text"}) == [{"x": 1}, [1, "a"], 1.5, "text"]


def test_object_into_string_column_is_json_text() -> None:
    t = table(("s", "string"))
    assert row(t, json_mapping(s={"Path": "$.o"}), {"o": {"b": 2, "a": 1}}) == ['{"b":2,"a":1}']


def test_unmapped_columns_are_null() -> None:
    t = table(("a", "string"), ("b", "string"))
    assert row(t, json_mapping(a={"Path": "$.a"}), {"a": "x", "b": "y"}) == ["x", None]


def test_json_without_mapping_maps_by_column_name() -> None:
    t = table(("a", "string"), ("bc", "long"))
    assert row(t, None, {"bc": 5, "a": "x"}) == ["x", 5]


# --- CSV ordinals ---------------------------------------------------------------------------------

def test_csv_ordinals_and_out_of_range_ordinal() -> None:
    t = table(("a", "string"), ("b", "long"), ("c", "string"))
    m = csv_mapping(a={"Ordinal": "2"}, b={"Ordinal": "0"}, c={"Ordinal": "7"})
    assert row(t, m, ["5", "ignored", "x"], kind="csv") == ["x", 5, None]


def test_csv_without_mapping_maps_by_position() -> None:
    t = table(("a", "string"), ("b", "real"))
    assert row(t, None, ["x", "1.5"], kind="csv") == ["x", 1.5]


def test_csv_quoting_as_adx_reads_it() -> None:
    fields = split_delimited('plain,"with, comma","with ""quotes""","line\nbreak",', ",")
    assert fields == ["plain", "with, comma", 'with "quotes"', "line\nbreak", ""]


def test_csv_empty_field_is_null_except_for_strings() -> None:
    t = table(("s", "string"), ("n", "long"), ("d", "datetime"))
    assert row(t, None, ["", "", ""], kind="csv") == ["", None, None]


def test_csv_line_round_trips_through_the_reader() -> None:
    values = ["a,b", 'q"q', "multi\nline", None, 1.5, True, {"k": [1, 2]}]
    line = csv_line(values)
    (parsed,) = list(read_payload(line.encode() + b"\n", "csv"))
    assert parsed == ["a,b", 'q"q', "multi\nline", "", "1.5", "true", '{"k":[1,2]}']


# --- constants, transforms, source info, metadata ----------------------------------------------------

def test_const_value() -> None:
    t = table(("env", "string"), ("n", "int"))
    assert row(t, json_mapping(env={"ConstValue": "prod"}, n={"ConstValue": "7"}), {}) == ["prod", 7]


@pytest.mark.parametrize(
    ("transform", "value", "expected"),
    [
        ("DateTimeFromUnixSeconds", 1_700_000_000, datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)),
        ("DateTimeFromUnixMilliseconds", 1_700_000_000_123, datetime(2023, 11, 14, 22, 13, 20, 123000, tzinfo=UTC)),
        ("DateTimeFromUnixMicroseconds", 1_700_000_000_123_456, datetime(2023, 11, 14, 22, 13, 20, 123456, tzinfo=UTC)),
        ("DateTimeFromUnixNanoseconds", 1_700_000_000_123_456_789, datetime(2023, 11, 14, 22, 13, 20, 123456, tzinfo=UTC)),
        ("DateTimeFromUnixSeconds", 1.5, datetime(1970, 1, 1, 0, 0, 1, 500000, tzinfo=UTC)),
        ("DateTimeFromUnixSeconds", "60", datetime(1970, 1, 1, 0, 1, tzinfo=UTC)),
    ],
)
def test_unix_transforms(transform: str, value: object, expected: datetime) -> None:
    t = table(("ts", "datetime"))
    assert row(t, json_mapping(ts={"Path": "$.t", "Transform": transform}), {"t": value}) == [expected]
    assert from_unix(value, transform) == expected


def test_unix_transform_of_text_is_an_error() -> None:
    t = table(("ts", "datetime"))
    with pytest.raises(RecordError, match=r"column ts .*expects a number"):
        row(t, json_mapping(ts={"Path": "$.t", "Transform": "DateTimeFromUnixSeconds"}), {"t": "yesterday"})


def test_source_location_and_line_number() -> None:
    t = table(("loc", "string"), ("line", "long"))
    m = json_mapping(loc={"Transform": "SourceLocation"}, line={"Transform": "SourceLineNumber"})
    assert row(t, m, {}) == ["loc://x", 42]


def test_metadata_sources() -> None:
    t = table(("k", "string"), ("h", "string"), ("missing", "string"), ("t", "string"), ("p", "int"),
              ("o", "long"), ("ts", "datetime"))
    m = json_mapping(k={"Metadata": "key"}, h={"Metadata": "header:h"}, missing={"Metadata": "header:none"},
                     t={"Metadata": "topic"}, p={"Metadata": "partition"}, o={"Metadata": "offset"},
                     ts={"Metadata": "timestamp"})
    assert row(t, m, {}) == ["k1", "hv", None, "t", 3, 42, REC.timestamp]


# --- type conversion ----------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2007-01-01", datetime(2007, 1, 1, tzinfo=UTC)),
        ("2007-01-01T12:30:00Z", datetime(2007, 1, 1, 12, 30, tzinfo=UTC)),
        ("2007-01-01 12:30:00", datetime(2007, 1, 1, 12, 30, tzinfo=UTC)),
        ("2007-01-01T12:30:00.1234567Z", datetime(2007, 1, 1, 12, 30, 0, 123456, tzinfo=UTC)),
        ("2007-01-01T12:30:00+02:00", datetime(2007, 1, 1, 10, 30, tzinfo=UTC)),
        ("2007-01-01T12:30:00-0130", datetime(2007, 1, 1, 14, 0, tzinfo=UTC)),
        ("Mon, 01 Jan 2007 12:30:00 GMT", datetime(2007, 1, 1, 12, 30, tzinfo=UTC)),
    ],
)
def test_datetime_parsing(text: str, expected: datetime) -> None:
    assert convert(text, "datetime") == expected


@pytest.mark.parametrize(
    ("adx_type", "value", "expected"),
    [
        ("int", "42", 42),
        ("int", 42.0, 42),
        ("long", " -9000000000 ", -9_000_000_000),
        ("real", "NaN", pytest.approx(float("nan"), nan_ok=True)),
        ("real", 3, 3.0),
        ("decimal", "1.10", Decimal("1.10")),
        ("bool", "TRUE", True),
        ("bool", 0, False),
        ("timespan", "1.02:03:04.5", timedelta(days=1, hours=2, minutes=3, seconds=4.5)),
        ("timespan", "90s", timedelta(seconds=90)),
        ("guid", "5f1c0e9e-3d2f-4f6a-9c33-1c1c6e9f0a11", uuid.UUID("5f1c0e9e-3d2f-4f6a-9c33-1c1c6e9f0a11")),
        ("dynamic", '{"a": 1}', {"a": 1}),
        ("dynamic", "not json", "not json"),
        ("string", 12, "12"),
        ("string", True, "true"),
    ],
)
def test_conversions(adx_type: str, value: object, expected: object) -> None:
    assert convert(value, adx_type) == expected


@pytest.mark.parametrize(
    ("adx_type", "value"),
    [("int", "1.5"), ("int", 2**31), ("long", "abc"), ("long", True), ("real", "x"), ("bool", "yes"),
     ("datetime", "31/12/2020"), ("datetime", 12345), ("timespan", "soon"), ("guid", "nope"), ("decimal", "NaN")],
)
def test_unconvertible_values_raise(adx_type: str, value: object) -> None:
    with pytest.raises(ValueError, match=r"expected|out of range"):
        convert(value, adx_type)


def test_strict_mapping_names_the_column_and_lenient_gives_null() -> None:
    t = table(("n", "long"), ("s", "string"))
    m = json_mapping(n={"Path": "$.n"}, s={"Path": "$.s"})
    with pytest.raises(RecordError) as info:
        row(t, m, {"n": "many", "s": "x"})
    assert info.value.field == "n" and info.value.stage == "map"
    assert row(t, m, {"n": "many", "s": "x"}, strict=False) == [None, "x"]


def test_text_forms_adx_reads() -> None:
    assert to_text(datetime(2024, 1, 2, 3, 4, 5, 600000, tzinfo=UTC)) == "2024-01-02T03:04:05.6000000Z"
    assert to_text(timedelta(days=2, seconds=1, microseconds=5)) == "2.00:00:01.0000050"
    assert to_text(-timedelta(minutes=1)) == "-00:01:00.0000000"
    assert to_text(float("inf")) == "inf"
    assert to_text(None) == ""


def test_years_before_1000_are_written_with_four_digits() -> None:
    assert to_text(datetime(999, 1, 2, tzinfo=UTC)) == "0999-01-02T00:00:00.0000000Z"
    assert convert("0999-01-02T00:00:00.0000000Z", "datetime") == datetime(999, 1, 2, tzinfo=UTC)


def test_the_type_table_has_one_row_per_adx_type_and_every_alias_once() -> None:
    from typing import get_args

    from shared.mapping.types import TYPES, AdxType, normalise_type_name

    assert sorted(TYPES) == sorted(get_args(AdxType))
    names = [name for row in TYPES.values() for name in (row.name, *row.aliases)]
    assert len(names) == len(set(names))
    for row in TYPES.values():
        for name in (row.name, *row.aliases):
            assert normalise_type_name(f" {name.upper()} ") == row.name
    assert normalise_type_name("Varchar") == "varchar"  # unknown names are left for the config to reject
