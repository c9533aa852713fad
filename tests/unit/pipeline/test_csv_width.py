"""CSV field counts, checked exactly as ADX needs them.

ADX fails a whole blob whose records disagree on their field count (Stream_WrongNumberOfFields,
permanent; "CSV lines with inconsistent number of fields" in "Ingestion behavior of invalid
data"), so one wide record would fail its batch's neighbours; and a record wider than the
source the mapping was written for means the producer's columns moved under the ordinals. The
expected width: the mapping's ``source_fields``, else its highest Ordinal + 1, else (no
mapping) the table's column count."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.config import IngestionConfig, parse_config
from shared.deadletters.local import LocalDeadLetterStore
from shared.errors import ConfigError
from shared.mapping.compiled import expected_fields
from shared.ops.sample import COLUMNS, storm_events, to_csv, to_tutorial_csv
from shared.pipeline.core import Pipeline
from shared.pipeline.sink import MemorySink
from shared.sinks.duckdb import DuckDbSink
from tests.support.records import rec


def width_config(validate: bool = True, **mapping_extra: object) -> IngestionConfig:
    return parse_config({
        "database": "db",
        "tables": {"T": {
            "columns": [{"name": "a", "type": "string"}, {"name": "b", "type": "string"}, {"name": "c", "type": "string"}],
            "mappings": {"m": {"kind": "csv", **mapping_extra, "columns": [
                {"column": "a", "Properties": {"Ordinal": "0"}}, {"column": "b", "Properties": {"Ordinal": "3"}},
                {"column": "c", "Properties": {"ConstValue": "k"}}]}},
        }},
        "routes": [{"topic": "server", "table": "T", "format": "csv", "mapping": "m", "validate": validate},
                   {"topic": "client", "table": "T", "format": "csv", "mapping": "m", "apply_mapping": "client"},
                   {"topic": "plain", "table": "T", "format": "csv"}],
    }, "width.yaml")


def test_expected_width_defaults() -> None:
    table = width_config().tables["T"]
    assert expected_fields(table, None) == (3, "the table's column count")
    count, why = expected_fields(table, table.mappings["m"])
    assert count == 4 and "highest Ordinal + 1" in why
    explicit = width_config(source_fields=22).tables["T"]
    assert expected_fields(explicit, explicit.mappings["m"]) == (22, "the mapping's source_fields")


def test_a_mapping_without_ordinals_checks_no_width(tmp_path: Path) -> None:
    config = parse_config({"database": "db", "tables": {"T": {
        "columns": [{"name": "a", "type": "string"}],
        "mappings": {"m": {"kind": "csv", "columns": [{"column": "a", "Properties": {"ConstValue": "x"}}]}}}},
        "routes": [{"topic": "t", "table": "T", "format": "csv", "mapping": "m"}]})
    assert expected_fields(config.tables["T"], config.tables["T"].mappings["m"])[0] is None
    result = Pipeline(config, MemorySink(), LocalDeadLetterStore(tmp_path)).process([rec(b"1,2,3", "t", 1)])
    assert result.ingested == 1


@pytest.mark.parametrize("topic", ["server", "client"])
def test_exact_width_in_both_apply_modes(tmp_path: Path, topic: str) -> None:
    config = width_config(source_fields=5)
    store = LocalDeadLetterStore(tmp_path / "dl")
    sink = DuckDbSink(config, tmp_path / "x.duckdb")
    wide = b",".join(b"f%d" % i for i in range(40))
    result = Pipeline(config, sink, store).process(
        [rec(b"x,1,2,y,4", topic, 1), rec(wide, topic, 2), rec(b"x,1,2,y", topic, 3), rec(b"x,1,2,y,4,5", topic, 4)]
    )
    assert (result.ingested, result.dead_lettered) == (1, 3)
    assert sink.query('SELECT a, b, c FROM "db"."T"') == [("x", "y", "k")]
    reasons = sorted(letter.reason for set_id in store.sets() for letter in store.read(set_id))
    assert any("has 40 fields, expected 5 (the mapping's source_fields)" in r for r in reasons)
    assert any("has 4 fields, expected 5" in r for r in reasons)
    assert any("has 6 fields, expected 5" in r for r in reasons)


def test_without_declared_width_a_wider_row_is_dead_lettered_with_a_hint(tmp_path: Path) -> None:
    store = LocalDeadLetterStore(tmp_path)
    result = Pipeline(width_config(), MemorySink(), store).process([rec(b"x,1,2,y,extra", "server", 1)])
    assert result.dead_lettered == 1
    (letter,) = store.read(next(store.sets()))
    assert "has 5 fields, expected 4 (the mapping's highest Ordinal + 1; set source_fields" in letter.reason


def test_validation_off_forwards_any_width(tmp_path: Path) -> None:
    sink = MemorySink()
    result = Pipeline(width_config(validate=False), sink, LocalDeadLetterStore(tmp_path)).process(
        [rec(b"a,b,c,d,e,f", "server", 1)]
    )
    assert result.ingested == 1 and sink.batches[0].decompressed() == b"a,b,c,d,e,f\n"


def test_source_fields_smaller_than_an_ordinal_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as info:
        width_config(source_fields=3)
    assert "width.yaml: tables.T.mappings.m.source_fields: 3 fields cannot hold Ordinal 3" in str(info.value)


def test_source_fields_on_a_json_mapping_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"database": "db", "tables": {"T": {
            "columns": [{"name": "a", "type": "string"}],
            "mappings": {"j": {"kind": "json", "source_fields": 2, "columns": [{"column": "a", "Properties": {"Path": "$.a"}}]}}}},
            "routes": [{"topic": "t", "table": "T", "format": "json", "mapping": "j"}]}, "j.yaml")
    assert "j.yaml: tables.T.mappings.j.source_fields: only a csv mapping has source_fields" in str(info.value)


def test_sample_tutorial_route_reads_the_tutorial_producers_six_fields(tmp_path: Path, sample_config: IngestionConfig) -> None:
    # Storms_CSV_Mapping is the Kafka tutorial's: ordinals 0-5 of its producer's 6-field records
    # (source_fields 6). A full 22-field StormEvents row is another producer's and is not read.
    assert len(COLUMNS) == 22
    mapping = sample_config.tables["Storms"].mappings["Storms_CSV_Mapping"]
    assert expected_fields(sample_config.tables["Storms"], mapping) == (6, "the mapping's source_fields")
    store = LocalDeadLetterStore(tmp_path / "dl")
    sink = DuckDbSink(sample_config, tmp_path / "x.duckdb")
    events = list(storm_events(3))
    records = [rec(to_tutorial_csv(event), "storm-events", i) for i, event in enumerate(events)]
    result = Pipeline(sample_config, sink, store).process([*records, rec(to_csv(events[0]), "storm-events", 9)])
    assert (result.ingested, result.dead_lettered) == (3, 1)
    (letter,) = store.read(next(store.sets()))
    assert "has 22 fields, expected 6 (the mapping's source_fields)" in letter.reason
    assert sink.query('SELECT "EventId" FROM "Weather"."Storms" ORDER BY 1') == [(e["EventId"],) for e in events]
