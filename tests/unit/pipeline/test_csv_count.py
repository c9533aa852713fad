"""The CSV field count of server-mapped delimited records (``count_fields``: ``bytes.find`` and
``count`` between the quotes, one regex match per quoted field) counts exactly what the csv
module's strict dialect reads, and rejects exactly what it rejects, with its words."""

from __future__ import annotations

import csv

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from shared.config import DELIMITERS
from shared.errors import RecordError
from shared.pipeline.encoding import _count_quoted_line, count_fields, split_delimited

# Few characters, so that quotes, delimiters and doubled quotes meet in every arrangement.
ALPHABET = ['"', ",", "\t", "|", ";", "\x01", "a", " ", "\x00", "é", "😀"]
texts = st.text(alphabet=st.sampled_from(ALPHABET), max_size=24) | st.lists(
    st.sampled_from(['"', '""', '"a"', ",", "a", 'a"b', '""""']), max_size=10
).map("".join)
delimiters = st.sampled_from(sorted(DELIMITERS.values()))


def reference(text: str, delimiter: str) -> int | str:
    """The field count ``split_delimited`` (the csv module) gives, or its error's message."""
    try:
        return len(split_delimited(text, delimiter))
    except RecordError as exc:
        return f"RecordError: {exc}"


def counted(text: str, delimiter: str, with_bytes: bool) -> int | str:
    try:
        return count_fields(text, delimiter, text.encode() if with_bytes else None)
    except RecordError as exc:
        return f"RecordError: {exc}"


@settings(max_examples=1000)
@given(texts, delimiters, st.booleans())
@example('"a"b,c', ",", True)  # strict: a character after the closing quote
@example('"a""', ",", True)  # the last doubled quote is not a closing one: never closed
@example('a"b,"c"', ",", True)  # a quote inside an unquoted field is an ordinary character
@example('a",",b', ",", True)  # ... so it opens no quoted field (the next field's quote does)
@example('"",""""', ",", False)
@example('""a,x', ",", True)
def test_count_fields_counts_and_rejects_what_the_csv_module_does(text: str, delimiter: str, with_bytes: bool) -> None:
    assert counted(text, delimiter, with_bytes) == reference(text, delimiter)


@pytest.mark.parametrize("text", ['"abcdef",x', 'abcdefgh,"x"', '"ab",cdefgh,"x"'])
def test_a_field_over_the_csv_size_limit_is_rejected_as_the_csv_module_rejects_it(text: str) -> None:
    previous = csv.field_size_limit(5)
    try:
        assert counted(text, ",", True) == reference(text, ",")
    finally:
        csv.field_size_limit(previous)


BENCH_ROW = ('2007-08-24T19:23:00Z,1000,NEBRASKA,Heavy Rain,"{""TotalDamages"":20000,""StartTime"":""2007-08-24T19:23:00Z"",'
             '""Details"":{""Description"":""Heavy Rain near Adair""}}"')  # fmt: skip


@settings(max_examples=1000)
@given(texts, delimiters)
@example(BENCH_ROW, ",")  # the bench's row: a quoted JSON column, doubled quotes and delimiters inside
@example('"a""b",c,"""d"""', ",")
@example('"",""""', ",")
def test_the_quoted_line_count_falls_back_only_where_the_csv_module_rejects(text: str, delimiter: str) -> None:
    # count_fields gives the csv module's answer either way (above); this pins that the bytes
    # path itself answers every row the module reads, so that no row pays the module's price.
    if "\n" in text or "\r" in text or '"' not in text:
        return
    expected = reference(text, delimiter)
    got = _count_quoted_line(text.encode(), delimiter.encode())
    assert got == (expected if isinstance(expected, int) else None)
