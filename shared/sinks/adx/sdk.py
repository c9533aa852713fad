"""The one boundary to azure-kusto's internals: every private attribute, private method and
replaced SDK step this package relies on is used here and nowhere else.

Written for azure-kusto-data / azure-kusto-ingest 6.0.x (checked at import: another version
gives a :class:`RuntimeWarning` naming both). :data:`INTERNALS` lists each internal name with
what it is used for; tests/integration/adx/test_sdk_contract.py checks every one of them on the installed
SDK's real classes, so an upgrade that drops one fails there with the name, not somewhere deep
in an ingestion.

What is changed, and why:

* the queued client's blob upload (:meth:`GuardedQueuedIngestClient.upload_blob`) reads the
  payload once and sends those *bytes* to each container it tries, so a failover to the next
  container never uploads the already-consumed stream as a 0-byte blob; it also overwrites a
  blob left by an earlier attempt of the same batch (same source id, same name) instead of
  failing on it;
* the blob upload, the queue message and the status queues use storage clients with bounded,
  jittered retries and timeouts (:class:`~shared.storage.StorageRetry`) instead of the storage
  SDK's ~1 minute per failure;
* request timeouts of the SDK's ``KustoClient`` are capped (its defaults are 1 hour for
  management commands and 10 minutes for streaming);
* the managed streaming client falls back to the one guarded queued client, with our number of
  streaming attempts, backoff and size limit.
"""

from __future__ import annotations

import importlib.metadata
import logging
import threading
import warnings
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

from azure.core.exceptions import AzureError
from azure.kusto.data import KustoClient, KustoConnectionStringBuilder
from azure.kusto.data.exceptions import KustoBlobError, KustoClosedError
from azure.kusto.ingest import (
    BlobDescriptor,
    IngestionProperties,
    IngestionResult,
    IngestionStatus,
    KustoQueueError,
    ManagedStreamingIngestClient,
    QueuedIngestClient,
)
from azure.kusto.ingest.ingestion_blob_info import IngestionBlobInfo
from azure.kusto.ingest.status import KustoIngestStatusQueues

from shared.errors import TerminalError
from shared.sinks.adx.errors import describe_error
from shared.storage import StorageRetry

log = logging.getLogger("kafka_adx.sinks.adx")

T = TypeVar("T")

WRITTEN_FOR = "6.0"
"""The azure-kusto-data / azure-kusto-ingest release line this module was written against."""

SDK_PACKAGES = ("azure-kusto-data", "azure-kusto-ingest")

INTERNALS: tuple[tuple[str, str, str], ...] = (
    ("KustoClient", "_mgmt_default_timeout", "capped by bound_timeouts"),
    ("KustoClient", "_streaming_ingest_default_timeout", "capped by bound_timeouts"),
    ("KustoClient", "_client_server_delta", "zeroed by bound_timeouts (else 30 s are added to every timeout)"),
    ("QueuedIngestClient", "upload_blob", "replaced by GuardedQueuedIngestClient (same signature)"),
    ("QueuedIngestClient", "_MAX_RETRIES", "how many ingestion queues GuardedQueuedIngestClient tries"),
    ("QueuedIngestClient", "_proxy_dict", "the proxies of the guarded client's storage clients"),
    ("QueuedIngestClient", "_resource_manager", "ingestion resources, auth context, storage ranking"),
    ("QueuedIngestClient", "_is_closed", "GuardedQueuedIngestClient.ingest_from_blob refuses when closed"),
    ("QueuedIngestClient", "application_for_tracing", "copied into the ingestion message"),
    ("QueuedIngestClient", "client_version_for_tracing", "copied into the ingestion message"),
    ("_ResourceManager", "_kusto_client", "the ingest endpoint's KustoClient (timeouts, management commands)"),
    ("_ResourceManager", "get_ingestion_queues", "the queues GuardedQueuedIngestClient posts to"),
    ("_ResourceManager", "get_authorization_context", "the auth context of the ingestion message"),
    ("_ResourceManager", "report_resource_usage_result", "feeds the SDK's ranking of storage accounts"),
    ("ManagedStreamingIngestClient", "queued_client", "replaced by the guarded queued client"),
    ("ManagedStreamingIngestClient", "streaming_client", "its KustoClient's timeouts are capped"),
    ("ManagedStreamingIngestClient", "_set_retry_settings", "streaming attempts and backoff"),
    ("ManagedStreamingIngestClient", "MAX_STREAMING_SIZE_IN_BYTES", "payloads above it go queued directly"),
    ("KustoStreamingIngestClient", "_kusto_client", "the engine's KustoClient of streaming ingestion"),
    ("StatusQueue", "get_queues_func", "the status queues' resource URIs"),
    ("StatusQueue", "_get_queues", "replaced by status_queues (bounded queue clients)"),
)
"""(SDK class, internal name, what for) of every internal this module uses."""


def check_version() -> list[str]:
    """Warn (:class:`RuntimeWarning`) for each installed azure-kusto package outside
    :data:`WRITTEN_FOR`; return the warnings."""
    problems = []
    for package in SDK_PACKAGES:
        try:
            installed = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:  # pragma: no cover - imported above
            continue
        if installed.split(".")[:2] != WRITTEN_FOR.split("."):
            problems.append(
                f"kafka-adx's ADX sink was written for {package} {WRITTEN_FOR}.x and uses its internals "
                f"(shared/sinks/adx/sdk.py); {package} {installed} is installed. Run "
                f"tests/integration/adx/test_sdk_contract.py, or install {package}=={WRITTEN_FOR}.*"
            )
    for problem in problems:
        warnings.warn(problem, RuntimeWarning, stacklevel=2)
    return problems


check_version()


# --------------------------------------------------------------------------------------------
# KustoClient timeouts
# --------------------------------------------------------------------------------------------


def bound_timeouts(kusto_client: Any, seconds: float) -> None:
    """Cap an SDK ``KustoClient``'s request timeouts at ``seconds`` (instance attributes that
    shadow the class defaults of 1 hour for management commands and 10 minutes for streaming)."""
    kusto_client._mgmt_default_timeout = timedelta(seconds=seconds)
    kusto_client._streaming_ingest_default_timeout = timedelta(seconds=seconds)
    kusto_client._client_server_delta = timedelta(0)


def kusto_client(kcsb: KustoConnectionStringBuilder, request_timeout: float) -> KustoClient:
    """A ``KustoClient`` whose requests time out after ``request_timeout`` seconds."""
    client = KustoClient(kcsb)
    bound_timeouts(client, request_timeout)
    return client


def ingest_endpoint_client(queued: QueuedIngestClient) -> KustoClient:
    """The ``KustoClient`` a queued client uses for the ingest endpoint (management commands on
    it share the queued client's token and connections)."""
    client: KustoClient = queued._resource_manager._kusto_client
    return client


# --------------------------------------------------------------------------------------------
# The guarded queued client
# --------------------------------------------------------------------------------------------


def _read_all(stream: Any) -> bytes:
    data = stream.read()
    return data.encode("utf-8") if isinstance(data, str) else bytes(data)


class GuardedQueuedIngestClient(QueuedIngestClient):
    """``QueuedIngestClient`` whose upload cannot produce a 0-byte blob and whose storage calls
    have bounded retries (see the module docstring); its management requests time out after
    ``request_timeout`` seconds."""

    def __init__(self, kcsb: KustoConnectionStringBuilder, storage: StorageRetry, request_timeout: float) -> None:
        super().__init__(kcsb)
        bound_timeouts(ingest_endpoint_client(self), request_timeout)
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

    def _first_that_works(
        self, resources: list[Any], max_tries: int, call: Callable[[Any], T], what: str
    ) -> tuple[T | None, Exception | None]:
        """``call`` on each of the first ``max_tries`` resources (containers or queues, as the
        SDK ranks them) until one works: (its result, None), else (None, the last error). Each
        outcome feeds the SDK's ranking of storage accounts (it prefers accounts that work)."""
        last: Exception | None = None
        for resource in resources[: max(1, min(max_tries, len(resources)))]:
            try:
                result = call(resource)
            except AzureError as exc:
                self._resource_manager.report_resource_usage_result(resource.storage_account_name, False)
                log.warning("%s failed (%s); trying the next one", what, describe_error(exc))
                last = exc
                continue
            self._resource_manager.report_resource_usage_result(resource.storage_account_name, True)
            return result, None
        return None, last

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

        def upload(container: Any) -> BlobDescriptor:
            service = self._service(self._blob_services, BlobServiceClient, ExponentialRetry, container.account_uri)
            blob = service.get_blob_client(container=container.object_name, blob=name)
            blob.upload_blob(data, length=len(data), overwrite=True, timeout=timeout)
            return BlobDescriptor(blob.url, descriptor.size, descriptor.source_id)

        result, last = self._first_that_works(containers, max_retries, upload, "blob upload to a temp container")
        if result is None:
            raise KustoBlobError(last or RuntimeError("no temp storage container"))
        return result

    def ingest_from_blob(self, blob_descriptor: BlobDescriptor, ingestion_properties: IngestionProperties) -> IngestionResult:
        """Post the ingestion message to the first queue that takes it."""
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

        def post(queue: Any) -> IngestionResult:
            service = self._service(self._queue_services, QueueServiceClient, ExponentialRetry, queue.account_uri)
            client = service.get_queue_client(queue=queue.object_name, message_encode_policy=TextBase64EncodePolicy())
            client.send_message(content=message, timeout=int(self._storage.read_timeout))
            return IngestionResult(
                IngestionStatus.QUEUED,
                ingestion_properties.database,
                ingestion_properties.table,
                blob_descriptor.source_id,
                blob_descriptor.path,
            )

        result, last = self._first_that_works(queues, self._MAX_RETRIES, post, "ingestion queue message")
        if result is None:
            error = KustoQueueError()  # type: ignore[no-untyped-call]
            raise error from last
        return result

    def close(self) -> None:
        """Close the SDK client and the cached storage clients."""
        with self._clients_lock:
            for client in [*self._blob_services.values(), *self._queue_services.values()]:
                client.close()
            self._blob_services.clear()
            self._queue_services.clear()
        super().close()


# --------------------------------------------------------------------------------------------
# The managed streaming client
# --------------------------------------------------------------------------------------------


def managed_streaming_client(
    engine: KustoConnectionStringBuilder,
    ingest: KustoConnectionStringBuilder,
    queued: GuardedQueuedIngestClient,
    *,
    attempts: int,
    max_wait: float,
    max_bytes: int,
    request_timeout: float,
) -> ManagedStreamingIngestClient:
    """A managed streaming client that falls back to ``queued`` (not to a plain queued client of
    its own), tries ``attempts`` times with up to ``max_wait`` seconds between tries, sends
    payloads above ``max_bytes`` queued directly and times out after ``request_timeout``."""
    client = ManagedStreamingIngestClient(engine, ingest)
    client.queued_client.close()
    client.queued_client = queued
    client._set_retry_settings(max_seconds_per_retry=max_wait, num_of_attempts=attempts)
    client.MAX_STREAMING_SIZE_IN_BYTES = max_bytes
    bound_timeouts(client.streaming_client._kusto_client, request_timeout)
    return client


# --------------------------------------------------------------------------------------------
# Status queues
# --------------------------------------------------------------------------------------------


def status_queues(queued: QueuedIngestClient, storage: StorageRetry | None = None) -> Any:
    """``KustoIngestStatusQueues`` for a queued client whose queue clients have bounded retries
    and timeouts (``storage``, default :class:`~shared.storage.StorageRetry`).

    The SDK builds each status queue client with the storage SDK's default retry policy, which
    held ``kafka-adx status`` for 104 s when storage was down; this replaces that one factory
    (``StatusQueue._get_queues``) on the two queues it returns.
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
