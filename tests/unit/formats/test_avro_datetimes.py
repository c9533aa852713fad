"""The UTC-datetime fast path of the datetime cell writer (the values Avro's timestamp-* decode
to) writes exactly what :func:`shared.mapping.types.format_datetime` writes, for every datetime."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from shared.mapping.types import TYPES, format_datetime


@given(st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59, 999999)))
def test_utc_datetimes_are_written_as_format_datetime_writes_them(value: datetime) -> None:
    aware = value.replace(tzinfo=UTC)
    assert TYPES["datetime"].cell(aware) == format_datetime(aware)


def test_whole_seconds_and_early_years() -> None:
    for value in (datetime(2024, 1, 1, tzinfo=UTC), datetime(5, 6, 7, 8, 9, 10, 11, tzinfo=UTC)):
        assert TYPES["datetime"].cell(value) == format_datetime(value)
    assert TYPES["datetime"].cell(datetime(5, 6, 7, tzinfo=UTC)) == "0005-06-07T00:00:00.0000000Z"
