"""Avro end to end: confluent-kafka's real AvroSerializer produces to the real broker with schemas
in the registry stand-in, the real ``kafka-adx consume`` process decodes and maps them into
DuckDB, and every value of every row is compared with what was produced. Two schema versions
on one topic, bad records among them, and a registry that goes down mid-run."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml
from confluent_kafka import Producer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from tests.fixtures.registry import RegistryStandIn
from tests.support.kafka_e2e import ConsumerProcess, Workspace, dead_letters

pytestmark = pytest.mark.kafka

V1: dict[str, Any] = {
    "type": "record", "name": "Payment", "namespace": "e2e",
    "fields": [
        {"name": "id", "type": "long"},
        {"name": "payer", "type": "string"},
        {"name": "amount", "type": {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2}},
        {"name": "at", "type": {"type": "long", "logicalType": "timestamp-micros"}},
        {"name": "ref", "type": {"type": "string", "logicalType": "uuid"}},
        {"name": "meta", "type": {"type": "map", "values": "long"}},
    ],
}  # fmt: skip
V2 = {**V1, "fields": [*V1["fields"], {"name": "channel", "type": ["null", "string"], "default": None}]}

COLUMNS = [("Id", "long", "$.id"), ("Payer", "string", "$.payer"), ("Amount", "decimal", "$.amount"),
           ("At", "datetime", "$.at"), ("Ref", "guid", "$.ref"), ("Meta", "dynamic", "$.meta"),
           ("Channel", "string", "$.channel")]  # fmt: skip


def ingestion_file(root: Path) -> Path:
    path = root / "ingestion.yaml"
    path.write_text(yaml.safe_dump({
        "database": "E2E",
        "tables": {"Payments": {
            "columns": [{"name": n, "type": t} for n, t, _ in COLUMNS]
            + [{"name": "KafkaPartition", "type": "int"}, {"name": "KafkaOffset", "type": "long"}],
            "mappings": {"Payments_avro": {"kind": "json", "columns": [
                *({"column": n, "Properties": {"Path": p}} for n, _, p in COLUMNS),
                {"column": "KafkaPartition", "Properties": {"Metadata": "partition"}},
                {"column": "KafkaOffset", "Properties": {"Metadata": "offset"}},
            ]}},
        }},
        "routes": [{"topic": "avro-*", "table": "Payments", "format": "avro", "mapping": "Payments_avro"}],
    }))  # fmt: skip
    return path


def payment(n: int, version: int) -> dict[str, Any]:
    value: dict[str, Any] = {
        "id": n, "payer": f"payer-{n % 7}", "amount": Decimal(f"{n * 3}.{n % 100:02d}"),
        "at": datetime(2024, 3, 1, 12, 0, n % 60, n * 7 % 1_000_000, tzinfo=UTC),
        "ref": uuid.UUID(int=n + 1), "meta": {"n": n, "sq": n * n},
    }  # fmt: skip
    if version == 2:
        value["channel"] = "web" if n % 2 else None
    return value


class Producing:
    """A producer serializing with the real AvroSerializer over the stand-in registry."""

    def __init__(self, bootstrap: str, registry: RegistryStandIn, topic: str) -> None:
        self.topic = topic
        self.client = SchemaRegistryClient({"url": registry.url})
        self.serializers = {1: AvroSerializer(self.client, json.dumps(V1)), 2: AvroSerializer(self.client, json.dumps(V2))}
        self.producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
        self.sent: list[tuple[int, dict[str, Any] | None]] = []  # (version, value) in produce order; None: poison

    def avro(self, n: int, version: int) -> bytes:
        data = self.serializers[version](payment(n, version), SerializationContext(self.topic, MessageField.VALUE))
        assert data is not None
        return data

    def send(self, value: bytes, expected: tuple[int, dict[str, Any]] | None) -> None:
        self.producer.produce(self.topic, value=value, partition=0)
        self.sent.append(expected if expected is not None else (0, None))

    def send_payment(self, n: int, version: int) -> None:
        self.send(self.avro(n, version), (version, payment(n, version)))

    def flush(self) -> None:
        assert self.producer.flush(30) == 0


def rows(db: Path) -> dict[int, dict[str, Any]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        cursor = con.execute('SELECT * FROM "E2E"."Payments"')
        names = [d[0] for d in cursor.description]
        return {row["KafkaOffset"]: row for row in (dict(zip(names, r, strict=True)) for r in cursor.fetchall())}
    finally:
        con.close()


def assert_row(row: dict[str, Any], version: int, value: dict[str, Any]) -> None:
    assert row["Id"] == value["id"]
    assert row["Payer"] == value["payer"]
    assert Decimal(str(row["Amount"])) == value["amount"]
    assert row["At"].replace(tzinfo=UTC) == value["at"]
    assert uuid.UUID(str(row["Ref"])) == value["ref"]
    assert json.loads(row["Meta"]) == value["meta"]
    # A field the record's schema version lacks, or a null, is an empty string (ADX strings have no null).
    assert row["Channel"] == ((value.get("channel") or "") if version == 2 else "")


@pytest.fixture
def ws(tmp_path: Path, kafka_bootstrap: str) -> Workspace:
    return Workspace(tmp_path, kafka_bootstrap)


def consumer(ws: Workspace, topic: str, registry: RegistryStandIn, total: int, *args: str) -> ConsumerProcess:
    env = {"INGESTION_CONFIG": str(ingestion_file(ws.root)), "SCHEMA_REGISTRY_URL": registry.url,
           "SCHEMA_REGISTRY_TIMEOUT": "2"}  # fmt: skip
    return ConsumerProcess(ws, topic, f"avro-{uuid.uuid4().hex[:8]}", "--max-records", str(total), *args, env=env)


def test_two_schema_versions_and_bad_records_every_value_compared(
    ws: Workspace, kafka_topic: Callable[..., str], schema_registry: RegistryStandIn
) -> None:
    topic = kafka_topic(partitions=1, prefix="avro-e2e")
    out = Producing(ws.bootstrap, schema_registry, topic)
    for n in range(120):
        out.send_payment(n, 1 if n < 60 else 2)
    good = out.avro(1000, 1)
    out.send(b"\x00" + (77).to_bytes(4, "big") + good[5:], None)  # an id the registry never gave
    out.send(b'{"id": 1}', None)  # JSON on an Avro topic: no magic byte
    out.send(good[:-4], None)  # truncated
    for n in range(120, 140):
        out.send_payment(n, 1 if n % 2 else 2)  # both versions interleaved after the poison
    out.flush()
    total = len(out.sent)

    proc = consumer(ws, topic, schema_registry, total, "--batch-records", "50")
    assert proc.wait(120) == 0, proc.output()
    assert f"{total:,} received, 140 ingested, 3 dead-lettered" in proc.output()

    landed = rows(ws.db)
    expected = {offset: sent for offset, sent in enumerate(out.sent) if sent[1] is not None}
    assert set(landed) == set(expected)
    for offset, (version, value) in expected.items():
        assert value is not None
        assert_row(landed[offset], version, value)
    reasons = {letter.record.offset: letter.reason for letter in dead_letters(ws.deadletter_dir)}
    assert sorted(reasons) == [120, 121, 122]
    assert "schema id 77" in reasons[120] and "no schema id 77" in reasons[120]
    assert "missing magic byte" in reasons[121]
    assert "schema id 1: bytes do not decode as Avro" in reasons[122]
    # Each schema id was asked for once by the consumer, however many records named it.
    assert schema_registry.fetches(1) == 1 and schema_registry.fetches(2) == 1


def test_registry_down_mid_run_retries_the_batch_and_loses_nothing(
    ws: Workspace, kafka_topic: Callable[..., str], schema_registry: RegistryStandIn
) -> None:
    topic = kafka_topic(partitions=1, prefix="avro-down")
    out = Producing(ws.bootstrap, schema_registry, topic)
    for n in range(30):
        out.send_payment(n, 1)
    out.flush()
    v2_first = out.avro(30, 2)  # registers version 2 while the registry is up (the producer caches its id)
    # 90 records, so that the batch that meets the outage (30-59) is not the last one: on the last,
    # --max-records is stopping the consumer, which then exits uncommitted instead of retrying.
    proc = consumer(ws, topic, schema_registry, 90, "--batch-records", "30", "--deadletter-retry-timeout", "300")
    proc.wait_for("flushed 30 record(s): 30 ingested", timeout=120)

    schema_registry.stop()  # the consumer has id 1 cached, not id 2
    out.send(v2_first, (2, payment(30, 2)))
    for n in range(31, 60):
        out.send_payment(n, 2)
    out.flush()
    proc.wait_for("unreachable", timeout=120)  # the batch failed as transient, nothing committed
    assert dead_letters(ws.deadletter_dir) == []

    schema_registry.start()
    for n in range(60, 90):
        out.send_payment(n, 2)
    out.flush()
    assert proc.wait(180) == 0, proc.output()
    assert "90 received, 90 ingested, 0 dead-lettered" in proc.output()
    landed = rows(ws.db)
    assert sorted(landed) == list(range(90))
    for offset, (version, value) in enumerate(out.sent):
        assert value is not None
        assert_row(landed[offset], version, value)
    assert dead_letters(ws.deadletter_dir) == []


JSON_SCHEMA = {
    "$schema": "http://json-schema.org/draft-07/schema#", "title": "Payment", "type": "object",
    "properties": {"id": {"type": "integer"}, "payer": {"type": "string"}, "amount": {"type": "string"},
                   "at": {"type": "string", "format": "date-time"}, "ref": {"type": "string"},
                   "meta": {"type": "object"}, "channel": {"type": ["string", "null"]}},
    "required": ["id", "payer"],
}  # fmt: skip


def test_json_schema_records_through_consume(
    ws: Workspace, kafka_topic: Callable[..., str], schema_registry: RegistryStandIn
) -> None:
    from confluent_kafka.schema_registry.json_schema import JSONSerializer

    topic = kafka_topic(partitions=1, prefix="avro-json")  # "avro-*" is the file's route pattern
    config = ingestion_file(ws.root)
    config.write_text(config.read_text().replace("format: avro", "format: jsonschema"))
    serialize = JSONSerializer(json.dumps(JSON_SCHEMA), SchemaRegistryClient({"url": schema_registry.url}))
    producer = Producer({"bootstrap.servers": ws.bootstrap})
    values = [{"id": n, "payer": f"p{n}", "amount": f"{n}.25", "at": f"2024-03-01T12:00:{n:02d}.5Z",
               "ref": str(uuid.UUID(int=n)), "meta": {"n": n}, "channel": "app" if n % 2 else None} for n in range(20)]  # fmt: skip
    for value in values:
        producer.produce(topic, value=serialize(value, SerializationContext(topic, MessageField.VALUE)), partition=0)
    producer.produce(topic, value=b"\x00\x00\x00\x00\x01" + b'{"id": "x", "payer": "p"}', partition=0)  # fails the schema
    assert producer.flush(30) == 0
    env = {"INGESTION_CONFIG": str(config), "SCHEMA_REGISTRY_URL": schema_registry.url}
    proc = ConsumerProcess(ws, topic, f"json-{uuid.uuid4().hex[:8]}", "--max-records", "21", env=env)
    assert proc.wait(120) == 0, proc.output()
    landed = rows(ws.db)
    assert sorted(landed) == list(range(20))
    for n, value in enumerate(values):
        row = landed[n]
        assert (row["Id"], row["Payer"], Decimal(str(row["Amount"]))) == (n, value["payer"], Decimal(value["amount"]))
        assert row["At"].replace(tzinfo=UTC) == datetime(2024, 3, 1, 12, 0, n, 500000, tzinfo=UTC)
        assert str(row["Ref"]) == value["ref"] and json.loads(row["Meta"]) == {"n": n}
        assert row["Channel"] == (value["channel"] or "")
    [letter] = dead_letters(ws.deadletter_dir)
    assert letter.record.offset == 20 and "does not match its JSON Schema at $.id" in letter.reason
