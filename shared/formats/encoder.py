"""The pipeline encoder of the schema formats (``avro``, ``jsonschema``): find the record's schema
id, decode the value with that schema, then map it exactly as a JSON record is client-mapped
(``$.path`` over the decoded value, the ADX types, the same dead-letter rules) into the CSV row
the batch carries.

What happens to a record (the delivery contract, docs/formats.md):

- no magic byte / content type, an unknown schema id, bytes that do not decode with their
  schema, a value that does not convert to its column: :class:`RecordError` (dead-lettered,
  the reason names the schema id and the decoder's error or the column);
- the registry cannot answer: :class:`RegistryUnavailable` (transient, the batch is retried).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from shared.config import IngestionConfig
from shared.errors import RecordError
from shared.formats import wire
from shared.formats.avro import AvroSchema, parse_avro
from shared.formats.avro_rows import AvroRows, Line
from shared.formats.json_schema import parse_json_schema
from shared.formats.registry import (
    RegisteredSchema,
    Registries,
    SchemaCache,
    SchemaSource,
    UnknownSchema,
    registries_from,
)
from shared.mapping.compiled import CompiledMapping
from shared.pipeline.destination import Destination
from shared.pipeline.records import Record


class Decoder(Protocol):
    """A parsed schema that decodes the payload of one record."""

    schema_id: str
    """The id records name it by (for the reasons of their dead letters)."""

    def decode(self, payload: bytes | memoryview) -> Any:
        """The decoded value, or :class:`RecordError`."""
        ...


Parser = Callable[[RegisteredSchema], Decoder]

_PARSERS: dict[str, Parser] = {"avro": parse_avro, "jsonschema": parse_json_schema}

_NOT_CONFIGURED = {
    "confluent": "no Confluent-compatible schema registry is configured (set SCHEMA_REGISTRY_URL)",
    "azure": "no Azure Schema Registry is configured (set AZURE_SCHEMA_REGISTRY_NAMESPACE, and an ADX_AUTH "
             "that signs in)",
}  # fmt: skip


_CACHES: dict[tuple[int, Parser], SchemaCache[Decoder]] = {}


def schema_cache(source: SchemaSource, parse: Parser) -> SchemaCache[Decoder]:
    """The process-wide cache of one registry's schemas as one format parses them: every
    destination of a process shares it, so each id is fetched and parsed once. (Keyed by the
    source's identity; the cache holds the source, so that identity is never reused.)"""
    key = (id(source), parse)
    cache = _CACHES.get(key)
    if cache is None:
        cache = _CACHES[key] = SchemaCache(source, parse)
    return cache


class SchemaMapped:
    """Encoder of an ``avro`` or ``jsonschema`` destination (always client-mapped)."""

    def __init__(self, config: IngestionConfig, dest: Destination, registries: Registries | None = None) -> None:
        if registries is None:
            # Only a pipeline built without settings (tests, tools) gets here: one built by
            # shared.wiring.build_pipeline passes the registries of the settings it was given.
            from shared.settings import Settings

            registries = registries_from(Settings.from_env())
        table = config.tables[dest.table]
        mapping = config.declared_mapping(dest.table, dest.mapping)
        self.declared = mapping
        self.mapping = CompiledMapping(table, mapping, "json", strict=dest.validate)
        parse = _PARSERS[dest.format]
        self.azure_avro = dest.format == "avro"
        self.registries = registries
        self.caches: dict[str, SchemaCache[Decoder] | None] = {
            "confluent": schema_cache(registries.confluent, parse) if registries.confluent else None,
            "azure": schema_cache(registries.azure, parse) if registries.azure and self.azure_avro else None,
        }
        # Confluent framings seen before (magic byte + id, the value's first 5 bytes) -> their
        # decoder: a record without headers then costs one slice and one dict lookup before
        # decoding, instead of the framing's checks and the shared cache's.
        self._known: dict[bytes, Decoder] = {}
        # Each Avro schema's plan under this mapping (shared.formats.avro_rows), made on its
        # first record; None: the reference path only.
        self._plans: dict[Decoder, AvroRows | None] = {}
        # Confluent framings seen before -> their plan's line: a record without headers then
        # goes from its bytes to its row in one call.
        self._lines: dict[bytes, Line] = {}

    def decoder(self, record: Record) -> tuple[Decoder, bytes | memoryview]:
        """The decoder of a record's schema and the bytes it decodes."""
        value = record.value or b""
        if not record.headers:
            known = self._known.get(value[: wire.HEADER_BYTES])
            if known is not None:
                return known, memoryview(value)[wire.HEADER_BYTES :]
        framed = wire.split(record, azure=self.azure_avro)
        cache = self.caches[framed.registry]
        if cache is None:
            why = self.registries.problem(framed.registry) or _NOT_CONFIGURED[framed.registry]
            raise RecordError(f"schema id {framed.schema_id}: {why}", stage="decode")
        try:
            decoder = cache.get(framed.schema_id)
        except UnknownSchema as exc:
            raise RecordError(f"schema id {framed.schema_id}: {exc}", stage="decode") from None
        if framed.registry == "confluent" and len(self._known) < 1024:
            self._known[value[: wire.HEADER_BYTES]] = decoder
        return decoder, framed.payload

    def decode(self, record: Record) -> tuple[str, Any]:
        """(schema id, decoded value) of one record."""
        decoder, payload = self.decoder(record)
        return decoder.schema_id, decoder.decode(payload)

    def plan(self, decoder: Decoder) -> AvroRows | None:
        """The plan of ``decoder``'s schema under this encoder's mapping (made once)."""
        try:
            return self._plans[decoder]
        except KeyError:
            made = decoder.rows(self.mapping, self.declared) if isinstance(decoder, AvroSchema) else None
            self._plans[decoder] = made
            return made

    def encode(self, record: Record) -> bytes:
        """The decoded record as one CSV row in table column order."""
        value = record.value or b""
        if not record.headers:
            line = self._lines.get(value[: wire.HEADER_BYTES])
            if line is not None:
                try:
                    return line(value, wire.HEADER_BYTES, record).encode("utf-8")
                except Exception:  # any failure: the reference path gives this record its exact outcome
                    return self.reference(record, *self.decoder(record))
        decoder, payload = self.decoder(record)
        rows = self._plans[decoder] if decoder in self._plans else self.plan(decoder)
        if rows is not None:
            if not record.headers and self._known.get(value[: wire.HEADER_BYTES]) is decoder:
                self._lines[value[: wire.HEADER_BYTES]] = rows.line  # as many as _known holds
            try:
                return rows.line(value, len(value) - len(payload), record).encode("utf-8")
            except Exception:  # any failure: the reference path below gives this record its exact outcome
                pass
        return self.reference(record, decoder, payload)

    def reference(self, record: Record, decoder: Decoder, payload: bytes | memoryview) -> bytes:
        """The record's row by the reference path: decode, then the compiled mapping's
        ``csv_line`` (what a plan must equal; a bad record's RecordError)."""
        value = decoder.decode(payload)
        try:
            line = self.mapping.csv_line(value, record, f"{record.topic}/{record.partition}")
        except RecordError as exc:
            raise RecordError(f"schema id {decoder.schema_id}: {exc.reason}", stage=exc.stage, field=exc.field) from None
        return line.encode("utf-8")
