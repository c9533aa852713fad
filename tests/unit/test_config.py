"""The ingestion file: validation errors name the file and the field path."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.config import load_config, parse_config
from shared.errors import ConfigError
from tests.support.records import make_config


def test_sample_config_loads(sample_config) -> None:
    assert {"Storms", "StormEvents", "RawEvents"} <= set(sample_config.tables)
    storms = sample_config.tables["Storms"]
    assert "Storms_CSV_Mapping" in storms.mappings
    assert sample_config.routes[0].topic == "storm-events"


def _error(data: dict, source: str = "bad.yaml") -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(data, source)
    return str(info.value)


def test_missing_table_field_names_path() -> None:
    message = _error({"database": "db", "tables": {"T": {"columns": [{"name": "a"}]}}, "routes": []})
    assert "bad.yaml" in message
    assert "tables.T.columns[0].type" in message


def test_unknown_type_is_rejected_with_path() -> None:
    message = _error(
        {"database": "db", "tables": {"T": {"columns": [{"name": "a", "type": "varchar"}]}},
         "routes": [{"topic": "x", "table": "T", "format": "csv"}]}
    )
    assert "tables.T.columns[0].type" in message
    assert "string" in message  # lists what was expected


def test_kql_injection_in_names_is_rejected() -> None:
    message = _error(
        {"database": "db", "tables": {"T; .drop table X": {"columns": [{"name": "a", "type": "string"}]}},
         "routes": [{"topic": "x", "table": "T", "format": "csv"}]}
    )
    assert "String should match pattern" in message


def test_route_to_unknown_table() -> None:
    message = _error(
        {"database": "db", "tables": {"T": {"columns": [{"name": "a", "type": "string"}]}},
         "routes": [{"topic": "x", "table": "Nope", "format": "csv"}]}
    )
    assert "routes[0]" in message and "'Nope'" in message


def test_route_to_unknown_mapping_lists_known() -> None:
    with pytest.raises(ConfigError, match=r"has no mapping 'Nope' .*T_csv"):
        make_config(routes=[{"topic": "x", "table": "T", "format": "csv", "mapping": "Nope"}])


def test_format_and_mapping_kind_must_agree() -> None:
    with pytest.raises(ConfigError, match="needs a csv mapping"):
        make_config(routes=[{"topic": "x", "table": "T", "format": "csv", "mapping": "T_json"}])


def test_metadata_mapping_cannot_be_server_side() -> None:
    with pytest.raises(ConfigError, match="only apply_mapping: client"):
        parse_config(
            {
                "database": "db",
                "tables": {"T": {"columns": [{"name": "k", "type": "string"}],
                                 "mappings": {"m": {"kind": "json", "columns": [
                                     {"column": "k", "Properties": {"Metadata": "key"}}]}}}},
                "routes": [{"topic": "x", "table": "T", "format": "json", "mapping": "m", "apply_mapping": "server"}],
            }
        )


def test_mapping_needs_exactly_one_source() -> None:
    message = _error(
        {"database": "db", "tables": {"T": {"columns": [{"name": "a", "type": "string"}],
                                            "mappings": {"m": {"kind": "json", "columns": [
                                                {"column": "a", "Properties": {"Path": "$.a", "ConstValue": "x"}}]}}}},
         "routes": [{"topic": "x", "table": "T", "format": "json"}]}
    )
    assert "tables.T.mappings.m.columns[0].Properties" in message or "columns[0]" in message
    assert "exactly one source" in message


def test_bad_json_path_is_rejected() -> None:
    message = _error(
        {"database": "db", "tables": {"T": {"columns": [{"name": "a", "type": "string"}],
                                            "mappings": {"m": {"kind": "json", "columns": [
                                                {"column": "a", "Properties": {"Path": "a.b"}}]}}}},
         "routes": [{"topic": "x", "table": "T", "format": "json"}]}
    )
    assert "must start with '$'" in message


def test_mapping_of_unknown_column() -> None:
    message = _error(
        {"database": "db", "tables": {"T": {"columns": [{"name": "a", "type": "string"}],
                                            "mappings": {"m": {"kind": "json", "columns": [
                                                {"column": "zz", "Properties": {"Path": "$.a"}}]}}}},
         "routes": [{"topic": "x", "table": "T", "format": "json"}]}
    )
    assert "unknown column 'zz'" in message


def test_yaml_syntax_error_names_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("database: db\ntables:\n  T: [unclosed\n")
    with pytest.raises(ConfigError, match=r"broken.yaml:\d+:\d+: not valid YAML"):
        load_config(path)


def test_missing_file_says_how_to_point_at_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="INGESTION_CONFIG"):
        load_config(tmp_path / "none.yaml")


def test_type_aliases_are_normalised() -> None:
    config = parse_config(
        {"database": "db", "tables": {"T": {"columns": [{"name": "a", "type": "Int64"}, {"name": "b", "type": "double"}]}},
         "routes": [{"topic": "x", "table": "T", "format": "csv"}]}
    )
    assert [c.type for c in config.tables["T"].columns] == ["long", "real"]


def _batching_config(**batching: object) -> dict[str, object]:
    return {"database": "db",
            "tables": {"T": {"columns": [{"name": "a", "type": "string"}], **batching}},
            "routes": [{"topic": "x", "table": "T", "format": "csv"}]}


def test_batching_policy_is_expressible_in_full() -> None:
    from shared.ops.kql import generate_kql

    config = parse_config(_batching_config(batching_max_delay="00:00:15", batching_max_items=100,
                                           batching_max_raw_size_mb=300))
    kql = generate_kql(config)
    assert ('policy ingestionbatching @\'{"MaximumBatchingTimeSpan":"00:00:15","MaximumNumberOfItems":100,'
            '"MaximumRawDataSizeMB":300}\'') in kql


def test_batching_policy_defaults_are_adx_defaults_but_near_real_time() -> None:
    table = parse_config(_batching_config()).tables["T"]
    assert (table.batching_max_delay, table.batching_max_items, table.batching_max_raw_size_mb) == ("00:00:30", 500, 1024)


def test_batching_policy_values_are_checked_with_path() -> None:
    message = _error(_batching_config(batching_max_items=0, batching_max_raw_size_mb="big"))
    assert "tables.T.batching_max_items" in message
    assert "tables.T.batching_max_raw_size_mb" in message


def _routes(*topics: str) -> list[dict[str, str]]:
    return [{"topic": topic, "table": "T", "format": "csv"} for topic in topics]


@pytest.mark.parametrize(
    ("topics", "unreachable", "because"),
    [
        (("*", "storm-*"), "routes[1] (topic 'storm-*')", "routes[0] (topic '*')"),
        (("storm-*", "storm-events-*"), "routes[1] (topic 'storm-events-*')", "routes[0] (topic 'storm-*')"),
        (("a", "t?", "t?"), "routes[2] (topic 't?')", "routes[1] (topic 't?')"),
        (("orders", "x*", "orders"), "routes[2] (topic 'orders')", "routes[0]"),
    ],
)
def test_a_route_no_record_can_reach_is_refused_naming_both_routes(
    topics: tuple[str, ...], unreachable: str, because: str
) -> None:
    """The router takes the first match: a later route an earlier one covers would silently send
    its topics to the earlier route's table."""
    with pytest.raises(ConfigError) as info:
        make_config(routes=_routes(*topics))
    message = str(info.value)
    assert f"{unreachable} can never match" in message and because in message


@pytest.mark.parametrize(
    "topics",
    [
        ("storm-events-*", "storm-*", "*"),  # narrow first: each can match
        ("storm-events", "*"),  # exact names win over patterns whatever the order
        ("*", "storm-events"),
        ("storm-?", "storm-*"),  # '?' is not covered by a proof here: both allowed
        ("storm-[ab]*", "storm-*"),
        ("a*", "b*"),
    ],
)
def test_routes_that_can_each_match_are_accepted(topics: tuple[str, ...]) -> None:
    assert [route.topic for route in make_config(routes=_routes(*topics)).routes] == list(topics)
