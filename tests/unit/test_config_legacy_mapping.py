"""The Kafka tutorial's legacy inline mapping syntax (``Name``/``datatype``/``Ordinal`` at the
top level) is read as ADX's ``{column, Properties}`` form, with a hint naming file and field."""

from __future__ import annotations

import logging

import pytest

from shared.config import parse_config
from shared.errors import ConfigError
from shared.ops.kql import generate_kql

TUTORIAL_MAPPING = [
    {"Name": "StartTime", "datatype": "datetime", "Ordinal": 0},
    {"Name": "EndTime", "datatype": "datetime", "Ordinal": 1},
    {"Name": "EventId", "datatype": "int", "Ordinal": 2},
    {"Name": "State", "datatype": "string", "Ordinal": 3},
    {"Name": "EventType", "datatype": "string", "Ordinal": 4},
    {"Name": "Source", "datatype": "string", "Ordinal": 5},
]


def _data(entries: list[dict[str, object]], kind: str = "csv") -> dict[str, object]:
    columns = [{"name": n, "type": t} for n, t in (("StartTime", "datetime"), ("EndTime", "datetime"),
                                                   ("EventId", "int"), ("State", "string"),
                                                   ("EventType", "string"), ("Source", "string"))]
    return {"database": "Weather",
            "tables": {"Storms": {"columns": columns, "mappings": {"M": {"kind": kind, "columns": entries}}}},
            "routes": [{"topic": "storm-events", "table": "Storms", "format": kind, "mapping": "M"}]}


def test_the_tutorials_mapping_is_accepted_as_the_normalised_form(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="kafka_adx.config"):
        config = parse_config(_data(TUTORIAL_MAPPING), "ingestion.yaml")
    mapping = config.tables["Storms"].mappings["M"]
    assert [(e.column, e.properties.ordinal) for e in mapping.columns] == [
        ("StartTime", 0), ("EndTime", 1), ("EventId", 2), ("State", 3), ("EventType", 4), ("Source", 5)]
    # What kql sends ADX is the current syntax.
    assert '{"column":"StartTime","Properties":{"Ordinal":"0"}}' in generate_kql(config)
    hints = [r.getMessage() for r in caplog.records]
    assert len(hints) == 6
    assert hints[0] == (
        "ingestion.yaml: tables.Storms.mappings.M.columns[0]: legacy mapping syntax (the source at the top level), "
        "read as {column: StartTime, Properties: {Ordinal: '0'}}; write it that way "
        "(datatype is not used: the table's column type applies)")


def test_a_legacy_json_path_entry_is_read_too(caplog: pytest.LogCaptureFixture) -> None:
    entries = [{"column": "StartTime", "Path": "$.start"}, {"Name": "State", "path": "$.state"}]
    with caplog.at_level(logging.WARNING, logger="kafka_adx.config"):
        config = parse_config(_data(entries, "json"), "f.yaml")
    assert [e.properties.path for e in config.tables["Storms"].mappings["M"].columns] == ["$.start", "$.state"]
    assert "f.yaml: tables.Storms.mappings.M.columns[1]: legacy mapping syntax" in caplog.text
    assert "datatype is not used" not in caplog.text


def test_the_current_syntax_gives_no_hint(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="kafka_adx.config"):
        parse_config(_data([{"column": "StartTime", "Properties": {"Ordinal": "0"}}]), "f.yaml")
    assert caplog.records == []


def test_a_legacy_entry_still_gets_the_mapping_rules() -> None:
    # Path in a csv mapping is refused whatever the syntax, with the field path.
    with pytest.raises(ConfigError, match=r"f.yaml: tables.Storms.mappings.M: .*csv mapping uses Ordinal"):
        parse_config(_data([{"Name": "StartTime", "Path": "$.a"}]), "f.yaml")
    with pytest.raises(ConfigError, match="exactly one source"):
        parse_config(_data([{"Name": "StartTime", "Ordinal": 0, "ConstValue": "x"}]), "f.yaml")
