"""``kafka-adx consume`` emits the catalogue's metrics (shared.metrics) while consuming a real
broker: records received per partition with the group, ingested per table, dead letters by
stage, lag per partition; read back with the OpenTelemetry SDK's in-memory reader (the OTLP
exporter swapped for it)."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from confluent_kafka import Producer
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from shared import metrics as m
from shared.cli.app import main
from tests.unit.functions.test_telemetry import read, total

REPO = Path(__file__).resolve().parents[3]


def test_consume_emits_the_catalogue(
    tmp_path: Path, kafka_bootstrap: str, kafka_topic: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    topic = kafka_topic(partitions=2, prefix="metrics")
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    for i in range(20):
        value = b"{not json" if i == 7 else json.dumps({"StartTime": "2007-01-01T00:00:00Z", "EventId": i}).encode()
        producer.produce(topic, value, partition=i % 2)
    assert producer.flush(30) == 0
    reader = InMemoryMetricReader()
    monkeypatch.setattr(m, "otlp_meter_provider", lambda: MeterProvider(metric_readers=[reader]))
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ADX_", "DEADLETTER_", "LOCAL_", "INGESTION_", "KAFKA_", "APPLICATIONINSIGHTS_"))}
    env.update(LOCAL_DB=str(tmp_path / "db.duckdb"), LOCAL_DEADLETTER_DIR=str(tmp_path / "dl"),
               INGESTION_CONFIG=str(tmp_path / "ingestion.yaml"), OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9")
    # The sample file routes storm-events-json to StormEvents: this test's topic goes there too.
    config = (REPO / "ingestion.yaml").read_text().replace("- topic: storm-events-json", f"- topic: {topic}")
    (tmp_path / "ingestion.yaml").write_text(config)
    group = f"metrics-{uuid.uuid4().hex[:8]}"
    result = CliRunner().invoke(main, ["consume", "-t", topic, "-g", group, "-b", kafka_bootstrap,
                                       "--max-records", "20", "--log-level", "WARNING"], env=env,
                                catch_exceptions=False)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "20 received, 19 ingested, 1 dead-lettered" in result.output

    points = read(reader)
    received = {a["messaging.destination.partition.id"]: v for a, v in points["messaging.client.consumed.messages"]}
    assert received == {"0": 10, "1": 10}
    assert {a["messaging.consumer.group.name"] for a, _ in points["messaging.client.consumed.messages"]} == {group}
    assert points["kafka_adx.records.ingested"] == [
        ({"kafka_adx.table": "Weather.StormEvents", "messaging.system": "kafka"}, 19)]
    [(letters, one)] = points["kafka_adx.records.dead_lettered"]
    assert one == 1 and (letters["kafka_adx.table"], letters["kafka_adx.stage"]) == ("Weather.StormEvents", "decode")
    assert total(points, "kafka_adx.batches.queued") >= 1 and total(points, "kafka_adx.bytes.queued") > 0
    assert {a["messaging.destination.partition.id"] for a, _ in points["kafka_adx.lag"]} == {"0", "1"}
