"""What each record becomes, without writing anything: rows per table, or the dead-letter
reason. Uses the same routing and encoding as the pipeline, then maps the encoded line the way
the destination (ADX, or the local sink) would."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from shared.config import JSON_FORMATS, IngestionConfig
from shared.errors import RecordError
from shared.mapping.compiled import CompiledMapping, describe_row
from shared.pipeline.core import Pipeline
from shared.pipeline.destination import Destination
from shared.pipeline.encoding import read_payload
from shared.pipeline.records import Record


@dataclass
class PreviewItem:
    """One record's outcome."""

    record: Record
    destination: Destination | None = None
    rows: list[dict[str, Any]] = field(default_factory=list)
    error: RecordError | None = None

    @property
    def table(self) -> str | None:
        """``database.table`` or None when dead-lettered before routing."""
        dest = self.destination
        return f"{dest.database}.{dest.table}" if dest else None


class Previewer:
    """Maps records like the pipeline would; writes nothing."""

    def __init__(self, config: IngestionConfig) -> None:
        self.config = config
        self.pipeline = Pipeline(config, sink=_NoSink(), deadletters=_NoStore())
        self._mappings: dict[Destination, CompiledMapping] = {}

    def _mapping(self, dest: Destination) -> CompiledMapping:
        compiled = self._mappings.get(dest)
        if compiled is None:
            table = self.config.tables[dest.table]
            wire_mapping = dest.wire_mapping
            mapping = table.mappings[wire_mapping] if wire_mapping else None
            kind = "json" if dest.wire_format in JSON_FORMATS else "csv"
            compiled = self._mappings[dest] = CompiledMapping(table, mapping, kind, strict=False)
        return compiled

    def preview(self, records: Iterable[Record]) -> Iterator[PreviewItem]:
        """One item per record."""
        for record in records:
            try:
                _, dest, line = self.pipeline.prepare(record)
            except RecordError as exc:
                yield PreviewItem(record, destination=exc.destination, error=exc)
                continue
            if self.config.is_external_mapping(dest.table, dest.wire_mapping):
                # Only the cluster knows an external mapping: no by-position guess.
                note = f"ADX applies the external mapping {dest.wire_mapping}; only the cluster knows its shape"
                yield PreviewItem(record, destination=dest, rows=[{"note": note}])
                continue
            compiled = self._mapping(dest)
            table = self.config.tables[dest.table]
            rows = [
                describe_row(table, compiled.row(doc, record, f"{record.topic}/{record.partition}"))
                for doc in read_payload(line + b"\n", dest.wire_format)
            ]
            yield PreviewItem(record, destination=dest, rows=rows)


class _NoSink:
    name = "none"

    def write(self, batch: Any) -> None:
        raise AssertionError("preview never writes")

    def close(self) -> None:
        """Nothing to close."""


class _NoStore:
    def write(self, letters: Any) -> str:
        raise AssertionError("preview never writes")

    def sets(self) -> Iterator[str]:
        return iter(())

    def read(self, set_id: str) -> list[Any]:
        return []
