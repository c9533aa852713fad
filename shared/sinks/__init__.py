"""Sinks: where sealed batches go (ADX queued, ADX streaming, local DuckDB, memory)."""

from shared.pipeline.sink import MemorySink, Sink

__all__ = ["MemorySink", "Sink"]
