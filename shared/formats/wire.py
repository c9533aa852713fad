"""How a record says which schema it was written with.

- Confluent wire format (Kafka producers with Confluent's serializers, Apicurio's in
  Confluent-compatible mode, Redpanda, Karapace): byte 0 is the magic byte 0, bytes 1-4 the
  schema id (big-endian, unsigned), the rest the encoded value.
- Azure Schema Registry (Event Hubs producers with azure-schemaregistry's encoders): the value
  is plain Avro binary and the content type ``avro/binary+<schema id>`` travels with it, as the
  ``content-type`` header (a Kafka header, or an Event Hubs property the trigger turns into one).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from shared.errors import RecordError
from shared.pipeline.records import Record

MAGIC = 0
HEADER_BYTES = 5
CONTENT_TYPE_HEADERS = ("content-type", "Content-Type", "contentType", "content_type")
"""Header names the Azure content type is looked for under, in this order."""
AZURE_AVRO_PREFIX = "avro/binary+"


@dataclass(frozen=True, slots=True)
class Framed:
    """A record's value split into the registry, the schema id and the encoded bytes."""

    registry: Literal["confluent", "azure"]
    schema_id: str
    payload: memoryview


def content_type(record: Record) -> str | None:
    """The record's content type header, if it has one that is text."""
    if not record.headers:
        return None
    for name in CONTENT_TYPE_HEADERS:
        value = record.header(name)
        if value is not None:
            try:
                return value.decode("utf-8").strip()
            except UnicodeDecodeError:
                return None
    return None


def split_confluent(value: bytes) -> Framed:
    """Magic byte, schema id and payload of a Confluent wire-format value (RecordError if not one)."""
    if len(value) < HEADER_BYTES:
        raise RecordError(
            f"value is {len(value)} byte(s), too short for the Confluent wire format (magic byte 0 and a 4-byte "
            "schema id first)",
            stage="decode",
        )
    if value[0] != MAGIC:
        raise RecordError(
            f"missing magic byte: the value starts with 0x{value[0]:02x}, not 0x00 (not in the Confluent wire "
            "format, and no content-type header avro/binary+<schema id>)",
            stage="decode",
        )
    schema_id = int.from_bytes(value[1:HEADER_BYTES], "big")
    return Framed("confluent", str(schema_id), memoryview(value)[HEADER_BYTES:])


def split(record: Record, *, azure: bool) -> Framed:
    """The framing of a record: the Azure content type when ``azure`` (Avro only) and the
    record carries one, else the Confluent wire format."""
    value = record.value or b""
    if azure:
        ctype = content_type(record)
        if ctype is not None and ctype.lower().startswith(AZURE_AVRO_PREFIX):
            schema_id = ctype[len(AZURE_AVRO_PREFIX):].strip()
            if not schema_id:
                raise RecordError(f"content type {ctype!r} names no schema id", stage="decode")
            return Framed("azure", schema_id, memoryview(value))
    return split_confluent(value)
