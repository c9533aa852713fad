"""Where a record goes: the resolved destination a batch is grouped by."""

from __future__ import annotations

from dataclasses import dataclass

from shared.config import ApplyMode, Format, IngestionMode


@dataclass(frozen=True, slots=True)
class Destination:
    """A fully resolved destination. Records with equal destinations share a batch."""

    database: str
    table: str
    format: Format
    mapping: str | None
    apply: ApplyMode
    ingestion: IngestionMode = "queued"
    dedup: bool = False
    validate: bool = True

    @property
    def wire_format(self) -> str:
        """The format ADX receives: CSV rows for client mapping; ``raw`` goes as ``txt``
        (one row per record, not one row per blob)."""
        if self.apply == "client":
            return "csv"
        return "txt" if self.format == "raw" else self.format

    @property
    def wire_mapping(self) -> str | None:
        """The mapping ADX must apply: none for client mapping (CSV by ordinal)."""
        return None if self.apply == "client" else self.mapping

    def describe(self) -> str:
        """Short human-readable form for logs and errors."""
        mapping = f" mapping={self.mapping}" if self.mapping else ""
        return f"{self.database}.{self.table} ({self.format}{mapping}, {self.apply}, {self.ingestion})"
