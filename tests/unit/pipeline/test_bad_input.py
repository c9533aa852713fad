"""The bad-input corpus: every poison record is dead-lettered with a reason that names where it
came from (topic, partition, offset) and, where it applies, the field; the rest of the batch is
ingested and the counts add up."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from shared.config import parse_config
from shared.deadletters.local import LocalDeadLetterStore
from shared.pipeline.core import Pipeline
from shared.pipeline.records import Record
from shared.pipeline.sink import MemorySink
from tests.support.records import rec

CONFIG = parse_config(
    {
        "database": "db",
        "limits": {"max_record_bytes": 4000},
        "tables": {
            "T": {
                "columns": [{"name": "a", "type": "string"}, {"name": "n", "type": "long"},
                            {"name": "ts", "type": "datetime"}, {"name": "ok", "type": "bool"}],
                "mappings": {"m": {"kind": "json", "columns": [
                    {"column": "a", "Properties": {"Path": "$.a"}}, {"column": "n", "Properties": {"Path": "$.n"}},
                    {"column": "ts", "Properties": {"Path": "$.ts"}}, {"column": "ok", "Properties": {"Path": "$.ok"}},
                ]}},
            },
            # Reads fields 0 and 2 of a 4-field source row (the width is declared: ordinals alone
            # cannot tell it).
            "Narrow": {
                "columns": [{"name": "a", "type": "string"}, {"name": "ts", "type": "datetime"}],
                "mappings": {"wide": {"kind": "csv", "source_fields": 4, "columns": [
                    {"column": "a", "Properties": {"Ordinal": "0"}}, {"column": "ts", "Properties": {"Ordinal": "2"}},
                ]}},
            },
            "Other": {"columns": [{"name": "a", "type": "string"}]},
            "Secret": {"columns": [{"name": "a", "type": "string"}]},
            "Raw": {"columns": [{"name": "Line", "type": "string"}]},
        },
        "routes": [
            {"topic": "json", "table": "T", "format": "json", "mapping": "m",
             "header_routing": [{"table": "Other"}]},
            {"topic": "client", "table": "T", "format": "json", "mapping": "m", "apply_mapping": "client"},
            {"topic": "multi", "table": "T", "format": "multijson", "mapping": "m"},
            {"topic": "csv", "table": "T", "format": "csv"},
            {"topic": "csv-client", "table": "T", "format": "csv", "apply_mapping": "client"},
            {"topic": "psv", "table": "T", "format": "psv"},
            {"topic": "csv-mapped", "table": "Narrow", "format": "csv", "mapping": "wide"},
            {"topic": "csv-mapped-client", "table": "Narrow", "format": "csv", "mapping": "wide",
             "apply_mapping": "client"},
            {"topic": "raw", "table": "Raw", "format": "txt"},
        ],
    },
    "corpus.yaml",
)

GOOD = {
    "json": b'{"a": "x", "n": 1, "ts": "2024-01-01", "ok": true}',
    "client": b'{"a": "x", "n": 1, "ts": "2024-01-01", "ok": true}',
    "csv": b"x,1,2024-01-01,true",
    "csv-mapped": b"x,1,2024-01-01,true",
    "csv-mapped-client": b"x,1,2024-01-01,true",
}
WIDE_ROW = b",".join([b"x", b"1", b"2024-01-01", b"true"] + [b"more"] * 36)  # 40 fields

# (case id, topic, value, extra record fields, expected stage, reason fragment, field)
CORPUS: list[tuple[str, str, bytes | None, dict, str, str, str | None]] = [
    ("null value", "json", None, {}, "decode", "value is null", None),
    ("empty value", "json", b"", {}, "decode", "value is empty", None),
    ("whitespace only", "csv", b"   \t ", {}, "decode", "value is empty", None),
    ("oversize", "json", b'{"a": "' + b"x" * 5000 + b'"}', {}, "size", "over the limit of 4000", None),
    ("truncated json", "json", b'{"a": "x", "n": ', {}, "decode", "invalid JSON", None),
    ("json array for json", "json", b"[1, 2]", {}, "decode", "expected an object", None),
    ("json number", "json", b"42", {}, "decode", "JSON value is int", None),
    ("json string", "json", b'"hello"', {}, "decode", "JSON value is str", None),
    ("trailing garbage", "json", b'{"a": 1} trailing', {}, "decode", "invalid JSON", None),
    ("NaN literal", "json", b'{"n": NaN}', {}, "decode", "invalid JSON", None),
    ("byte order mark", "json", b'\xef\xbb\xbf{"a": 1}', {}, "decode", "invalid JSON", None),
    ("nesting too deep", "json", b"[" * 1100 + b"]" * 1100, {}, "decode", "invalid JSON", None),
    ("invalid utf-8 json", "json", b'{"a": "\xff\xfe"}', {}, "decode", "invalid JSON", None),
    ("multijson of numbers", "multi", b"[1, 2, 3]", {}, "decode", "array of objects", None),
    ("csv too few fields", "csv", b"x,1", {}, "decode", "has 2 fields, expected 4", None),
    ("csv too many fields", "csv", b"x,1,2024-01-01,true,extra", {}, "decode", "has 5 fields, expected 4", None),
    # ADX fails a whole blob whose rows disagree on their field count (Stream_WrongNumberOfFields),
    # and a wider row means the producer's shape changed: dead-letter it, in both apply modes.
    ("csv 40 fields", "csv", WIDE_ROW, {}, "decode", "has 40 fields, expected 4 (the table's column count)", None),
    ("csv 40 fields server mapping", "csv-mapped", WIDE_ROW, {}, "decode",
     "has 40 fields, expected 4 (the mapping's source_fields)", None),
    ("csv 40 fields client mapping", "csv-mapped-client", WIDE_ROW, {}, "decode",
     "has 40 fields, expected 4 (the mapping's source_fields)", None),
    ("csv 40 fields client no mapping", "csv-client", WIDE_ROW, {}, "decode", "has 40 fields, expected 4", None),
    ("csv mapped too few fields", "csv-mapped", b"x,1,2024-01-01", {}, "decode", "has 3 fields, expected 4", None),
    ("csv broken quoting", "csv", b'"x"y,1,2024-01-01,true', {}, "decode", "invalid CSV quoting", None),
    ("csv two rows", "csv", b"x,1,2024-01-01,true\ny,2,2024-01-01,true", {}, "decode", "more than one line", None),
    ("csv invalid utf-8", "csv", b"x\xff,1,2024-01-01,true", {}, "decode", "not valid UTF-8", None),
    ("psv wrong delimiter", "psv", b"x,1,2024-01-01,true", {}, "decode", "has 1 fields, expected 4", None),
    ("client long not a number", "client", b'{"a": "x", "n": "many"}', {}, "map", "column n (long)", "n"),
    ("client long overflow", "client", b'{"n": 99999999999999999999}', {}, "map", "out of range", "n"),
    ("client long not whole", "client", b'{"n": 1.5}', {}, "map", "not a whole number", "n"),
    ("client bool into long", "client", b'{"n": true}', {}, "map", "got a boolean", "n"),
    ("client bad datetime", "client", b'{"ts": "31/12/2020"}', {}, "map", "column ts (datetime)", "ts"),
    ("client bad bool", "client", b'{"ok": "perhaps"}', {}, "map", "column ok (bool)", "ok"),
    ("client csv bad long", "csv-client", b"x,lots,2024-01-01,true", {}, "map", "column n (long)", "n"),
    ("client csv field count", "csv-client", b"x,1", {}, "decode", "has 2 fields, expected 4", None),
    ("txt line break", "raw", b"one\ntwo", {}, "decode", "line break", None),
    ("txt invalid utf-8", "raw", b"caf\xe9", {}, "decode", "not valid UTF-8", None),
    ("no route", "unknown-topic", b"{}", {}, "route", "no route for topic 'unknown-topic'", None),
    ("header routing off the allow-list", "json", GOOD["json"],
     {"headers": (("Table", b"Secret"),)}, "route", "not on the allow-list", "Table"),
    ("header routing bad encoding", "json", GOOD["json"],
     {"headers": (("Table", b"\xff"),)}, "route", "not valid UTF-8", "Table"),
    ("header routing unknown format", "json", GOOD["json"],
     {"headers": (("Format", b"avro"),)}, "route", "not on the allow-list", "Format"),
]


def test_corpus_has_at_least_25_distinct_cases() -> None:
    assert len({case[0] for case in CORPUS}) == len(CORPUS) >= 25


@pytest.mark.parametrize(("case", "topic", "value", "extra", "stage", "fragment", "field"), CORPUS,
                         ids=[c[0] for c in CORPUS])
def test_poison_record_is_dead_lettered_and_the_rest_goes_on(
    tmp_path: Path, case: str, topic: str, value: bytes | None, extra: dict, stage: str, fragment: str,
    field: str | None,
) -> None:
    sink = MemorySink()
    store = LocalDeadLetterStore(tmp_path)
    pipeline = Pipeline(CONFIG, sink, store)
    good_topic = topic if topic in GOOD else "json"
    poison = replace(rec(value, topic, offset=7, partition=2), **extra)
    records: list[Record] = [rec(GOOD[good_topic], good_topic, offset=6, partition=2), poison,
                             rec(GOOD[good_topic], good_topic, offset=8, partition=2)]
    result = pipeline.process(records)
    assert (result.received, result.ingested, result.dead_lettered) == (3, 2, 1)
    assert sum(b.count for b in sink.batches) == 2
    (set_id,) = list(store.sets())
    (letter,) = store.read(set_id)
    assert letter.record == poison  # the original bytes, key, headers and position are kept
    assert letter.stage == stage
    assert fragment in letter.reason
    assert f"{topic}[2]@7" in letter.reason  # names topic, partition and offset
    assert letter.field == field


def test_header_routing_to_an_allowed_table_is_ingested(tmp_path: Path) -> None:
    sink = MemorySink()
    pipeline = Pipeline(CONFIG, sink, LocalDeadLetterStore(tmp_path))
    routed = replace(rec(GOOD["json"], "json", 1), headers=(("Table", b"Other"),))
    result = pipeline.process([routed, rec(GOOD["json"], "json", 2)])
    assert result.ingested == 2
    assert sorted(b.destination.table for b in sink.batches) == ["Other", "T"]
    other = next(b for b in sink.batches if b.destination.table == "Other")
    assert other.destination.mapping is None  # a different table does not inherit T's mapping


def test_file_record_reason_names_file_and_line(tmp_path: Path) -> None:
    store = LocalDeadLetterStore(tmp_path)
    Pipeline(CONFIG, MemorySink(), store).process(
        [Record(value=b"{bad", topic="json", partition=0, offset=12, origin="data/in.jsonl")]
    )
    (letter,) = store.read(next(store.sets()))
    assert letter.reason.startswith("data/in.jsonl:12 (json[0]@12): invalid JSON")
