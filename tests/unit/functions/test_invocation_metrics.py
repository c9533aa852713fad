"""What one invocation hands the telemetry (shared/functions/invocation.py, worker.py), read back
with the OpenTelemetry SDK's in-memory reader: per-table counts with the batches and bytes queued,
the class of the exception that ended a batch, and a failed preflight at worker start."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from shared.config import IngestionConfig
from shared.deadletters.local import LocalDeadLetterStore
from shared.errors import TransientError
from shared.functions import worker as functions_worker
from shared.functions.telemetry import Telemetry
from shared.ops.sample import storm_events, to_json
from shared.pipeline.core import Pipeline
from shared.pipeline.retry import RetryPolicy
from shared.pipeline.sink import MemorySink
from tests.support.functions_app import KAFKA_ENV, LocalApp, load_app
from tests.support.functions_host import Context, KafkaMessage, kafka_events
from tests.unit.functions.test_telemetry import enabled, read, total

MESSAGES = [KafkaMessage("storm-events-json", i, to_json(e)) for i, e in enumerate(storm_events(5, seed=4))]


def _install(config: IngestionConfig, sink: MemorySink, tmp_path: Path) -> InMemoryMetricReader:
    """The worker on ``sink`` with telemetry read back by the returned reader."""
    telemetry, reader, _ = enabled()
    pipeline = Pipeline(config, sink, LocalDeadLetterStore(tmp_path / "dl"), retry=RetryPolicy(attempts=1))
    functions_worker.install(pipeline, telemetry)
    return reader


def test_a_batch_reports_its_tables_batches_and_bytes_queued(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sample_config: IngestionConfig
) -> None:
    functions = load_app(monkeypatch, KAFKA_ENV)
    sink = MemorySink()
    reader = _install(sample_config, sink, tmp_path)
    try:
        functions["kafka_ingest"].get_user_function()(events=kafka_events(MESSAGES), context=Context("kafka_ingest"))
    finally:
        functions_worker.reset()
    points = read(reader)
    [(ingested, count)] = points["kafka_adx.records.ingested"]
    assert count == 5 and ingested["kafka_adx.table"] == "Weather.StormEvents"
    assert points["kafka_adx.batches.queued"] == [({"kafka_adx.table": "Weather.StormEvents"}, len(sink.batches))]
    assert total(points, "kafka_adx.bytes.queued") == sum(len(b.payload) for b in sink.batches) > 0
    [(process, _)] = points["messaging.process.duration"]
    assert "error.type" not in process


def test_a_failed_batch_names_the_class_of_its_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sample_config: IngestionConfig
) -> None:
    functions = load_app(monkeypatch, KAFKA_ENV)
    reader = _install(sample_config, MemorySink(fail_times=1), tmp_path)
    try:
        with pytest.raises(TransientError):  # not the final attempt: the host redelivers
            functions["kafka_ingest"].get_user_function()(
                events=kafka_events(MESSAGES), context=Context("kafka_ingest", retry_count=0, max_retry_count=3))
    finally:
        functions_worker.reset()
    [(process, one)] = read(reader)["messaging.process.duration"]
    assert one == 1 and (process["kafka_adx.outcome"], process["error.type"]) == ("retry", "TransientError")


def test_a_failed_preflight_is_counted_once_per_worker_start(
    local_app: Callable[[dict[str, str]], LocalApp], monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as probe:  # a loopback port nobody listens on: ADX unreachable
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    telemetry, reader, _ = enabled()
    # The worker builds its telemetry from the environment; here, one read back in memory.
    monkeypatch.setattr(Telemetry, "from_env", classmethod(lambda cls, *a, **k: telemetry))
    app = local_app({**KAFKA_ENV, "ADX_INGEST_URI": f"http://127.0.0.1:{port}", "ADX_AUTH": "none"})
    for _ in range(2):
        with pytest.raises(TransientError):
            app.call("kafka_ingest", kafka_events(MESSAGES[:1]), Context("kafka_ingest", retry_count=0, max_retry_count=5))
    assert read(reader)["kafka_adx.preflight.failures"] == [({"kafka_adx.check": "target"}, 1)]


def test_a_worker_whose_preflight_passes_counts_no_failure(
    local_app: Callable[[dict[str, str]], LocalApp], monkeypatch: pytest.MonkeyPatch
) -> None:
    telemetry, reader, _ = enabled()
    monkeypatch.setattr(Telemetry, "from_env", classmethod(lambda cls, *a, **k: telemetry))
    app = local_app(KAFKA_ENV)  # local mode: DuckDB and a dead-letter folder, both usable
    app.call("kafka_ingest", kafka_events(MESSAGES[:1]), Context("kafka_ingest"))
    points = read(reader)
    assert "kafka_adx.preflight.failures" not in points and total(points, "kafka_adx.records.ingested") == 1
