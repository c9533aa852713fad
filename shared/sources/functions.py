"""Adapters from what the Azure Functions triggers hand the worker to :class:`Record` objects.

Kafka trigger (cardinality many), two shapes:

- ``dataType: binary``: each event body is the raw Kafka value; key, topic, partition, offset,
  timestamp and headers come from the batch metadata arrays the host sends alongside
  (``KeyArray``, ``TopicArray``, ...), which the ``azure.functions`` converter puts on each
  :class:`azure.functions.KafkaEvent`.
- ``dataType: string``: each body is the extension's JSON envelope ``{"Offset", "Partition",
  "Topic", "Timestamp", "Value", "Key", "Headers": [{"Key", "Value": <base64>}]}``. The value
  arrives already decoded as UTF-8 text by the extension, so bytes that are not UTF-8 are lost
  there; prefer ``binary``.

Event Hubs trigger (cardinality many, ``dataType: binary``): the body is the event's bytes;
sequence number, enqueued time and partition key come per event, and the batch metadata holds
``PartitionContext`` (event hub name, partition id), ``PropertiesArray`` (application
properties) and ``SystemPropertiesArray``. Producers that write through the Event Hubs Kafka
endpoint have their Kafka headers stored as application properties with binary values, which the
host serialises as base64 strings, and their Kafka key as the ``x-opt-kafka-key`` annotation
(Event Hubs does not turn a Kafka key into a partition key or back). The adapter turns both back
into bytes, so that header routing and header/key columns behave exactly as with Kafka.

An event the adapter cannot read is never dropped and never fails the batch: it comes back as an
:class:`AdapterError` holding a best-effort record (original body, whatever metadata was known)
and the reason, for the caller to dead-letter.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

import orjson

from shared.records import Header, Record

HeaderEncoding = Literal["base64", "text"]
"""How string-valued Event Hubs application properties become header bytes: ``base64`` (they
are Kafka headers from the Kafka endpoint, binary values the host serialised as base64; a
string that is not canonical base64 is taken as text) or ``text`` (AMQP producers' string
properties, encoded as UTF-8)."""

KAFKA_KEY_PROPERTY = "x-opt-kafka-key"
"""System property (AMQP message annotation) carrying the Kafka key of an event produced
through the Event Hubs Kafka endpoint."""

_DOTNET_MIN_DATE = datetime(1, 1, 1, tzinfo=UTC)


class KafkaEventLike(Protocol):
    """What the adapter reads from an :class:`azure.functions.KafkaEvent`."""

    def get_body(self) -> bytes: ...

    @property
    def key(self) -> Any: ...

    @property
    def offset(self) -> Any: ...

    @property
    def partition(self) -> Any: ...

    @property
    def topic(self) -> Any: ...

    @property
    def timestamp(self) -> Any: ...

    @property
    def headers(self) -> Any: ...


class EventHubEventLike(Protocol):
    """What the adapter reads from an :class:`azure.functions.EventHubEvent`."""

    def get_body(self) -> bytes: ...

    @property
    def partition_key(self) -> Any: ...

    @property
    def sequence_number(self) -> Any: ...

    @property
    def enqueued_time(self) -> Any: ...

    @property
    def metadata(self) -> Any: ...


class AdapterFault(ValueError):
    """One event's metadata cannot be read."""


@dataclass(frozen=True, slots=True)
class AdapterError:
    """An event the adapter could not turn into a record, with the reason (no payload in it)."""

    record: Record
    """Best effort: the original body as value and whatever metadata was known."""
    reason: str


@dataclass
class Adapted:
    """The records of one trigger batch, and the events that could not be read."""

    records: list[Record] = field(default_factory=list)
    errors: list[AdapterError] = field(default_factory=list)

    @property
    def count(self) -> int:
        """Events received: records plus errors."""
        return len(self.records) + len(self.errors)


# --------------------------------------------------------------------------- value helpers


def parse_timestamp(value: Any) -> datetime | None:
    """An ISO 8601 timestamp from the host as aware UTC; naive values are UTC (the host writes
    UTC clock times without an offset). .NET's ``DateTime.MinValue`` (no timestamp) is None."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        ts = value
    elif isinstance(value, str):
        try:
            ts = datetime.fromisoformat(value.strip())
        except ValueError:
            raise AdapterFault(f"timestamp {value[:40]!r} is not ISO 8601") from None
    else:
        raise AdapterFault(f"timestamp has type {type(value).__name__}, expected a string")
    ts = ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)
    return None if ts == _DOTNET_MIN_DATE else ts


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool):
        raise AdapterFault(f"{what} is a boolean, expected an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise AdapterFault(f"{what} {str(value)[:40]!r} is not an integer")


def _text_bytes(value: Any) -> bytes | None:
    """A JSON value as bytes: strings as UTF-8, other scalars and structures as JSON text."""
    if value is None:
        return None
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, bool):
        return b"true" if value else b"false"
    if isinstance(value, (int, float)):
        return str(value).encode("ascii")
    return orjson.dumps(value)


def _strict_b64(text: str) -> bytes | None:
    """The bytes of canonical base64 text, or None when ``text`` is not canonical base64."""
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return data if base64.b64encode(data).decode("ascii") == text else None


def _b64_field(value: Any, what: str) -> bytes | None:
    """A value the host serialised from .NET ``byte[]`` (base64 text); null stays None."""
    if value is None:
        return None
    if isinstance(value, str):
        data = _strict_b64(value)
        if data is None:
            raise AdapterFault(f"{what} is not base64")
        return data
    if isinstance(value, list) and all(isinstance(b, int) and 0 <= b <= 255 for b in value):
        return bytes(value)
    raise AdapterFault(f"{what} has type {type(value).__name__}, expected base64 text")


def _field(doc: Mapping[str, Any], name: str) -> Any:
    """``doc[name]``, also accepting the camelCase spelling some serialisers use."""
    if name in doc:
        return doc[name]
    return doc.get(name[:1].lower() + name[1:])


def kafka_headers(value: Any) -> tuple[Header, ...]:
    """Kafka headers as the extension serialises them: ``[{"Key": str, "Value": base64|null}]``."""
    if value is None:
        return ()
    if isinstance(value, str):  # a headers array that arrived as JSON text
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            raise AdapterFault("headers are not a JSON array") from None
    if not isinstance(value, list):
        raise AdapterFault(f"headers have type {type(value).__name__}, expected a list")
    headers: list[Header] = []
    for index, item in enumerate(value):
        if not isinstance(item, Mapping):
            raise AdapterFault(f"header #{index} is not an object")
        name = _field(item, "Key")
        if not isinstance(name, str):
            raise AdapterFault(f"header #{index} has no name")
        headers.append((name, _b64_field(_field(item, "Value"), f"header {name!r}")))
    return tuple(headers)


# --------------------------------------------------------------------------- Kafka


def _kafka_key(value: Any) -> bytes | None:
    # The extension hands keys over as strings (keyDataType String, its default).
    return _text_bytes(value)


def kafka_record_from_envelope(body: bytes) -> Record:
    """One Kafka record from the extension's JSON envelope (``dataType: string``)."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise AdapterFault(f"body is not a Kafka trigger JSON envelope ({exc})") from None
    if not isinstance(doc, dict):
        raise AdapterFault("body is not a Kafka trigger JSON envelope (not an object)")
    topic = _field(doc, "Topic")
    if not isinstance(topic, str) or _field(doc, "Offset") is None:
        raise AdapterFault("Kafka trigger JSON envelope has no Topic or Offset")
    value = _field(doc, "Value")
    return Record(
        value=_text_bytes(value),
        key=_kafka_key(_field(doc, "Key")),
        headers=kafka_headers(_field(doc, "Headers")),
        topic=topic,
        partition=_int(_field(doc, "Partition") or 0, "Partition"),
        offset=_int(_field(doc, "Offset"), "Offset"),
        timestamp=parse_timestamp(_field(doc, "Timestamp")),
        source="kafka",
    )


def kafka_record_from_event(event: KafkaEventLike) -> Record:
    """One Kafka record from a raw-binary event (``dataType: binary``) and its metadata."""
    topic = event.topic
    if not isinstance(topic, str) or event.offset is None:
        raise AdapterFault("Kafka event has no topic or offset metadata")
    return Record(
        value=event.get_body(),
        key=_kafka_key(event.key),
        headers=kafka_headers(event.headers),
        topic=topic,
        partition=_int(event.partition if event.partition is not None else 0, "partition"),
        offset=_int(event.offset, "offset"),
        timestamp=parse_timestamp(event.timestamp),
        source="kafka",
    )


def _kafka_fallback(event: KafkaEventLike) -> Record:
    """Whatever is known of an unreadable event, keeping its original body."""

    def safe(fn: Any, default: Any) -> Any:
        try:
            value = fn()
        except (AdapterFault, TypeError, ValueError):
            return default
        return default if value is None else value

    return Record(
        value=event.get_body(),
        topic=safe(lambda: str(event.topic) if event.topic is not None else None, ""),
        partition=safe(lambda: _int(event.partition, "partition"), 0),
        offset=safe(lambda: _int(event.offset, "offset"), 0),
        source="kafka",
    )


def kafka_records(events: Sequence[KafkaEventLike], *, envelope: bool) -> Adapted:
    """Records of a Kafka trigger batch; ``envelope`` is True for ``dataType: string``."""
    out = Adapted()
    for event in events:
        try:
            record = kafka_record_from_envelope(event.get_body()) if envelope else kafka_record_from_event(event)
        except AdapterFault as exc:
            out.errors.append(AdapterError(_kafka_fallback(event), str(exc)))
            continue
        out.records.append(record)
    return out


# --------------------------------------------------------------------------- Event Hubs


def property_bytes(value: Any, encoding: HeaderEncoding) -> bytes | None:
    """An application property value as header bytes (see :data:`HeaderEncoding`)."""
    if isinstance(value, str) and encoding == "base64":
        data = _strict_b64(value)
        return value.encode("utf-8") if data is None else data
    return _text_bytes(value)


def eventhub_headers(properties: Any, encoding: HeaderEncoding) -> tuple[Header, ...]:
    """Application properties of one event as headers, in the order the host sent them."""
    if properties is None:
        return ()
    if not isinstance(properties, Mapping):
        raise AdapterFault(f"application properties have type {type(properties).__name__}, expected an object")
    return tuple((str(name), property_bytes(value, encoding)) for name, value in properties.items())


def _eventhub_key(system: Mapping[str, Any], partition_key: Any) -> bytes | None:
    """The Kafka key (``x-opt-kafka-key``) if a Kafka-endpoint producer set one, else the
    partition key."""
    kafka_key = system.get(KAFKA_KEY_PROPERTY)
    if kafka_key is not None:
        if isinstance(kafka_key, str):
            data = _strict_b64(kafka_key)
            return kafka_key.encode("utf-8") if data is None else data
        return _b64_field(kafka_key, "Kafka key")
    if partition_key is None:
        partition_key = system.get("PartitionKey")
    return None if partition_key is None else str(partition_key).encode("utf-8")


def _batch_metadata(events: Sequence[EventHubEventLike]) -> Mapping[str, Any]:
    # Every event of a batch points to the same metadata; converting it per event would parse
    # the whole batch's property arrays once per event (quadratic), so read it once.
    if not events:
        return {}
    meta = events[0].metadata
    return meta if isinstance(meta, Mapping) else {}


def _item(array: Any, index: int) -> Mapping[str, Any]:
    if isinstance(array, list) and index < len(array) and isinstance(array[index], Mapping):
        return array[index]  # type: ignore[no-any-return]
    return {}


def eventhub_records(
    events: Sequence[EventHubEventLike],
    *,
    event_hub: str | None = None,
    header_encoding: HeaderEncoding = "base64",
) -> Adapted:
    """Records of an Event Hubs trigger batch.

    ``topic`` is ``event_hub`` (the configured name) or else the ``EventHubName`` of the
    partition context; ``offset`` is the sequence number; ``timestamp`` the enqueued time.
    """
    meta = _batch_metadata(events)
    context = meta.get("PartitionContext")
    context = context if isinstance(context, Mapping) else {}
    topic = event_hub or str(context.get("EventHubName") or "")
    partition_id = context.get("PartitionId")
    properties = meta.get("PropertiesArray")
    systems = meta.get("SystemPropertiesArray")
    out = Adapted()
    for index, event in enumerate(events):
        system = _item(systems, index)
        body = event.get_body()
        try:
            partition = _int(partition_id, "PartitionId") if partition_id is not None else 0
            sequence = event.sequence_number
            if sequence is None:
                sequence = system.get("SequenceNumber")
            if sequence is None:
                raise AdapterFault("event has no sequence number")
            enqueued = event.enqueued_time
            record = Record(
                value=body,
                key=_eventhub_key(system, event.partition_key),
                headers=eventhub_headers(
                    properties[index] if isinstance(properties, list) and index < len(properties) else None,
                    header_encoding,
                ),
                topic=topic,
                partition=partition,
                offset=_int(sequence, "sequence number"),
                timestamp=parse_timestamp(enqueued if enqueued is not None else system.get("EnqueuedTimeUtc")),
                source="eventhub",
            )
        except AdapterFault as exc:
            seq = system.get("SequenceNumber", event.sequence_number)
            fallback = Record(
                value=body,
                topic=topic,
                partition=partition_id if isinstance(partition_id, int) else 0,
                offset=seq if isinstance(seq, int) and not isinstance(seq, bool) else 0,
                source="eventhub",
            )
            out.errors.append(AdapterError(fallback, str(exc)))
            continue
        out.records.append(record)
    return out
