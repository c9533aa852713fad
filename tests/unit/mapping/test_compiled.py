"""shared/mapping/compiled.py: CompiledMapping follows ADX's documented mapping semantics, one test
per rule (the rules are listed in the module's docstring)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from shared.config import Mapping, Table
from shared.errors import RecordError
from shared.mapping.compiled import CompiledMapping, describe_row
from shared.mapping.types import csv_line, from_unix
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


def test_root_path_is_whole_document_into_dynamic() -> None:
    t = table(("all", "dynamic"))
    assert row(t, json_mapping(all={"Path": "$"}), {"a": [1, {"b": None}]}) == [{"a": [1, {"b": None}]}]


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


def test_csv_empty_field_is_null_except_for_strings() -> None:
    t = table(("s", "string"), ("n", "long"), ("d", "datetime"))
    assert row(t, None, ["", "", ""], kind="csv") == ["", None, None]


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


# --- values that do not convert: strict and lenient -----------------------------------------------

def test_strict_mapping_names_the_column_and_lenient_gives_null() -> None:
    t = table(("n", "long"), ("s", "string"))
    m = json_mapping(n={"Path": "$.n"}, s={"Path": "$.s"})
    with pytest.raises(RecordError) as info:
        row(t, m, {"n": "many", "s": "x"})
    assert info.value.field == "n" and info.value.stage == "map"
    assert row(t, m, {"n": "many", "s": "x"}, strict=False) == [None, "x"]


# --- the compiled mapping itself ------------------------------------------------------------------

def test_cells_and_values_come_in_table_column_order_whatever_the_mapping_order() -> None:
    t = table(("a", "string"), ("b", "long"), ("c", "string"))
    m = json_mapping(c={"Path": "$.z"}, a={"Path": "$.x"}, b={"Path": "$.y"})
    compiled = CompiledMapping(t, m, "json", strict=True)
    assert [cell.name for cell in compiled.cells] == ["a", "b", "c"]
    assert [cell.type for cell in compiled.cells] == ["string", "long", "string"]
    assert compiled.row({"x": "1", "y": "2", "z": "3"}, REC) == ["1", 2, "3"]
    assert compiled.csv_line({"x": "1", "y": "2", "z": "3"}, REC) == "1,2,3"


def test_csv_line_is_the_row_written_as_csv() -> None:
    t = table(("s", "string"), ("n", "long"), ("ts", "datetime"), ("d", "dynamic"), ("u", "string"), ("k", "string"))
    m = json_mapping(s={"Path": "$.s"}, n={"Path": "$.a[1]"}, ts={"Path": "$.t", "Transform": "DateTimeFromUnixSeconds"},
                     d={"Path": "$"}, k={"Metadata": "key"})
    compiled = CompiledMapping(t, m, "json", strict=True)
    doc = {"s": "a,b", "a": [1, "2"], "t": 0}
    assert compiled.csv_line(doc, REC) == csv_line(compiled.row(doc, REC))
    assert compiled.csv_line(doc, REC) == '"a,b",2,1970-01-01T00:00:00.0000000Z,"{""s"":""a,b"",""a"":[1,""2""],""t"":0}",,k1'


def test_a_json_document_that_is_not_an_object_maps_to_nulls() -> None:
    t = table(("a", "string"), ("first", "long"))
    compiled = CompiledMapping(t, json_mapping(a={"Path": "$.a"}, first={"Path": "$[0]"}), "json", strict=True)
    assert compiled.row([7], REC) == [None, 7]
    assert compiled.csv_line([7], REC) == ",7"
    assert compiled.csv_line("text", REC) == ","


def test_csv_line_names_the_column_when_strict_and_writes_an_empty_field_when_not() -> None:
    t = table(("n", "long"), ("s", "string"))
    m = json_mapping(n={"Path": "$.n"}, s={"Path": "$.s"})
    with pytest.raises(RecordError, match=r"column n \(long\): expected long") as info:
        CompiledMapping(t, m, "json", strict=True).csv_line({"n": "many", "s": "x"}, REC)
    assert (info.value.stage, info.value.field) == ("map", "n")
    assert CompiledMapping(t, m, "json", strict=False).csv_line({"n": "many", "s": "x"}, REC) == ",x"


def test_a_key_or_header_that_is_not_utf8_is_an_error_naming_the_column() -> None:
    t = table(("k", "string"), ("h", "string"), ("empty", "string"))
    m = json_mapping(k={"Metadata": "key"}, h={"Metadata": "header:h"}, empty={"Metadata": "header:e"})
    record = replace(REC, key=b"\xff", headers=(("h", b"\xfe"), ("e", None)))
    with pytest.raises(RecordError, match=r"column k \(string\): the record key is not valid UTF-8"):
        CompiledMapping(t, m, "json", strict=True).row({}, record)
    assert CompiledMapping(t, m, "json", strict=False).row({}, record) == [None, None, None]
    record = replace(REC, key=None, headers=(("h", b"\xfe"),))
    with pytest.raises(RecordError, match=r"column h \(string\): header 'h' is not valid UTF-8"):
        CompiledMapping(t, m, "json", strict=True).row({}, record)


def test_json_without_mapping_reads_a_dotted_column_name_as_one_key() -> None:
    t = table(("a.b", "long"), ("x-y", "string"))
    assert row(t, None, {"a.b": 2, "a": {"b": 3}, "x-y": "z"}) == [2, "z"]


def test_describe_row_names_each_value_and_writes_datetimes_as_adx_does() -> None:
    t = table(("ts", "datetime"), ("n", "long"))
    assert describe_row(t, [datetime(2024, 1, 2, tzinfo=UTC), 5]) == {"ts": "2024-01-02T00:00:00.0000000Z", "n": 5}
