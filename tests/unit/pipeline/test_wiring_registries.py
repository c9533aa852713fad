"""``build_pipeline(settings, ...)`` reads schemas from the registry its ``settings`` name, not
from the environment's ``SCHEMA_REGISTRY_URL`` (which a caller's settings may override or lack)."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from shared.config import parse_config
from shared.formats.registry import Registries
from shared.pipeline.core import RetryPolicy
from shared.pipeline.records import Record
from shared.settings import Settings
from shared.wiring import build_pipeline, build_registries
from tests.fixtures.registry import RegistryStandIn

TOPIC = "readings"
SCHEMA = {"type": "record", "name": "Reading", "fields": [{"name": "sensor", "type": "string"}, {"name": "value", "type": "double"}]}
CONFIG = {
    "database": "sensors",
    "tables": {"Readings": {
        "columns": [{"name": "Sensor", "type": "string"}, {"name": "Value", "type": "real"}],
        "mappings": {"Readings_avro": {"kind": "json", "columns": [
            {"column": "Sensor", "Properties": {"Path": "$.sensor"}}, {"column": "Value", "Properties": {"Path": "$.value"}}]}},
    }},
    "routes": [{"topic": TOPIC, "table": "Readings", "format": "avro", "mapping": "Readings_avro"}],
}  # fmt: skip


def settings(tmp_path: Path, registry_url: str | None) -> Settings:
    return Settings(ingestion_config=tmp_path / "unused.yaml", local_db=tmp_path / "db.duckdb",
                    local_deadletter_dir=tmp_path / "deadletter", schema_registry_url=registry_url)  # fmt: skip


@pytest.mark.parametrize("environment", [None, "http://127.0.0.1:9"], ids=["env-unset", "env-elsewhere"])
def test_the_pipeline_reads_schemas_from_the_registry_its_settings_name(
    schema_registry: RegistryStandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, environment: str | None
) -> None:
    if environment is None:
        monkeypatch.delenv("SCHEMA_REGISTRY_URL", raising=False)
    else:  # a registry that refuses connections: reading it would make the batch transient
        monkeypatch.setenv("SCHEMA_REGISTRY_URL", environment)
    serialize = AvroSerializer(SchemaRegistryClient({"url": schema_registry.url}), json.dumps(SCHEMA))
    values = [serialize({"sensor": f"s{n}", "value": n / 2}, SerializationContext(TOPIC, MessageField.VALUE)) for n in range(3)]
    records = [Record(value=value, topic=TOPIC, partition=0, offset=n) for n, value in enumerate(values)]

    pipeline = build_pipeline(settings(tmp_path, schema_registry.url), parse_config(CONFIG),
                              retry=RetryPolicy(attempts=1, base_delay=0.0))  # fmt: skip
    try:
        result = pipeline.process(records, final_attempt=True)
    finally:
        pipeline.close()

    assert (result.received, result.ingested, result.dead_lettered) == (3, 3, 0)
    assert schema_registry.fetches(1) == 1
    with duckdb.connect(str(tmp_path / "db.duckdb"), read_only=True) as db:
        rows = db.execute('SELECT "Sensor", "Value" FROM "sensors"."Readings" ORDER BY "Sensor"').fetchall()
    assert rows == [("s0", 0.0), ("s1", 0.5), ("s2", 1.0)]


def test_a_config_without_schema_formats_makes_no_registry_client(tmp_path: Path) -> None:
    # The registry's client (and an Azure credential) are made only where schemas are read.
    plain = parse_config({**CONFIG, "routes": [{"topic": TOPIC, "table": "Readings", "format": "csv"}]})
    assert build_registries(settings(tmp_path, "http://127.0.0.1:9"), plain) == Registries()
    found = build_registries(settings(tmp_path, "http://127.0.0.1:9"), parse_config(CONFIG))
    assert found.confluent is not None and "127.0.0.1:9" in found.confluent.name
