"""The opt-in dedup view: exactly-once results over at-least-once transport. ADX gets a
materialized view ``summarize take_any(*) by <topic, partition, offset columns>``; local mode a
DuckDB view that keeps one row per source position."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from shared.config import IngestionConfig, parse_config
from shared.deadletters.local import LocalDeadLetterStore
from shared.errors import ConfigError
from shared.ops.kql import generate_kql
from shared.pipeline.core import Pipeline
from shared.sinks.duckdb import DuckDbSink
from tests.support.records import rec

POSITION = [{"column": "Topic", "Properties": {"Metadata": "topic"}},
            {"column": "Part", "Properties": {"Metadata": "partition"}},
            {"column": "Off", "Properties": {"Metadata": "offset"}}]
DATA: dict[str, Any] = {
    "database": "db",
    "tables": {
        "T": {
            "dedup_view": True,
            "columns": [{"name": "a", "type": "string"}, {"name": "Topic", "type": "string"},
                        {"name": "Part", "type": "int"}, {"name": "Off", "type": "long"}],
            "mappings": {"m": {"kind": "json", "columns": [{"column": "a", "Properties": {"Path": "$.a"}}, *POSITION]}},
        },
        "Plain": {"columns": [{"name": "a", "type": "string"}]},
    },
    "routes": [{"topic": "t", "table": "T", "format": "json", "mapping": "m"},
               {"topic": "p", "table": "Plain", "format": "json"}],
}


def config(**table_changes: Any) -> IngestionConfig:
    data = copy.deepcopy(DATA)
    data["tables"]["T"].update(table_changes)
    return parse_config(data, "view.yaml")


def test_kql_has_the_view_for_an_opted_in_table_only() -> None:
    kql = generate_kql(config())
    assert (".create-or-alter materialized-view with (lookback=3d, autoUpdateSchema=true) ['T_Dedup'] on table ['T'] "
            "{ ['T'] | summarize take_any(*) by ['Topic'], ['Part'], ['Off'] }") in kql
    assert (".alter materialized-view ['T_Dedup'] policy retention "
            "@'{\"SoftDeletePeriod\":\"365.00:00:00\",\"Recoverability\":\"Enabled\"}'") in kql
    assert "// T_Dedup: exactly-once results" in kql and "// Cost:" in kql
    assert "backfill=true" in kql  # only in the comment: how to backfill a table that has data
    assert "Plain_Dedup" not in kql
    assert kql.count("materialized-view") == 3  # the view, its retention, the backfill hint
    without = generate_kql(config(dedup_view=None))
    assert "materialized-view" not in without


def test_infra_script_has_the_commands_without_the_comment() -> None:
    kql = generate_kql(config(), comments=False)
    assert "//" not in kql
    assert ".create-or-alter materialized-view" in kql and "backfill" not in kql


def test_view_options_name_lookback_and_retention() -> None:
    kql = generate_kql(config(dedup_view={"name": "Once", "lookback": "06:00:00", "retention": "30.00:00:00"}))
    assert "with (lookback=6h, autoUpdateSchema=true) ['Once'] on table ['T']" in kql
    assert '"SoftDeletePeriod":"30.00:00:00"' in kql
    unbounded = generate_kql(config(dedup_view={"lookback": None}))
    assert "with (autoUpdateSchema=true) ['T_Dedup']" in unbounded and "no lookback" in unbounded
    assert config(dedup_view="Named").tables["T"].dedup_view_name("T") == "Named"
    assert config(dedup_view=False).tables["T"].dedup_view is None


def test_a_table_without_position_columns_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({**DATA, "tables": {**DATA["tables"], "Plain": {"dedup_view": True, "columns": [
            {"name": "a", "type": "string"}]}}}, "view.yaml")
    assert "view.yaml: tables.Plain: dedup_view: no mapping of this table fills a column from Metadata: topic" in str(
        info.value
    )


def test_a_missing_offset_column_is_named() -> None:
    mapping = {"kind": "json", "columns": [{"column": "a", "Properties": {"Path": "$.a"}}, *POSITION[:2]]}
    with pytest.raises(ConfigError) as info:
        config(mappings={"m": mapping})
    assert "tables.T: dedup_view: no mapping of this table fills a column from Metadata: offset" in str(info.value)


def test_a_route_that_does_not_fill_the_position_is_a_config_error() -> None:
    # Rows without a position would share one null key and collapse into one row of the view.
    data = copy.deepcopy(DATA)
    data["routes"].append({"topic": "raw", "table": "T", "format": "json"})
    with pytest.raises(ConfigError) as info:
        parse_config(data, "view.yaml")
    assert ("routes[2] (topic 'raw'): table 'T' has a dedup_view keyed by Topic, Part, Off, "
            "but it names no mapping to fill Topic from Metadata: topic") in str(info.value)
    data = copy.deepcopy(DATA)
    data["routes"][1]["header_routing"] = [{"table": "T"}]
    with pytest.raises(ConfigError) as info:
        parse_config(data, "view.yaml")
    assert "routes[1] (topic 'p').header_routing[0]: table 'T' has a dedup_view" in str(info.value)
    data = copy.deepcopy(DATA)
    data["tables"]["T"]["mappings"]["bare"] = {"kind": "json", "columns": [{"column": "a", "Properties": {"Path": "$.a"}}]}
    data["routes"][0]["mapping"] = "bare"
    with pytest.raises(ConfigError) as info:
        parse_config(data, "view.yaml")
    assert "mapping 'bare' does not fill Topic from Metadata: topic" in str(info.value)


def test_the_view_name_must_not_be_a_table() -> None:
    with pytest.raises(ConfigError) as info:
        config(dedup_view="Plain")
    assert "tables.T.dedup_view: view name 'Plain' is also a table" in str(info.value)


def test_sample_enables_the_view_for_storm_events(sample_config: IngestionConfig) -> None:
    assert sample_config.tables["StormEvents"].dedup_key == ("KafkaTopic", "KafkaPartition", "KafkaOffset")
    assert "['StormEvents_Dedup'] on table ['StormEvents']" in generate_kql(sample_config)


def test_local_view_collapses_redelivered_records(tmp_path: Path) -> None:
    cfg = config()
    sink = DuckDbSink(cfg, tmp_path / "x.duckdb")
    batch = [rec(b'{"a": "x%d"}' % i, "t", offset=i, partition=1) for i in range(4)]
    for _ in range(2):  # a redelivery (no dedup on the route): ADX would ingest it twice too
        # A fresh pipeline each time, as after a crash: the sink sees both copies.
        assert Pipeline(cfg, sink, LocalDeadLetterStore(tmp_path / "dl")).process(batch).ingested == 4
    assert sink.query('SELECT count(*) FROM "db"."T"') == [(8,)]
    assert sink.query('SELECT count(*) FROM "db"."T_Dedup"') == [(4,)]
    assert sink.query('SELECT * FROM "db"."T_Dedup" ORDER BY "Off"') == [
        ("t", 1, i, f"x{i}") for i in range(4)  # key columns first, as ADX's summarize ... by puts them
    ]


def test_local_view_follows_new_columns(tmp_path: Path) -> None:
    path = tmp_path / "x.duckdb"
    first = DuckDbSink(config(), path)
    Pipeline(config(), first, LocalDeadLetterStore(tmp_path / "dl")).process([rec(b'{"a": "old"}', "t", offset=1)])
    first.close()
    wider = copy.deepcopy(DATA)
    wider["tables"]["T"]["columns"].append({"name": "b", "type": "string"})
    wider["tables"]["T"]["mappings"]["m"]["columns"].append({"column": "b", "Properties": {"Path": "$.b"}})
    cfg = parse_config(wider)
    sink = DuckDbSink(cfg, path)
    Pipeline(cfg, sink, LocalDeadLetterStore(tmp_path / "dl")).process([rec(b'{"a": "new", "b": "y"}', "t", offset=2)])
    assert sink.query('SELECT "a", "b" FROM "db"."T_Dedup" ORDER BY "Off"') == [("old", None), ("new", "y")]
