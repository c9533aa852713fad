"""The function app's metrics, read back with the OpenTelemetry SDK's in-memory reader: the
catalogue's names and attributes (shared.metrics), per partition and per table, retries and
final-attempt dead letters, a span per batch, and the exporter chosen by the environment."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from shared import metrics as m
from shared.functions import worker as functions_worker
from shared.functions.summary import BatchSummary
from shared.functions.telemetry import Telemetry
from shared.pipeline.core import Result
from tests.support.functions_app import EVENTHUB_ENV, LocalApp
from tests.support.functions_host import Context, HubEvent, eventhub_events
from tests.support.records import rec

Points = dict[str, list[tuple[dict[str, Any], Any]]]


def read(reader: InMemoryMetricReader) -> Points:
    """metric name -> [(attributes, value or histogram count)]."""
    out: Points = {}
    data = reader.get_metrics_data()
    assert data is not None
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    value = point.value if hasattr(point, "value") else point.count
                    out.setdefault(metric.name, []).append((dict(point.attributes or {}), value))
    return out


def total(points: Points, name: str) -> float:
    return sum(value for _, value in points.get(name, []))


def enabled() -> tuple[Telemetry, InMemoryMetricReader, InMemorySpanExporter]:
    reader = InMemoryMetricReader()
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    telemetry = Telemetry()
    telemetry.enable(meter_provider=MeterProvider(metric_readers=[reader]), tracer_provider=tracer_provider)
    return telemetry, reader, exporter


def test_a_trigger_batch_through_the_app(local_app: Callable[[dict[str, str]], LocalApp]) -> None:
    app = local_app(EVENTHUB_ENV)
    telemetry, reader, exporter = enabled()
    functions_worker.install(functions_worker.worker().pipeline, telemetry)
    events = [HubEvent.from_kafka_producer(i, b'{"EventId": %d}' % i) for i in range(10)] + [HubEvent(10, b"")]
    app.call("eventhub_ingest", eventhub_events(events), Context("eventhub_ingest"))

    points = read(reader)
    assert set(points) <= {metric.name for metric in m.CATALOGUE}
    [(received, count)] = points["messaging.client.consumed.messages"]
    assert count == 11 and received == {"messaging.system": "eventhubs", "messaging.operation.name": "process",
                                        "messaging.destination.name": "storm-events-json",
                                        "messaging.destination.partition.id": "3", "kafka_adx.trigger": "eventhub_ingest"}
    assert total(points, "kafka_adx.records.ingested") == 10
    [(letters, one)] = points["kafka_adx.records.dead_lettered"]
    assert one == 1 and letters["kafka_adx.stage"] == "decode"
    assert total(points, "kafka_adx.bytes.received") == sum(len(e.body) for e in events)
    [(process, batches)] = points["messaging.process.duration"]
    assert batches == 1 and process["kafka_adx.outcome"] == "partial"
    [(lag, _)] = points["kafka_adx.lag"]
    assert lag["messaging.destination.partition.id"] == "3"
    assert "kafka_adx.retries" not in points  # the first delivery
    (span,) = exporter.get_finished_spans()
    assert span.name == "kafka_adx.batch"
    assert span.attributes is not None
    assert (span.attributes["kafka_adx.received"], span.attributes["kafka_adx.partitions"]) == (11, "storm-events-json[3]@0-10")


def summary_of(attempt: str) -> BatchSummary:
    now = datetime(2024, 5, 1, 12, tzinfo=UTC)
    records = [rec(b"{}", topic="orders", partition=p, offset=i) for i, p in enumerate([0, 0, 1])]
    records[2] = rec(b"{}", topic="orders", partition=1, offset=2)
    summary = BatchSummary(trigger="kafka_ingest", source="kafka", attempt=attempt)
    summary.describe_input(records, now + timedelta(seconds=90))
    result = Result(received=3)
    events, clicks = result.table("db.Events"), result.table("db.Clicks")
    events.ingested, events.batches, events.gzip_bytes = 2, 1, 120
    clicks.dead_lettered = 1
    result.ingested, result.dead_lettered, result.reasons = 2, 1, {"map": 1}
    summary.take(result)
    summary.seconds, summary.outcome = 0.25, "partial"
    return summary


def test_per_table_counts_lag_per_partition_and_a_final_redelivery() -> None:
    telemetry, reader, _ = enabled()
    telemetry.record(summary_of("3/3"))
    points = read(reader)
    assert points["kafka_adx.records.ingested"] == [
        ({"kafka_adx.table": "db.Events", "messaging.system": "kafka", "kafka_adx.trigger": "kafka_ingest"}, 2)]
    assert points["kafka_adx.batches.queued"] == [({"kafka_adx.table": "db.Events"}, 1)]
    assert points["kafka_adx.bytes.queued"] == [({"kafka_adx.table": "db.Events"}, 120)]
    # One table holds the batch's dead letters: the stage and the table both.
    [(letters, one)] = points["kafka_adx.records.dead_lettered"]
    assert one == 1 and (letters["kafka_adx.table"], letters["kafka_adx.stage"]) == ("db.Clicks", "map")
    assert sorted(a["messaging.destination.partition.id"] for a, _ in points["kafka_adx.lag"]) == ["0", "1"]
    assert points["kafka_adx.retries"] == [({"kafka_adx.retry.kind": "redelivery", "kafka_adx.trigger": "kafka_ingest"}, 1)]
    assert total(points, "kafka_adx.final_attempt.dead_lettered") == 1


def test_a_second_delivery_that_is_not_the_last_counts_a_retry_only() -> None:
    telemetry, reader, _ = enabled()
    telemetry.record(summary_of("2/6"))
    telemetry.preflight_failed()
    points = read(reader)
    assert total(points, "kafka_adx.retries") == 1
    assert "kafka_adx.final_attempt.dead_lettered" not in points
    assert points["kafka_adx.preflight.failures"] == [({"kafka_adx.check": "target"}, 1)]


def test_an_attribute_outside_the_catalogue_is_refused() -> None:
    metrics = m.Metrics(MeterProvider(metric_readers=[InMemoryMetricReader()]))
    with pytest.raises(ValueError, match=r"no attribute kafka_adx\.nope"):
        metrics.add(m.INGESTED, 1, {"kafka_adx.nope": "x"})


def test_the_exporter_follows_the_environment() -> None:
    calls: list[str] = []
    providers: list[MeterProvider] = []

    def otlp() -> MeterProvider:
        providers.append(MeterProvider(metric_readers=[InMemoryMetricReader()]))
        return providers[-1]

    assert not Telemetry.from_env({}, configure=calls.append, otlp=otlp).enabled
    assert calls == [] and providers == []
    connection = "InstrumentationKey=00000000-0000-0000-0000-000000000000"
    both = {"APPLICATIONINSIGHTS_CONNECTION_STRING": connection, m.OTLP_ENDPOINT_SETTING: "http://127.0.0.1:4318"}
    assert Telemetry.from_env(both, configure=calls.append, otlp=otlp).enabled
    assert calls == [connection] and providers == []  # Azure Monitor wins in Azure
    assert Telemetry.from_env({m.OTLP_ENDPOINT_SETTING: "http://127.0.0.1:4318"}, configure=calls.append, otlp=otlp).enabled
    assert len(providers) == 1
