"""shared/mapping/types.py: the one ADX type table, the converters, the CSV writers and
format_datetime."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import duckdb
import pytest

from shared.mapping.types import (
    TYPES,
    convert,
    csv_cell,
    csv_field,
    csv_line,
    field_writer,
    format_datetime,
    format_timespan,
    from_unix,
    to_text,
)
from shared.pipeline.encoding import read_payload


def test_csv_line_round_trips_through_the_reader() -> None:
    values = ["a,b", 'q"q', "multi\nline", None, 1.5, True, {"k": [1, 2]}]
    line = csv_line(values)
    (parsed,) = list(read_payload(line.encode() + b"\n", "csv"))
    assert parsed == ["a,b", 'q"q', "multi\nline", "", "1.5", "true", '{"k":[1,2]}']


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


# --- the type table ---------------------------------------------------------------------------------

SAMPLES = {
    "string": "a, \"quoted\" text",
    "int": "-2147483648",
    "long": "9223372036854775807",
    "real": "-1.25",
    "decimal": "12345.6789",
    "bool": "TRUE",
    "datetime": "2024-02-29T23:59:58.123456Z",
    "timespan": "1.02:03:04.5",
    "guid": "5f1c0e9e-3d2f-4f6a-9c33-1c1c6e9f0a11",
    "dynamic": '{"k": [1, "two", null]}',
}


def test_every_row_of_the_type_table_has_a_duckdb_type_that_reads_its_text() -> None:
    assert sorted(SAMPLES) == sorted(TYPES)
    con = duckdb.connect()
    for name, row in TYPES.items():
        assert row.name == name and row.duckdb
        value = row.convert(SAMPLES[name])
        (back,) = con.execute(f"SELECT CAST(? AS {row.duckdb})", [row.duck_text(value)]).fetchone()  # type: ignore[misc]
        if name == "datetime":
            back = back.replace(tzinfo=UTC)
        elif name == "dynamic":
            back = convert(back, "dynamic")
        elif name == "decimal":
            back = back.normalize()
            value = value.normalize()
        assert back == value, name


def test_each_rows_writers_agree_with_convert_then_to_text() -> None:
    for name, row in TYPES.items():
        value = row.convert(SAMPLES[name])
        assert row.field(value) == csv_field(to_text(value)) == field_writer(name)(value), name
        assert row.cell(SAMPLES[name]) == row.field(value) == csv_cell(name)(SAMPLES[name]), name
        assert row.field(None) == "", name


def test_field_writer_of_an_unknown_type_writes_any_value() -> None:
    assert field_writer("varchar")({"a": "b,c"}) == '"{""a"":""b,c""}"'


@pytest.mark.parametrize("adx_type", sorted(set(TYPES) - {"string"}))
def test_empty_text_is_null_for_every_type_but_string(adx_type: str) -> None:
    assert convert("", adx_type) is None
    assert convert("   ", adx_type) is None
    assert convert(None, adx_type) is None


def test_empty_text_stays_a_string() -> None:
    assert convert("", "string") == ""
    assert convert(None, "string") is None


# --- converters ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("adx_type", "value", "expected"),
    [
        ("int", "2147483647", 2**31 - 1),
        ("long", -(2**63), -(2**63)),
        ("real", "-inf", float("-inf")),
        ("bool", "1", True),
        ("bool", " false ", False),
        ("bool", 1, True),
        ("timespan", "2h", timedelta(hours=2)),
        ("timespan", "1.5d", timedelta(days=1, hours=12)),
        ("timespan", "-30m", -timedelta(minutes=30)),
        ("timespan", "250ms", timedelta(milliseconds=250)),
        ("timespan", "-01:30", -timedelta(hours=1, minutes=30)),
        ("guid", "{5F1C0E9E-3D2F-4F6A-9C33-1C1C6E9F0A11}", uuid.UUID("5f1c0e9e-3d2f-4f6a-9c33-1c1c6e9f0a11")),
        ("datetime", datetime(2024, 1, 1, 12), datetime(2024, 1, 1, 12, tzinfo=UTC)),
        ("datetime", "2024-01-01T12:00", datetime(2024, 1, 1, 12, tzinfo=UTC)),
        ("dynamic", "[1, 2]", [1, 2]),
        ("dynamic", "12", 12),
        ("dynamic", "true", True),
        ("dynamic", {"a": 1}, {"a": 1}),
        ("string", {"b": [1, 2]}, '{"b":[1,2]}'),
        ("string", datetime(2024, 1, 1, tzinfo=UTC), "2024-01-01T00:00:00.0000000Z"),
        ("string", Decimal("1.50"), "1.50"),
    ],
)
def test_more_conversions(adx_type: str, value: object, expected: object) -> None:
    assert convert(value, adx_type) == expected


@pytest.mark.parametrize(
    ("adx_type", "value"),
    [("int", -(2**31) - 1), ("long", 2**63), ("bool", 2), ("real", True), ("decimal", True), ("decimal", "1e"),
     ("guid", 12), ("timespan", 90), ("int", [1])],
)
def test_more_unconvertible_values(adx_type: str, value: object) -> None:
    with pytest.raises(ValueError, match=r"expected|out of range"):
        convert(value, adx_type)


def test_integers_beyond_64_bits_stay_exact_in_dynamic_and_string_columns() -> None:
    big = 2**70
    assert to_text(convert(big, "dynamic")) == str(big)
    assert convert({"n": big}, "string") == f'{{"n":{big}}}'


# --- DateTimeFromUnix* --------------------------------------------------------------------------------

def test_from_unix_of_nothing_is_null_and_of_a_non_number_an_error() -> None:
    assert from_unix(None, "DateTimeFromUnixSeconds") is None
    assert from_unix(" ", "DateTimeFromUnixSeconds") is None
    assert from_unix(-1, "DateTimeFromUnixMilliseconds") == datetime(1969, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)
    for bad in (True, float("inf"), float("nan"), [1]):
        with pytest.raises(ValueError, match="DateTimeFromUnixSeconds expects a number"):
            from_unix(bad, "DateTimeFromUnixSeconds")
    with pytest.raises(ValueError, match="out of the datetime range"):
        from_unix(10**12, "DateTimeFromUnixSeconds")


# --- writing: format_datetime, timespans, CSV fields ---------------------------------------------------

def test_format_datetime_writes_utc_with_the_digits_asked_for() -> None:
    value = datetime(2024, 3, 4, 7, 8, 9, 123456, tzinfo=timezone(timedelta(hours=2)))
    assert format_datetime(value) == "2024-03-04T05:08:09.1234560Z"
    assert [format_datetime(value, d) for d in (0, 3, 6)] == [
        "2024-03-04T05:08:09Z", "2024-03-04T05:08:09.123Z", "2024-03-04T05:08:09.123456Z"
    ]
    assert format_datetime(datetime(2024, 3, 4, 7, 8, 9)) == "2024-03-04T07:08:09.0000000Z"  # naive is UTC
    with pytest.raises(ValueError, match="digits must be 0 to 7, not 8"):
        format_datetime(value, 8)


def test_written_datetimes_and_timespans_read_back_as_themselves() -> None:
    stamp = datetime(2024, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    assert convert(format_datetime(stamp), "datetime") == stamp
    for span in (timedelta(0), timedelta(days=3, microseconds=1), -timedelta(days=1, seconds=5)):
        assert convert(format_timespan(span), "timespan") == span


def test_csv_field_quotes_only_where_adx_needs_it() -> None:
    assert [csv_field(t) for t in ("plain", "a b", "", "a,b", 'q"', " lead", "trail\t", "x\ry")] == [
        "plain", "a b", "", '"a,b"', '"q"""', '" lead"', '"trail\t"', '"x\ry"'
    ]


def test_a_row_of_one_empty_column_is_not_a_blank_line() -> None:
    assert csv_line([None]) == '""'
    assert csv_line([""]) == '""'
    assert csv_line([None, None]) == ","
    assert to_text(float("nan")) == "NaN" and to_text(float("-inf")) == "-inf"
