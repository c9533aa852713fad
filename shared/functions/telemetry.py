"""OpenTelemetry for the function app: the metrics of :mod:`shared.metrics` and a span per
trigger batch, exported to Application Insights when ``APPLICATIONINSIGHTS_CONNECTION_STRING``
is set, else over OTLP when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is (nothing is imported otherwise)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from shared import metrics as m
from shared.functions.summary import BatchSummary


class Telemetry:
    """Metrics and a span per batch; a no-op until :meth:`enable` is called."""

    def __init__(self) -> None:
        self.enabled = False
        self._tracer: Any = None
        self._metrics: m.Metrics | None = None

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str] | None = None,
        configure: Callable[[str], m.Export | None] | None = None,
        otlp: Callable[[], Any] | None = None,
    ) -> Telemetry:
        """Export to Application Insights when APPLICATIONINSIGHTS_CONNECTION_STRING is set (with
        ``configure``, default :func:`shared.metrics.azure_monitor_export`), else over OTLP when
        OTEL_EXPORTER_OTLP_ENDPOINT is; otherwise nothing is imported or configured."""
        env = os.environ if env is None else env
        telemetry = cls()
        export = m.configure_export(env, azure_monitor=configure, otlp=otlp)
        if export is not None:
            telemetry.enable(meter_provider=export.meter_provider, tracer_provider=export.tracer_provider)
        return telemetry

    def enable(self, meter_provider: Any = None, tracer_provider: Any = None) -> None:
        """Create the instruments on the given (default: global) OpenTelemetry providers."""
        from opentelemetry import trace

        self._metrics = m.Metrics(meter_provider)
        self._tracer = (tracer_provider or trace.get_tracer_provider()).get_tracer(m.METER_NAME)
        self.enabled = True

    @contextmanager
    def span(self, trigger: str) -> Iterator[Any]:
        """A span around one batch (None when disabled)."""
        if not self.enabled:
            yield None
            return
        with self._tracer.start_as_current_span("kafka_adx.batch", attributes={"faas.name": trigger}) as span:
            yield span

    def record(self, summary: BatchSummary, span: Any = None) -> None:
        """Add one batch's numbers to the metrics and its span."""
        if self._metrics is None:
            return
        _record(self._metrics, summary)
        if span is not None:
            for key, value in summary.fields().items():
                if value is not None:
                    span.set_attribute(f"kafka_adx.{key}", value)

    def preflight_failed(self, check: str = "target") -> None:
        """Count a failed start-up check (the worker starts anyway)."""
        if self._metrics is not None:
            self._metrics.add(m.PREFLIGHT_FAILURES, 1, {m.CHECK: check})


def _record(metrics: m.Metrics, summary: BatchSummary) -> None:
    system, trigger = m.system_of(summary.source), summary.trigger
    source = {m.SYSTEM: system, m.TRIGGER: trigger}
    for (topic, partition), count in summary.partition_counts.items():
        where = {m.DESTINATION: topic, m.PARTITION: str(partition)}
        metrics.add(m.RECEIVED, count, source | where | {m.OPERATION: "process"})
    for (topic, partition), lag in summary.partition_lags.items():
        metrics.record(m.LAG, lag, source | {m.DESTINATION: topic, m.PARTITION: str(partition)})
    metrics.record(m.PROCESS_DURATION, summary.seconds, source | {
        m.OPERATION: "process", m.OUTCOME: summary.outcome, m.ERROR_TYPE: summary.error_type})  # fmt: skip
    metrics.add(m.BYTES_RECEIVED, summary.bytes, source)
    _record_tables(metrics, summary, source)
    if summary.attempt_number > 1:
        metrics.add(m.RETRIES, 1, {m.RETRY_KIND: "redelivery", m.TRIGGER: trigger})
        if summary.final_attempt:
            metrics.add(m.FINAL_ATTEMPT_DEAD_LETTERED, summary.dead_lettered, source)


def _record_tables(metrics: m.Metrics, summary: BatchSummary, source: dict[str, Any]) -> None:
    """Counts per table when the summary has them (:meth:`BatchSummary.take`), else totals;
    dead letters by stage, with the table when one table holds them all."""
    if not summary.tables:
        metrics.add(m.INGESTED, summary.ingested, source)
    for name, counts in summary.tables.items():
        table = {m.TABLE: name}
        metrics.add(m.INGESTED, counts.ingested, source | table)
        metrics.add(m.BATCHES_QUEUED, counts.batches, table)
        metrics.add(m.BYTES_QUEUED, counts.gzip_bytes, table)
    with_letters = [name for name, counts in summary.tables.items() if counts.dead_lettered]
    only = with_letters[0] if len(with_letters) == 1 else None
    for stage, count in summary.reasons.items():
        metrics.add(m.DEAD_LETTERED, count, source | {m.STAGE: stage, m.TABLE: only})
