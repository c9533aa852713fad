"""The ADX sink: queued ingestion by default, managed streaming for streaming routes.

One set of clients per process (:func:`clients_for`), built from :class:`Settings`: managed
identity in Azure, ``DefaultAzureCredential`` elsewhere, no authentication only for loopback
stand-ins. Every call builds fresh request objects, because the SDK mutates what it is given
(FACTS.md): a new ``IngestionProperties`` with its own ``additional_properties`` dict, a new
``StreamDescriptor`` over a new ``BytesIO`` of the batch's gzip payload.

Two SDK steps are replaced (the rest is the real azure-kusto-ingest 6.0.4):

* the blob upload reads the payload once and sends those *bytes* to each container it tries,
  so a failover to the next container never uploads the already-consumed stream as a 0-byte
  blob; it also overwrites a blob left by an earlier attempt of the same batch (same source
  id, same name) instead of failing on it;
* the blob upload and the queue message use storage clients with bounded, jittered retries
  and timeouts (:class:`StorageRetry`) instead of the storage SDK's ~1 minute per failure.

Errors are sorted in one place, :func:`classify_adx`, registered with
:func:`shared.errors.register_classifier`.
"""

from __future__ import annotations

import io
import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, timedelta
from typing import Any

from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.kusto.data import ClientRequestProperties, KustoClient, KustoConnectionStringBuilder
from azure.kusto.data.data_format import DataFormat
from azure.kusto.data.exceptions import (
    KustoApiError,
    KustoAuthenticationError,
    KustoBlobError,
    KustoClientError,
    KustoMultiApiError,
    KustoNetworkError,
    KustoServiceError,
    KustoThrottlingError,
)
from azure.kusto.ingest import (
    BlobDescriptor,
    IngestionProperties,
    ManagedStreamingIngestClient,
    QueuedIngestClient,
    ReportLevel,
    StreamDescriptor,
)
from azure.kusto.ingest.base_ingest_client import IngestionResult, IngestionStatus
from azure.kusto.ingest.exceptions import KustoQueueError
from azure.kusto.ingest.ingestion_blob_info import IngestionBlobInfo
from azure.kusto.ingest.status import KustoIngestStatusQueues

from shared.errors import ConfigError, SinkError, TerminalError, TransientError, classify, register_classifier
from shared.pipeline.batching import Batch
from shared.settings import Settings

log = logging.getLogger("kafka_adx.sinks.adx")

_FORMATS: dict[str, DataFormat] = {f.kusto_value: f for f in DataFormat}

# ADX error codes meaning "the database/table/mapping does not exist": retrying cannot help.
_MISSING_ENTITY_CODES = ("EntityNotFound", "TableNotFound", "DatabaseNotFound", "MappingNotFound")


# --------------------------------------------------------------------------------------------
# Options
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StorageRetry:
    """Retries of one blob upload or queue message, per container/queue tried.

    The storage SDK's own default (15 s initial backoff, 3 retries) can hold a call for about a
    minute on each 5xx: with storage down, ``ingest`` took 145 s and ``status`` 104 s to give up.
    The pipeline's :class:`~shared.pipeline.core.RetryPolicy` is the place that retries a batch, so
    the storage client only rides out a blip: one retry after about 1.5 s, then the next
    container or queue (a few seconds per container with storage down).
    """

    total: int = 1
    """Retries after the first try (network errors, 408, 5xx)."""
    initial_backoff: float = 0.5
    """Seconds before the first retry (plus ``increment_base ** retry``)."""
    increment_base: float = 1.0
    """Backoff grows as ``initial_backoff + increment_base ** retry``."""
    jitter: float = 0.5
    """Random +/- seconds added to each backoff."""
    connection_timeout: float = 5.0
    """Seconds to connect (a loopback or in-region storage account connects in milliseconds)."""
    read_timeout: float = 60.0
    """Seconds to wait for an answer."""

    def client_kwargs(self, policy_cls: Any) -> dict[str, Any]:
        """Keyword arguments for a storage client (``policy_cls`` is the package's ExponentialRetry)."""
        return {
            "retry_policy": policy_cls(
                initial_backoff=self.initial_backoff,
                increment_base=self.increment_base,
                retry_total=self.total,
                random_jitter_range=self.jitter,
            ),
            "connection_timeout": self.connection_timeout,
            "read_timeout": self.read_timeout,
        }


@dataclass(frozen=True)
class AdxOptions:
    """Tunables of the ADX clients (defaults suit production; tests make them fast)."""

    storage: StorageRetry = StorageRetry()
    request_timeout: float = 120.0
    """Seconds an ADX management or streaming request may take (the SDK's default is 1 hour)."""
    streaming_attempts: int = 3
    """Streaming tries before the managed client falls back to queued ingestion."""
    streaming_max_wait: float = 4.0
    """Upper bound of the random backoff between streaming tries."""
    streaming_max_bytes: int = 4 * 1024 * 1024
    """Payloads (gzip) above this go queued directly (ADX's streaming limit is 4 MB)."""
    streaming_disabled_pause: float = 300.0
    """After a 404 (streaming not enabled) a table goes queued for this many seconds."""


# --------------------------------------------------------------------------------------------
# Error classification
# --------------------------------------------------------------------------------------------


def _status_of(exc: BaseException) -> int | None:
    if isinstance(exc, HttpResponseError):
        return exc.status_code
    response = getattr(exc, "http_response", None)
    status = getattr(response, "status_code", None) or getattr(response, "status", None)
    return status if isinstance(status, int) else None


def _by_status(status: int | None) -> type[SinkError]:
    if status is None or status in (408, 429) or status >= 500:
        return TransientError
    return TerminalError


def classify_adx(exc: BaseException) -> type[SinkError] | None:
    """Sort azure-kusto / azure-storage / azure-identity errors into transient or terminal.

    Transient: throttling, network errors, timeouts, 408/429/5xx, non-permanent ADX errors.
    Terminal: permanent ADX errors, authentication and authorization failures (401/403),
    missing databases, tables or mappings, client-side errors (bad mapping arguments).
    Returns None for errors this module does not know (the generic rules then apply).
    """
    if isinstance(exc, KustoThrottlingError):
        return TransientError
    if isinstance(exc, (KustoAuthenticationError, ClientAuthenticationError)):
        return TerminalError
    if isinstance(exc, KustoApiError):
        error = exc.get_api_error()
        status = _status_of(exc)
        if any(code in (error.code or "") for code in _MISSING_ENTITY_CODES) or status in (401, 403):
            return TerminalError
        if error.permanent is None:
            return _by_status(status)
        return TerminalError if error.permanent else TransientError
    if isinstance(exc, KustoMultiApiError):
        errors = exc.get_api_errors()
        return TerminalError if errors and all(e.permanent for e in errors) else TransientError
    if isinstance(exc, KustoNetworkError):
        return TransientError
    if isinstance(exc, KustoServiceError):
        return _by_status(_status_of(exc))
    if isinstance(exc, KustoBlobError):
        return classify(exc.inner)
    if isinstance(exc, KustoQueueError):
        return classify(exc.__cause__) if exc.__cause__ is not None else TransientError
    if isinstance(exc, KustoClientError):
        return TerminalError
    if isinstance(exc, (ServiceRequestError, ServiceResponseError)):
        return TransientError
    if isinstance(exc, HttpResponseError):
        return _by_status(exc.status_code)
    if isinstance(exc, AzureError):
        return TransientError
    try:
        import requests
    except ImportError:  # pragma: no cover - a dependency of azure-kusto-data
        return None
    if isinstance(exc, (requests.ConnectionError, requests.Timeout)):
        return TransientError
    return None


register_classifier(classify_adx)


def describe_error(exc: BaseException) -> str:
    """One line about an SDK error: type, HTTP status and ADX error code when known (no SAS)."""
    parts = [type(exc).__name__]
    inner = exc.inner if isinstance(exc, KustoBlobError) else exc.__cause__ if isinstance(exc, KustoQueueError) else None
    target = inner or exc
    status = _status_of(target)
    if status is not None:
        parts.append(f"HTTP {status}")
    if isinstance(target, KustoApiError):
        error = target.get_api_error()
        parts.append(f"{error.code} (permanent={error.permanent})")
    elif getattr(target, "error_code", None):
        parts.append(str(getattr(target, "error_code", "")))
    if inner is not None:
        parts.append(f"from {type(inner).__name__}")
    text = str(target).split("?", 1)[0].strip().splitlines()
    if text and text[0]:
        parts.append(text[0][:200])
    return ": ".join(parts)


# --------------------------------------------------------------------------------------------
# The guarded queued client
# --------------------------------------------------------------------------------------------


def _read_all(stream: Any) -> bytes:
    data = stream.read()
    return data.encode("utf-8") if isinstance(data, str) else bytes(data)


class GuardedQueuedIngestClient(QueuedIngestClient):
    """``QueuedIngestClient`` whose upload cannot produce a 0-byte blob and whose storage calls
    have bounded retries (see the module docstring)."""

    def __init__(self, kcsb: KustoConnectionStringBuilder, storage: StorageRetry) -> None:
        super().__init__(kcsb)
        self._storage = storage
        self._blob_services: dict[str, Any] = {}
        self._queue_services: dict[str, Any] = {}
        self._clients_lock = threading.Lock()

    def _service(self, cache: dict[str, Any], factory: Any, policy_cls: Any, account_uri: str) -> Any:
        with self._clients_lock:
            client = cache.get(account_uri)
            if client is None:
                if len(cache) > 16:  # SAS tokens rotate with the resources; drop stale clients
                    cache.clear()
                client = cache[account_uri] = factory(
                    account_uri, proxies=self._proxy_dict, **self._storage.client_kwargs(policy_cls)
                )
            return client

    def _report(self, account: str, ok: bool) -> None:
        # Feeds the SDK's ranking of storage accounts (it prefers accounts that work).
        self._resource_manager.report_resource_usage_result(account, ok)

    def upload_blob(
        self,
        containers: list[Any],
        descriptor: Any,
        database: str,
        table: str,
        stream: Any,
        proxy_dict: dict[str, str] | None,
        timeout: int,
        max_retries: int,
    ) -> BlobDescriptor:
        """Upload to the first container that works, sending the same bytes to each."""
        from azure.storage.blob import BlobServiceClient, ExponentialRetry

        data = _read_all(stream)
        if not data:
            # Never hand ADX an empty blob: it would be queued and "ingest" nothing.
            raise TerminalError(f"refusing to upload an empty blob for {database}.{table}")
        name = f"{database}__{table}__{descriptor.source_id}__{descriptor.stream_name}"
        last: Exception | None = None
        for container in containers[: max(1, min(max_retries, len(containers)))]:
            service = self._service(self._blob_services, BlobServiceClient, ExponentialRetry, container.account_uri)
            blob = service.get_blob_client(container=container.object_name, blob=name)
            try:
                blob.upload_blob(data, length=len(data), overwrite=True, timeout=timeout)
            except AzureError as exc:
                self._report(container.storage_account_name, False)
                log.warning("blob upload to a temp container failed (%s); trying the next one", describe_error(exc))
                last = exc
                continue
            self._report(container.storage_account_name, True)
            return BlobDescriptor(blob.url, descriptor.size, descriptor.source_id)
        raise KustoBlobError(last or RuntimeError("no temp storage container"))

    def ingest_from_blob(self, blob_descriptor: BlobDescriptor, ingestion_properties: IngestionProperties) -> IngestionResult:
        """Post the ingestion message to the first queue that takes it."""
        from azure.kusto.data.exceptions import KustoClosedError
        from azure.storage.queue import ExponentialRetry, QueueServiceClient, TextBase64EncodePolicy

        if self._is_closed:
            raise KustoClosedError()  # type: ignore[no-untyped-call]
        queues = self._resource_manager.get_ingestion_queues()
        auth_context = self._resource_manager.get_authorization_context()  # type: ignore[no-untyped-call]
        message = IngestionBlobInfo(
            blob_descriptor,
            ingestion_properties=ingestion_properties,
            auth_context=auth_context,
            application_for_tracing=self.application_for_tracing,
            client_version_for_tracing=self.client_version_for_tracing,
        ).to_json()  # type: ignore[no-untyped-call]
        last: Exception | None = None
        for queue in queues[: max(1, min(self._MAX_RETRIES, len(queues)))]:
            service = self._service(self._queue_services, QueueServiceClient, ExponentialRetry, queue.account_uri)
            client = service.get_queue_client(queue=queue.object_name, message_encode_policy=TextBase64EncodePolicy())
            try:
                client.send_message(content=message, timeout=int(self._storage.read_timeout))
            except AzureError as exc:
                self._report(queue.storage_account_name, False)
                log.warning("ingestion queue message failed (%s); trying the next queue", describe_error(exc))
                last = exc
                continue
            self._report(queue.storage_account_name, True)
            return IngestionResult(
                IngestionStatus.QUEUED,
                ingestion_properties.database,
                ingestion_properties.table,
                blob_descriptor.source_id,
                blob_descriptor.path,
            )
        error = KustoQueueError()  # type: ignore[no-untyped-call]
        raise error from last

    def close(self) -> None:
        """Close the SDK client and the cached storage clients."""
        with self._clients_lock:
            for client in [*self._blob_services.values(), *self._queue_services.values()]:
                client.close()
            self._blob_services.clear()
            self._queue_services.clear()
        super().close()


def _bound_timeouts(kusto_client: Any, seconds: float) -> None:
    """Cap an SDK ``KustoClient``'s request timeouts (its defaults are 1 hour for management
    commands and 10 minutes for streaming). Instance attributes of azure-kusto-data 6.0.4."""
    kusto_client._mgmt_default_timeout = timedelta(seconds=seconds)
    kusto_client._streaming_ingest_default_timeout = timedelta(seconds=seconds)
    kusto_client._client_server_delta = timedelta(0)


# --------------------------------------------------------------------------------------------
# Clients: one set per process
# --------------------------------------------------------------------------------------------


def credential_for(settings: Settings) -> Any | None:
    """The token credential of ``ADX_AUTH``: managed identity (``AZURE_CLIENT_ID`` selects a
    user-assigned one), DefaultAzureCredential, or None for ``none``."""
    if settings.adx_auth == "none":
        return None
    if settings.adx_auth == "managed-identity":
        from azure.identity import ManagedIdentityCredential

        if settings.azure_client_id:
            return ManagedIdentityCredential(client_id=settings.azure_client_id)
        return ManagedIdentityCredential()
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential(managed_identity_client_id=settings.azure_client_id)


def connection_string(uri: str, credential: Any | None) -> KustoConnectionStringBuilder:
    """A fresh connection-string builder for ``uri`` (the SDK mutates it: never share one)."""
    if credential is None:
        return KustoConnectionStringBuilder.with_no_authentication(uri)
    return KustoConnectionStringBuilder.with_azure_token_credential(uri, credential)


class AdxClients:
    """The ADX clients of a process: one queued client, and a managed streaming client (built
    on first use) that falls back to that same queued client."""

    def __init__(self, settings: Settings, options: AdxOptions | None = None, credential: Any | None = None) -> None:
        if not settings.adx_ingest_uri:
            raise ConfigError("ADX_INGEST_URI is not set: the ADX sink needs an ingest URI")
        self.settings = settings
        self.options = options or AdxOptions()
        self.credential = credential if credential is not None else credential_for(settings)
        self.ingest_uri = settings.adx_ingest_uri
        self.engine_uri = settings.engine_uri or settings.adx_ingest_uri
        self.queued = GuardedQueuedIngestClient(connection_string(self.ingest_uri, self.credential), self.options.storage)
        _bound_timeouts(self.queued._resource_manager._kusto_client, self.options.request_timeout)
        self._streaming: ManagedStreamingIngestClient | None = None
        self._engine: KustoClient | None = None
        self._lock = threading.Lock()

    @property
    def engine(self) -> KustoClient:
        """A KustoClient for management commands on the engine URI (schema checks of preflight
        and doctor), created once, on first use."""
        with self._lock:
            if self._engine is None:
                client = KustoClient(connection_string(self.engine_uri, self.credential))
                _bound_timeouts(client, self.options.request_timeout)
                self._engine = client
            return self._engine

    def management(self, command: str, *, timeout: float, database: str = "NetDefaultDB",
                   endpoint: str = "engine") -> list[dict[str, Any]]:
        """Run one management command within ``timeout`` seconds and return the rows of its
        primary table as dicts. ``endpoint`` is ``engine`` or ``ingest`` (the ingest URI, through
        the queued client's own SDK client, so its token and connections are shared).

        Raises the SDK's errors (``KustoNetworkError`` when unreachable or too slow,
        ``KustoApiError`` for an ADX error answer); :func:`describe_error` makes them one line.
        """
        client = self.engine if endpoint == "engine" else self.queued._resource_manager._kusto_client
        properties = ClientRequestProperties()  # type: ignore[no-untyped-call]
        # The SDK passes whole seconds to requests (timedelta.seconds): below 1 s it would be 0.
        properties.set_option(ClientRequestProperties.request_timeout_option_name,
                              timedelta(seconds=max(1, round(timeout))))
        response = client.execute_mgmt(database, command, properties)
        return [row.to_dict() for row in response.primary_results[0]]

    @property
    def streaming(self) -> ManagedStreamingIngestClient:
        """The managed streaming client (created once, on first use)."""
        with self._lock:
            if self._streaming is None:
                opts = self.options
                client = ManagedStreamingIngestClient(
                    connection_string(self.engine_uri, self.credential),
                    connection_string(self.ingest_uri, self.credential),
                )
                # Fall back to the one guarded queued client, not the plain one it built.
                client.queued_client.close()
                client.queued_client = self.queued
                client._set_retry_settings(max_seconds_per_retry=opts.streaming_max_wait,
                                           num_of_attempts=opts.streaming_attempts)
                client.MAX_STREAMING_SIZE_IN_BYTES = opts.streaming_max_bytes
                _bound_timeouts(client.streaming_client._kusto_client, opts.request_timeout)
                self._streaming = client
            return self._streaming

    def close(self) -> None:
        """Close every client."""
        with self._lock:
            if self._streaming is not None:
                self._streaming.streaming_client.close()  # type: ignore[no-untyped-call]
                self._streaming = None
            if self._engine is not None:
                self._engine.close()  # type: ignore[no-untyped-call]
                self._engine = None
        self.queued.close()


_PROCESS_CLIENTS: dict[tuple[Any, ...], AdxClients] = {}
_PROCESS_LOCK = threading.Lock()


def close_process_clients() -> None:
    """Close and forget every process-wide client set (a worker shutting down, tests)."""
    with _PROCESS_LOCK:
        clients = list(_PROCESS_CLIENTS.values())
        _PROCESS_CLIENTS.clear()
    for item in clients:
        item.close()


def status_queues(queued: QueuedIngestClient, storage: StorageRetry | None = None) -> Any:
    """``KustoIngestStatusQueues`` for a queued client whose queue clients have bounded retries
    and timeouts (``storage``, default :class:`StorageRetry`).

    The SDK builds each status queue client with the storage SDK's default retry policy, which
    held ``kafka-adx status`` for 104 s when storage was down; this replaces that one factory
    (``StatusQueue._get_queues`` of azure-kusto-ingest 6.0.4) on the two queues it returns.
    """
    from azure.storage.queue import ExponentialRetry, QueueServiceClient, TextBase64DecodePolicy

    kwargs = (storage or StorageRetry()).client_kwargs(ExponentialRetry)
    queues = KustoIngestStatusQueues(queued)  # type: ignore[no-untyped-call]
    for status_queue in (queues.success, queues.failure):
        if not (hasattr(status_queue, "_get_queues") and hasattr(status_queue, "get_queues_func")):
            # Another SDK version: keep its own (slow but working) queue clients.
            log.warning("azure-kusto-ingest status queues changed shape; their storage retries are not bounded")
            continue

        def _get_queues(q: Any = status_queue) -> list[Any]:
            return [
                QueueServiceClient(uri.account_uri, **kwargs).get_queue_client(
                    queue=uri.object_name, message_decode_policy=TextBase64DecodePolicy())
                for uri in q.get_queues_func()
            ]
        status_queue._get_queues = _get_queues  # type: ignore[method-assign]
    return queues


def clients_for(settings: Settings, options: AdxOptions | None = None) -> AdxClients:
    """The process-wide clients for these settings (created on first call, then reused)."""
    key = (settings.adx_ingest_uri, settings.engine_uri, settings.adx_auth, settings.azure_client_id, options)
    with _PROCESS_LOCK:
        clients = _PROCESS_CLIENTS.get(key)
        if clients is None:
            clients = _PROCESS_CLIENTS[key] = AdxClients(settings, options)
        return clients


# --------------------------------------------------------------------------------------------
# Per-call request objects
# --------------------------------------------------------------------------------------------


def creation_time(batch: Batch) -> str | None:
    """``creationTime`` for ADX: the batch's oldest record timestamp, UTC, ISO 8601."""
    ts = batch.oldest_timestamp
    if ts is None:
        return None
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def ingestion_properties(batch: Batch) -> IngestionProperties:
    """Fresh properties for one call: format, mapping reference (none for client mapping),
    FailuresOnly reports, creationTime, and ingest-by / ingestIfNotExists tags on dedup routes."""
    dest = batch.destination
    try:
        data_format = _FORMATS[dest.wire_format]
    except KeyError:
        raise TerminalError(f"{dest.describe()}: ADX has no data format {dest.wire_format!r}") from None
    additional: dict[str, Any] = {}
    created = creation_time(batch)
    if created:
        additional["creationTime"] = created
    tags = [batch.dedup_tag] if dest.dedup else None
    return IngestionProperties(
        database=dest.database,
        table=dest.table,
        data_format=data_format,
        ingestion_mapping_reference=dest.wire_mapping,
        ingest_by_tags=tags,
        ingest_if_not_exists=list(tags) if tags else None,
        report_level=ReportLevel.FailuresOnly,
        additional_properties=additional,
    )


def stream_descriptor(batch: Batch) -> StreamDescriptor:
    """A fresh descriptor over the gzip payload: uncompressed size, UUID source id, a blob name
    that tells the batch and the format."""
    name = f"kafka-adx-{batch.batch_id[:16]}.{batch.destination.wire_format}.gz"
    return StreamDescriptor(
        io.BytesIO(batch.payload),
        source_id=batch.source_id,
        is_compressed=True,
        stream_name=name,
        size=batch.raw_size,
    )


# --------------------------------------------------------------------------------------------
# The sink
# --------------------------------------------------------------------------------------------


class AdxSink:
    """Writes batches to ADX: queued, or managed streaming for streaming destinations.

    ``write`` returns once ADX has the batch (queued message posted, or streamed), otherwise
    raises :class:`TransientError` or :class:`TerminalError` (see :func:`classify_adx`).
    """

    name = "adx"

    def __init__(self, clients: AdxClients) -> None:
        self.clients = clients
        self.counts = {"queued": 0, "streamed": 0, "fallback": 0}
        self._streaming_off: dict[tuple[str, str], float] = {}

    @classmethod
    def from_settings(cls, settings: Settings, options: AdxOptions | None = None) -> AdxSink:
        """A sink over the process-wide clients."""
        return cls(clients_for(settings, options))

    def write(self, batch: Batch) -> None:
        """Hand one batch to ADX or raise a classified error."""
        dest = batch.destination
        mode = dest.ingestion
        try:
            if mode == "streaming" and self._streaming_allowed(dest.database, dest.table):
                result = self._stream(batch)
            else:
                result = self.clients.queued.ingest_from_stream(stream_descriptor(batch), ingestion_properties(batch))
                self.counts["queued"] += 1
        except SinkError:
            raise
        except Exception as exc:
            kind = classify(exc)
            raise kind(f"ADX {mode} ingestion of {batch.describe()} failed: {describe_error(exc)}") from exc
        log.info("ADX %s: %s", result.status.value.lower(), batch.describe())

    def _streaming_allowed(self, database: str, table: str) -> bool:
        until = self._streaming_off.get((database, table))
        return until is None or time.monotonic() >= until

    def _stream(self, batch: Batch) -> IngestionResult:
        dest = batch.destination
        try:
            result = self.clients.streaming.ingest_from_stream(stream_descriptor(batch), ingestion_properties(batch))
        except KustoServiceError as exc:
            if _status_of(exc) != 404 or isinstance(exc, KustoApiError):
                raise
            # Streaming is not enabled on the cluster or table: nothing was ingested, so queue it.
            pause = self.clients.options.streaming_disabled_pause
            self._streaming_off[(dest.database, dest.table)] = time.monotonic() + pause
            log.warning("streaming ingestion is not enabled for %s.%s (404); using queued ingestion for %.0fs",
                        dest.database, dest.table, pause)
            result = self.clients.queued.ingest_from_stream(stream_descriptor(batch), ingestion_properties(batch))
        if result.status == IngestionStatus.SUCCESS:
            self.counts["streamed"] += 1
        else:
            self.counts["fallback"] += 1
        return result

    def close(self) -> None:
        """Nothing per sink: the clients are process-wide (close them with ``clients.close()``)."""
