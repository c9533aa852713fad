"""`kafka-adx kql` creates and alters only what the ingestion file owns: external tables and
mappings (`external: true`, `mapping_ref: external`) are left to the cluster, and owned mappings
are created, never replaced, unless --alter-mappings."""

from __future__ import annotations

from typing import Any

import pytest

from shared.config import effective_apply, parse_config
from shared.errors import ConfigError
from shared.mapping.compiled import expected_fields
from shared.ops.kql import generate_kql

STORMS_COLUMNS = [{"name": "StartTime", "type": "datetime"}, {"name": "State", "type": "string"}]
OWNED_MAP = {"kind": "csv", "columns": [{"column": "StartTime", "Properties": {"Ordinal": "0"}},
                                        {"column": "State", "Properties": {"Ordinal": "1"}}]}


def _data(tables: dict[str, Any], routes: list[dict[str, Any]]) -> dict[str, Any]:
    return {"database": "Weather", "tables": tables, "routes": routes}


def _error(data: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(data, "ingestion.yaml")
    return str(info.value)


def _commands(kql: str) -> list[str]:
    return [p for p in kql.rstrip("\n").split("\n\n") if not p.startswith("//")]


# -- validation ---------------------------------------------------------------------------------


def test_a_route_may_name_a_mapping_that_lives_only_in_the_cluster() -> None:
    config = parse_config(_data({"Storms": {"columns": STORMS_COLUMNS}}, [
        {"topic": "storm-events", "table": "Storms", "format": "csv", "mapping": "Storms_CSV_Mapping",
         "mapping_ref": "external"}]))
    assert config.is_external_mapping("Storms", "Storms_CSV_Mapping")
    assert config.declared_mapping("Storms", "Storms_CSV_Mapping") is None
    assert config.external_mappings() == {"Storms": {"Storms_CSV_Mapping"}}
    # Sent by name: ADX applies it.
    assert effective_apply(config, "Storms", "Storms_CSV_Mapping", None) == "server"


def test_an_undeclared_mapping_says_how_to_mark_it_external() -> None:
    message = _error(_data({"Storms": {"columns": STORMS_COLUMNS}}, [
        {"topic": "storm-events", "table": "Storms", "format": "csv", "mapping": "Storms_CSV_Mapping"}]))
    assert "ingestion.yaml: routes[0] (topic 'storm-events'): table 'Storms' has no mapping 'Storms_CSV_Mapping'" in message
    assert "mapping_ref: external on the route" in message


def test_an_undeclared_table_says_how_to_mark_it_external() -> None:
    message = _error(_data({"Storms": {"columns": STORMS_COLUMNS}}, [
        {"topic": "x", "table": "Connect", "format": "csv"}]))
    assert "routes[0] (topic 'x'): table 'Connect' is not declared under tables" in message
    assert "tables.Connect: {external: true}" in message


def test_an_external_mapping_cannot_be_declared_too_nor_applied_by_kafka_adx() -> None:
    declared = _error(_data({"Storms": {"columns": STORMS_COLUMNS, "mappings": {"M": OWNED_MAP}}}, [
        {"topic": "x", "table": "Storms", "format": "csv", "mapping": "M", "mapping_ref": "external"}]))
    assert "routes[0] (topic 'x'): mapping 'M' is declared under tables.Storms.mappings, so the file owns it" in declared
    client = _error(_data({"Storms": {"columns": STORMS_COLUMNS}}, [
        {"topic": "x", "table": "Storms", "format": "csv", "mapping": "M", "mapping_ref": "external",
         "apply_mapping": "client"}]))
    assert "mapping 'M' is external (only the cluster knows it): ADX applies it, so apply_mapping must be server" in client
    nameless = _error(_data({"Storms": {"columns": STORMS_COLUMNS}}, [
        {"topic": "x", "table": "Storms", "format": "csv", "mapping_ref": "external"}]))
    assert "mapping_ref: external needs the mapping's name" in nameless
    text = _error(_data({"Storms": {"columns": STORMS_COLUMNS}}, [
        {"topic": "x", "table": "Storms", "format": "txt", "mapping": "M", "mapping_ref": "external"}]))
    assert "format 'txt' takes no mapping" in text


def test_an_external_table_needs_no_columns_and_takes_nothing_kql_would_create() -> None:
    config = parse_config(_data({"Connect": {"external": True}}, [
        {"topic": "x", "table": "Connect", "format": "json", "mapping": "ConnectMap", "mapping_ref": "external"}]))
    table = config.tables["Connect"]
    assert table.external and table.columns == ()
    # Its width is unknown: records are not counted against a column count of 0.
    assert expected_fields(table, None)[0] is None
    for extra, field in (({"mappings": {"M": OWNED_MAP}}, "mappings"), ({"batching_max_items": 10}, "batching_max_items"),
                         ({"dedup_view": True}, "dedup_view")):
        message = _error(_data({"Connect": {"external": True, **extra}}, [
            {"topic": "x", "table": "Connect", "format": "csv"}]))
        assert f"ingestion.yaml: tables.Connect: an external table is not created or altered by kafka-adx kql, so it " \
               f"takes no {field}" in message
    missing = _error(_data({"T": {"columns": []}}, [{"topic": "x", "table": "T", "format": "csv"}]))
    assert "tables.T: columns: a table needs at least one column (a table that lives only in the cluster: external: true)" \
        in missing


def test_client_mapping_into_an_external_table_needs_its_columns() -> None:
    message = _error(_data({"Connect": {"external": True}}, [
        {"topic": "x", "table": "Connect", "format": "json", "apply_mapping": "client"}]))
    assert "apply_mapping: client needs the table's columns" in message


# -- the generated KQL ----------------------------------------------------------------------------


def _tutorial_config() -> Any:
    return parse_config(_data(
        {"Storms": {"columns": STORMS_COLUMNS, "mappings": {"Owned": OWNED_MAP}},
         "Connect": {"external": True}},
        [{"topic": "storm-events", "table": "Storms", "format": "csv", "mapping": "Storms_CSV_Mapping",
          "mapping_ref": "external"},
         {"topic": "owned", "table": "Storms", "format": "csv", "mapping": "Owned"},
         {"topic": "connect", "table": "Connect", "format": "json", "mapping": "ConnectMap", "mapping_ref": "external",
          "ingestion": "streaming"}]))


def test_kql_never_creates_or_alters_what_the_file_does_not_own() -> None:
    kql = generate_kql(_tutorial_config())
    commands = _commands(kql)
    assert not [c for c in commands if "Connect" in c or "Storms_CSV_Mapping" in c]
    assert "// table Connect is external (it lives in the cluster): not created or altered here" in kql
    assert "// mapping Storms_CSV_Mapping is external (mapping_ref: external): the cluster's, used by name" in kql
    assert "// mapping ConnectMap is external" in kql


def test_owned_mappings_are_created_never_replaced_unless_asked() -> None:
    config = _tutorial_config()
    created = [c for c in _commands(generate_kql(config, comments=False)) if " mapping " in c]
    assert created == [".create table ['Storms'] ingestion csv mapping 'Owned' "
                       "@'[{\"column\":\"StartTime\",\"Properties\":{\"Ordinal\":\"0\"}},"
                       "{\"column\":\"State\",\"Properties\":{\"Ordinal\":\"1\"}}]'"]
    replaced = [c for c in _commands(generate_kql(config, comments=False, alter_mappings=True)) if " mapping " in c]
    assert [c.split(" table ")[0] for c in replaced] == [".create-or-alter"]
    assert generate_kql(config, comments=False).count("\n\n") + 1 == len(_commands(generate_kql(config)))


def test_an_owned_table_may_use_an_external_mapping_and_keeps_its_policies() -> None:
    commands = _commands(generate_kql(_tutorial_config()))
    assert ".create-merge table ['Storms'] (['StartTime']:datetime, ['State']:string)" in commands
    assert any(c.startswith(".alter table ['Storms'] policy ingestionbatching") for c in commands)


def test_the_script_splits_into_schema_and_mappings_for_a_deployment() -> None:
    config = _tutorial_config()
    everything = _commands(generate_kql(config, comments=False))
    schema = _commands(generate_kql(config, comments=False, only="schema"))
    mappings = _commands(generate_kql(config, comments=False, only="mappings"))
    assert mappings == [c for c in everything if " ingestion csv mapping " in c] and len(mappings) == 1
    assert schema == [c for c in everything if c not in mappings]
    # The external mapping's comment goes with the mappings; the header with both.
    commented = generate_kql(config, only="mappings")
    assert commented.startswith("// Generated by `kafka-adx kql`")
    assert "// mapping Storms_CSV_Mapping is external" in commented
    assert "// table Connect is external" in generate_kql(config, only="schema")
