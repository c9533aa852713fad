"""The ADX clients of a process: built once from :class:`Settings` (:func:`clients_for`), reused by
every sink, preflight and doctor of that process, closed with :func:`close_process_clients`.

Credentials come from :mod:`shared.credentials` (``ADX_AUTH``: managed identity in Azure,
``DefaultAzureCredential`` elsewhere, none only for loopback stand-ins); how the SDK clients
are tuned is :mod:`shared.sinks.adx.sdk`'s business.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from azure.kusto.data import ClientRequestProperties, KustoClient, KustoConnectionStringBuilder
from azure.kusto.ingest import ManagedStreamingIngestClient

from shared.credentials import credential_for
from shared.errors import ConfigError
from shared.settings import Settings
from shared.sinks.adx import sdk
from shared.storage import StorageRetry


@dataclass(frozen=True)
class AdxOptions:
    """Tunables of the ADX clients (defaults suit production; tests make them fast)."""

    storage: StorageRetry = field(default_factory=StorageRetry)
    """Retries and timeouts of each blob upload and queue message."""
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
        self.queued = sdk.GuardedQueuedIngestClient(
            connection_string(self.ingest_uri, self.credential), self.options.storage, self.options.request_timeout
        )
        self._streaming: ManagedStreamingIngestClient | None = None
        self._engine: KustoClient | None = None
        self._lock = threading.Lock()

    @property
    def engine(self) -> KustoClient:
        """A KustoClient for management commands on the engine URI (schema checks of preflight
        and doctor), created once, on first use."""
        with self._lock:
            if self._engine is None:
                self._engine = sdk.kusto_client(connection_string(self.engine_uri, self.credential),
                                                self.options.request_timeout)
            return self._engine

    def management(self, command: str, *, timeout: float, database: str = "NetDefaultDB",
                   endpoint: str = "engine") -> list[dict[str, Any]]:
        """Run one management command within ``timeout`` seconds and return the rows of its
        primary table as dicts. ``endpoint`` is ``engine`` or ``ingest`` (the ingest URI, through
        the queued client's own SDK client, so its token and connections are shared).

        Raises the SDK's errors (``KustoNetworkError`` when unreachable or too slow,
        ``KustoApiError`` for an ADX error answer);
        :func:`~shared.sinks.adx.errors.describe_error` makes them one line.
        """
        client = self.engine if endpoint == "engine" else sdk.ingest_endpoint_client(self.queued)
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
                self._streaming = sdk.managed_streaming_client(
                    connection_string(self.engine_uri, self.credential),
                    connection_string(self.ingest_uri, self.credential),
                    self.queued,
                    attempts=opts.streaming_attempts,
                    max_wait=opts.streaming_max_wait,
                    max_bytes=opts.streaming_max_bytes,
                    request_timeout=opts.request_timeout,
                )
            return self._streaming

    def close(self) -> None:
        """Close every client."""
        with self._lock:
            if self._streaming is not None:
                # Only its streaming half: the queued half is self.queued, closed below.
                self._streaming.streaming_client.close()  # type: ignore[no-untyped-call]
                self._streaming = None
            if self._engine is not None:
                self._engine.close()  # type: ignore[no-untyped-call]
                self._engine = None
        self.queued.close()


_PROCESS_CLIENTS: dict[tuple[Any, ...], AdxClients] = {}
_PROCESS_LOCK = threading.Lock()


def clients_for(settings: Settings, options: AdxOptions | None = None) -> AdxClients:
    """The process-wide clients for these settings (created on first call, then reused)."""
    key = (settings.adx_ingest_uri, settings.engine_uri, settings.adx_auth, settings.azure_client_id, options)
    with _PROCESS_LOCK:
        clients = _PROCESS_CLIENTS.get(key)
        if clients is None:
            clients = _PROCESS_CLIENTS[key] = AdxClients(settings, options)
        return clients


def close_process_clients() -> None:
    """Close and forget every process-wide client set (a worker shutting down, tests)."""
    with _PROCESS_LOCK:
        clients = list(_PROCESS_CLIENTS.values())
        _PROCESS_CLIENTS.clear()
    for item in clients:
        item.close()
