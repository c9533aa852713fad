"""shared/mapping/generated.py: the generated CSV line function of a mapping writes exactly the
reference's line (CompiledMapping.csv_line_reference, and csv_line(row(...))) and raises the same
error, for random tables, mappings and documents: every column type, each kind of source, values
of every Python type a decoder hands over, and text on each fast path's edges."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.config import Mapping, Table
from shared.errors import RecordError
from shared.mapping.compiled import CompiledMapping
from shared.mapping.generated import CANONICAL_REAL, CANONICAL_REAL_CHARS
from shared.mapping.types import TYPES, csv_line
from shared.pipeline.records import Record

TYPE_NAMES = sorted(TYPES)

# Text on the edges the fast paths test: quotes, commas, line breaks, whitespace at either end
# (ASCII and not), non-printable characters, digits (ASCII and not, leading zeros, 9/10 and
# 18/19 digits), timestamps of the fast shape (valid or not), JSON-ish text.
EDGE_TEXT = [
    "", " ", "a", " a", "a ", "\ta", "a\t", "\u00a0a", "a\u2003", "a\x1c", "\x85", "a,b", 'q"q', "a\nb", "a\rb", "\x00",
    "\x7f", "Zürich", "\u2028", "0", "00", "007", "7", "-7", "+7", " 7", "7 ", "1_0", "\u0663", "\u00b2", "123456789", "1234567890",
    "2147483647", "2147483648", "-2147483648", "999999999999999999", "9223372036854775807", "9223372036854775808",
    "1.5", "1e5", "1e400", "nan", "NaN", "-inf", "inf", "1.50", " 2.5 ", ".5", "1_000.5", "0x10",
    "2007-01-01T00:00:00Z", "2007-13-01T00:00:00Z", "2007-01-01T00:00:60Z", "0999-01-01T00:00:00Z",
    "2007-01-01T00:00:00z", "2007-01-01 00:00:00Z", "2007-01-01T00:00:00.5Z", "2007-01-0\u0661T00:00:00Z",
    "{}", "[]", '{"a":1}', '{"a":[1,2.5,"x,y"]}', "[1,2]", "{bad", "[1,]", '{"a":1} ', ' {"a":1}', '{"a":1}\u00a0',
    "[" + "9" * 30 + "]", "[NaN]", "true", "null", '"s"', "12", "True", "yes", "1", "false",
    "6ba7b810-9dad-11d1-80b4-00c04fd430c8", "01:02:03", "1.02:03:04.5", "90s",
]
TEXT = (
    st.sampled_from(EDGE_TEXT)
    | st.text(max_size=8)
    | st.text(st.sampled_from('a ,"\n\r\t\u00a009{}[]:-.Ze'), max_size=10)
    # Whole numbers around each integer type's bounds and digit counts, and decimals, as text.
    | st.integers(min_value=-(2**64), max_value=2**64).map(str)
    | st.sampled_from([2**31, 2**63, 10**9, 10**18]).flatmap(lambda b: st.integers(b - 3, b + 3)).map(str)
    | st.floats().map(repr)
    | st.from_regex(r"-?[0-9]{1,9}\.[0-9]{1,9}", fullmatch=True)  # decimals repr would not write
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.sampled_from([0, 1, -1, 2**31 - 1, 2**31, -(2**31), -(2**31) - 1, 2**63 - 1, 2**63, -(2**63), -(2**63) - 1])
    | st.floats()
    | st.sampled_from([1.0, -0.0, 1e16, 1e-7, 2.5, math.inf, -math.inf, math.nan])
    | TEXT
    | st.sampled_from([
        datetime(2007, 1, 1, tzinfo=UTC), datetime(2007, 1, 1, 1, 2, 3, 4, tzinfo=UTC), datetime(2007, 1, 1),
        datetime(2007, 1, 1, tzinfo=timezone(timedelta(hours=2))), timedelta(seconds=5), Decimal("1.5"), b"x",
    ])
)
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
                      max_leaves=6)

METADATA = ["key", "topic", "partition", "offset", "timestamp", "header:h"]
TRANSFORMS = ["DateTimeFromUnixSeconds", "DateTimeFromUnixMilliseconds", "SourceLocation", "SourceLineNumber"]


@st.composite
def mapped_tables(draw: st.DrawFn) -> tuple[Table, Mapping | None, str]:
    """A table of 1-6 columns of random types and a JSON or CSV mapping (or none) over it."""
    kind = draw(st.sampled_from(["json", "csv"]))
    types = draw(st.lists(st.sampled_from(TYPE_NAMES), min_size=1, max_size=6))
    table = Table.model_validate({"columns": [{"name": f"c{i}", "type": t} for i, t in enumerate(types)]})
    if draw(st.booleans()):
        return table, None, kind
    entries = []
    for i, adx_type in enumerate(types):
        choice = draw(st.sampled_from(["main", "main", "main", "none", "const", "metadata", "transform", "path"]))
        if choice == "none":
            continue
        if choice == "main":
            props: dict[str, Any] = {"Path": f"$.k{draw(st.integers(0, 5))}"} if kind == "json" else {
                "Ordinal": str(draw(st.integers(0, 6)))}
        elif choice == "const":
            props = {"ConstValue": draw(st.sampled_from(EDGE_TEXT[1:]))}
        elif choice == "metadata":
            props = {"Metadata": draw(st.sampled_from(METADATA))}
        elif choice == "path":
            props = {"Path": draw(st.sampled_from(["$", "$.k0.k1", "$.k1[0]", "$['k2']", "$.k3[-1]"]))} if kind == "json" \
                else {"Ordinal": "0"}
        else:
            transform = draw(st.sampled_from(TRANSFORMS))
            props = {"Transform": transform}
            if transform.startswith("DateTime"):
                props.update({"Path": "$.k0"} if kind == "json" else {"Ordinal": "1"})
        if adx_type != "datetime" and props.get("Transform", "").startswith("DateTime"):
            props.pop("Transform")
        entries.append({"column": f"c{i}", "Properties": props})
    mapping = Mapping.model_validate({"kind": kind, "columns": entries}) if entries else None
    return table, mapping, kind


def documents(kind: str) -> st.SearchStrategy[Any]:
    if kind == "csv":
        return st.lists(TEXT, max_size=8) | VALUES
    return st.dictionaries(st.sampled_from([f"k{i}" for i in range(6)]), VALUES, max_size=6) | VALUES


RECORDS = st.builds(
    Record,
    value=st.just(b"x"),
    key=st.none() | st.sampled_from([b"k", b"\xff", b""]),
    headers=st.sampled_from([(), (("h", b"v,1"),), (("h", b"\xfe"),), (("h", None),)]),
    topic=st.sampled_from(["t", "a,b", " t", "Zürich"]),
    partition=st.sampled_from([0, 3, 2**31]),
    offset=st.sampled_from([0, 42, 2**63 - 1, 2**63]),
    timestamp=st.sampled_from([datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC), None]),
)


def _outcome(function: Any, doc: Any, record: Record) -> tuple[str, Any]:
    try:
        return "line", function(doc, record, "loc,x")
    except RecordError as exc:
        return "error", (str(exc), exc.field, exc.stage)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data(), mapped_tables(), RECORDS, st.booleans())
def test_generated_line_is_the_reference_line(data: st.DataObject, mapped: tuple[Table, Mapping | None, str],
                                              record: Record, strict: bool) -> None:
    table, mapping, kind = mapped
    compiled = CompiledMapping(table, mapping, kind, strict=strict)
    doc = data.draw(documents(kind))
    generated = _outcome(compiled.csv_line, doc, record)
    assert generated == _outcome(compiled.csv_line_reference, doc, record)
    if generated[0] == "line":
        assert generated[1] == csv_line(compiled.row(doc, record, "loc,x"))


STORM_TYPES = ["datetime", "int", "long", "string", "real", "dynamic", "bool", "guid", "decimal", "timespan"]


def _storm_mapping(kind: str) -> tuple[Table, Mapping]:
    table = Table.model_validate({"columns": [{"name": f"c{i}", "type": t} for i, t in enumerate(STORM_TYPES)]
                                  + [{"name": "topic", "type": "string"}, {"name": "offset", "type": "long"}]})
    entries = [{"column": f"c{i}", "Properties": {"Path": f"$.c{i}"} if kind == "json" else {"Ordinal": str(i)}}
               for i in range(len(STORM_TYPES))]
    entries += [{"column": "topic", "Properties": {"Metadata": "topic"}},
                {"column": "offset", "Properties": {"Metadata": "offset"}}]
    return table, Mapping.model_validate({"kind": kind, "columns": entries})


def _json_text(value: Any) -> str:
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return "[]"


def _good(adx_type: str, kind: str) -> st.SearchStrategy[Any]:
    """Values that convert to ``adx_type``, as a JSON decoder (kind json) or a CSV split (csv)
    hands them over: a row of them takes the fast paths from end to end."""
    stamps = st.datetimes(min_value=datetime(1000, 1, 1), timezones=st.just(UTC))
    natural: dict[str, st.SearchStrategy[Any]] = {
        "datetime": stamps.map(lambda d: d.strftime("%Y-%m-%dT%H:%M:%SZ")) | stamps,
        "int": st.integers(-(2**31), 2**31 - 1),
        "long": st.integers(-(2**63), 2**63 - 1),
        "string": TEXT,
        "real": st.floats(allow_nan=False, allow_infinity=False),
        "dynamic": st.dictionaries(TEXT, VALUES, max_size=3) | st.lists(VALUES, max_size=3),
        "bool": st.booleans(),
        "guid": st.uuids().map(str),
        "decimal": st.decimals(allow_nan=False, allow_infinity=False, places=3).map(str),
        "timespan": st.sampled_from(["01:02:03", "1.02:03:04.5", "90s"]),
    }
    good = natural[adx_type]
    if kind == "csv":
        good = good.map(lambda v: _json_text(v) if isinstance(v, (dict, list)) else v if isinstance(v, str)
                        else ("true" if v else "false") if isinstance(v, bool) else repr(v) if isinstance(v, float)
                        else v.strftime("%Y-%m-%dT%H:%M:%SZ") if isinstance(v, datetime) else str(v))
    return good


def _column_value(adx_type: str, kind: str) -> st.SearchStrategy[Any]:
    good = _good(adx_type, kind)
    return st.one_of(good, good, good, TEXT if kind == "csv" else VALUES)


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["json", "csv"]), st.data(), RECORDS, st.booleans())
def test_every_fast_path_against_the_reference(kind: str, data: st.DataObject, record: Record, strict: bool) -> None:
    """Every column type once, from a key or an ordinal (the fast paths), each value mostly one
    that converts (else any value, which sends the row to the reference): this reaches each
    fast path's edges far more often than random mappings."""
    table, mapping = _storm_mapping(kind)
    compiled = CompiledMapping(table, mapping, kind, strict=strict)
    values = [data.draw(_column_value(t, kind)) for t in STORM_TYPES]
    doc: Any = values if kind == "csv" else {f"c{i}": v for i, v in enumerate(values)}
    generated = _outcome(compiled.csv_line, doc, record)
    assert generated == _outcome(compiled.csv_line_reference, doc, record)
    if generated[0] == "line":
        assert generated[1] == csv_line(compiled.row(doc, record, "loc,x"))


@pytest.mark.parametrize("kind", ["json", "csv"])
@pytest.mark.parametrize("adx_type", STORM_TYPES)
@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), strict=st.booleans())
def test_each_type_alone_against_the_reference(adx_type: str, kind: str, data: st.DataObject, strict: bool) -> None:
    """One column of each type (and two metadata columns), with any value: each fast path's
    edges, which a wider row would mostly send to the reference for another column's value."""
    table = Table.model_validate({"columns": [{"name": "c", "type": adx_type}, {"name": "topic", "type": "string"},
                                              {"name": "offset", "type": "long"}]})
    source = {"Path": "$.c"} if kind == "json" else {"Ordinal": "0"}
    mapping = Mapping.model_validate({"kind": kind, "columns": [
        {"column": "c", "Properties": source}, {"column": "topic", "Properties": {"Metadata": "topic"}},
        {"column": "offset", "Properties": {"Metadata": "offset"}}]})
    compiled = CompiledMapping(table, mapping, kind, strict=strict)
    value = data.draw(st.one_of(_good(adx_type, kind), TEXT, VALUES))
    record = data.draw(RECORDS)
    doc: Any = [value] if kind == "csv" else {"c": value}
    generated = _outcome(compiled.csv_line, doc, record)
    assert generated == _outcome(compiled.csv_line_reference, doc, record)
    if generated[0] == "line":
        assert generated[1] == csv_line(compiled.row(doc, record, "loc,x"))


@pytest.mark.parametrize("kind", ["json", "csv"])
def test_a_document_of_another_shape_goes_to_the_reference(kind: str) -> None:
    table, mapping = _storm_mapping(kind)
    compiled = CompiledMapping(table, mapping, kind, strict=False)
    record = Record(value=b"x", topic="t", offset=1)
    for doc in ([1, 2], {"c0": 1}, "text", None, 5):
        assert compiled.csv_line(doc, record) == compiled.csv_line_reference(doc, record)


def test_one_empty_column_writes_an_empty_quoted_field() -> None:
    record = Record(value=b"x", topic="t", offset=1)
    one = Table.model_validate({"columns": [{"name": "s", "type": "string"}]})
    compiled = CompiledMapping(one, None, "json", strict=True)
    assert compiled.csv_line({"s": ""}, record) == '""' == compiled.csv_line_reference({"s": ""}, record)
    assert compiled.csv_line({"s": "x"}, record) == "x"


@settings(max_examples=3000, deadline=None)
@given(st.from_regex(r"-?[0-9]{1,16}\.[0-9]{1,16}", fullmatch=True) | st.floats(allow_nan=False).map(repr)
       | st.from_regex(r"-?0\.0{0,6}[0-9]{1,10}", fullmatch=True))
def test_canonical_real_text_is_what_repr_writes(text: str) -> None:
    """The real fast path keeps text the regular expression accepts as it is: that is exactly
    repr(float(text)) for every such text of at most CANONICAL_REAL_CHARS characters."""
    if len(text) <= CANONICAL_REAL_CHARS and CANONICAL_REAL.fullmatch(text):
        assert repr(float(text)) == text
