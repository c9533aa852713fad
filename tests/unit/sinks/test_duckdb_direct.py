"""The direct load of client-mapped batches (DuckDB reads the pipeline's gzip CSV itself) stores
exactly the rows, values and types the reference path stores (each row parsed, converted and
rewritten in Python), for random records through the real pipeline; values it cannot take
send the whole batch to the reference path."""

from __future__ import annotations

import csv
import io
import math
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.config import IngestionConfig, parse_config
from shared.deadletters.local import LocalDeadLetterStore
from shared.mapping.types import format_timespan
from shared.pipeline.core import Pipeline
from shared.pipeline.records import Record
from shared.sinks.duckdb import DuckDbSink

TYPES = ["string", "int", "long", "real", "decimal", "bool", "datetime", "guid", "dynamic"]
NAMES = [f"{t}_col" for t in TYPES]
META = [("KafkaTopic", "string", "topic"), ("KafkaPartition", "int", "partition"), ("KafkaOffset", "long", "offset")]


def config(*, with_timespan: bool = False) -> IngestionConfig:
    """Table T (one column per type, then Kafka metadata), a JSON and a CSV client route, each
    with validation on and off."""
    columns = [{"name": n, "type": t} for n, t in zip(NAMES, TYPES, strict=True)]
    if with_timespan:
        columns.append({"name": "span", "type": "timespan"})
    data_names = [c["name"] for c in columns]
    columns += [{"name": n, "type": t} for n, t, _ in META]
    meta = [{"column": n, "Properties": {"Metadata": m}} for n, _, m in META]
    mappings = {
        "J": {"kind": "json", "columns": [{"column": n, "Properties": {"Path": f"$.{n}"}} for n in data_names] + meta},
        "C": {"kind": "csv", "columns": [{"column": n, "Properties": {"Ordinal": str(i)}}
                                         for i, n in enumerate(data_names)] + meta},
    }
    routes = [
        {"topic": topic, "table": "T", "format": fmt, "mapping": mapping, "apply_mapping": "client", "validate": validate}
        for topic, fmt, mapping, validate in (("j", "json", "J", False), ("jv", "json", "J", True),
                                              ("c", "csv", "C", False), ("cv", "csv", "C", True))
    ]
    return parse_config({"database": "db", "tables": {"T": {"columns": columns, "mappings": mappings}}, "routes": routes})


# Text that looks like JSON, or nearly: what DuckDB's JSON reader and orjson disagree on
# (NaN, trailing commas, huge numbers, deep nesting, bad escapes) comes up often.
LENIENT_JSON = [
    # What DuckDB's JSON reader accepts and orjson refuses: each must reach the reference path.
    "[1,]", '{"a":1,}', '{"a":[1, 2 ,],"b":"x"}', "[NaN]", '{"a":Infinity}', "[-Infinity]", "[1e400]", "[1E+309]",
    "[" + "9" * 320 + "]", "[" * 1100 + "]" * 1100, '{"a":"\\ud800"}', "[1,\f2]", '["a\tb"]',
    # ... and what both accept, DuckDB's way or not.
    # ... what neither accepts (the cast fails) ...
    "[1 2]", '{"a"}', "[}", "[1]]",
    '{"a":"x, ]","b":"e999"}', "[1e99,-0.0,1.5e-7]", '{"a":1,"a":2}', "[ 1 , 2 ]", '["\\u00e9"]', "[" * 600 + "]" * 600,
]
_JSONISH = st.lists(
    st.sampled_from(['[', ']', '{', '}', ',', ':', '"a"', '"e100"', '1', '-0', '1.5', '1e5', '1e400', '1E-400',
                     "NaN", "Infinity", "true", "null", " ", "\t", "\f", '"x\\u00e9"', '"\\ud800"', '"\\n"', "01",
                     '"', "\\", "'b'", "9" * 250, '"tab\there"']),
    max_size=12,
).map("".join) | st.sampled_from(LENIENT_JSON)
_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12).filter(lambda s: s != "\\N")
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**65), max_value=2**65)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _TEXT
    | _JSONISH
    | st.sampled_from(["2007-01-01T00:00:00Z", "2007-01-01 10:00:00.1234567+02:00", " 12 ", "1e3", "TRUE", "0",
                       "6ba7b810-9dad-11d1-80b4-00c04fd430c8", "12.50", "-0.0", "1E+5", "Tue, 1 Jan 2008 00:00:00 GMT",
                       "", "  ", "\r", "a\r\nb", 'q"uote', "1.5e308", "00:01:00", "1.02:03:04.5"])
)
# Spans in every shape the converter reads (and longer than the direct load takes: days past
# 4 digits), as text and as numbers (which do not convert).
_SPANS = (st.timedeltas(min_value=-timedelta(days=20_000), max_value=timedelta(days=20_000)) | st.timedeltas()).map(
    format_timespan) | (
    st.sampled_from(["01:02:03", "1.02:03:04.5", "-00:00:01", "90s", "2h", "1.5d", "10000.00:00:00", "00:00:00.1234567",
                     " 01:00:00 ", "25:61:61", "-1.00:00:00.0000000", "", "x", 5]))
_VALUES = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=3)
                       | st.dictionaries(_TEXT, inner, max_size=3), max_leaves=8)


def _json_record(draw: st.DrawFn, names: list[str]) -> bytes:
    doc = {}
    for name in names:
        if draw(st.booleans()):
            # The dynamic column gets JSON-like text half of the time: the edge the direct load guards.
            doc[name] = draw(_JSONISH | _VALUES if name == "dynamic_col" else _SPANS if name == "span" else _VALUES)
    try:
        return orjson.dumps(doc)
    except TypeError:  # an integer beyond 64 bits: orjson does not write it, the record goes without
        return orjson.dumps({k: v for k, v in doc.items() if not _has_big_int(v)})


def _has_big_int(value: Any) -> bool:
    if isinstance(value, int) and not isinstance(value, bool):
        return not -(2**63) <= value < 2**64
    if isinstance(value, list):
        return any(map(_has_big_int, value))
    if isinstance(value, dict):
        return any(map(_has_big_int, value.values()))
    return False


def _csv_record(draw: st.DrawFn, names: list[str]) -> bytes:
    fields = [draw(_JSONISH if name == "dynamic_col" else _SPANS.map(str) if name == "span" else _TEXT | _JSONISH
                   | st.sampled_from(["1", "-7", "1.25", "true", "2007-01-01T00:00:00Z", "", '{"a":[1,{"b":null}]}',
                                      "[1,2]", "\r"]))
              for name in names]
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(fields)
    return out.getvalue().encode("utf-8")


@st.composite
def records(draw: st.DrawFn, names: list[str]) -> list[Record]:
    """Records for all four routes, in a random order, with values for the columns ``names``."""
    out = []
    for offset in range(draw(st.integers(min_value=1, max_value=12))):
        topic = draw(st.sampled_from(["j", "jv", "c", "cv"]))
        value = _json_record(draw, names) if topic.startswith("j") else _csv_record(draw, names)
        out.append(Record(value=value, topic=topic, partition=draw(st.integers(0, 3)), offset=offset))
    return out


def _stored(sink: DuckDbSink) -> list[tuple[Any, ...]]:
    """Every row of T in insertion order, with DuckDB's type name of each value (NaN made
    comparable)."""
    rows = sink.query('SELECT * FROM "db"."T"')
    types = [r[1] for r in sink.query('DESCRIBE "db"."T"')]
    return [tuple(("nan" if isinstance(v, float) and math.isnan(v) else v, t) for v, t in zip(row, types, strict=True))
            for row in rows]


def _ingest(cfg: IngestionConfig, batch: list[Record], root: Path, *, direct: bool) -> tuple[list[Any], Any, int]:
    sink = DuckDbSink(cfg, ":memory:", direct_load=direct)
    sink.ensure_table("db", "T")  # also when every record is dead-lettered
    try:
        result = Pipeline(cfg, sink, LocalDeadLetterStore(root / ("dl-direct" if direct else "dl-ref"))).process(batch)
        return _stored(sink), (result.ingested, result.dead_lettered, result.reasons), len(sink.query(
            'SELECT * FROM "db"."T"'))
    finally:
        sink.close()


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(records(NAMES))
def test_direct_load_stores_what_the_reference_path_stores(tmp_path_factory: Any, batch: list[Record]) -> None:
    cfg = config()
    root = tmp_path_factory.mktemp("direct")
    assert _ingest(cfg, batch, root, direct=True) == _ingest(cfg, batch, root, direct=False)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(records([*NAMES, "span"]))
def test_a_timespan_column_is_stored_as_the_reference_path_stores_it(tmp_path_factory: Any,
                                                                      batch: list[Record]) -> None:
    cfg = config(with_timespan=True)
    root = tmp_path_factory.mktemp("span")
    assert _ingest(cfg, batch, root, direct=True) == _ingest(cfg, batch, root, direct=False)


@pytest.mark.parametrize("text", LENIENT_JSON, ids=lambda t: t[:20])
def test_json_like_text_in_a_dynamic_column_is_stored_as_the_reference_stores_it(tmp_path: Path, text: str) -> None:
    """Each text alone in its batch (so no other value sends the batch to the reference path),
    as a JSON string value and as a CSV field."""
    cfg = config()
    field = io.StringIO()
    csv.writer(field, lineterminator="").writerow(["x"] * 8 + [text])
    batch = [Record(value=orjson.dumps({"dynamic_col": text}), topic="j", partition=0, offset=1),
             Record(value=field.getvalue().encode(), topic="c", partition=0, offset=2)]
    assert _ingest(cfg, batch, tmp_path, direct=True) == _ingest(cfg, batch, tmp_path, direct=False)


def test_the_direct_load_takes_the_demo_shaped_batch(tmp_path: Path) -> None:
    """A JSON object in the dynamic column and plain values: loaded by DuckDB, not handed to the
    reference path."""
    cfg = config()
    sink = DuckDbSink(cfg, tmp_path / "x.duckdb")
    doc = {"string_col": "a,\"b\"\r", "int_col": 7, "long_col": 2**40, "real_col": 26.1589, "decimal_col": "1.25",
           "bool_col": True, "datetime_col": "2007-08-24T19:23:00Z", "guid_col": "6ba7b810-9dad-11d1-80b4-00c04fd430c8",
           "dynamic_col": {"TotalDamages": 20000, "Details": {"Description": "Heavy Rain, near \"Adair\""}}}
    result = Pipeline(cfg, sink, LocalDeadLetterStore(tmp_path / "dl")).process(
        [Record(value=orjson.dumps(doc), topic="jv", partition=1, offset=5)])
    assert (result.ingested, result.dead_lettered, sink.direct_fallbacks) == (1, 0, 0)
    (row,) = sink.query('SELECT "string_col", "dynamic_col", "KafkaTopic", "KafkaOffset" FROM "db"."T"')
    assert row == ('a,"b"\r', '{"TotalDamages":20000,"Details":{"Description":"Heavy Rain, near \\"Adair\\""}}', "jv", 5)


def test_a_string_that_reads_like_the_reference_null_marker_stays_a_string(tmp_path: Path) -> None:
    """ADX keeps the text \\N; the reference path's CSV uses it as its null marker (a string of
    exactly that text became null there). The direct load has no such marker."""
    cfg = config()
    sink = DuckDbSink(cfg, tmp_path / "x.duckdb")
    Pipeline(cfg, sink, LocalDeadLetterStore(tmp_path / "dl")).process(
        [Record(value=b'{"string_col": "\\\\N"}', topic="j", partition=0, offset=1)])
    assert sink.query('SELECT "string_col" FROM "db"."T"') == [("\\N",)]
