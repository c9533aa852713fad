"""The metrics ``consume`` emits (shared.metering around a real pipeline, read back with the
OpenTelemetry SDK's in-memory reader): per table, per stage, per source partition, sink
retries and write durations; and the pipeline delivers exactly as without them."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from shared import metrics as m
from shared.deadletters.local import LocalDeadLetterStore
from shared.metering import instrument
from shared.pipeline.core import Pipeline, RetryPolicy
from shared.pipeline.sink import MemorySink
from tests.support.records import make_config, rec
from tests.unit.functions.test_telemetry import read, total

NOW = datetime(2024, 1, 1, 0, 5, tzinfo=UTC)  # the records' timestamps are 2024-01-01T00:00Z


def test_a_metered_pipeline_counts_what_it_delivers(tmp_path: Path) -> None:
    reader = InMemoryMetricReader()
    metrics = m.Metrics(MeterProvider(metric_readers=[reader]))
    sink = MemorySink(fail_times=1)  # the first write fails: one retry in process
    store = LocalDeadLetterStore(tmp_path / "dl")
    pipeline = Pipeline(make_config(), sink, store, retry=RetryPolicy(attempts=3, base_delay=0), sleep=lambda s: None)
    seen: list[int] = []
    pipeline.on_batch = lambda batch: seen.append(batch.count)
    instrument(pipeline, metrics, group="g1", clock=lambda: NOW)

    good = [rec(b'{"a": "x", "n": 1}', topic="json", offset=i, partition=i % 2) for i in range(6)]
    result = pipeline.process([*good, rec(b"", topic="json", offset=9, partition=1), rec(b"line", topic="raw", offset=3)])
    assert (result.ingested, result.dead_lettered) == (7, 1)
    assert sorted(seen) == [1, 6]  # the callback set before is still called

    points = read(reader)
    ingested = {a["kafka_adx.table"]: v for a, v in points["kafka_adx.records.ingested"]}
    assert ingested == {"db.T": 6, "db.Raw": 1}
    [(letters, one)] = points["kafka_adx.records.dead_lettered"]
    assert one == 1 and letters == {"kafka_adx.table": "(unrouted)", "kafka_adx.stage": "decode", "messaging.system": "kafka"}
    received = {(a["messaging.destination.name"], a["messaging.destination.partition.id"]): v
                for a, v in points["messaging.client.consumed.messages"]}
    assert received == {("json", "0"): 3, ("json", "1"): 4, ("raw", "0"): 1}
    assert all(a["messaging.consumer.group.name"] == "g1" and a["messaging.operation.name"] == "receive"
               for a, _ in points["messaging.client.consumed.messages"])
    assert total(points, "kafka_adx.batches.queued") == 2
    assert total(points, "kafka_adx.bytes.queued") == sum(len(b.payload) for b in sink.batches)
    assert points["kafka_adx.retries"] == [({"kafka_adx.table": "db.T", "kafka_adx.retry.kind": "sink"}, 1)]
    durations = {tuple(sorted(a.items())): v for a, v in points["kafka_adx.sink.duration"]}
    assert durations[(("error.type", "TransientError"), ("kafka_adx.table", "db.T"))] == 1
    assert durations[(("kafka_adx.table", "db.T"),)] == 1
    # Lag per source partition: the batch's oldest record, 5 minutes before the clock.
    lags = {a["messaging.destination.partition.id"]: v for a, v in points["kafka_adx.lag"] if a["messaging.destination.name"] == "json"}
    assert lags == {"0": 1, "1": 1}
    data = reader.get_metrics_data()
    assert data is not None
    [lag] = [metric for metric in data.resource_metrics[0].scope_metrics[0].metrics if metric.name == "kafka_adx.lag"]
    assert {point.sum for point in lag.data.data_points} == {(NOW - good[0].timestamp).total_seconds()}  # type: ignore[union-attr]
