"""Adapters that turn each entry point's input into :class:`shared.records.Record` objects."""
