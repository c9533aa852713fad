"""Helpers shared by the tests (importable as ``tests.support.records``)."""

from __future__ import annotations

from datetime import UTC, datetime

from shared.config import IngestionConfig, parse_config
from shared.pipeline.records import Record


def rec(value: bytes | None, topic: str = "json", offset: int = 0, partition: int = 0, **kw: object) -> Record:
    """A record with a timestamp."""
    return Record(
        value=value, topic=topic, partition=partition, offset=offset,
        timestamp=datetime(2024, 1, 1, tzinfo=UTC), source="kafka", **kw,  # type: ignore[arg-type]
    )


def make_config(**overrides: object) -> IngestionConfig:
    """A small config for unit tests: table T (a:string, n:long, ts:datetime, d:dynamic)."""
    data: dict[str, object] = {
        "database": "db",
        "tables": {
            "T": {
                "columns": [
                    {"name": "a", "type": "string"},
                    {"name": "n", "type": "long"},
                    {"name": "ts", "type": "datetime"},
                    {"name": "d", "type": "dynamic"},
                ],
                "mappings": {
                    "T_json": {
                        "kind": "json",
                        "columns": [
                            {"column": "a", "Properties": {"Path": "$.a"}},
                            {"column": "n", "Properties": {"Path": "$.n"}},
                            {"column": "ts", "Properties": {"Path": "$.ts"}},
                            {"column": "d", "Properties": {"Path": "$.d"}},
                        ],
                    },
                    "T_csv": {
                        "kind": "csv",
                        "columns": [
                            {"column": "a", "Properties": {"Ordinal": "0"}},
                            {"column": "n", "Properties": {"Ordinal": "1"}},
                            {"column": "ts", "Properties": {"Ordinal": "2"}},
                            {"column": "d", "Properties": {"Ordinal": "3"}},
                        ],
                    },
                },
            },
            "Raw": {"columns": [{"name": "Line", "type": "string"}]},
        },
        "routes": [
            {"topic": "json", "table": "T", "format": "json", "mapping": "T_json"},
            {"topic": "json-client", "table": "T", "format": "json", "mapping": "T_json", "apply_mapping": "client"},
            {"topic": "csv", "table": "T", "format": "csv", "mapping": "T_csv"},
            {"topic": "csv-client", "table": "T", "format": "csv", "apply_mapping": "client"},
            {"topic": "raw", "table": "Raw", "format": "txt"},
        ],
    }
    data.update(overrides)
    return parse_config(data, "test.yaml")
