"""Events an AMQP producer sent with azure-schemaregistry's real ``AvroEncoder``, through the
Event Hubs trigger of the function app running in the real Functions Python runtime library
(Python 3.13, the deployment package, :mod:`tests.support.runtime_host`).

The encoder sets ``EventData.content_type`` to ``avro/binary+<schema id>`` (the AMQP properties
section), not an application property. The host hands that to the worker in the trigger's
``SystemPropertiesArray``, under its AMQP name ``content-type`` (docs/formats.md: the Event Hubs
extension's ``GetSystemPropertiesForBinding`` copies ``EventData.SystemProperties``, which
``AmqpSystemProperties`` fills from the properties section), and ``PropertiesArray`` is empty.
The binding data here are built exactly so (:func:`tests.support.functions_host.eventhub_trigger_data`).

The app is configured as in Azure: ``AZURE_SCHEMA_REGISTRY_NAMESPACE`` (the TLS stand-in of the
registry's REST API, tests/fixtures/registry_azure.py, its certificate trusted through
``REQUESTS_CA_BUNDLE``), ``ADX_AUTH=managed-identity`` with the App Service identity endpoint
(``IDENTITY_ENDPOINT``/``IDENTITY_HEADER``, served by the ADX stand-in), so the registry client
signs in with the function's managed identity, and ADX the stand-in. Every value of every event
is compared in what ADX would ingest (the queued blob's CSV rows).

Dead letters go to the local store (``LOCAL_DEADLETTER_DIR``), not to an Azurite container as in
the other runtime tests: with ``ADX_AUTH=managed-identity`` the blob store is given the token
credential, and azure-storage-blob refuses a token credential over Azurite's plain http
("Token credential is only supported with HTTPS."; in Azure the container URI is https).
"""

from __future__ import annotations

import base64
import csv
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from azure.eventhub import EventData
from azure.schemaregistry import SchemaRegistryClient as AzureRegistryClient
from azure.schemaregistry.encoder.avroencoder import AvroEncoder

from shared.config import parse_config
from shared.deadletters.local import LocalDeadLetterStore
from shared.pipeline.deadletter import DeadLetter
from tests.fixtures.azurite import Azurite
from tests.fixtures.registry_azure import AzureRegistryStandIn, StaticToken
from tests.support.adx import DATABASE, landed
from tests.support.adx_standin import TOKEN, AdxStandIn
from tests.support.functions_app import EVENTHUB_ENV
from tests.support.functions_host import HubEvent, eventhub_trigger_data
from tests.support.runtime_host import Retry, RuntimeHost, deployment_package, success

pytestmark = pytest.mark.azurite

TOPIC = "orders-avro"
PARTITION = 3

SCHEMA: dict[str, Any] = {
    "type": "record", "name": "Order", "namespace": "runtime",
    "fields": [
        {"name": "id", "type": "long"},
        {"name": "customer", "type": "string"},
        {"name": "amount", "type": {"type": "bytes", "logicalType": "decimal", "precision": 12, "scale": 2}},
        {"name": "placed", "type": {"type": "long", "logicalType": "timestamp-micros"}},
        {"name": "ref", "type": {"type": "string", "logicalType": "uuid"}},
        {"name": "day", "type": {"type": "int", "logicalType": "date"}},
        {"name": "blob", "type": "bytes"},
        {"name": "weight", "type": "double"},
        {"name": "express", "type": "boolean"},
        {"name": "tags", "type": {"type": "array", "items": "string"}},
        {"name": "address", "type": {"type": "record", "name": "Address", "fields": [
            {"name": "city", "type": "string"}, {"name": "zip", "type": ["null", "string"], "default": None}]}},
        {"name": "coupon", "type": ["null", "string"], "default": None},
    ],
}  # fmt: skip

COLUMNS = [
    ("Id", "long", {"Path": "$.id"}), ("Customer", "string", {"Path": "$.customer"}),
    ("Amount", "decimal", {"Path": "$.amount"}), ("Placed", "datetime", {"Path": "$.placed"}),
    ("Ref", "guid", {"Path": "$.ref"}), ("Day", "datetime", {"Path": "$.day"}),
    ("Blob", "string", {"Path": "$.blob"}), ("Weight", "real", {"Path": "$.weight"}),
    ("Express", "bool", {"Path": "$.express"}), ("Tags", "dynamic", {"Path": "$.tags"}),
    ("City", "string", {"Path": "$.address.city"}), ("Address", "dynamic", {"Path": "$.address"}),
    ("Coupon", "string", {"Path": "$.coupon"}),
    ("ContentType", "string", {"Metadata": "header:content-type"}),
    ("Partition", "int", {"Metadata": "partition"}), ("Offset", "long", {"Metadata": "offset"}),
]  # fmt: skip

CONFIG = {
    "database": DATABASE,
    "tables": {"Orders": {
        "columns": [{"name": name, "type": kind} for name, kind, _ in COLUMNS],
        "mappings": {"Orders_avro": {"kind": "json", "columns": [
            {"column": name, "Properties": props} for name, _, props in COLUMNS]}},
    }},
    "routes": [{"topic": TOPIC, "table": "Orders", "format": "avro", "mapping": "Orders_avro"}],
}  # fmt: skip


def order(n: int) -> dict[str, Any]:
    """Order ``n``: every Avro type of :data:`SCHEMA`, text that needs CSV quoting, nulls."""
    return {
        "id": n, "customer": f'Ada, "the" {n}' if n % 3 == 0 else f"cust-{n}",
        "amount": Decimal(f"{n * 37}.{n % 100:02d}"),
        "placed": datetime(2024, 3, 1, 12, n % 60, n % 60, (n * 7919) % 1_000_000, tzinfo=UTC),
        "ref": str(uuid.UUID(int=n + 1)),  # the avro library AvroEncoder uses takes a uuid as its text
        "day": date(2024, 5, 1 + n % 28), "blob": bytes([n % 256, 0, 255]) + b"hi",
        "weight": n / 8 + 0.1, "express": n % 2 == 1, "tags": [f"t{n}", "x,y"],
        "address": {"city": "Oslo" if n % 2 else "Bergen", "zip": None if n % 2 else f"{5000 + n}"},
        "coupon": None if n % 2 else f"SPRING{n}",
    }  # fmt: skip


def adx_datetime(value: datetime) -> str:
    """A UTC datetime as ADX CSV text: seven fractional digits and Z."""
    return f"{value:%Y-%m-%dT%H:%M:%S}.{value.microsecond:06d}0Z"


@dataclass
class App:
    """The deployed app in its worker, and the stand-ins it talks to."""

    host: RuntimeHost
    standin: AdxStandIn
    registry: AzureRegistryStandIn
    deadletter_dir: Path

    def dead_letters(self) -> list[DeadLetter]:
        """Every dead letter the worker wrote (read back with a fresh store)."""
        store = LocalDeadLetterStore(self.deadletter_dir)
        return [letter for set_id in store.sets() for letter in store.read(set_id)]

    def rows(self) -> dict[int, dict[str, str]]:
        """The CSV rows queued for Orders by offset, each as column -> field text."""
        items = landed(self.standin)
        assert items and all(item.kind == "queued" and item.table == "Orders" for item in items), items
        text = "\n".join(line.decode("utf-8") for item in items for line in item.lines or [])
        names = [name for name, _, _ in COLUMNS]
        rows = [dict(zip(names, fields, strict=True)) for fields in csv.reader(text.splitlines())]
        return {int(row["Offset"]): row for row in rows}


@pytest.fixture
def app(azurite: Azurite, storage_names: str, tmp_path: Path, azure_schema_registry: AzureRegistryStandIn) -> Iterator[App]:
    """The deployment package in its Python 3.13 worker, with the Azure Schema Registry set as in
    Azure (namespace, the managed identity through the identity endpoint) and ADX the stand-in."""
    package = deployment_package(tmp_path / "wwwroot")
    (package / "ingestion.yaml").write_text(json.dumps(CONFIG))  # JSON is YAML
    standin = AdxStandIn(azurite, storage_names)
    standin.apply_config(parse_config(CONFIG, str(package / "ingestion.yaml")))
    settings = {
        **EVENTHUB_ENV, "EVENTHUB_NAME": TOPIC,
        "ADX_INGEST_URI": standin.url, "ADX_AUTH": "managed-identity",
        "IDENTITY_ENDPOINT": standin.msi_endpoint, "IDENTITY_HEADER": "runtime-test-identity-header",
        "LOCAL_DEADLETTER_DIR": str(tmp_path / "deadletter"),
        "INGESTION_CONFIG": str(package / "ingestion.yaml"),
        "AZURE_SCHEMA_REGISTRY_NAMESPACE": azure_schema_registry.namespace,
        "REQUESTS_CA_BUNDLE": str(azure_schema_registry.cert),
    }  # fmt: skip
    host = RuntimeHost(package, settings, tmp_path / "worker.log")
    try:
        host.start()
        yield App(host, standin, azure_schema_registry, tmp_path / "deadletter")
    finally:
        host.close()
        standin.close()


def encoded(registry: AzureRegistryStandIn, values: list[dict[str, Any]]) -> list[EventData]:
    """The events azure-schemaregistry's AvroEncoder builds (``message_type=EventData``),
    registering the schema in the stand-in as a producer with auto-register does."""
    client = AzureRegistryClient(registry.namespace, StaticToken(), **registry.client_kwargs())
    encoder = AvroEncoder(client=client, group_name="orders", auto_register=True)
    return [encoder.encode(value, schema=json.dumps(SCHEMA), message_type=EventData) for value in values]


def test_avro_encoder_events_land_with_every_value_through_the_runtime_worker(app: App) -> None:
    values = [order(n) for n in range(12)]
    produced = encoded(app.registry, values)
    [content_type] = {e.content_type for e in produced}  # one schema, one id
    assert content_type is not None and content_type.startswith("avro/binary+")
    schema_id = content_type.removeprefix("avro/binary+")
    assert schema_id in app.registry.schemas
    assert all(not e.properties for e in produced)  # the content type is not an application property

    first = 500
    events = [HubEvent.from_avro_encoder(first + n, {"content": b"".join(e.body), "content_type": e.content_type})
              for n, e in enumerate(produced)]  # fmt: skip
    body, metadata = eventhub_trigger_data(events, event_hub=TOPIC, partition=str(PARTITION))
    # What the host sends: content-type among the system properties, under its AMQP name; no
    # application properties; and no other array naming a content type.
    system = json.loads(metadata["SystemPropertiesArray"][1])
    assert [s["content-type"] for s in system] == [content_type] * len(values)
    assert json.loads(metadata["PropertiesArray"][1]) == [{}] * len(values)
    assert not any("content" in name.lower() for name in metadata if name != "SystemPropertiesArray")
    requests_before = len(app.registry.requests)

    response = app.host.invoke("eventhub_ingest", body, metadata, Retry(0, 5))

    assert success(response), response.result.exception.message
    rows = app.rows()
    assert sorted(rows) == [first + n for n in range(len(values))]  # each event once, none dropped
    for n, value in enumerate(values):
        row = rows[first + n]
        assert row["Id"] == str(value["id"])
        assert row["Customer"] == value["customer"]
        assert Decimal(row["Amount"]) == value["amount"] and row["Amount"] == str(value["amount"])
        assert row["Placed"] == adx_datetime(value["placed"])
        assert row["Ref"] == value["ref"]
        assert row["Day"] == f"{value['day'].isoformat()}T00:00:00.0000000Z"
        assert base64.b64decode(row["Blob"]) == value["blob"]
        assert row["Weight"] == repr(value["weight"])
        assert row["Express"] == ("true" if value["express"] else "false")
        assert json.loads(row["Tags"]) == value["tags"]
        assert row["City"] == value["address"]["city"]
        assert json.loads(row["Address"]) == value["address"]
        assert row["Coupon"] == (value["coupon"] or "")  # a null string is empty
        assert row["ContentType"] == content_type  # the header the trigger made of the system property
        assert row["Partition"] == str(PARTITION)
    # The worker fetched the schema once, signed in with the managed identity's token.
    gets = [r for r in app.registry.requests[requests_before:] if r.startswith("GET /$schemaGroups/$schemas/")]
    assert len(gets) == 1 and gets[0].split("?")[0].endswith(f"/{schema_id}"), gets
    assert app.registry.tokens[-1] == TOKEN
    assert any(request.get("header") == "runtime-test-identity-header" for request in app.standin.token_requests)
    assert app.dead_letters() == []


def test_a_content_type_naming_an_unknown_schema_id_dead_letters_that_event_with_the_id(app: App) -> None:
    good, other = encoded(app.registry, [order(1), order(2)])
    unknown = "0123456789abcdef0123456789abcdef"
    events = [
        HubEvent.from_avro_encoder(10, {"content": b"".join(good.body), "content_type": good.content_type}),
        HubEvent.from_avro_encoder(11, {"content": b"".join(other.body), "content_type": f"avro/binary+{unknown}"}),
    ]
    body, metadata = eventhub_trigger_data(events, event_hub=TOPIC, partition=str(PARTITION))

    response = app.host.invoke("eventhub_ingest", body, metadata, Retry(0, 5))

    assert success(response), response.result.exception.message
    assert sorted(app.rows()) == [10]
    [letter] = app.dead_letters()
    assert letter.record.offset == 11 and letter.stage == "decode"
    assert f"schema id {unknown}" in letter.reason and "has no schema id" in letter.reason, letter.reason
    assert letter.record.value == b"".join(other.body)  # the event's own bytes, to replay
