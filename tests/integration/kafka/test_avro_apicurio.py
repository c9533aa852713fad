"""Avro end to end through a real schema registry: Apicurio Registry (built from Maven Central by
scripts/apicurio-install.sh, in-memory storage, on loopback) serves its Confluent-compatible API to
confluent-kafka's real ``SchemaRegistryClient`` and ``AvroSerializer``; the producer sends to the
real broker; ``consume`` (the same :class:`~shared.kafka.consumer.KafkaIngestor`) decodes with the
schemas kafka-adx fetches from Apicurio and maps them into DuckDB, every value compared. Two
schema versions of one subject on one topic (evolution: the new field is empty in old records),
and an id Apicurio never gave, dead-lettered naming it.

The stand-in's tests (test_avro_consume.py) cover what a real registry cannot be made to do on
cue (answer 5xx, go slow); these hold kafka-adx to a registry it did not write.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext

from scripts.schema_registry import ApicurioRegistry, answers
from shared.deadletters.local import LocalDeadLetterStore
from shared.kafka.consumer import ConsumerOptions, KafkaIngestor
from shared.pipeline.retry import RetryPolicy
from shared.settings import Settings
from shared.wiring import build_pipeline
from tests.integration.kafka.test_avro_consume import V1, V2, assert_row, ingestion_file, payment, rows

pytestmark = pytest.mark.kafka


def client(registry: ApicurioRegistry) -> SchemaRegistryClient:
    return SchemaRegistryClient({"url": registry.url, "max.retries": 0})


def test_apicurio_answers_the_confluent_client(apicurio_registry: ApicurioRegistry) -> None:
    sr = client(apicurio_registry)
    subject = f"readings-{uuid.uuid4().hex[:8]}-value"
    first = sr.register_schema(subject, Schema(json.dumps(V1), "AVRO"))
    second = sr.register_schema(subject, Schema(json.dumps(V2), "AVRO"))
    assert first != second
    assert sr.register_schema(subject, Schema(json.dumps(V1), "AVRO")) == first  # registering again: same id
    assert subject in sr.get_subjects()
    assert sr.get_versions(subject) == [1, 2]
    latest = sr.get_latest_version(subject)
    assert (latest.version, latest.schema_id) == (2, second)
    assert sr.get_version(subject, 1).schema_id == first
    assert json.loads(sr.get_schema(first).schema_str or "") == V1
    assert json.loads(client(apicurio_registry).get_schema(second).schema_str or "") == V2
    assert sr.lookup_schema(subject, Schema(json.dumps(V2), "AVRO")).version == 2
    with pytest.raises(SchemaRegistryError) as missing:
        client(apicurio_registry).get_schema(987_654)
    assert (missing.value.http_status_code, missing.value.error_code) == (404, 40403)
    # The real serializers round-trip through it.
    ctx = SerializationContext(subject.removesuffix("-value"), MessageField.VALUE)
    data = AvroSerializer(sr, json.dumps(V1), conf={"auto.register.schemas": False, "use.latest.version": False})
    value = payment(3, 1)
    framed = data(value, ctx)
    assert framed is not None and int.from_bytes(framed[1:5], "big") == first
    assert AvroDeserializer(client(apicurio_registry))(framed, ctx) == value


def test_two_schema_versions_through_apicurio_into_duckdb_every_value_compared(
    tmp_path: Path,
    kafka_bootstrap: str,
    kafka_topic: Callable[..., str],
    apicurio_registry: ApicurioRegistry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    topic = kafka_topic(partitions=1, prefix="avro-apicurio")
    sr = client(apicurio_registry)
    ctx = SerializationContext(topic, MessageField.VALUE)
    serializers = {1: AvroSerializer(sr, json.dumps(V1)), 2: AvroSerializer(sr, json.dumps(V2))}
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "enable.idempotence": True})
    sent: list[tuple[int, dict[str, Any] | None]] = []  # (version, value) in produce order; None: poison
    ids: dict[int, int] = {}

    def send(n: int, version: int) -> None:
        data = serializers[version](payment(n, version), ctx)
        assert data is not None
        ids[version] = int.from_bytes(data[1:5], "big")
        producer.produce(topic, value=data, partition=0)
        sent.append((version, payment(n, version)))

    for n in range(50):
        send(n, 1)
    for n in range(50, 100):
        send(n, 2)
    unknown = max(ids.values()) + 10_000
    producer.produce(topic, value=b"\x00" + unknown.to_bytes(4, "big") + b"\x02", partition=0)
    sent.append((0, None))
    for n in range(100, 120):
        send(n, 1 if n % 2 else 2)  # both versions interleaved after the poison
    assert producer.flush(30) == 0
    assert sr.get_versions(f"{topic}-value") == [1, 2]  # the serializers registered two versions

    # The pipeline's Avro decoder takes the registry from the Settings it is built with (a
    # deployment's come from its environment); an environment pointing elsewhere is not read.
    monkeypatch.setenv("SCHEMA_REGISTRY_URL", "http://127.0.0.1:9/not-this-one")
    settings = Settings(ingestion_config=ingestion_file(tmp_path), local_db=tmp_path / "db.duckdb",
                        local_deadletter_dir=tmp_path / "deadletter",
                        schema_registry_url=apicurio_registry.url)  # fmt: skip
    pipeline = build_pipeline(settings, retry=RetryPolicy())
    options = ConsumerOptions(topics=(topic,), group=f"apicurio-{uuid.uuid4().hex[:8]}", batch_records=40,
                              max_records=len(sent), idle_exit=60.0)  # fmt: skip
    try:
        consumed = KafkaIngestor(pipeline, {"bootstrap.servers": kafka_bootstrap}, options).run()
    finally:
        pipeline.close()
    assert (consumed.result.received, consumed.result.ingested, consumed.result.dead_lettered) == (len(sent), 120, 1)

    landed = rows(tmp_path / "db.duckdb")
    expected = {offset: item for offset, item in enumerate(sent) if item[1] is not None}
    assert set(landed) == set(expected)
    for offset, (version, value) in expected.items():
        assert value is not None
        assert_row(landed[offset], version, value)
    store = LocalDeadLetterStore(tmp_path / "deadletter")
    letters = [letter for set_id in store.sets() for letter in store.read(set_id)]
    assert [letter.record.offset for letter in letters] == [100]
    assert f"schema id {unknown}" in letters[0].reason and letters[0].stage == "decode"


def test_the_command_line_starts_apicurio_in_the_background_and_stops_it(
    tmp_path: Path,
    apicurio_registry: ApicurioRegistry,
) -> None:
    state = tmp_path / "registry.json"
    run = [sys.executable, str(Path(__file__).resolve().parents[3] / "scripts" / "schema_registry.py")]
    started = subprocess.run([*run, "start", "--state-file", str(state)], capture_output=True, text=True, timeout=300)
    assert started.returncode == 0, started.stderr
    url = started.stdout.strip().splitlines()[-1]
    try:
        assert url.endswith("/apis/ccompat/v7") and url != apicurio_registry.url
        assert "Apicurio Registry" in started.stderr and answers(url)
        workdir = Path(json.loads(state.read_text())["workdir"])
        assert workdir.is_dir()
    finally:
        stopped = subprocess.run([*run, "stop", "--state-file", str(state)], capture_output=True, text=True, timeout=60)
    assert stopped.returncode == 0, stopped.stderr
    assert not answers(url) and not state.exists() and not workdir.exists()
