"""The ADX sink: queued ingestion by default, managed streaming for streaming routes, over the
process-wide clients of :mod:`shared.sinks.adx.clients`.

Every call builds fresh request objects, because the SDK (azure-kusto-ingest 6.0) mutates what it is given: a
new ``IngestionProperties`` with its own ``additional_properties`` dict, a new
``StreamDescriptor`` over a new ``BytesIO`` of the batch's gzip payload.

``write`` sorts every SDK error with :func:`shared.sinks.adx.errors.classify` and raises
:class:`TransientError` or :class:`TerminalError` with the SDK error chained.
"""

from __future__ import annotations

import io
import logging
import time
from typing import Any

from azure.kusto.data.data_format import DataFormat
from azure.kusto.data.exceptions import KustoApiError, KustoServiceError
from azure.kusto.ingest import (
    IngestionProperties,
    IngestionResult,
    IngestionStatus,
    ReportLevel,
    StreamDescriptor,
)

from shared.errors import SinkError, TerminalError
from shared.mapping.types import format_datetime
from shared.pipeline.batching import Batch
from shared.settings import Settings
from shared.sinks.adx.clients import AdxClients, AdxOptions, clients_for
from shared.sinks.adx.errors import classify, describe_error, status_of

log = logging.getLogger("kafka_adx.sinks.adx")

_FORMATS: dict[str, DataFormat] = {f.kusto_value: f for f in DataFormat}


# --------------------------------------------------------------------------------------------
# Per-call request objects
# --------------------------------------------------------------------------------------------


def creation_time(batch: Batch) -> str | None:
    """``creationTime`` for ADX: the batch's oldest record timestamp, UTC, ISO 8601."""
    ts = batch.oldest_timestamp
    if ts is None:
        return None
    return format_datetime(ts, 6)


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
    raises :class:`TransientError` or :class:`TerminalError` (see :func:`~shared.sinks.adx.errors.classify`).
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
            if status_of(exc) != 404 or isinstance(exc, KustoApiError):
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
