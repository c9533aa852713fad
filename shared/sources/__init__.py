"""Adapters that turn each entry point's input into :class:`shared.pipeline.records.Record` objects."""
