"""Avro through the function app's triggers (the app loaded as the worker indexes it, the host's
trigger payloads built as the host sends them): Confluent wire-format records from the Kafka
trigger, and from the Event Hubs trigger as a Kafka producer writes them through the Event Hubs
Kafka endpoint, decoded with the registry stand-in's schemas into the local sink; and a
registry outage on a non-final attempt asks the host to redeliver, dead-lettering nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from shared.errors import TransientError
from shared.formats import encoder as encoder_module
from shared.functions import worker as functions_worker
from tests.fixtures.registry import RegistryStandIn
from tests.integration.kafka.test_avro_consume import V2, ingestion_file, payment
from tests.support.functions_app import EVENTHUB_ENV, KAFKA_ENV, LocalApp, load_app
from tests.support.functions_host import Context, HubEvent, KafkaMessage, eventhub_events, kafka_events

TOPIC = "avro-trigger"


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, schema_registry: RegistryStandIn) -> Iterator[LocalApp]:
    functions_worker.reset()
    encoder_module._CACHES.clear()
    monkeypatch.setenv("SCHEMA_REGISTRY_URL", schema_registry.url)
    monkeypatch.setenv("SCHEMA_REGISTRY_TIMEOUT", "2")
    functions = load_app(monkeypatch, {
        **KAFKA_ENV, "KAFKA_TOPIC": TOPIC, **EVENTHUB_ENV, "EVENTHUB_NAME": TOPIC,
        "INGESTION_CONFIG": str(ingestion_file(tmp_path)), "LOCAL_DB": str(tmp_path / "kafka-adx.duckdb"),
        "LOCAL_DEADLETTER_DIR": str(tmp_path / "deadletter"),
    })  # fmt: skip
    yield LocalApp(functions, tmp_path)
    functions_worker.reset()


def avro(registry: RegistryStandIn, values: list[dict[str, Any]]) -> list[bytes]:
    serialize = AvroSerializer(SchemaRegistryClient({"url": registry.url}), json.dumps(V2))
    out = [serialize(v, SerializationContext(TOPIC, MessageField.VALUE)) for v in values]
    assert all(out)
    return [b for b in out if b is not None]


def landed(app: LocalApp) -> list[tuple[Any, ...]]:
    return app.rows('SELECT "KafkaOffset", "Id", "Payer", "Channel" FROM "E2E"."Payments" ORDER BY "KafkaOffset"')


def test_kafka_trigger_decodes_confluent_avro(app: LocalApp, schema_registry: RegistryStandIn) -> None:
    values = [payment(n, 2) for n in range(5)]
    messages = [KafkaMessage(TOPIC, n, data) for n, data in enumerate(avro(schema_registry, values))]
    app.call("kafka_ingest", kafka_events(messages), Context("kafka_ingest"))
    assert landed(app) == [(n, n, v["payer"], v["channel"] or "") for n, v in enumerate(values)]
    assert app.dead_letters() == []


def test_eventhub_trigger_decodes_avro_from_the_kafka_endpoint(app: LocalApp, schema_registry: RegistryStandIn) -> None:
    values = [payment(n, 2) for n in range(4)]
    events = [HubEvent.from_kafka_producer(100 + n, data) for n, data in enumerate(avro(schema_registry, values))]
    app.call("eventhub_ingest", eventhub_events(events, event_hub=TOPIC), Context("eventhub_ingest"))
    assert [row[1] for row in landed(app)] == [0, 1, 2, 3]


def test_registry_outage_in_a_trigger_asks_for_redelivery(app: LocalApp, schema_registry: RegistryStandIn) -> None:
    data = avro(schema_registry, [payment(1, 2)])
    schema_registry.fail_status = 503
    with pytest.raises(TransientError):
        app.call("kafka_ingest", kafka_events([KafkaMessage(TOPIC, 0, data[0])]), Context("kafka_ingest", 0, 5))
    assert app.dead_letters() == []
    schema_registry.fail_status = None
    app.call("kafka_ingest", kafka_events([KafkaMessage(TOPIC, 0, data[0])]), Context("kafka_ingest", 1, 5))
    assert [row[1] for row in landed(app)] == [1]
