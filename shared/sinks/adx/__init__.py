"""The ADX sink and its clients, by concern:

* :mod:`~shared.sinks.adx.sink`: :class:`AdxSink` and the per-batch request objects;
* :mod:`~shared.sinks.adx.clients`: :class:`AdxClients`, the process-wide client cache;
* :mod:`~shared.sinks.adx.errors`: SDK errors sorted into transient / terminal, described in one line;
* :mod:`~shared.sinks.adx.sdk`: the one boundary to azure-kusto's internals (and the status queues).

The names below are the package's public API (import them from ``shared.sinks.adx``).
"""

from shared.sinks.adx.clients import (
    AdxClients,
    AdxOptions,
    clients_for,
    close_process_clients,
    connection_string,
)
from shared.sinks.adx.errors import classify, describe_error, status_of
from shared.sinks.adx.sdk import status_queues
from shared.sinks.adx.sink import AdxSink, creation_time, ingestion_properties, stream_descriptor

__all__ = [
    "AdxClients",
    "AdxOptions",
    "AdxSink",
    "classify",
    "clients_for",
    "close_process_clients",
    "connection_string",
    "creation_time",
    "describe_error",
    "ingestion_properties",
    "status_of",
    "status_queues",
    "stream_descriptor",
]
