"""The direct load of server-mapped batches (DuckDB reads the producer's CSV / JSON lines and
computes each column in SQL) stores exactly the rows, values and types the reference path stores
(each row parsed with csv.reader / orjson, mapped by CompiledMapping, rewritten), for random
records through the real pipeline; any value or payload it cannot take sends the whole batch to
the reference path."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.config import IngestionConfig, load_config, parse_config
from shared.deadletters.local import LocalDeadLetterStore
from shared.ops.sample import go_csv_record, storm_events, to_csv, to_json, tutorial_fields
from shared.pipeline.core import Pipeline
from shared.pipeline.records import Record
from shared.sinks import duckdb_server
from shared.sinks.duckdb import DuckDbSink
from tests.unit.sinks.test_duckdb_direct import _JSONISH, _TEXT, _VALUES, _stored

REPO = Path(__file__).resolve().parents[3]
TYPES = ["string", "int", "long", "real", "bool", "datetime", "guid", "dynamic"]
NAMES = [f"{t}_col" for t in TYPES]


def config() -> IngestionConfig:
    """Table T (one column per type the direct load computes, a nested string, an unmapped
    column); a CSV mapping by ordinals one field wider than it reads, a JSON mapping by paths
    ($.key, $['key'], $.obj.key); each route with validation on and off."""
    columns = [{"name": n, "type": t} for n, t in zip(NAMES, TYPES, strict=True)]
    columns += [{"name": "nested", "type": "string"}, {"name": "unmapped", "type": "int"}]
    json_columns = [{"column": n, "Properties": {"Path": f"$.{n}" if i % 2 else f"$['{n}']"}} for i, n in enumerate(NAMES)]
    json_columns.append({"column": "nested", "Properties": {"Path": "$.obj.key"}})
    csv_columns = [{"column": n, "Properties": {"Ordinal": str(i)}} for i, n in enumerate([*NAMES, "nested"])]
    mappings = {
        "J": {"kind": "json", "columns": json_columns},
        "C": {"kind": "csv", "source_fields": len(NAMES) + 2, "columns": csv_columns},
    }
    routes = [
        {"topic": topic, "table": "T", "format": fmt, "mapping": mapping, "validate": validate}
        for topic, fmt, mapping, validate in (("j", "json", "J", False), ("jv", "json", "J", True),
                                              ("c", "csv", "C", False), ("cv", "csv", "C", True))
    ]
    return parse_config({"database": "db", "tables": {"T": {"columns": columns, "mappings": mappings}}, "routes": routes})


_STAMPS = st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)).flatmap(
    lambda d: st.sampled_from([
        d.strftime("%Y-%m-%d %H:%M:%S.%f") + "0", d.strftime("%Y-%m-%dT%H:%M:%SZ"),
        d.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z", d.strftime("%Y-%m-%d %H:%M:%S.%f") + "5",
        d.strftime("%Y-%m-%dT%H:%M:%S+02:00"), d.strftime("%Y-%m-%d"), d.strftime("%Y-%m-%dT%H:%M:%S.%f"),
        f"{d.year:04d}-{d.month:02d}-{d.day:02d}", " " + d.strftime("%Y-%m-%dT%H:%M:%SZ"),
    ])) | st.sampled_from(["2007-01-01 24:00:00.0000000", "2007-02-30T00:00:00Z", "0000-01-01T00:00:00Z",
                           "2007-01-01T00:00:60Z", "999-01-01T00:00:00Z", "2007-13-01T00:00:00Z"])
_NUMBER_TEXT = st.floats().map(repr) | st.integers(-(2**64), 2**64).map(str) | st.sampled_from(
    ["007", "+1", "-0", " 1", "1_000", "1.0", "1e5", "1e+16", "nan", "inf", "-inf", "Infinity", "0x10", "2147483648",
     "9223372036854775808", "1.50", "١٢", "TRUE", "True", "tRue", "0", "1", "false",
     "6BA7B810-9DAD-11D1-80B4-00C04FD430C8", "6ba7b810-9dad-11d1-80b4-00c04fd430c8", "{6ba7b810-9dad-11d1-80b4-00c04fd430c8}"])
_DYNAMIC = (_JSONISH | st.sampled_from(['{"a":1,"a":2}', '[{"a":1},{"b":2}]', '{"a":{"b":1,"b":2}}', '{"a":1.50}',
                                         '{"a":10000000000000000.0}', '{"a":-0}', '[0.00001]', '{"a":"\\u00e9"}',
                                         '{"a":"x y","b":[1,2.5,-0.0,true,null]}', "[1,]", "[]", "{}"]))
_FIELDS = _TEXT | _STAMPS | _NUMBER_TEXT | _DYNAMIC | st.sampled_from(["", " ", '"', 'a"b', '"quoted"', "\r", "\n", "\x00"])


def _json_value(draw: st.DrawFn, name: str) -> Any:
    if name == "dynamic_col":
        return draw(_VALUES | _DYNAMIC.map(lambda t: orjson.loads(t) if _loads_ok(t) else t))
    return draw(_VALUES | _STAMPS | _NUMBER_TEXT)


def _loads_ok(text: str) -> bool:
    try:
        orjson.loads(text)
    except orjson.JSONDecodeError:
        return False
    return True


def _json_record(draw: st.DrawFn) -> bytes:
    doc: dict[str, Any] = {name: _json_value(draw, name) for name in NAMES if draw(st.booleans())}
    if draw(st.booleans()):
        doc["obj"] = draw(st.sampled_from([{"key": "v"}, {"key": 5}, {"other": 1}, "text", [1], None]))
    try:
        value = orjson.dumps(doc)
    except TypeError:  # an integer beyond 64 bits
        value = b"{}"
    hazard = draw(st.integers(0, 11))
    if hazard == 1 and doc:  # a repeated key: orjson keeps the last, DuckDB's reader refuses it
        key = orjson.dumps(next(iter(doc))).decode()
        value = value[:-1] + f',{key}:"dup"}}'.encode() if len(doc) else value
    elif hazard == 2:  # a repeated key inside the object a path reads, or inside a dynamic value
        value = value[:-1] + (b',"obj":{"key":"a","key":"b"}}' if value != b"{}" else b'"obj":{"key":"a","key":"b"}}')
    elif hazard == 3:  # what only DuckDB's reader takes (a route without validation lets it through)
        value = draw(st.sampled_from([b'{"real_col":NaN}', b'{"int_col":1,}', b'{"real_col":1e400}', b"[1,2]", b"3",
                                      b'{"a":1} x', b'{"string_col":"a\xffb"}', b"\xef\xbb\xbf{}", b'{"a":1}\x0c',
                                      b'{"dynamic_col":{"a":[1,]}}']))
    elif hazard == 4:  # spread over lines, spaces: the encoder rewrites or keeps it
        value = value.replace(b",", b",\n ", 1).replace(b":", b" : ")
    return value


def _csv_record(draw: st.DrawFn) -> bytes:
    fields = [draw(_FIELDS) for _ in range(draw(st.sampled_from([len(NAMES) + 2] * 6 + [1, 3, len(NAMES) + 1,
                                                                                      len(NAMES) + 3])))]
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(fields)
    value = out.getvalue()
    hazard = draw(st.integers(0, 9))
    if hazard == 1:
        value = value.replace(',"', ', "', 1)  # DuckDB trims the space, csv.reader keeps it
    elif hazard == 2:
        value = value.replace('",', '" ,', 1)
    elif hazard == 3:
        value = "\ufeff" + value  # a BOM: DuckDB drops it first in the file
    elif hazard == 4:
        value += draw(st.sampled_from(["\n", "\r\n", "\n\n", "\r", "\nx"]))
    elif hazard == 5:
        value = value.replace(",", '"x"y,', 1)  # text after a closing quote
    return value.encode("utf-8") if draw(st.integers(0, 15)) else value.encode("utf-8")[:-1] + b"\xff"


# Mostly what the dynamic guard keeps (plain strings, short decimals), sometimes not.
_PLAIN = st.text(st.sampled_from("aZ é,:{}[]-_1"), max_size=6)
_SCALAR_DYNAMIC = (st.none() | st.booleans() | st.integers(-(2**53), 2**53) | _PLAIN
                   | st.floats(-1e6, 1e6).map(lambda x: round(x, 4)) | st.floats(allow_nan=False, allow_infinity=False)
                   | _TEXT)
_GOOD: dict[str, st.SearchStrategy[Any]] = {
    "string": _TEXT,
    "int": st.integers(-(2**31), 2**31 - 1),
    "long": st.integers(-(2**63), 2**63 - 1),
    "real": st.floats(allow_nan=False, allow_infinity=False),
    "bool": st.booleans(),
    "datetime": st.datetimes(min_value=datetime(1, 1, 1)).flatmap(lambda d: st.sampled_from([
        d.strftime("%Y-%m-%d %H:%M:%S.%f") + "0", d.strftime("%Y-%m-%dT%H:%M:%SZ"),
        d.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"])).map(lambda t: t if len(t.split("-")[0]) == 4 else "0" * (
        4 - len(t.split("-")[0])) + t),
    "guid": st.uuids().map(str),
    "dynamic": st.recursive(st.lists(_SCALAR_DYNAMIC, max_size=3) | st.dictionaries(_PLAIN, _SCALAR_DYNAMIC, max_size=3),
                            lambda inner: st.lists(inner | _SCALAR_DYNAMIC, max_size=3)
                            | st.dictionaries(_PLAIN, inner | _SCALAR_DYNAMIC, max_size=3), max_leaves=6),
}


def _good_value(draw: st.DrawFn, adx_type: str, *, text: bool) -> Any:
    """A value in the form the direct load takes (null now and then)."""
    if draw(st.integers(0, 9)) == 0:
        return "" if text else None
    value = draw(_GOOD[adx_type])
    if not text:
        return value
    if adx_type == "bool":
        return draw(st.sampled_from(["true" if value else "false", "1" if value else "0", str(value)]))
    if adx_type == "dynamic":
        return orjson.dumps(value).decode()
    return repr(value) if adx_type == "real" else str(value)


@st.composite
def records(draw: st.DrawFn, *, clean: bool = False) -> list[Record]:
    """Records for the four routes, in a random order: any values, or (``clean``) values of the
    forms the direct load takes, with now and then one record of any values."""
    out = []
    for offset in range(draw(st.integers(min_value=1, max_value=10))):
        topic = draw(st.sampled_from(["j", "jv", "c", "cv"]))
        wild = not clean or draw(st.integers(0, 30)) == 0
        if topic.startswith("j"):
            doc = {n: _good_value(draw, t, text=False) for n, t in zip(NAMES, TYPES, strict=True) if draw(st.integers(0, 5))}
            doc["obj"] = {"key": draw(_TEXT)}
            value = _json_record(draw) if wild else orjson.dumps(doc)
        else:
            fields = [_good_value(draw, t, text=True) for t in TYPES] + [draw(_TEXT), draw(_TEXT)]
            line = io.StringIO()
            csv.writer(line, lineterminator="").writerow(fields)
            value = _csv_record(draw) if wild else line.getvalue().encode()
        out.append(Record(value=value, topic=topic, partition=0, offset=offset))
    return out


def _ingest(cfg: IngestionConfig, batch: list[Record], root: Path, *, direct: bool) -> tuple[Any, ...]:
    sink = DuckDbSink(cfg, ":memory:", direct_load=direct)
    sink.ensure_table("db", "T")
    try:
        result = Pipeline(cfg, sink, LocalDeadLetterStore(root / ("dl-direct" if direct else "dl-ref"))).process(batch)
        return _stored(sink), (result.ingested, result.dead_lettered, result.reasons)
    finally:
        sink.close()


def _no_null_marker(batch: list[Record]) -> bool:
    # The reference path's CSV uses \N as its null marker (a string of exactly that text became
    # null there; the direct loads keep it, as ADX does): no such string in these records.
    return not any(b"\\N" in (r.value or b"") for r in batch)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(records())
def test_server_direct_load_stores_what_the_reference_path_stores(tmp_path_factory: Any, batch: list[Record]) -> None:
    """Any values: most batches hold one the direct load does not take (the fallback's test)."""
    if not _no_null_marker(batch):
        return
    cfg = config()
    root = tmp_path_factory.mktemp("server")
    assert _ingest(cfg, batch, root, direct=True) == _ingest(cfg, batch, root, direct=False)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(records(clean=True))
def test_values_the_direct_load_takes_are_stored_as_the_reference_stores_them(tmp_path_factory: Any,
                                                                               batch: list[Record]) -> None:
    """Values of the forms the direct load computes (most batches load without a fallback)."""
    if not _no_null_marker(batch):
        return
    cfg = config()
    root = tmp_path_factory.mktemp("clean")
    assert _ingest(cfg, batch, root, direct=True) == _ingest(cfg, batch, root, direct=False)


HAZARDS = [
    # CSV (ten fields: string, int, long, real, bool, datetime, guid, dynamic, nested string, one
    # more), the hazard in a string field so that nothing else sends the batch to the reference.
    ("c", b' "a",,,,,,,,,'), ("c", b'"a" ,,,,,,,,,'), ("c", b'a,,,,,,,, "b",'), ("c", b"\xef\xbb\xbfa,,,,,,,,,"),
    ("c", b"a,,,,,,,,,\n\nb,,,,,,,,,"), ("c", b"a,,,,,,,,,\r\nb,,,,,,,,,"), ("c", b"a,,,,,,,,,\rb,,,,,,,,,"),
    ("c", b'"x"y,,,,,,,,,'), ("c", b"a,,,,,,,,,,,"), ("c", b"a,1"), ("c", b'a,,,,,,,,"b\nc",'),
    ("c", b"\x01kafka-adx-null\x01,,,,,,,,,"), ("c", b"x" * 140_000 + b",,,,,,,,,"), ("c", b"a,007,,,,,,,,"),
    ("c", b"a, 1,,,,,,,,"), ("c", b"a,1.0,,,,,,,,"), ("c", b"a,,,1.50,,,,,,"), ("c", b"a,,,,,,,[1.50],,"),
    ("c", b'a,,,,,,,"{""a"":1,""a"":2}",,'), ("c", b"a,,,,,2007-01-01 00:00:00.1234565,,,,"),
    ("c", b"a,,,,,,,[-0],,"), ("c", b"a,,,,,,,[1,],,"), ("c", b"a\x00b,,,,,,,,,"),
    # JSON
    ("j", b'{"real_col":NaN}'), ("j", b'{"int_col":1,}'), ("j", b"[1]"), ("j", b'{"string_col":"a","string_col":"b"}'),
    ("j", b'{"obj":{"key":"a","key":"b"}}'), ("j", b'{"dynamic_col":{"a":1,"a":2}}'), ("j", b'{"real_col":1e400}'),
    ("j", b'\xef\xbb\xbf{"string_col":"a"}'), ("j", b'{"string_col":"a"}\x0c'),
    ("jv", b'{"dynamic_col":{"a":10000000000000000.0}}'), ("jv", b'{"int_col":"12"}'), ("jv", b'{"string_col":12}'),
    ("jv", b'{"datetime_col":"2007-01-01 24:00:00.0000000"}'), ("jv", b'{"int_col":4294967296}'),
    ("jv", b'{"dynamic_col":{"a":1.50}}'), ("jv", b'{"dynamic_col":"{\\"a\\":1}"}'), ("jv", b'{"bool_col":1}'),
    ("jv", b'{"obj":{"key":"v"},"string_col":"\\u00e9\\n"}'),
    ("cv", b"a,5,6,1.5,true,2007-01-01T00:00:00Z,6ba7b810-9dad-11d1-80b4-00c04fd430c8,[1],x,y"),
]


@pytest.mark.parametrize(("topic", "value"), HAZARDS, ids=lambda v: str(v)[:24])
def test_each_hazard_alone_is_stored_as_the_reference_stores_it(tmp_path: Path, topic: str, value: bytes) -> None:
    """Each payload the parsers read differently, alone in its batch (no other value to send the
    batch to the reference path)."""
    cfg = config()
    batch = [Record(value=value, topic=topic, partition=0, offset=1)]
    assert _ingest(cfg, batch, tmp_path, direct=True) == _ingest(cfg, batch, tmp_path, direct=False)


def _load_without_fallback(cfg: IngestionConfig, topic: str, values: list[bytes], tmp_path: Path) -> DuckDbSink:
    sink = DuckDbSink(cfg, tmp_path / "x.duckdb")
    records = [Record(value=v, topic=topic, partition=0, offset=i) for i, v in enumerate(values)]
    result = Pipeline(cfg, sink, LocalDeadLetterStore(tmp_path / "dl")).process(records)
    assert (result.ingested, result.dead_lettered, sink.direct_fallbacks) == (len(values), 0, 0)
    return sink


def test_the_tutorial_csv_loads_directly_as_the_reference_loads_it(tmp_path: Path) -> None:
    """The tutorial's route (storm-events: 6-field CSV from its Go producer, Storms_CSV_Mapping)
    in the sample ingestion file: loaded by DuckDB without a fallback, rows equal to the
    reference path's."""
    cfg = load_config(REPO / "ingestion.yaml")
    events = list(storm_events(300))
    values = [go_csv_record(tutorial_fields(e)).encode() for e in events]
    values[0] = go_csv_record(["2007-01-01 00:00:00.0000000", "", "", 'A "quoted", state', "", ""]).encode()
    sink = _load_without_fallback(cfg, "storm-events", values, tmp_path)
    reference = DuckDbSink(cfg, ":memory:", direct_load=False)
    Pipeline(cfg, reference, LocalDeadLetterStore(tmp_path / "dl-ref")).process(
        [Record(value=v, topic="storm-events", partition=0, offset=i) for i, v in enumerate(values)])
    query = 'SELECT * FROM "Weather"."Storms"'
    assert sink.query(query) == reference.query(query)
    assert sink.query(query)[0][:4] == (datetime(2007, 1, 1), None, None, 'A "quoted", state')


@pytest.mark.parametrize(("topic", "shape"), [("bench-json", "json"), ("bench-csv", "csv"),
                                              ("bench-json-novalidate", "json"), ("bench-csv-novalidate", "csv")])
def test_the_storm_events_shape_loads_directly(tmp_path: Path, topic: str, shape: str) -> None:
    """The bench's server-mapped StormEvents routes (the demo's record shape, with the
    StormSummary object): no fallback, the reference's rows."""
    cfg = load_config(REPO / "bench" / "ingestion.yaml")
    events = list(storm_events(200))
    values = [to_json(e) if shape == "json" else to_csv(e) for e in events]
    sink = _load_without_fallback(cfg, topic, values, tmp_path)
    reference = DuckDbSink(cfg, ":memory:", direct_load=False)
    Pipeline(cfg, reference, LocalDeadLetterStore(tmp_path / "dl-ref")).process(
        [Record(value=v, topic=topic, partition=0, offset=i) for i, v in enumerate(values)])
    query = 'SELECT * FROM "Bench"."StormEvents"'
    assert sink.query(query) == reference.query(query)


_DEC = re.compile(duckdb_server._DEC)


@given(st.floats(allow_nan=False, allow_infinity=False) | st.integers(0, 20).flatmap(
    lambda places: st.decimals(allow_nan=False, allow_infinity=False, places=places)).map(str))
def test_a_decimal_the_dynamic_guard_keeps_is_the_text_orjson_writes(number: float | str) -> None:
    """The guard keeps a number in a dynamic value as it is only when orjson writes its double
    with the same text (fails with 16 significant digits or a trailing zero allowed)."""
    text = number if isinstance(number, str) else orjson.dumps(number).decode()
    if _DEC.fullmatch(text) and not re.search(r"[0-9.]{17}", text):
        assert orjson.dumps(float(text)).decode() == text


def test_timestamps_beyond_the_shapes_fall_back(tmp_path: Path) -> None:
    """Spot checks of the datetime guard on both formats (the reference decides the others)."""
    cfg = config()
    stamp = datetime(2007, 8, 24, 19, 23, tzinfo=UTC) + timedelta(microseconds=123456)
    for text in (stamp.strftime("%Y-%m-%d %H:%M:%S.%f") + "0", "2007-08-24T19:23:00Z"):
        batch = [Record(value=orjson.dumps({"datetime_col": text}), topic="jv", partition=0, offset=1),
                 Record(value=f"x,1,1,1.5,true,{text},,,,".encode(), topic="cv", partition=0, offset=2)]
        sink = DuckDbSink(cfg, ":memory:")
        Pipeline(cfg, sink, LocalDeadLetterStore(tmp_path / "dl")).process(batch)
        assert sink.direct_fallbacks == 0
        assert sink.query('SELECT DISTINCT "datetime_col" FROM "db"."T"') == [(datetime.fromisoformat(
            text.replace("Z", "")[:26]).replace(tzinfo=None),)]
