"""OpenTelemetry for the function app: metrics and a span per trigger batch, exported to
Application Insights when ``APPLICATIONINSIGHTS_CONNECTION_STRING`` is set (nothing is imported
otherwise)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from shared.credentials import host_identity
from shared.errors import ConfigError
from shared.functions.summary import BatchSummary


class Telemetry:
    """OpenTelemetry metrics and a span per batch; a no-op until :meth:`enable` is called."""

    def __init__(self) -> None:
        self.enabled = False
        self._tracer: Any = None
        self._instruments: dict[str, Any] = {}

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str] | None = None,
        configure: Callable[[str], None] | None = None,
    ) -> Telemetry:
        """Export to Application Insights when APPLICATIONINSIGHTS_CONNECTION_STRING is set;
        otherwise nothing is imported or configured."""
        env = os.environ if env is None else env
        telemetry = cls()
        connection_string = env.get("APPLICATIONINSIGHTS_CONNECTION_STRING", "").strip()
        if connection_string:
            (configure or _configure_azure_monitor)(connection_string)
            telemetry.enable()
        return telemetry

    def enable(self, meter_provider: Any = None, tracer_provider: Any = None) -> None:
        """Create the instruments on the given (default: global) OpenTelemetry providers."""
        from opentelemetry import metrics, trace

        meter = (meter_provider or metrics.get_meter_provider()).get_meter("kafka_adx")
        self._tracer = (tracer_provider or trace.get_tracer_provider()).get_tracer("kafka_adx")
        self._instruments = {
            "received": meter.create_counter("kafka_adx.records.received", unit="{record}",
                                             description="Records received from the trigger"),
            "ingested": meter.create_counter("kafka_adx.records.ingested", unit="{record}",
                                             description="Records handed to the destination"),
            "dead_lettered": meter.create_counter("kafka_adx.records.dead_lettered", unit="{record}",
                                                  description="Records written to the dead-letter store"),
            "bytes": meter.create_counter("kafka_adx.bytes.received", unit="By",
                                          description="Bytes of record values received"),
            "duration": meter.create_histogram("kafka_adx.batch.duration", unit="s",
                                               description="Time to process one trigger batch"),
            "lag": meter.create_histogram("kafka_adx.batch.lag", unit="s",
                                          description="Age of the oldest record of a batch when processed"),
        }  # fmt: skip
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
        if not self.enabled:
            return
        attrs = {"source": summary.source, "trigger": summary.trigger, "outcome": summary.outcome}
        self._instruments["received"].add(summary.received, attrs)
        self._instruments["ingested"].add(summary.ingested, attrs)
        self._instruments["dead_lettered"].add(summary.dead_lettered, attrs)
        self._instruments["bytes"].add(summary.bytes, attrs)
        self._instruments["duration"].record(summary.seconds, attrs)
        if summary.lag_seconds is not None:
            self._instruments["lag"].record(summary.lag_seconds, attrs)
        if span is not None:
            for key, value in summary.fields().items():
                if value is not None:
                    span.set_attribute(f"kafka_adx.{key}", value)


def _configure_azure_monitor(connection_string: str) -> None:
    """Set up the Azure Monitor OpenTelemetry distro (metrics and traces; the Functions host
    already forwards this worker's logs, so the distro's log export stays off)."""
    try:
        from azure.monitor.opentelemetry import configure_azure_monitor
    except ImportError as exc:  # pragma: no cover - a packaging error, reported clearly
        raise ConfigError(
            "APPLICATIONINSIGHTS_CONNECTION_STRING is set but azure-monitor-opentelemetry is not "
            "installed (pip install -r requirements.txt)"
        ) from exc
    # Application Insights has local (key) auth disabled in our infra: export with Entra ID, as
    # the host's managed identity (the user-assigned one when AZURE_CLIENT_ID names it).
    configure_azure_monitor(
        connection_string=connection_string, credential=host_identity(), disable_logging=True, enable_live_metrics=False
    )
