"""Avro into ADX: the real AvroSerializer produces to the real broker, ``kafka-adx consume``
decodes with the registry stand-in's schemas and queues CSV rows through the real
azure-kusto-ingest SDK to the ADX stand-in (Azurite behind it); every queued value is compared
with what was produced, over two schema versions, and the poison goes to the blob dead letters."""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest

from shared.config import load_config
from shared.deadletters.blob import BlobDeadLetterStore
from shared.mapping.types import parse_datetime
from tests.fixtures.azurite import Azurite
from tests.fixtures.registry import RegistryStandIn
from tests.integration.kafka.test_avro_consume import COLUMNS, Producing, ingestion_file
from tests.support.adx_standin import AdxStandIn
from tests.support.kafka_e2e import ConsumerProcess, Workspace

pytestmark = [pytest.mark.kafka, pytest.mark.azurite]

NAMES = [name for name, _, _ in COLUMNS] + ["KafkaPartition", "KafkaOffset"]


def test_avro_through_the_adx_sdk_every_value_compared(
    tmp_path: Path, kafka_bootstrap: str, kafka_topic: Callable[..., str], azurite: Azurite, storage_names: str,
    schema_registry: RegistryStandIn,
) -> None:  # fmt: skip
    ws = Workspace(tmp_path, kafka_bootstrap)
    topic = kafka_topic(partitions=1, prefix="avro-adx")
    out = Producing(kafka_bootstrap, schema_registry, topic)
    for n in range(80):
        out.send_payment(n, 1 if n % 3 else 2)
    out.send(b"\x00\x00\x00\x00\x09" + b"\x02", None)  # schema id 9 was never registered
    out.flush()
    config_path = ingestion_file(tmp_path)
    deadletter = f"{storage_names}-deadletter"
    azurite.create_container(deadletter)
    deadletter_url = azurite.container_sas_uri(deadletter)

    with AdxStandIn(azurite, storage_names) as standin:
        standin.apply_config(load_config(config_path))
        env = {"ADX_INGEST_URI": standin.url, "ADX_AUTH": "none", "DEADLETTER_BLOB_URI": deadletter_url,
               "INGESTION_CONFIG": str(config_path), "SCHEMA_REGISTRY_URL": schema_registry.url}  # fmt: skip
        consumer = ConsumerProcess(ws, topic, f"avro-adx-{uuid.uuid4().hex[:8]}", "--max-records", "81",
                                   "--batch-records", "40", env=env)  # fmt: skip
        assert consumer.wait(timeout=120) == 0, consumer.output()
        messages = standin.queued_messages()
        lines = standin.ingested_lines()

    assert {(m["DatabaseName"], m["TableName"], m["AdditionalProperties"]["format"]) for m in messages} == {
        ("E2E", "Payments", "csv")}  # fmt: skip
    rows = {int(r["KafkaOffset"]): r for r in
            (dict(zip(NAMES, row, strict=True)) for row in csv.reader(io.StringIO(b"\n".join(lines).decode())))}  # fmt: skip
    assert sorted(rows) == list(range(80))
    for offset, (version, value) in enumerate(out.sent[:80]):
        assert value is not None
        row = rows[offset]
        assert int(row["Id"]) == value["id"] and row["Payer"] == value["payer"]
        assert Decimal(row["Amount"]) == value["amount"]
        at = parse_datetime(row["At"])
        assert isinstance(at, datetime) and at == value["at"]
        assert uuid.UUID(row["Ref"]) == value["ref"]
        assert json.loads(row["Meta"]) == value["meta"]
        assert row["Channel"] == ((value.get("channel") or "") if version == 2 else "")

    store = BlobDeadLetterStore.from_url(deadletter_url)
    try:
        letters = [letter for set_id in store.sets() for letter in store.read(set_id)]
    finally:
        store.close()
    assert [(letter.record.offset, letter.stage) for letter in letters] == [(80, "decode")]
    assert "schema id 9" in letters[0].reason
