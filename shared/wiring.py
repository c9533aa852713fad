"""Builds the process-wide parts from settings: the sink, the dead-letter store, the pipeline.

Local mode (no ``ADX_INGEST_URI``): DuckDB sink and a dead-letter folder. With ADX settings:
the ADX sink; dead letters go to ``DEADLETTER_BLOB_URI`` when set, else to the local folder.
Heavy SDKs are imported only on the path that needs them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.config import SCHEMA_FORMATS, IngestionConfig, load_config
from shared.deadletters.local import LocalDeadLetterStore
from shared.pipeline.core import Pipeline
from shared.pipeline.deadletter import DeadLetterStore
from shared.pipeline.retry import RetryPolicy
from shared.pipeline.sink import Sink
from shared.settings import Settings

if TYPE_CHECKING:
    from shared.formats.registry import Registries


def build_sink(settings: Settings, config: IngestionConfig) -> Sink:
    """The sink the settings select."""
    if settings.local_mode:
        from shared.sinks.duckdb import DuckDbSink

        return DuckDbSink(config, settings.local_db)
    from shared.sinks.adx.sink import AdxSink

    return AdxSink.from_settings(settings)


def build_deadletters(settings: Settings) -> DeadLetterStore:
    """The dead-letter store the settings select."""
    if settings.deadletter_blob_uri:
        from shared.deadletters.blob import BlobDeadLetterStore

        return BlobDeadLetterStore.from_settings(settings)
    return LocalDeadLetterStore(settings.local_deadletter_dir)


def build_pipeline(
    settings: Settings, config: IngestionConfig | None = None, *, retry: RetryPolicy | None = None
) -> Pipeline:
    """A pipeline wired to the configured sink and dead-letter store, reading schemas from the
    registries ``settings`` name (never the environment's: the settings may differ from it)."""
    config = config or load_config(settings.ingestion_config)
    sink, store = build_sink(settings, config), build_deadletters(settings)
    return Pipeline(config, sink, store, retry=retry, registries=build_registries(settings, config))


def build_registries(settings: Settings, config: IngestionConfig) -> Registries:
    """The schema registries ``settings`` name, when a route of ``config`` reads a schema format
    (else none: a registry's client and credential are made only where schemas are read)."""
    from shared.formats.registry import Registries, registries_from

    formats = {route.format for route in config.routes}
    formats.update(target.format for route in config.routes for target in route.header_routing if target.format)
    if formats.isdisjoint(SCHEMA_FORMATS):
        return Registries()
    return registries_from(settings)
