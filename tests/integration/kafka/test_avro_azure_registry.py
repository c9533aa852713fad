"""The Azure Schema Registry flavour of ``avro``: records encoded by azure-schemaregistry's real
``AvroEncoder`` (registering the schema with the real client) against the registry stand-in over
TLS, decoded by kafka-adx through the same client by the ``content-type`` header, every value
compared; an unknown id dead-letters, an outage is transient."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from azure.schemaregistry import SchemaRegistryClient
from azure.schemaregistry.encoder.avroencoder import AvroEncoder

from shared.config import parse_config
from shared.deadletters.local import LocalDeadLetterStore
from shared.errors import TransientError
from shared.formats import encoder as encoder_module
from shared.formats.encoder import SchemaMapped
from shared.formats.registry import AzureSource, Registries
from shared.pipeline.core import Pipeline, RetryPolicy
from shared.pipeline.encoding import read_payload
from shared.pipeline.records import Record
from shared.pipeline.sink import MemorySink
from tests.fixtures.registry_azure import AzureRegistryStandIn, StaticToken

SCHEMA = {"type": "record", "name": "Telemetry", "namespace": "e2e",
          "fields": [{"name": "device", "type": "string"}, {"name": "temp", "type": "double"},
                     {"name": "ok", "type": "boolean"}, {"name": "n", "type": "long"}]}  # fmt: skip
CONFIG = parse_config({
    "database": "db",
    "tables": {"Telemetry": {"columns": [{"name": "device", "type": "string"}, {"name": "temp", "type": "real"},
                                         {"name": "ok", "type": "bool"}, {"name": "n", "type": "long"},
                                         {"name": "seq", "type": "long"}],
                             "mappings": {"m": {"kind": "json", "columns": [
                                 {"column": "device", "Properties": {"Path": "$.device"}},
                                 {"column": "temp", "Properties": {"Path": "$.temp"}},
                                 {"column": "ok", "Properties": {"Path": "$.ok"}},
                                 {"column": "n", "Properties": {"Path": "$.n"}},
                                 {"column": "seq", "Properties": {"Metadata": "offset"}}]}}}},
    "routes": [{"topic": "telemetry", "table": "Telemetry", "format": "avro", "mapping": "m"}],
})  # fmt: skip


def events(registry: AzureRegistryStandIn, count: int) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(value, the encoder's {content, content_type}) of ``count`` events."""
    client = SchemaRegistryClient(registry.namespace, StaticToken(), **registry.client_kwargs())
    encoder = AvroEncoder(client=client, group_name="telemetry-group", auto_register=True)
    out = []
    for n in range(count):
        value = {"device": f"dev-{n % 3}", "temp": 20.5 + n, "ok": n % 2 == 0, "n": n * 1000}
        out.append((value, encoder.encode(value, schema=json.dumps(SCHEMA))))
    return out


def pipeline(tmp_path: Path, registry: AzureRegistryStandIn) -> tuple[Pipeline, MemorySink, LocalDeadLetterStore]:
    encoder_module._CACHES.clear()
    source = AzureSource.connect(registry.namespace, StaticToken(), **registry.client_kwargs())
    sink, store = MemorySink(), LocalDeadLetterStore(tmp_path / "dl")
    pipe = Pipeline(CONFIG, sink, store, retry=RetryPolicy(attempts=1, base_delay=0.0), sleep=lambda _: None)
    encoders: dict[Any, SchemaMapped] = {}
    pipe.encoder = lambda dest: encoders.setdefault(dest, SchemaMapped(CONFIG, dest, Registries(azure=source)))  # type: ignore[method-assign]
    return pipe, sink, store


def record(content: dict[str, Any], offset: int) -> Record:
    return Record(value=content["content"], topic="telemetry", offset=offset, source="eventhub",
                  headers=(("content-type", content["content_type"].encode()),),
                  timestamp=datetime(2024, 1, 1, tzinfo=UTC))  # fmt: skip


def test_azure_encoded_events_land_with_every_value(tmp_path: Path, azure_schema_registry: AzureRegistryStandIn) -> None:
    produced = events(azure_schema_registry, 12)
    assert produced[0][1]["content_type"].startswith("avro/binary+")
    pipe, sink, store = pipeline(tmp_path, azure_schema_registry)
    unknown = {"content": produced[0][1]["content"], "content_type": "avro/binary+0123456789abcdef"}
    result = pipe.process([record(content, n) for n, (_, content) in enumerate(produced)] + [record(unknown, 12)])
    assert (result.ingested, result.dead_lettered) == (12, 1)
    rows = [fields for batch in sink.batches for fields in read_payload(batch.decompressed(), "csv")]
    assert rows == [[v["device"], repr(v["temp"]), "true" if v["ok"] else "false", str(v["n"]), str(n)]
                    for n, (v, _) in enumerate(produced)]  # fmt: skip
    [letter] = [letter for set_id in store.sets() for letter in store.read(set_id)]
    assert "schema id 0123456789abcdef" in letter.reason and letter.record.offset == 12
    gets = [r for r in azure_schema_registry.requests if r.startswith("GET /$schemaGroups/$schemas/")]
    assert len(gets) == 2  # the known id once, the unknown id once, however many records named them
    assert set(azure_schema_registry.tokens) == {"stand-in-token"}


def test_an_azure_registry_outage_is_transient(tmp_path: Path, azure_schema_registry: AzureRegistryStandIn) -> None:
    produced = events(azure_schema_registry, 1)
    pipe, sink, store = pipeline(tmp_path, azure_schema_registry)
    azure_schema_registry.fail_status = 503
    with pytest.raises(TransientError, match="Azure Schema Registry"):
        pipe.process([record(produced[0][1], 0)], final_attempt=False)
    assert sink.batches == [] and list(store.sets()) == []
    # On the final attempt nothing may be lost: the record is dead-lettered as transient.
    result = pipe.process([record(produced[0][1], 0)], final_attempt=True)
    assert (result.ingested, result.dead_lettered) == (0, 1) and sink.batches == []
    [letter] = [letter for set_id in store.sets() for letter in store.read(set_id)]
    assert "transient (final attempt)" in letter.reason and "Azure Schema Registry" in letter.reason
