"""Every metric kafka-adx emits, in one catalogue: stable names, units, attributes, and who
emits each (the function app, ``kafka-adx consume``). ``docs/operations.md`` shows the table
generated from :data:`CATALOGUE` (``scripts/gen_metrics_doc.py``; a test fails when it is stale),
and a workbook or alert can chart exactly these names.

Names follow the OpenTelemetry messaging semantic conventions where one applies
(``messaging.client.consumed.messages``, ``messaging.process.duration``, and the attributes
``messaging.system``, ``messaging.destination.name``, ``messaging.destination.partition.id``,
``messaging.consumer.group.name``, ``messaging.operation.name``, ``error.type``); what the
conventions do not cover (tables, dead letters, lag, retries) is named ``kafka_adx.*``.

Export: Azure Monitor (Application Insights, with ``azure-monitor-opentelemetry-exporter``) when
``APPLICATIONINSIGHTS_CONNECTION_STRING`` is set, else OTLP when :data:`OTLP_ENDPOINT_SETTING` (the standard OpenTelemetry variable) is set
and ``opentelemetry-exporter-otlp-proto-http`` is installed, else nothing (no instrument is
created and nothing OpenTelemetry is imported).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from shared.errors import ConfigError

log = logging.getLogger("kafka_adx.metrics")

OTLP_ENDPOINT_SETTING = "OTEL_EXPORTER_OTLP_ENDPOINT"
"""Where ``consume`` (and the function app outside Azure) sends metrics over OTLP/HTTP; the
exporter also reads the other ``OTEL_EXPORTER_OTLP_*`` variables (headers, timeout)."""
APPINSIGHTS_SETTING = "APPLICATIONINSIGHTS_CONNECTION_STRING"
"""Application Insights to export to (the function app's, set by the infrastructure)."""
METER_NAME = "kafka_adx"
"""The instrumentation scope of every metric."""

# --- attributes ---------------------------------------------------------------------------

SYSTEM = "messaging.system"
"""``kafka`` or ``eventhubs`` (the conventions' well-known values)."""
OPERATION = "messaging.operation.name"
"""``process`` (a trigger pushed the batch) or ``receive`` (``consume`` pulled it)."""
DESTINATION = "messaging.destination.name"
"""The topic or event hub."""
PARTITION = "messaging.destination.partition.id"
"""The source partition, as text."""
GROUP = "messaging.consumer.group.name"
"""The Kafka consumer group (``consume --group``)."""
ERROR_TYPE = "error.type"
"""Why the operation failed: the exception's class name; absent when it succeeded."""
TABLE = "kafka_adx.table"
"""``Database.Table`` of the destination, ``(unrouted)`` for a record no route took."""
STAGE = "kafka_adx.stage"
"""The stage that dead-lettered a record: decode, size, route, map, sink, internal."""
TRIGGER = "kafka_adx.trigger"
"""The function app's function (``kafka_ingest``, ``eventhub_ingest``)."""
OUTCOME = "kafka_adx.outcome"
"""How a trigger batch ended: ok, partial, dead-lettered, retry, failed."""
RETRY_KIND = "kafka_adx.retry.kind"
"""``sink`` (a write tried again in process) or ``redelivery`` (the trigger delivered a batch again)."""
CHECK = "kafka_adx.check"
"""The start-up check that failed: ``target`` (ADX or DuckDB, and the dead-letter store) or ``kafka``."""

ATTRIBUTE_DOCS: dict[str, str] = {
    name: doc
    for name, doc in [
        (SYSTEM, "`kafka` or `eventhubs`"),
        (OPERATION, "`process` (trigger) or `receive` (`consume`)"),
        (DESTINATION, "topic or event hub"),
        (PARTITION, "source partition"),
        (GROUP, "Kafka consumer group (`consume`)"),
        (ERROR_TYPE, "exception class, when it failed"),
        (TABLE, "`Database.Table`, or `(unrouted)`"),
        (STAGE, "decode, size, route, map, sink, internal"),
        (TRIGGER, "function name"),
        (OUTCOME, "ok, partial, dead-lettered, retry, failed"),
        (RETRY_KIND, "`sink` or `redelivery`"),
        (CHECK, "`target` or `kafka`"),
    ]
}
"""One line per attribute, for the generated table."""

FUNCTION_APP, CONSUME = "function app", "consume"

# Explicit buckets (seconds): the SDK's defaults (0 to 10,000) suit milliseconds, not seconds.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 30, 60)
"""The conventions' buckets for ``messaging.process.duration``, plus 30 s and 60 s (a slow ADX)."""
LAG_BUCKETS = (0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400)
"""End-to-end lag: from half a second to a day behind."""


@dataclass(frozen=True)
class Metric:
    """One metric of the catalogue."""

    name: str
    kind: Literal["counter", "histogram"]
    unit: str
    """UCUM, as OpenTelemetry writes it (``{record}``, ``By``, ``s``)."""
    description: str
    attributes: tuple[str, ...]
    emitted_by: tuple[str, ...]
    buckets: tuple[float, ...] | None = None


RECEIVED = Metric(
    "messaging.client.consumed.messages", "counter", "{message}",
    "Records received from the source (a trigger batch's events; for `consume`, counted as each "
    "record is ingested or dead-lettered)",
    (SYSTEM, OPERATION, DESTINATION, PARTITION, GROUP, TRIGGER), (FUNCTION_APP, CONSUME))
PROCESS_DURATION = Metric(
    "messaging.process.duration", "histogram", "s",
    "Time to process one trigger batch: route, encode, hand to ADX, dead-letter (the batch latency)",
    (SYSTEM, OPERATION, TRIGGER, OUTCOME, ERROR_TYPE), (FUNCTION_APP,), DURATION_BUCKETS)
SINK_DURATION = Metric(
    "kafka_adx.sink.duration", "histogram", "s",
    "Time of one write of a batch to ADX (or DuckDB): upload and queue, or stream; one try",
    (TABLE, ERROR_TYPE), (CONSUME,), DURATION_BUCKETS)
INGESTED = Metric(
    "kafka_adx.records.ingested", "counter", "{record}",
    "Records handed to the destination table (queued to ADX, or written to DuckDB)",
    (TABLE, SYSTEM, TRIGGER), (FUNCTION_APP, CONSUME))
DEAD_LETTERED = Metric(
    "kafka_adx.records.dead_lettered", "counter", "{record}",
    "Records written to the dead-letter store, by the stage that refused them",
    (TABLE, STAGE, SYSTEM, TRIGGER), (FUNCTION_APP, CONSUME))
BATCHES_QUEUED = Metric(
    "kafka_adx.batches.queued", "counter", "{batch}",
    "Batches handed to ADX (or DuckDB)", (TABLE,), (FUNCTION_APP, CONSUME))
BYTES_QUEUED = Metric(
    "kafka_adx.bytes.queued", "counter", "By",
    "Compressed (gzip) bytes of the batches handed to ADX", (TABLE,), (FUNCTION_APP, CONSUME))
BYTES_RECEIVED = Metric(
    "kafka_adx.bytes.received", "counter", "By",
    "Bytes of record values received", (SYSTEM, TRIGGER), (FUNCTION_APP,))
LAG = Metric(
    "kafka_adx.lag", "histogram", "s",
    "End-to-end lag of a batch: now minus its oldest record's timestamp, per source partition",
    (SYSTEM, DESTINATION, PARTITION, TRIGGER), (FUNCTION_APP, CONSUME), LAG_BUCKETS)
RETRIES = Metric(
    "kafka_adx.retries", "counter", "{retry}",
    "Retries: a sink write tried again in process after a transient failure, or a trigger batch "
    "delivered again by the host",
    (RETRY_KIND, TABLE, TRIGGER), (FUNCTION_APP, CONSUME))
FINAL_ATTEMPT_DEAD_LETTERED = Metric(
    "kafka_adx.final_attempt.dead_lettered", "counter", "{record}",
    "Records dead-lettered by the final attempt of a batch the host had delivered before (the "
    "retries did not help)", (TRIGGER, SYSTEM), (FUNCTION_APP,))
PREFLIGHT_FAILURES = Metric(
    "kafka_adx.preflight.failures", "counter", "{failure}",
    "Start-up checks that failed (ADX, storage or the broker unusable)", (CHECK,), (FUNCTION_APP, CONSUME))

CATALOGUE: tuple[Metric, ...] = (
    RECEIVED, INGESTED, DEAD_LETTERED, BATCHES_QUEUED, BYTES_QUEUED, BYTES_RECEIVED, PROCESS_DURATION,
    SINK_DURATION, LAG, RETRIES, FINAL_ATTEMPT_DEAD_LETTERED, PREFLIGHT_FAILURES,
)
"""Every metric, in the order of the generated table."""


def system_of(source: str) -> str:
    """``messaging.system`` of a record source (``kafka``, ``eventhub``, ``file``)."""
    return {"eventhub": "eventhubs"}.get(source, source)


class Metrics:
    """The instruments of :data:`CATALOGUE` on one meter. Every value goes through :meth:`add`
    or :meth:`record`, which refuse an attribute the catalogue does not list for the metric
    (so the generated table stays the truth)."""

    def __init__(self, meter_provider: Any = None) -> None:
        from opentelemetry import metrics

        meter = (meter_provider or metrics.get_meter_provider()).get_meter(METER_NAME)
        self._instruments: dict[str, Any] = {}
        for metric in CATALOGUE:
            if metric.kind == "counter":
                instrument = meter.create_counter(metric.name, unit=metric.unit, description=metric.description)
            else:
                instrument = meter.create_histogram(metric.name, unit=metric.unit, description=metric.description,
                                                    explicit_bucket_boundaries_advisory=metric.buckets)  # fmt: skip
            self._instruments[metric.name] = instrument

    @staticmethod
    def _check(metric: Metric, attributes: Mapping[str, Any]) -> dict[str, Any]:
        unknown = set(attributes) - set(metric.attributes)
        if unknown:
            raise ValueError(f"{metric.name} has no attribute {', '.join(sorted(unknown))} in the catalogue")
        return {k: v for k, v in attributes.items() if v is not None}

    def add(self, metric: Metric, value: float, attributes: Mapping[str, Any]) -> None:
        """Add to a counter (nothing for 0)."""
        if value:
            self._instruments[metric.name].add(value, self._check(metric, attributes))

    def record(self, metric: Metric, value: float, attributes: Mapping[str, Any]) -> None:
        """Record a histogram value."""
        self._instruments[metric.name].record(value, self._check(metric, attributes))


# --- exporters ----------------------------------------------------------------------------


@dataclass
class Export:
    """Where metrics (and the function app's spans) go once configured; :meth:`flush` before the
    process ends."""

    kind: Literal["azure-monitor", "otlp"]
    meter_provider: Any = None
    """The provider to create the instruments on (None: the global one)."""
    tracer_provider: Any = None
    """The provider of the function app's spans (None: the global one)."""

    def flush(self) -> None:
        """Export what is pending (the exporters send periodically otherwise)."""
        from opentelemetry import metrics, trace

        for provider in (self.meter_provider or metrics.get_meter_provider(),
                         self.tracer_provider or trace.get_tracer_provider()):  # fmt: skip
            force_flush = getattr(provider, "force_flush", None)
            if callable(force_flush):
                try:
                    force_flush()
                except Exception:  # never fail a command over telemetry
                    log.warning("could not export the last metrics", exc_info=True)


def configure_export(
    env: Mapping[str, str] | None = None,
    *,
    azure_monitor: Callable[[str], Export | None] | None = None,
    otlp: Callable[[], Any] | None = None,
) -> Export | None:
    """Set up the exporter the environment asks for (see the module docstring), or None.

    ``azure_monitor`` (given the connection string; returns the export, or None when it set the
    global providers) and ``otlp`` (returns a meter provider) are the set-up functions; tests
    pass their own.
    """
    env = os.environ if env is None else env
    connection_string = env.get(APPINSIGHTS_SETTING, "").strip()
    if connection_string:
        return (azure_monitor or azure_monitor_export)(connection_string) or Export("azure-monitor")
    if env.get(OTLP_ENDPOINT_SETTING, "").strip() or env.get("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "").strip():
        return Export("otlp", (otlp or otlp_meter_provider)())
    return None


def azure_monitor_export(connection_string: str, env: Mapping[str, str] | None = None) -> Export:
    """Providers exporting to Application Insights with the Azure Monitor exporter: metrics every
    ``OTEL_METRIC_EXPORT_INTERVAL`` ms (60 s by default), spans in batches.

    The exporter, not the Azure Monitor distro: the distro also installs instrumentations of
    Django, Flask, FastAPI, psycopg2, requests, urllib3 and httpx that the app never uses (1.5 MB
    of the deployed package, scripts/function-package.py) and exports logs, which the Functions
    host already does for the worker. The resource is what
    the distro's Azure resource detectors find (``service.name`` is the function app's name, the
    cloud role of Application Insights)."""
    try:
        from azure.monitor.opentelemetry.exporter import (
            AzureMonitorMetricExporter,
            AzureMonitorTraceExporter,
        )
        from opentelemetry.resource.detector.azure.app_service import (
            AzureAppServiceResourceDetector,
        )
        from opentelemetry.resource.detector.azure.functions import (
            AzureFunctionsResourceDetector,
        )
    except ImportError as exc:  # a packaging error, reported clearly
        raise ConfigError(
            f"{APPINSIGHTS_SETTING} is set but azure-monitor-opentelemetry-exporter is not installed "
            "(pip install -r requirements.txt)"
        ) from exc
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import Resource, get_aggregated_resources
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from shared.credentials import host_identity

    # Application Insights has local (key) auth disabled in our infra: export with Entra ID, as
    # the host's managed identity (the user-assigned one when AZURE_CLIENT_ID names it).
    credential = host_identity(env)
    resource = get_aggregated_resources(
        [AzureAppServiceResourceDetector(), AzureFunctionsResourceDetector()], initial_resource=Resource.create()
    )
    meter_provider = MeterProvider(
        metric_readers=[PeriodicExportingMetricReader(
            AzureMonitorMetricExporter(connection_string=connection_string, credential=credential))],
        resource=resource,
    )  # fmt: skip
    tracer_provider = TracerProvider(resource=resource)
    # The trace exporter reads the resource from its tracer provider (the global one if not told).
    tracer_provider.add_span_processor(BatchSpanProcessor(AzureMonitorTraceExporter(
        connection_string=connection_string, credential=credential, tracer_provider=tracer_provider)))  # fmt: skip
    return Export("azure-monitor", meter_provider, tracer_provider)


def otlp_meter_provider() -> Any:
    """A meter provider exporting over OTLP/HTTP every 30 s (the exporter reads
    ``OTEL_EXPORTER_OTLP_*``)."""
    try:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter  # type: ignore[import-not-found]
    except ImportError as exc:
        raise ConfigError(
            f"{OTLP_ENDPOINT_SETTING} is set but the OTLP exporter is not installed: "
            "pip install opentelemetry-exporter-otlp-proto-http"
        ) from exc
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

    return MeterProvider(metric_readers=[PeriodicExportingMetricReader(OTLPMetricExporter())])
