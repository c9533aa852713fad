"""Per-invocation handling for the Azure Functions app, so that ``function_app.py`` stays wiring.

One invocation = one trigger batch:

1. the adapter turns the events into records (:mod:`shared.sources.functions`); events it
   cannot read are dead-lettered with their reason;
2. the attempt number and whether it is the final one come from ``context.retry_context``;
3. the process-wide pipeline (built once per worker) runs the records under the delivery
   contract of :mod:`shared.pipeline.core` with ``RetryPolicy(attempts=1)``: the trigger's retry
   policy does the retrying. A transient failure on an earlier attempt raises, so the host
   redelivers; a terminal failure, or any failure on the final attempt, dead-letters and
   returns so the checkpoint can advance;
4. one structured log line per batch (source, partitions and offset ranges, counts, bytes,
   duration, lag; never payloads), and OpenTelemetry metrics and a span when
   ``APPLICATIONINSIGHTS_CONNECTION_STRING`` is set.

Trigger settings are read when the app is indexed (:class:`TriggerSettings`); the pipeline's
own settings (:class:`shared.settings.Settings`) on the first invocation.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from shared.deadletters.envelope import DeadLetter
from shared.errors import ConfigError, DeadLetterError, TransientError
from shared.pipeline.core import Pipeline, Result, RetryPolicy
from shared.pipeline.records import Record
from shared.settings import Settings
from shared.sources.functions import (
    Adapted,
    AdapterError,
    EventHubEventLike,
    HeaderEncoding,
    KafkaEventLike,
    eventhub_records,
    kafka_records,
)

log = logging.getLogger("kafka_adx.functions")

# --------------------------------------------------------------------------- settings

FUNCTION_SETTINGS: dict[str, tuple[str, str]] = {
    "EVENTHUB_NAME": (
        "event hub(s) to consume; setting it switches the Event Hubs trigger on. A comma-separated "
        "list registers one function per event hub",
        "unset (trigger off)",
    ),
    "EVENTHUB_CONSUMER_GROUP": ("consumer group of the Event Hubs trigger", "$Default"),
    "EVENTHUB_HEADER_ENCODING": (
        "how string application properties become header bytes: base64 (Kafka headers written "
        "through the Event Hubs Kafka endpoint; text that is not base64 is kept as text) or text "
        "(AMQP producers' string properties)",
        "base64",
    ),
    "EventHubConnection__fullyQualifiedNamespace": (
        "Event Hubs namespace host (<ns>.servicebus.windows.net) of the identity-based connection; "
        "required when the Event Hubs trigger is on",
        "—",
    ),
    "EventHubConnection__credential": (
        "managedidentity to use the app's managed identity for Event Hubs",
        "unset (the host's default credential: your developer sign-in locally)",
    ),
    "EventHubConnection__clientId": ("client id of the user-assigned identity for Event Hubs", "unset (system identity)"),
    "KAFKA_BROKERS": (
        "bootstrap servers of a non-Azure Kafka cluster (host:port,...); setting it switches the "
        "Kafka trigger on",
        "unset (trigger off)",
    ),
    "KAFKA_TOPIC": (
        "topic(s) to consume; required with KAFKA_BROKERS. A comma-separated list registers one "
        "function per topic",
        "—",
    ),
    "KAFKA_CONSUMER_GROUP": ("consumer group of the Kafka trigger", "kafka-adx"),
    "KAFKA_PROTOCOL": ("security protocol: plaintext, ssl, sasl_plaintext or sasl_ssl", "plaintext (sasl_ssl with a SASL mechanism)"),
    "KAFKA_SASL_MECHANISM": ("SASL mechanism: plain, scram-sha-256, scram-sha-512 or gssapi", "unset (no SASL)"),
    "KAFKA_USERNAME": ("SASL user name (Confluent Cloud: the API key); a Key Vault reference in Azure", "—"),
    "KAFKA_PASSWORD": ("SASL password (Confluent Cloud: the API secret); a Key Vault reference in Azure", "—"),
    "KAFKA_DATA_TYPE": (
        "how the Kafka trigger hands over values: binary (raw bytes) or string (the extension's "
        "JSON envelope; values that are not UTF-8 are damaged by the extension)",
        "binary",
    ),
    "RETRY_MAX_COUNT": ("retries of a failed batch before it is dead-lettered (-1: forever)", "5"),
    "RETRY_MIN_INTERVAL": ("first retry delay (hh:mm:ss), doubled on each retry", "00:00:10"),
    "RETRY_MAX_INTERVAL": ("longest retry delay (hh:mm:ss)", "00:05:00"),
    "APPLICATIONINSIGHTS_CONNECTION_STRING": (
        "Application Insights connection string; when set, OpenTelemetry metrics and traces are "
        "exported with azure-monitor-opentelemetry",
        "unset (no export)",
    ),
}
"""Settings the function app reads beyond the core ones (:data:`shared.settings.SETTING_NAMES`):
name -> (meaning, default)."""

HOST_SETTINGS: dict[str, str] = {
    "FUNCTIONS_WORKER_RUNTIME": "python (read by the Functions host)",
    "AzureWebJobsStorage": "storage of the Functions host: Event Hubs checkpoints, leases (read by the host)",
    "AzureWebJobsStorage__accountName": "identity-based form of AzureWebJobsStorage (read by the host)",
    "AzureWebJobsStorage__credential": "identity-based form of AzureWebJobsStorage (read by the host)",
    "AzureWebJobsStorage__clientId": "identity-based form of AzureWebJobsStorage (read by the host)",
    "AzureWebJobsFeatureFlags": "feature flags of the Functions host (read by the host)",
}
"""Platform settings a deployment may name that the Functions host, not this code, reads."""

KafkaDataType = Literal["binary", "string"]

_PROTOCOLS = {"PLAINTEXT": "Plaintext", "SSL": "Ssl", "SASLPLAINTEXT": "SaslPlaintext", "SASLSSL": "SaslSsl"}
_MECHANISMS = {"PLAIN": "Plain", "SCRAMSHA256": "ScramSha256", "SCRAMSHA512": "ScramSha512", "GSSAPI": "Gssapi"}
_INTERVAL = re.compile(r"^\d{1,2}:[0-5]\d:[0-5]\d$")
_FUNCTION_NAME = re.compile(r"[^A-Za-z0-9_]")


def _enum_key(value: str) -> str:
    return re.sub(r"[\s_\-]", "", value).upper()


def _names(value: str | None) -> tuple[str, ...]:
    """A comma-separated list, blanks dropped, order kept, duplicates removed."""
    if not value:
        return ()
    seen: dict[str, None] = {}
    for item in value.split(","):
        item = item.strip()
        if item:
            seen.setdefault(item, None)
    return tuple(seen)


@dataclass(frozen=True)
class TriggerBinding:
    """One function to register: its name, the source it reads and the binding's value for it."""

    function_name: str
    source: str
    """The event hub or topic name (the records' topic)."""
    binding_value: str
    """What goes into the binding: ``%SETTING%`` for a single name, else the literal name."""


@dataclass(frozen=True)
class TriggerSettings:
    """The trigger settings, read when the function app is indexed (see FUNCTION_SETTINGS)."""

    eventhubs: tuple[str, ...] = ()
    eventhub_consumer_group: str = "$Default"
    eventhub_consumer_group_set: bool = False
    eventhub_header_encoding: HeaderEncoding = "base64"
    eventhub_namespace: str = ""
    """EventHubConnection__fullyQualifiedNamespace: part of the records' stream identity."""
    kafka_brokers: str = ""
    """KAFKA_BROKERS: names the cluster in the records' stream identity."""
    kafka_topics: tuple[str, ...] = ()
    kafka_enabled: bool = False
    kafka_consumer_group_set: bool = False
    kafka_protocol: str | None = None
    kafka_sasl_mechanism: str | None = None
    kafka_data_type: KafkaDataType = "binary"
    retry_max_count: int = 5
    retry_min_interval: str = "00:00:10"
    retry_max_interval: str = "00:05:00"

    @property
    def eventhub_enabled(self) -> bool:
        """Whether the Event Hubs trigger is registered (EVENTHUB_NAME is set)."""
        return bool(self.eventhubs)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> TriggerSettings:
        """Read and check the trigger settings; every problem is reported at once."""
        env = os.environ if env is None else env

        def get(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        problems: list[str] = []
        values: dict[str, Any] = {}

        eventhubs = _names(get("EVENTHUB_NAME"))
        if eventhubs:
            values["eventhubs"] = eventhubs
            values["eventhub_namespace"] = get("EventHubConnection__fullyQualifiedNamespace") or ""
            if not (values["eventhub_namespace"] or get("EventHubConnection")):
                problems.append(
                    "EventHubConnection__fullyQualifiedNamespace: required when EVENTHUB_NAME is set "
                    "(<namespace>.servicebus.windows.net)"
                )
            credential = get("EventHubConnection__credential")
            if credential and credential.lower() != "managedidentity":
                problems.append("EventHubConnection__credential: only 'managedidentity' is supported")
            if get("EventHubConnection__clientId") and not credential:
                problems.append("EventHubConnection__clientId: needs EventHubConnection__credential=managedidentity")
        group = get("EVENTHUB_CONSUMER_GROUP")
        if group:
            values["eventhub_consumer_group"] = group
            values["eventhub_consumer_group_set"] = True
        encoding = (get("EVENTHUB_HEADER_ENCODING") or "base64").lower()
        if encoding not in ("base64", "text"):
            problems.append(f"EVENTHUB_HEADER_ENCODING: {encoding!r} is not base64 or text")
        else:
            values["eventhub_header_encoding"] = encoding

        if get("KAFKA_BROKERS"):
            values["kafka_enabled"] = True
            values["kafka_brokers"] = get("KAFKA_BROKERS")
            topics = _names(get("KAFKA_TOPIC"))
            if not topics:
                problems.append("KAFKA_TOPIC: required when KAFKA_BROKERS is set")
            values["kafka_topics"] = topics
            values["kafka_consumer_group_set"] = get("KAFKA_CONSUMER_GROUP") is not None
            mechanism = get("KAFKA_SASL_MECHANISM")
            if mechanism:
                key = _enum_key(mechanism)
                if key == "OAUTHBEARER":
                    problems.append(
                        "KAFKA_SASL_MECHANISM: OAUTHBEARER is not supported by the Python Kafka "
                        "trigger; use plain or scram-sha-256/512"
                    )
                elif key not in _MECHANISMS:
                    problems.append(f"KAFKA_SASL_MECHANISM: {mechanism!r} is not one of plain, scram-sha-256, scram-sha-512, gssapi")
                else:
                    values["kafka_sasl_mechanism"] = _MECHANISMS[key]
                for name in ("KAFKA_USERNAME", "KAFKA_PASSWORD"):
                    if key != "GSSAPI" and not get(name):
                        problems.append(f"{name}: required with KAFKA_SASL_MECHANISM")
            protocol = get("KAFKA_PROTOCOL")
            if protocol:
                key = _enum_key(protocol)
                if key not in _PROTOCOLS:
                    problems.append(f"KAFKA_PROTOCOL: {protocol!r} is not one of plaintext, ssl, sasl_plaintext, sasl_ssl")
                else:
                    values["kafka_protocol"] = _PROTOCOLS[key]
            elif mechanism:
                values["kafka_protocol"] = "SaslSsl"
            data_type = (get("KAFKA_DATA_TYPE") or "binary").lower()
            if data_type not in ("binary", "string"):
                problems.append(f"KAFKA_DATA_TYPE: {data_type!r} is not binary or string")
            else:
                values["kafka_data_type"] = data_type

        count = get("RETRY_MAX_COUNT")
        if count is not None:
            try:
                values["retry_max_count"] = int(count)
                if values["retry_max_count"] < -1:
                    raise ValueError
            except ValueError:
                problems.append(f"RETRY_MAX_COUNT: {count!r} is not a whole number >= -1")
        for name, attr in (("RETRY_MIN_INTERVAL", "retry_min_interval"), ("RETRY_MAX_INTERVAL", "retry_max_interval")):
            interval = get(name)
            if interval is None:
                continue
            if not _INTERVAL.match(interval):
                problems.append(f"{name}: {interval!r} is not hh:mm:ss")
            else:
                values[attr] = interval
        settings = cls(**values)
        if _seconds(settings.retry_min_interval) > _seconds(settings.retry_max_interval):
            problems.append("RETRY_MIN_INTERVAL: longer than RETRY_MAX_INTERVAL")
        if problems:
            raise ConfigError("invalid function app settings: " + "; ".join(problems))
        return settings

    def retry_kwargs(self) -> dict[str, str]:
        """Arguments of ``FunctionApp.retry``: exponential backoff from the RETRY_* settings."""
        return {
            "strategy": "exponential_backoff",
            "max_retry_count": str(self.retry_max_count),
            "minimum_interval": self.retry_min_interval,
            "maximum_interval": self.retry_max_interval,
        }

    def eventhub_bindings(self) -> list[TriggerBinding]:
        """One function per event hub."""
        return _bindings("eventhub_ingest", self.eventhubs, "%EVENTHUB_NAME%")

    def kafka_bindings(self) -> list[TriggerBinding]:
        """One function per Kafka topic (none when the Kafka trigger is off)."""
        return _bindings("kafka_ingest", self.kafka_topics, "%KAFKA_TOPIC%") if self.kafka_enabled else []

    def eventhub_trigger_kwargs(self, binding: TriggerBinding) -> dict[str, Any]:
        """Arguments of ``FunctionApp.event_hub_message_trigger`` for one event hub."""
        return {
            "arg_name": "events",
            "connection": "EventHubConnection",
            "event_hub_name": binding.binding_value,
            "data_type": "binary",
            "cardinality": "many",
            "consumer_group": "%EVENTHUB_CONSUMER_GROUP%" if self.eventhub_consumer_group_set else "$Default",
        }

    def kafka_trigger_kwargs(self, binding: TriggerBinding) -> dict[str, Any]:
        """Arguments of ``FunctionApp.kafka_trigger`` for one topic. Secrets stay in settings: the
        binding names them (``%KAFKA_PASSWORD%``) and the extension resolves them."""
        kwargs: dict[str, Any] = {
            "arg_name": "events",
            "topic": binding.binding_value,
            "broker_list": "%KAFKA_BROKERS%",
            "consumer_group": "%KAFKA_CONSUMER_GROUP%" if self.kafka_consumer_group_set else "kafka-adx",
            "cardinality": "many",
            "data_type": self.kafka_data_type,
            # Keys as bytes (base64 on the wire): with the default String the extension decodes
            # keys itself and replaces bytes that are not UTF-8, so a key would be altered
            # silently (Kafka extension 4.1+; host.json's bundle floor guarantees it).
            "key_data_type": "Binary",
        }
        if self.kafka_protocol:
            kwargs["protocol"] = self.kafka_protocol
        if self.kafka_sasl_mechanism:
            kwargs["authentication_mode"] = self.kafka_sasl_mechanism
            if self.kafka_sasl_mechanism != "Gssapi":
                kwargs["username"] = "%KAFKA_USERNAME%"
                kwargs["password"] = "%KAFKA_PASSWORD%"
        return kwargs


def _seconds(interval: str) -> int:
    hours, minutes, seconds = (int(part) for part in interval.split(":"))
    return hours * 3600 + minutes * 60 + seconds


def _bindings(prefix: str, names: Sequence[str], setting: str) -> list[TriggerBinding]:
    if len(names) == 1:
        return [TriggerBinding(prefix, names[0], setting)]
    bindings: list[TriggerBinding] = []
    used: set[str] = set()
    for name in names:
        function_name = f"{prefix}_{_FUNCTION_NAME.sub('_', name)}"[:120]
        candidate, number = function_name, 2
        while candidate in used:
            candidate, number = f"{function_name}_{number}", number + 1
        used.add(candidate)
        bindings.append(TriggerBinding(candidate, name, name))
    return bindings


def required_settings(env: Mapping[str, str]) -> set[str]:
    """Settings that must be present for the triggers switched on in ``env``."""
    required: set[str] = set()
    if env.get("EVENTHUB_NAME", "").strip():
        required |= {"EVENTHUB_NAME", "EventHubConnection__fullyQualifiedNamespace"}
    if env.get("KAFKA_BROKERS", "").strip():
        required |= {"KAFKA_BROKERS", "KAFKA_TOPIC"}
        if env.get("KAFKA_SASL_MECHANISM", "").strip() and _enum_key(env["KAFKA_SASL_MECHANISM"]) != "GSSAPI":
            required |= {"KAFKA_USERNAME", "KAFKA_PASSWORD"}
    return required


# --------------------------------------------------------------------------- attempts


@dataclass(frozen=True)
class Attempt:
    """Which delivery of a batch this invocation is."""

    number: int
    """1 for the first delivery."""
    max_retries: int
    """The retry policy's max_retry_count (-1: forever; 0: no retry policy)."""

    @property
    def final(self) -> bool:
        """No retry follows this attempt: failures must be dead-lettered now."""
        return self.max_retries >= 0 and self.number > self.max_retries

    def describe(self) -> str:
        """``2/6`` style, ``3/∞`` for unlimited retries."""
        total = "inf" if self.max_retries < 0 else str(self.max_retries + 1)
        return f"{self.number}/{total}"


def attempt_of(context: Any) -> Attempt:
    """The attempt from ``context.retry_context`` (no retry context: a single, final attempt)."""
    retry = getattr(context, "retry_context", None)
    if retry is None:
        return Attempt(1, 0)
    count = int(getattr(retry, "retry_count", 0) or 0)
    max_count = getattr(retry, "max_retry_count", 0)
    return Attempt(count + 1, int(max_count if max_count is not None else 0))


# --------------------------------------------------------------------------- telemetry


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
        }
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
    # the user-assigned identity when one is configured (AZURE_CLIENT_ID).
    credential: Any = None
    if os.environ.get("IDENTITY_ENDPOINT") or os.environ.get("AZURE_CLIENT_ID"):
        from azure.identity import ManagedIdentityCredential

        credential = ManagedIdentityCredential(client_id=os.environ.get("AZURE_CLIENT_ID") or None)
    configure_azure_monitor(
        connection_string=connection_string, credential=credential, disable_logging=True, enable_live_metrics=False
    )


# --------------------------------------------------------------------------- the worker


@dataclass
class Worker:
    """Process-wide state of one Functions worker: created once, reused by every invocation."""

    pipeline: Pipeline
    telemetry: Telemetry
    settings: Settings | None = None


_worker: Worker | None = None
_worker_lock = threading.Lock()
builds = 0
"""How many times this process built its worker state (tests assert it stays 1)."""


def worker() -> Worker:
    """The process-wide worker state, built on first use from the environment."""
    global _worker, builds
    current = _worker
    if current is not None:
        return current
    with _worker_lock:
        if _worker is None:
            from shared.config import load_config
            from shared.ops.preflight import log_preflight
            from shared.redact import install_log_redaction
            from shared.wiring import build_pipeline

            # The host's log handlers exist by now: no SAS token reaches them from here on.
            install_log_redaction()
            settings = Settings.from_env()
            config = load_config(settings.ingestion_config)
            # Once per worker start: a misconfiguration is one error with its remedy, not a
            # flood of dead letters to discover it by (the worker still starts).
            log_preflight(settings, config, logger=log)
            # One attempt in process: the trigger's retry policy redelivers the batch.
            pipeline = build_pipeline(settings, config, retry=RetryPolicy(attempts=1))
            _worker = Worker(pipeline=pipeline, telemetry=Telemetry.from_env(), settings=settings)
            builds += 1
        return _worker


def install(pipeline: Pipeline, telemetry: Telemetry | None = None) -> Worker:
    """Use a pre-built pipeline for this process (tests, or embedding in another host)."""
    global _worker
    with _worker_lock:
        _worker = Worker(pipeline=pipeline, telemetry=telemetry or Telemetry())
        return _worker


def reset() -> None:
    """Forget the process-wide state (tests); the next invocation builds it again."""
    global _worker
    with _worker_lock:
        if _worker is not None:
            _worker.pipeline.close()
        _worker = None


# --------------------------------------------------------------------------- one batch


@dataclass
class BatchSummary:
    """What one invocation did; logged as one line and recorded as metrics. No payloads."""

    trigger: str
    source: str
    attempt: str
    received: int = 0
    ingested: int = 0
    dead_lettered: int = 0
    bytes: int = 0
    seconds: float = 0.0
    lag_seconds: float | None = None
    ranges: list[str] = field(default_factory=list)
    outcome: str = "ok"
    reasons: dict[str, int] = field(default_factory=dict)

    MAX_RANGES = 20

    def fields(self) -> dict[str, Any]:
        """The summary as flat fields (log ``extra`` and span attributes)."""
        shown = self.ranges[: self.MAX_RANGES]
        more = len(self.ranges) - len(shown)
        return {
            "trigger": self.trigger,
            "source": self.source,
            "attempt": self.attempt,
            "outcome": self.outcome,
            "received": self.received,
            "ingested": self.ingested,
            "dead_lettered": self.dead_lettered,
            "bytes": self.bytes,
            "duration_ms": round(self.seconds * 1000, 1),
            "lag_s": None if self.lag_seconds is None else round(self.lag_seconds, 3),
            "partitions": ",".join(shown) + (f",+{more} more" if more else ""),
            "reasons": ",".join(f"{k}:{v}" for k, v in sorted(self.reasons.items())),
        }

    def line(self) -> str:
        """``key=value`` text, parseable with KQL ``parse`` in Application Insights."""
        return "kafka-adx batch " + " ".join(f"{k}={'' if v is None else v}" for k, v in self.fields().items())


def _ranges(records: Sequence[Record]) -> list[str]:
    spans: dict[tuple[str, int], list[int]] = {}
    for record in records:
        span = spans.get((record.topic, record.partition))
        if span is None:
            spans[(record.topic, record.partition)] = [record.offset, record.offset]
        else:
            span[0] = min(span[0], record.offset)
            span[1] = max(span[1], record.offset)
    return [f"{topic}[{partition}]@{lo}-{hi}" for (topic, partition), (lo, hi) in spans.items()]


def _summarise(summary: BatchSummary, adapted: Adapted, now: datetime) -> None:
    records = adapted.records + [error.record for error in adapted.errors]
    summary.received = len(records)
    summary.bytes = sum(record.size for record in records)
    summary.ranges = _ranges(records)
    oldest = min((r.timestamp for r in records if r.timestamp is not None), default=None)
    summary.lag_seconds = None if oldest is None else max(0.0, (now - oldest).total_seconds())


def _letters(errors: Sequence[AdapterError], attempt: Attempt) -> list[DeadLetter]:
    return [
        DeadLetter(record=e.record, reason=f"{e.record.where}: {e.reason}", stage="decode", attempt=attempt.number)
        for e in errors
    ]


def process(adapted: Adapted, context: Any, *, trigger: str, source: str) -> Result:
    """Run one trigger batch through the process-wide pipeline under the delivery contract.

    Returns the counts when every record was ingested or dead-lettered; raises
    :class:`TransientError` for redelivery (not the final attempt) and
    :class:`DeadLetterError` when even the dead-letter store failed.
    """
    attempt = attempt_of(context)
    summary = BatchSummary(trigger=trigger, source=source, attempt=attempt.describe())
    _summarise(summary, adapted, datetime.now(UTC))
    started = time.perf_counter()
    state = worker()
    # Tracked, so that an unexpected error leaves exact counts and the records not yet settled.
    result = Result().track_settled()
    with state.telemetry.span(trigger) as span:
        try:
            if adapted.errors:
                # Unreadable events: dead-lettered with their reason, never dropped.
                result.received += len(adapted.errors)
                state.pipeline.dead_letter(_letters(adapted.errors, attempt), result)
            state.pipeline.process(adapted.records, attempt=attempt.number, final_attempt=attempt.final, result=result)
        except TransientError:
            summary.outcome = "retry"
            _finish(summary, result, started, state.telemetry, span, logging.WARNING)
            raise
        except DeadLetterError:
            summary.outcome = "failed"
            _finish(summary, result, started, state.telemetry, span, logging.ERROR)
            raise
        except Exception as exc:
            if not attempt.final:
                summary.outcome = "retry"
                _finish(summary, result, started, state.telemetry, span, logging.ERROR)
                raise
            # Final attempt: the host will move past this batch, so keep every record; but only
            # those not yet written (a replay of the others would ingest them twice).
            log.exception("unexpected error on the final attempt of %s after %d record(s) were ingested; "
                          "dead-lettering the rest of the batch", trigger, result.ingested)
            _dead_letter_rest(state.pipeline, adapted, attempt, f"{type(exc).__name__}: {exc}", result)
            summary.outcome = "dead-lettered"
        _finish(summary, result, started, state.telemetry, span, logging.INFO)
    return result


def _dead_letter_rest(pipeline: Pipeline, adapted: Adapted, attempt: Attempt, error: str, result: Result) -> None:
    """Dead-letter the records of a failed final attempt that were neither ingested nor
    dead-lettered, and make ``result`` cover the whole batch."""
    everything = adapted.records + [e.record for e in adapted.errors]
    rest = result.unsettled(everything)
    letters = [
        DeadLetter(record=r, reason=f"{r.where}: unexpected error on the final attempt: {error}",
                   stage="internal", attempt=attempt.number)
        for r in rest
    ]
    pipeline.dead_letter(letters, result)
    result.received = len(everything)


def _finish(summary: BatchSummary, result: Result, started: float, telemetry: Telemetry, span: Any, level: int) -> None:
    summary.ingested = result.ingested
    summary.dead_lettered = result.dead_lettered
    summary.reasons = dict(result.reasons)
    summary.seconds = time.perf_counter() - started
    if summary.outcome == "ok" and result.dead_lettered:
        summary.outcome = "partial" if result.ingested else "dead-lettered"
    log.log(level, summary.line(), extra={f"kafka_adx_{k}": v for k, v in summary.fields().items()})
    telemetry.record(summary, span)


def handle_kafka(
    events: Sequence[KafkaEventLike],
    context: Any,
    *,
    trigger: str,
    data_type: KafkaDataType = "binary",
    brokers: str = "",
) -> Result:
    """Process one Kafka trigger batch. ``brokers`` (``KAFKA_BROKERS``) names the cluster in the
    records' stream identity: the events do not carry it."""
    adapted = kafka_records(events, envelope=data_type == "string", key_type="binary", brokers=brokers)
    return process(adapted, context, trigger=trigger, source="kafka")


def handle_eventhub(
    events: Sequence[EventHubEventLike],
    context: Any,
    *,
    trigger: str,
    event_hub: str | None,
    header_encoding: HeaderEncoding = "base64",
    namespace: str = "",
) -> Result:
    """Process one Event Hubs trigger batch. ``namespace``
    (``EventHubConnection__fullyQualifiedNamespace``) names the namespace in the records' stream
    identity."""
    adapted = eventhub_records(events, event_hub=event_hub, header_encoding=header_encoding, namespace=namespace)
    return process(adapted, context, trigger=trigger, source="eventhub")
