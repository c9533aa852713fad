"""Avro through the function app's triggers (the app loaded as the worker indexes it, the host's
trigger payloads built as the host sends them): Confluent wire-format records from the Kafka
trigger, and from the Event Hubs trigger as a Kafka producer writes them through the Event Hubs
Kafka endpoint, decoded with the registry stand-in's schemas into the local sink; events an AMQP
producer sent with azure-schemaregistry's real ``AvroEncoder`` (content type ``avro/binary+<id>``
in the AMQP properties, which the host hands over in ``SystemPropertiesArray``), decoded through
the Azure registry stand-in, every value compared; and a registry outage on a non-final attempt
asks the host to redeliver, dead-lettering nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.eventhub import EventData
from azure.schemaregistry import SchemaRegistryClient as AzureRegistryClient
from azure.schemaregistry.encoder.avroencoder import AvroEncoder
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from shared import credentials
from shared.errors import TransientError
from shared.formats import encoder as encoder_module
from shared.formats import registry as registry_module
from shared.functions import worker as functions_worker
from tests.fixtures.registry import RegistryStandIn
from tests.fixtures.registry_azure import AzureRegistryStandIn, StaticToken
from tests.integration.kafka.test_avro_consume import COLUMNS, V2, assert_row, ingestion_file, payment
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


@pytest.fixture
def azure_app(app: LocalApp, monkeypatch: pytest.MonkeyPatch, azure_schema_registry: AzureRegistryStandIn) -> LocalApp:
    """The app with the Azure Schema Registry configured as in Azure (the namespace setting and
    ADX_AUTH's credential), pointed at the stand-in: its token credential in place of Entra ID,
    and its certificate trusted through requests' own REQUESTS_CA_BUNDLE."""
    monkeypatch.setenv("AZURE_SCHEMA_REGISTRY_NAMESPACE", azure_schema_registry.namespace)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(azure_schema_registry.cert))
    monkeypatch.setattr(credentials, "make_credential", lambda *args, **kwargs: StaticToken())
    registry_module._registries.cache_clear()
    return app


def azure_avro(registry: AzureRegistryStandIn, values: list[dict[str, Any]]) -> list[EventData]:
    """The events azure-schemaregistry's AvroEncoder builds (``message_type=EventData``)."""
    client = AzureRegistryClient(registry.namespace, StaticToken(), **registry.client_kwargs())
    encoder = AvroEncoder(client=client, group_name="payments", auto_register=True)
    # The avro library the encoder uses takes a uuid as its text.
    return [encoder.encode({**v, "ref": str(v["ref"])}, schema=json.dumps(V2), message_type=EventData) for v in values]


def all_columns(app: LocalApp) -> dict[int, dict[str, Any]]:
    names = [name for name, _, _ in COLUMNS] + ["KafkaPartition", "KafkaOffset"]
    columns = ", ".join(f'"{name}"' for name in names)
    rows = app.rows(f'SELECT {columns} FROM "E2E"."Payments"')
    return {row[-1]: dict(zip(names, row, strict=True)) for row in rows}


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


def test_eventhub_trigger_decodes_the_azure_avro_encoders_events(azure_app: LocalApp,
                                                                azure_schema_registry: AzureRegistryStandIn) -> None:
    values = [payment(n, 2) for n in range(6)]
    produced = azure_avro(azure_schema_registry, values)
    assert all(e.content_type and e.content_type.startswith("avro/binary+") and not e.properties for e in produced)
    events = [HubEvent.from_avro_encoder(200 + n, {"content": b"".join(e.body), "content_type": e.content_type})
              for n, e in enumerate(produced)]  # fmt: skip
    azure_app.call("eventhub_ingest", eventhub_events(events, event_hub=TOPIC, partition="2"), Context("eventhub_ingest"))
    assert azure_app.dead_letters() == []
    rows = all_columns(azure_app)
    assert sorted(rows) == [200 + n for n in range(6)]
    for n, value in enumerate(values):
        assert_row(rows[200 + n], 2, value)
        assert rows[200 + n]["KafkaPartition"] == 2
    gets = [r for r in azure_schema_registry.requests if r.startswith("GET /$schemaGroups/$schemas/")]
    assert len(gets) == 1  # one schema id, fetched once for the batch


def test_an_azure_content_type_naming_an_unknown_schema_dead_letters_with_the_id(
        azure_app: LocalApp, azure_schema_registry: AzureRegistryStandIn) -> None:
    [event] = azure_avro(azure_schema_registry, [payment(1, 2)])
    body = b"".join(event.body)
    events = [HubEvent.from_avro_encoder(7, {"content": body, "content_type": "avro/binary+0123456789abcdef"})]
    azure_app.call("eventhub_ingest", eventhub_events(events, event_hub=TOPIC), Context("eventhub_ingest"))
    [letter] = azure_app.dead_letters()
    assert "schema id 0123456789abcdef" in letter.reason
    assert (letter.record.offset, letter.record.value) == (7, body)
    assert letter.record.header("content-type") == b"avro/binary+0123456789abcdef"
