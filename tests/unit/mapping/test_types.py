"""shared/mapping/types.py: the one ADX type table, the converters, the CSV writers and
format_datetime."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from shared.mapping.types import convert, csv_line, to_text
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
