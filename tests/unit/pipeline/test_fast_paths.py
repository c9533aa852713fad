"""The hot-path shortcuts made for `make bench` give exactly what the reference definitions give:
typed CSV field writers vs ``csv_field(to_text(v))``, convert-and-write cells vs converter +
writer, ``CompiledMapping.csv_line`` vs ``csv_line(row())``, the datetime fast path vs the full
parser, the quoting check vs the original regex, integer/real shortcuts vs the general
converters, the one-key JSON path getter vs ``resolve``, one-line CSV splitting vs the StringIO
reader, chunked batch compression vs one call per line, the per-topic routing memo vs header
routing, and streamed payload reading (the local sink's) vs decoding the whole payload."""

from __future__ import annotations

import csv
import io
import re
import zlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import orjson
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from shared.config import MappingProperties, Table
from shared.deadletters.local import LocalDeadLetterStore
from shared.errors import RecordError
from shared.mapping import types as adxtypes
from shared.mapping.compiled import CompiledMapping, _getter
from shared.mapping.jsonpath import resolve
from shared.mapping.types import (
    TYPES,
    _parse_datetime_full,
    csv_cell,
    csv_field,
    csv_line,
    field_writer,
    format_datetime,
    parse_datetime,
    to_text,
)
from shared.pipeline.batching import BatchBuilder
from shared.pipeline.core import Pipeline
from shared.pipeline.destination import Destination
from shared.pipeline.encoding import read_payload_stream, split_delimited
from shared.pipeline.records import Record
from shared.pipeline.sink import MemorySink
from shared.sinks.duckdb import DuckDbSink
from tests.support.records import make_config

ORIGINAL_NEEDS_QUOTES = re.compile(r'[",\r\n]|^\s|\s$')
"""The quoting rule as first written (a regex); csv_field now checks it without one."""

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
    | st.sampled_from(["2007-01-01T00:00:00Z", " 12 ", "1e3", "true", "00:01:00", "90s", "NaN", "-inf",
                       "6ba7b810-9dad-11d1-80b4-00c04fd430c8", '{"a": [1, "x,y"]}', "2007-02-30T00:00:00Z"])
)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                      max_leaves=6)

# Text shaped like the datetime fast path's guard, with each position drawn from digits and a
# few characters that must fall back to the full parser (Unicode digits, signs, spaces).
_SLOT = st.sampled_from("0123456789") | st.sampled_from(["٣", "+", " ", "a", "W", ",", "²"])
guarded = st.tuples(*[_SLOT] * 14).map(
    lambda d: f"{''.join(d[0:4])}-{''.join(d[4:6])}-{''.join(d[6:8])}T{''.join(d[8:10])}:{''.join(d[10:12])}:{''.join(d[12:14])}Z"
)
valid_stamps = st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)).map(
    lambda d: d.strftime("%Y-%m-%dT%H:%M:%SZ") if d.year >= 1000 else f"{d.year:04d}" + d.strftime("-%m-%dT%H:%M:%SZ")
)


def _or_error(read: Callable[[], object], error: type[Exception]) -> object:
    """What ``read`` returns, or the error class when it raises that error."""
    try:
        return read()
    except error:
        return error


def _outcome(fn, *args):  # type: ignore[no-untyped-def]
    try:
        return ("ok", fn(*args))
    except (ValueError, TypeError, IndexError, OverflowError) as exc:
        return ("error", type(exc))


@settings(max_examples=400, deadline=None)
@given(values, st.sampled_from(sorted(TYPES)))
def test_field_writers_write_what_csv_field_of_to_text_writes(raw: object, adx_type: str) -> None:
    outcome, converted = _outcome(TYPES[adx_type].convert, raw)
    if outcome == "ok":
        assert field_writer(adx_type)(converted) == csv_field(to_text(converted))


@settings(max_examples=600, deadline=None)
@given(values | valid_stamps | guarded | st.sampled_from(["0999-01-01T00:00:00Z", "1999-01-01T00:00:00Z"]),
       st.sampled_from(sorted(TYPES)))
def test_cells_convert_and_write_like_converter_then_writer(raw: object, adx_type: str) -> None:
    expected = _outcome(lambda r: field_writer(adx_type)(TYPES[adx_type].convert(r)), raw)
    assert _outcome(csv_cell(adx_type), raw) == expected


ALL_TYPES = Table.model_validate({
    "columns": [{"name": f"c_{t}", "type": t} for t in sorted(TYPES)]
    + [{"name": "unix", "type": "datetime"}, {"name": "deep", "type": "string"}, {"name": "meta", "type": "long"},
       {"name": "key", "type": "string"}, {"name": "unmapped", "type": "int"}],
    "mappings": {"m": {"kind": "json", "columns": [
        *({"column": f"c_{t}", "Properties": {"Path": f"$.{t}"}} for t in sorted(TYPES)),
        {"column": "unix", "Properties": {"Path": "$.u", "Transform": "DateTimeFromUnixMilliseconds"}},
        {"column": "deep", "Properties": {"Path": "$.d.x[0]"}},
        {"column": "meta", "Properties": {"Metadata": "offset"}},
        {"column": "key", "Properties": {"Metadata": "key"}},
    ]}},
})
documents = st.dictionaries(st.sampled_from([*sorted(TYPES), "u", "d"]), values | valid_stamps, max_size=12) | values


@settings(max_examples=400, deadline=None)
@given(documents, st.booleans(), st.sampled_from([None, b"k", b"\xff"]))
def test_mapping_csv_line_equals_csv_line_of_row(doc: object, strict: bool, key: bytes | None) -> None:
    record = Record(value=b"{}", key=key, offset=42)
    for mapping in (ALL_TYPES.mappings["m"], None):
        compiled = CompiledMapping(ALL_TYPES, mapping, "json", strict=strict)
        expected = _outcome_or_record_error(lambda m, d: csv_line(m.row(d, record, "loc")), compiled, doc)
        assert _outcome_or_record_error(lambda m, d: m.csv_line(d, record, "loc"), compiled, doc) == expected


def _outcome_or_record_error(fn, *args):  # type: ignore[no-untyped-def]
    try:
        return ("ok", fn(*args))
    except RecordError as exc:
        return ("error", exc.reason, exc.field, exc.stage)


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=12) | st.sampled_from([" a", "a ", "a\n", "\u2028x", "x\u00a0", "a\nb", '"', ",", "\r"]))
def test_csv_field_quotes_exactly_where_the_original_regex_did(text: str) -> None:
    expected = '"' + text.replace('"', '""') + '"' if text and ORIGINAL_NEEDS_QUOTES.search(text) else text
    assert csv_field(text) == expected


@settings(max_examples=500, deadline=None)
@given(guarded | valid_stamps)
def test_datetime_fast_path_agrees_with_the_full_parser(text: str) -> None:
    fast, full = _outcome(parse_datetime, text), _outcome(_parse_datetime_full, text)
    assert fast == full
    if fast[0] == "ok":
        assert fast[1].tzinfo is not None and fast[1].utcoffset() == timedelta(0)


@settings(max_examples=300, deadline=None)
@given(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
       st.sampled_from([None, UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8))]))
def test_format_datetime_writes_what_strftime_wrote(value: datetime, tz: timezone | None) -> None:
    value = value.replace(tzinfo=tz)
    utc = value.astimezone(UTC) if value.tzinfo else value
    # strftime's %Y does not pad years below 1000; ADX needs four digits.
    expected = f"{utc.year:04d}" + utc.strftime("-%m-%dT%H:%M:%S.") + f"{utc.microsecond:06d}0Z"
    assert format_datetime(value) == expected


@settings(max_examples=300, deadline=None)
@given(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)), st.integers(0, 7))
def test_format_datetime_with_fewer_digits_cuts_the_seven_digit_form(value: datetime, digits: int) -> None:
    full = format_datetime(value.replace(tzinfo=UTC))
    expected = full[:19] + ("." + full[20:20 + digits] if digits else "") + "Z"
    assert format_datetime(value.replace(tzinfo=UTC), digits) == expected


@settings(max_examples=300, deadline=None)
@given(values)
def test_number_shortcuts_equal_the_general_converters(raw: object) -> None:
    assert _outcome(adxtypes.to_int, raw) == _outcome(adxtypes._integer, raw, adxtypes._INT32, "int")
    assert _outcome(adxtypes.to_long, raw) == _outcome(adxtypes._integer, raw, adxtypes._INT64, "long")
    if isinstance(raw, float):
        assert adxtypes.to_real(raw) is raw


@settings(max_examples=300, deadline=None)
@given(values, st.sampled_from(["a", "x", "odd name"]))
def test_one_key_path_getter_equals_resolve(doc: object, key: str) -> None:
    path = f"$.{key}" if " " not in key else f"$['{key}']"
    getter = _getter(MappingProperties.model_validate({"Path": path}))
    assert getter(doc, Record(value=None), "") == resolve(doc, (key,))


def test_chunked_compression_is_byte_identical_to_one_call_per_line() -> None:
    lines = [b'{"n": %d, "pad": "%s"}' % (i, b"x" * (i % 300)) for i in range(3000)]
    builder = BatchBuilder(Destination("db", "T", "json", None, "server"), level=1)
    for offset, line in zip([5, 3, 9, *range(10, 3007)], lines, strict=True):
        builder.add(Record(value=line, topic="t", partition=offset % 2, offset=offset), line)
    batch = builder.seal()
    compressor = zlib.compressobj(1, zlib.DEFLATED, 31)
    expected = b"".join(compressor.compress(line + b"\n") for line in lines) + compressor.flush()
    assert batch.payload == expected
    assert batch.raw_size == sum(len(line) + 1 for line in lines)
    assert [str(r) for r in batch.ranges] == ["t[1]@3-3005", "t[0]@10-3006"]


@settings(max_examples=500, deadline=None)
@given(st.lists(st.text(alphabet=st.sampled_from('ab ,;|\t"x\u00e9'), max_size=8), min_size=1, max_size=5),
       st.sampled_from([",", ";", "|", "\t", "\x01", ":"]), st.booleans())
def test_one_line_csv_split_equals_the_stringio_reader(fields: list[str], delimiter: str, quote_all: bool) -> None:
    text = delimiter.join(f'"{f}"' if quote_all else f for f in fields)
    assume('"' in text)  # without quotes both versions split on the delimiter
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True))
        expected: object = rows[0] if len(rows) == 1 else RecordError
    except csv.Error:
        expected = RecordError
    try:
        got: object = split_delimited(text, delimiter)
    except RecordError:
        got = RecordError
    assert got == expected


def test_topic_memo_never_hides_header_routing(tmp_path: Path) -> None:
    routes = [{"topic": "json", "table": "T", "format": "json", "mapping": "T_json",
               "header_routing": [{"table": "Raw", "format": "txt"}]}]
    sink = MemorySink()
    pipeline = Pipeline(make_config(routes=routes), sink, LocalDeadLetterStore(tmp_path))
    plain = Record(value=b'{"a": "x"}', topic="json", offset=1)
    to_raw = Record(value=b'{"a": "y"}', topic="json", offset=2, headers=(("Table", b"Raw"),))
    pipeline.process([plain, to_raw, plain])  # the topic is memoised by the first record
    # A later record with headers (not the same one: a pipeline does not queue a batch twice).
    pipeline.process([Record(value=b'{"a": "z"}', topic="json", offset=3, headers=(("Table", b"Raw"),))])
    assert sorted((b.destination.table, b.count) for b in sink.batches) == [("Raw", 1), ("Raw", 1), ("T", 2)]


def _reference_read_payload(data: bytes, wire_format: str) -> list[object]:
    """read_payload for json and csv as first written: decode it all, then split."""
    text = data.decode("utf-8", errors="replace")
    if wire_format == "json":
        return [orjson.loads(line) for line in text.split("\n") if line.strip()]
    return list(csv.reader(io.StringIO(text, newline=""), delimiter=","))


payload_lines = st.lists(
    st.sampled_from([b'{"a": 1}', b'{"s": "x\xe2\x80\xa8y"}', b"  ", b"", b'{"t": "\xc3"}', b"\r", b'{"q": "a,b"}']),
    max_size=8,
)
csv_payloads = st.lists(st.text(alphabet=st.sampled_from('ab,"\n\r\u00e9'), max_size=10), max_size=6).map(
    lambda parts: "\n".join(parts).encode("utf-8")
) | st.binary(max_size=40).filter(lambda b: b.count(b'"') % 2 == 0)


@settings(max_examples=300, deadline=None)
@given(payload_lines, st.booleans())
def test_streamed_json_payload_reads_like_the_whole_text(lines: list[bytes], trailing: bool) -> None:
    data = b"\n".join(lines) + (b"\n" if trailing else b"")
    expected = _or_error(lambda: _reference_read_payload(data, "json"), orjson.JSONDecodeError)
    assert _or_error(lambda: list(read_payload_stream(io.BytesIO(data), "json")), orjson.JSONDecodeError) == expected


@settings(max_examples=300, deadline=None)
@given(csv_payloads)
def test_streamed_csv_payload_reads_like_the_whole_text(data: bytes) -> None:
    expected = _or_error(lambda: _reference_read_payload(data, "csv"), csv.Error)
    assert _or_error(lambda: list(read_payload_stream(io.BytesIO(data), "csv")), csv.Error) == expected


def test_duckdb_sink_streams_the_same_rows_it_lists(tmp_path: Path) -> None:
    config = make_config()
    sink = DuckDbSink(config, tmp_path / "local.duckdb")
    try:
        builder = BatchBuilder(Destination("db", "T", "json", "T_json", "server"), level=1)
        for offset in range(500):
            line = b'{"a": "r%d", "n": %d, "ts": "2024-01-01T00:00:%02dZ", "d": {"i": [%d]}}' % (offset, offset, offset % 60, offset)
            builder.add(Record(value=line, offset=offset), line)
        batch = builder.seal()
        rows = sink.rows(batch)
        assert list(sink.iter_rows(batch)) == rows and len(rows) == 500
        sink.write(batch)
        assert sink.query('SELECT count(*), sum("n") FROM "db"."T"') == [(500, sum(range(500)))]
    finally:
        sink.close()
