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

An AMQP producer's content type (``EventData.content_type``, the AMQP properties section's
``content-type``, where azure-schemaregistry's ``AvroEncoder`` puts ``avro/binary+<schema id>``)
reaches the worker only inside ``SystemPropertiesArray``: the extension copies
``EventData.SystemProperties`` into it (Azure/azure-sdk-for-net
sdk/eventhub/Microsoft.Azure.WebJobs.Extensions.EventHubs/src/Triggers/EventHubTriggerBindingStrategy.cs,
``GetSystemPropertiesForBinding``), and that dictionary holds the properties section's fields
under their AMQP names, ``content-type`` among them, when set
(sdk/eventhub/Azure.Messaging.EventHubs/src/Amqp/AmqpSystemProperties.cs; the names are
Microsoft.Azure.Amqp's ``Properties.*Name``; the value is a ``string``,
sdk/core/Azure.Core.Amqp/src/AmqpMessageProperties.cs, so JSON text). The binding contract has no ``ContentTypeArray``,
and ``azure.functions.EventHubEvent`` has no content type attribute (azure/functions/eventhub.py
reads only sequence number, offset, partition key, enqueued time and the ``iothub-*`` entries
from it). The adapter gives such a record a ``content-type`` header with it (see
:func:`_with_content_type`), so the Azure Schema Registry flavour of ``avro`` reads it.

Keys are bytes on every path (this adapter, the Kafka consumer, files): they are decoded only
when a mapping reads them, by the same rule as headers (``shared/mapping/compiled.py``: strict UTF-8; a
validating route dead-letters a record whose key is not UTF-8, with a reason naming the key, a
non-validating one gives a null column, as ADX does for a value that does not convert). The
Kafka trigger hands keys over as text unless the binding sets ``keyDataType: Binary`` (then as
base64 of the exact bytes): see :data:`KafkaKeyType`.

Every record carries its ``stream`` (see :class:`Record`): ``kafka:<brokers>/<topic>`` for the
Kafka trigger (the events do not name the cluster, so the caller passes the bootstrap servers)
and ``eventhub:<namespace>/<hub>`` for Event Hubs.

An event the adapter cannot read is never dropped and never fails the batch: it comes back as an
:class:`AdapterError` holding a best-effort record (original body, whatever metadata was known)
and the reason, for the caller to dead-letter.
"""

from __future__ import annotations

import binascii
import gc
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import repeat
from operator import add, attrgetter, is_, itemgetter, methodcaller, sub
from typing import Any, Literal, Protocol

import orjson

from shared.formats.wire import CONTENT_TYPE_HEADERS
from shared.pipeline.records import Header, Record

HeaderEncoding = Literal["base64", "text"]
"""How string-valued Event Hubs application properties become header bytes: ``base64`` (they
are Kafka headers from the Kafka endpoint, binary values the host serialised as base64; a
string that is not canonical base64 is taken as text) or ``text`` (AMQP producers' string
properties, encoded as UTF-8)."""

KafkaKeyType = Literal["string", "binary"]
"""How the Kafka trigger hands keys over (the binding's ``keyDataType``): ``string`` (the
extension's default) is the key already decoded as UTF-8 by the extension, with invalid bytes
replaced by U+FFFD, so a key that is not UTF-8 is lost before the function sees it; ``binary``
(``keyDataType: Binary``, Kafka extension 4.1+) is the exact key bytes, which the host
serialises as base64 text (.NET ``byte[]`` in JSON) in ``KeyArray`` and in the envelope's
``Key``. Only ``binary`` lets a non-UTF-8 key reach the mapping unchanged, as it does on the
Event Hubs path and in ``kafka-adx consume``. (The base64 form follows the host's serialisation
rules; unconfirmed end to end.)"""

KAFKA_KEY_PROPERTY = "x-opt-kafka-key"
"""System property (AMQP message annotation) carrying the Kafka key of an event produced
through the Event Hubs Kafka endpoint."""

CONTENT_TYPE_PROPERTY = "content-type"
"""System property (the AMQP properties section's content type, ``EventData.content_type``)
carrying an AMQP producer's content type, e.g. the ``AvroEncoder``'s ``avro/binary+<id>``."""

_DOTNET_MIN_DATE = datetime(1, 1, 1, tzinfo=UTC)


# --------------------------------------------------------------------------- stream identity


def kafka_cluster(brokers: str) -> str:
    """A Kafka cluster's identity from its bootstrap server list, for when the cluster id is
    not known (the Kafka trigger's events do not carry it): the servers lower-cased, without
    duplicates, sorted and comma-joined, so that ``"B:9092, a:9092"`` and ``"a:9092,b:9092"``
    name the same cluster."""
    servers = {part.strip().lower() for part in brokers.replace(";", ",").split(",")}
    return ",".join(sorted(server for server in servers if server))


def kafka_stream(cluster: str, topic: str, topic_id: str = "") -> str:
    """The ``stream`` of a Kafka topic: ``kafka:<cluster>/<topic>``, plus ``:<topic id>`` when
    the topic id is known (a topic deleted and created again under the same name gets a new
    id, and its offsets start again). Topic names cannot contain ``:`` or ``/``."""
    return f"kafka:{cluster}/{topic}:{topic_id}" if topic_id else f"kafka:{cluster}/{topic}"


def eventhub_namespace(namespace: str) -> str:
    """An Event Hubs namespace as one spelling: lower-cased host name (a ``sb://`` scheme and a
    trailing slash, as in connection strings, are dropped). Namespace names are case-insensitive."""
    text = namespace.strip().lower()
    text = text.removeprefix("sb://").rstrip("/")
    return text


def eventhub_stream(namespace: str, event_hub: str) -> str:
    """The ``stream`` of an event hub: ``eventhub:<namespace>/<hub>`` (both lower-cased: Azure
    compares them case-insensitively, and the id must not change with the spelling)."""
    return f"eventhub:{eventhub_namespace(namespace)}/{event_hub.strip().lower()}"


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
    # Fast path, one per event of every batch: text or a datetime already in UTC (what the host
    # and the converters give) needs neither ``strip`` nor ``astimezone``.
    if type(value) is str:
        try:
            ts = datetime.fromisoformat(value)
        except ValueError:
            pass  # the general path below strips it or names the fault
        else:
            if ts.tzinfo is UTC:
                return None if ts.year == 1 and ts == _DOTNET_MIN_DATE else ts
    elif type(value) is datetime and (value.tzinfo is UTC or value.tzinfo is None):
        # The Event Hubs converter's enqueued time: naive, UTC clock time.
        ts = value if value.tzinfo is UTC else value.replace(tzinfo=UTC)
        return None if ts.year == 1 and ts == _DOTNET_MIN_DATE else ts
    return _parse_timestamp(value)


def _parse_timestamp(value: Any) -> datetime | None:
    """:func:`parse_timestamp` for any value (the reference its fast path must agree with)."""
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
    try:
        ts = ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)
    except OverflowError:  # before year 1 or after 9999 in UTC: this event's fault, not the batch's
        raise AdapterFault(f"timestamp {str(value)[:40]!r} is out of range in UTC") from None
    return None if ts == _DOTNET_MIN_DATE else ts


def _int(value: Any, what: str) -> int:
    if type(value) is int:  # the common case first (bool is not ``int`` by type)
        return value
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
    # binascii's strict mode rather than ``b64decode(validate=True)`` (a regular expression over
    # the text first): the same bytes for canonical text, and the round trip refuses the rest.
    try:
        data = binascii.a2b_base64(text, strict_mode=True)
    except (binascii.Error, ValueError):
        return None
    return data if binascii.b2a_base64(data, newline=False) == text.encode("ascii") else None


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


_MISSING: Any = object()


def _field(doc: Mapping[str, Any], name: str) -> Any:
    """``doc[name]``, also accepting the camelCase spelling some serialisers use."""
    if name in doc:
        return doc[name]
    return doc.get(name[:1].lower() + name[1:])


def kafka_headers(value: Any, memo: dict[str, bytes | None] | None = None) -> tuple[Header, ...]:
    """Kafka headers as the extension serialises them: ``[{"Key": str, "Value": base64|null}]``.
    ``memo`` (text -> :func:`_strict_b64` of it) decodes each distinct value once per batch."""
    if value is None:
        return ()
    if type(value) is list:
        fast = _plain_kafka_headers(value, {} if memo is None else memo)
        if fast is not None:
            return fast
    return _kafka_headers(value)


def _kafka_headers(value: Any) -> tuple[Header, ...]:
    """:func:`kafka_headers` for any value (the reference its fast path must agree with)."""
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


def _plain_kafka_headers(items: list[Any], memo: dict[str, bytes | None]) -> tuple[Header, ...] | None:
    """The headers of the usual shape (dicts with ``Key`` text and ``Value`` canonical base64 or
    null), or None for anything else, which :func:`kafka_headers`' general loop reads (or names
    the fault of)."""
    headers: list[Header] = []
    for item in items:
        if type(item) is not dict or "Key" not in item or "Value" not in item:
            return None
        name, value = item["Key"], item["Value"]
        if type(name) is not str:
            return None
        if value is None:
            headers.append((name, None))
            continue
        if type(value) is not str:
            return None
        data = memo.get(value, _MISSING)
        if data is _MISSING:
            data = memo[value] = _strict_b64(value)
        if data is None:
            return None
        headers.append((name, data))
    return tuple(headers)


# --------------------------------------------------------------------------- Kafka


class _KafkaStreams:
    """What the records of one batch share: one ``stream`` string per topic (records of one
    topic share it, so the per-record cost is one dict lookup), each distinct base64 text
    decoded once (keys and header values repeat within a batch), and the last timestamp text
    with its value (a busy partition's records come in runs of one millisecond)."""

    __slots__ = ("b64", "cluster", "known", "stamp", "stamp_text")

    def __init__(self, brokers: str) -> None:
        self.cluster = kafka_cluster(brokers)
        self.known: dict[str, str] = {}
        self.b64: dict[str, bytes | None] = {}
        self.stamp_text: str | None = None
        self.stamp: datetime | None = None

    def timestamp(self, value: Any) -> datetime | None:
        """:func:`parse_timestamp` of ``value``, once for a run of equal texts."""
        if type(value) is not str:
            return parse_timestamp(value)
        if value != self.stamp_text:
            self.stamp = parse_timestamp(value)  # before the text: a fault leaves the memo as it was
            self.stamp_text = value
        return self.stamp

    def key(self, value: Any, key_type: KafkaKeyType) -> bytes | None:
        """:func:`_kafka_key`, each distinct base64 key decoded once."""
        if key_type == "binary" and type(value) is str and value:
            data = self.b64.get(value, _MISSING)
            if data is _MISSING:
                data = self.b64[value] = _strict_b64(value)
            if data is not None:
                return data  # type: ignore[no-any-return]
        return _kafka_key(value, key_type)

    def __call__(self, topic: str) -> str:
        stream = self.known.get(topic)
        if stream is None:
            stream = self.known[topic] = kafka_stream(self.cluster, topic)
        return stream


def _kafka_key(value: Any, key_type: KafkaKeyType) -> bytes | None:
    """The key bytes as the extension handed them over (see :data:`KafkaKeyType`)."""
    # The Functions host writes a null key as '' (seen from the real Python worker 4.34): an empty key cannot be told from no key, and
    # no key is by far the common case, so '' is None, as the Kafka consumer sees a null key.
    if value is None or value == "":
        return None
    if key_type == "binary":
        return _b64_field(value, "key")
    return _text_bytes(value)


def kafka_record_from_envelope(body: bytes, *, key_type: KafkaKeyType = "string", brokers: str = "") -> Record:
    """One Kafka record from the extension's JSON envelope (``dataType: string``); ``brokers``
    names the cluster in the record's ``stream`` (see :func:`kafka_records`)."""
    return _envelope_record(body, key_type, _KafkaStreams(brokers))


def _envelope_record(body: bytes, key_type: KafkaKeyType, streams: _KafkaStreams) -> Record:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise AdapterFault(f"body is not a Kafka trigger JSON envelope ({exc})") from None
    if not isinstance(doc, dict):
        raise AdapterFault("body is not a Kafka trigger JSON envelope (not an object)")
    # :func:`_field` inlined (one ``get`` per field when the extension's spelling is used): this
    # runs once per event.
    get = doc.get
    topic = get("Topic", _MISSING)
    topic = get("topic") if topic is _MISSING else topic
    offset = get("Offset", _MISSING)
    offset = get("offset") if offset is _MISSING else offset
    if not isinstance(topic, str) or offset is None:
        raise AdapterFault("Kafka trigger JSON envelope has no Topic or Offset")
    value = get("Value", _MISSING)
    value = get("value") if value is _MISSING else value
    key = get("Key", _MISSING)
    key = get("key") if key is _MISSING else key
    headers = get("Headers", _MISSING)
    headers = get("headers") if headers is _MISSING else headers
    partition = get("Partition", _MISSING)
    partition = get("partition") if partition is _MISSING else partition
    timestamp = get("Timestamp", _MISSING)
    timestamp = get("timestamp") if timestamp is _MISSING else timestamp
    return Record(
        value.encode("utf-8") if type(value) is str else _text_bytes(value),
        streams.key(key, key_type),
        kafka_headers(headers, streams.b64),
        topic,
        _int(partition or 0, "Partition"),
        _int(offset, "Offset"),
        streams.timestamp(timestamp),
        "kafka",
        "",
        streams(topic),
    )


def kafka_record_from_event(event: KafkaEventLike, *, key_type: KafkaKeyType = "string", brokers: str = "") -> Record:
    """One Kafka record from a raw-binary event (``dataType: binary``) and its metadata;
    ``brokers`` names the cluster in the record's ``stream`` (see :func:`kafka_records`)."""
    return _event_record(event, key_type, _KafkaStreams(brokers))


def _event_record(event: KafkaEventLike, key_type: KafkaKeyType, streams: _KafkaStreams) -> Record:
    # Each property once (each is a Python call on the azure.functions event), converted in
    # the order the faults are named in.
    topic = event.topic
    offset = event.offset
    if not isinstance(topic, str) or offset is None:
        raise AdapterFault("Kafka event has no topic or offset metadata")
    value = event.get_body()
    key = streams.key(event.key, key_type)
    headers = kafka_headers(event.headers, streams.b64)
    partition = event.partition
    return Record(
        value,
        key,
        headers,
        topic,
        _int(partition if partition is not None else 0, "partition"),
        _int(offset, "offset"),
        streams.timestamp(event.timestamp),
        "kafka",
        "",
        streams(topic),
    )


def _safe(fn: Callable[[], Any], default: Any) -> Any:
    """``fn()``, or ``default`` when it fails or gives None (for best-effort fallback records)."""
    try:
        value = fn()
    except (AdapterFault, TypeError, ValueError, AttributeError):
        return default
    return default if value is None else value


def _kafka_fallback(event: KafkaEventLike, streams: _KafkaStreams) -> Record:
    """Whatever is known of an unreadable event, keeping its original body."""
    topic = _safe(lambda: str(event.topic) if event.topic is not None else None, "")
    return Record(
        value=event.get_body(),
        topic=topic,
        partition=_safe(lambda: _int(event.partition, "partition"), 0),
        offset=_safe(lambda: _int(event.offset, "offset"), 0),
        source="kafka",
        stream=streams(topic),
    )


def kafka_records(
    events: Sequence[KafkaEventLike],
    *,
    envelope: bool,
    key_type: KafkaKeyType = "string",
    brokers: str = "",
) -> Adapted:
    """Records of a Kafka trigger batch.

    ``envelope`` is True for ``dataType: string``. ``key_type`` is the binding's
    ``keyDataType`` (:data:`KafkaKeyType`; ``binary`` keeps non-UTF-8 keys exact). ``brokers``
    is the trigger's bootstrap server list (``KAFKA_BROKERS``, any spelling: it is normalised
    by :func:`kafka_cluster`): the events do not carry the cluster, and the records' ``stream``
    is ``kafka:<brokers>/<topic>``. Without it the stream is ``kafka:/<topic>``.
    """
    streams = _KafkaStreams(brokers)
    fast = _paused_gc(_envelope_batch if envelope else _kafka_event_batch, events, key_type, streams)
    if fast is not None:
        return Adapted(fast)
    out = Adapted()
    for event in events:
        try:
            if envelope:
                record = _envelope_record(event.get_body(), key_type, streams)
            else:
                record = _event_record(event, key_type, streams)
        except AdapterFault as exc:
            out.errors.append(AdapterError(_kafka_fallback(event, streams), str(exc)))
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
    if properties is None or (type(properties) is dict and not properties):
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


def _with_content_type(headers: tuple[Header, ...], system: Mapping[str, Any]) -> tuple[Header, ...]:
    """``headers`` plus a ``content-type`` header holding the event's AMQP content type, when it
    has one (non-empty text) and no application property already names a content type under a
    spelling the Avro decoder reads (:data:`shared.formats.wire.CONTENT_TYPE_HEADERS`: the
    producer's explicit property wins). Other events' headers are unchanged."""
    if not system:
        return headers
    ctype = system.get(CONTENT_TYPE_PROPERTY)
    if type(ctype) is not str or not ctype:
        return headers
    for name, _ in headers:
        if name in CONTENT_TYPE_HEADERS:
            return headers
    return (*headers, (CONTENT_TYPE_PROPERTY, ctype.encode("utf-8")))


def _batch_metadata(events: Sequence[EventHubEventLike]) -> Mapping[str, Any]:
    # Every event of a batch points to the same metadata; converting it per event would parse
    # the whole batch's property arrays once per event (quadratic), so read it once.
    if not events:
        return {}
    raw = getattr(events[0], "_EventHubEvent__trigger_metadata", None)
    if isinstance(raw, Mapping):
        read = _raw_metadata(raw)
        if read is not None:
            return read
    meta = events[0].metadata
    return meta if isinstance(meta, Mapping) else {}


_READ_METADATA = ("PartitionContext", "PropertiesArray", "SystemPropertiesArray")


def _raw_metadata(raw: Mapping[str, Any]) -> dict[str, Any] | None:
    """The metadata the adapter reads, from the ``Datum``s an ``azure.functions`` converter
    gave the events, or None when they are not the JSON text expected (the caller then reads
    ``EventHubEvent.metadata``).

    ``EventHubEvent.metadata`` converts every array of the batch (``SystemPropertiesArray`` is
    ~230 bytes an event) for the three this adapter reads. And the system properties matter
    only for ``x-opt-kafka-key``: the converter built each event's sequence number, partition
    key and enqueued time from the same entries, so where one of those is None the entry's is
    too. So they are parsed only when their text names the Kafka key or the content type
    (Newtonsoft escapes no ``-``, so a key of either name is always there verbatim)."""
    out: dict[str, Any] = {}
    for name in _READ_METADATA:
        datum = raw.get(name)
        if datum is None:
            continue
        kind, text = getattr(datum, "type", None), getattr(datum, "value", None)
        if text is None or kind is None:
            out[name] = None
            continue
        if kind != "json" or type(text) is not str:
            return None
        if name == "SystemPropertiesArray" and KAFKA_KEY_PROPERTY not in text and CONTENT_TYPE_PROPERTY not in text:
            continue
        try:
            out[name] = orjson.loads(text)
        except orjson.JSONDecodeError:
            return None  # e.g. NaN, which json.loads accepts: the general path reads it
    return out


_NONE: Mapping[str, Any] = {}


def _items(array: Any, count: int) -> list[Mapping[str, Any]]:
    """``array`` (one object per event, as the host sends it) as ``count`` mappings: an entry
    that is missing or not an object is an empty one."""
    if not isinstance(array, list):
        return [_NONE] * count
    return [item if type(item) is dict or isinstance(item, Mapping) else _NONE for item in array[:count]] + (
        [_NONE] * (count - len(array)))


def _entries(array: Any, count: int) -> list[Any]:
    """``array`` cut or padded with None to ``count`` entries (None for a missing array)."""
    if not isinstance(array, list):
        return [None] * count
    return array[:count] + [None] * (count - len(array))


def _partition_id(value: Any) -> int:
    # The host sends the partition id as a string ("0".."31"); a missing one is partition 0.
    return 0 if value is None else _int(value, "PartitionId")


def _sequence_number(event: EventHubEventLike, system: Mapping[str, Any]) -> Any:
    sequence = event.sequence_number
    return system.get("SequenceNumber") if sequence is None else sequence


def eventhub_records(
    events: Sequence[EventHubEventLike],
    *,
    event_hub: str | None = None,
    header_encoding: HeaderEncoding = "base64",
    namespace: str = "",
) -> Adapted:
    """Records of an Event Hubs trigger batch.

    ``topic`` is ``event_hub`` (the configured name) or else the ``EventHubName`` of the
    partition context; ``partition`` the context's ``PartitionId``; ``offset`` is the sequence
    number; ``timestamp`` the enqueued time. ``stream`` is ``eventhub:<namespace>/<hub>``:
    ``namespace`` is the trigger connection's namespace
    (``EventHubConnection__fullyQualifiedNamespace``); without it, the partition context's
    ``FullyQualifiedNamespace`` when the host sent one, else the stream has no namespace.
    """
    meta = _batch_metadata(events)
    context = meta.get("PartitionContext")
    context = context if isinstance(context, Mapping) else {}
    topic = event_hub or str(context.get("EventHubName") or "")
    stream = eventhub_stream(namespace or str(context.get("FullyQualifiedNamespace") or ""), topic)
    partition_id = context.get("PartitionId")
    # The batch's arrays once, not per event; the partition id is the batch's too (its fault,
    # if it has one, is every event's).
    count = len(events)
    properties = _entries(meta.get("PropertiesArray"), count)
    systems = _items(meta.get("SystemPropertiesArray"), count)
    partition_fault = ""
    try:
        partition = _partition_id(partition_id)
    except AdapterFault as fault:
        partition, partition_fault = 0, str(fault)
    if not partition_fault:
        fast = _paused_gc(_eventhub_batch, events, systems, properties, header_encoding, topic, partition, stream)
        if fast is not None:
            return Adapted(fast)
    out = Adapted()
    records = out.records
    for event, system, props in zip(events, systems, properties, strict=True):
        body = event.get_body()
        try:
            sequence = _sequence_number(event, system)
            if sequence is None:
                raise AdapterFault("event has no sequence number")
            enqueued = event.enqueued_time
            key = _eventhub_key(system, event.partition_key)
            headers = _with_content_type(eventhub_headers(props, header_encoding), system)
            if partition_fault:
                raise AdapterFault(partition_fault)
            records.append(Record(
                body,
                key,
                headers,
                topic,
                partition,
                _int(sequence, "sequence number"),
                parse_timestamp(enqueued if enqueued is not None else system.get("EnqueuedTimeUtc")),
                "eventhub",
                "",
                stream,
            ))  # fmt: skip
        except AdapterFault as exc:
            # Best effort, field by field: the dead letter must name the event's real partition
            # and sequence number even when another field is what could not be read.
            fallback = Record(
                value=body,
                topic=topic,
                partition=_safe(lambda: _partition_id(partition_id), 0),
                offset=_safe(lambda: _int(_sequence_number(event, system), "sequence number"), 0),  # noqa: B023
                timestamp=_safe(lambda: parse_timestamp(event.enqueued_time), None),  # noqa: B023
                source="eventhub",
                stream=stream,
            )
            out.errors.append(AdapterError(fallback, str(exc)))
    return out


# --------------------------------------------------------------------------- whole-batch fast paths
#
# The per-event loops above are the reference. A batch of the usual shape is read column by
# column instead: each field of every event by a C-level ``map`` (``attrgetter``, ``itemgetter``,
# ``methodcaller``), checked with one ``set`` of its types, converted in bulk, and the records
# made by ``map(Record, ...)``, so that per event there is no Python call but ``Record.__init__``
# (and, for Kafka, the headers' loop). A batch not of the usual shape in any field makes the fast
# path give up as a whole and the per-event loop read it, so every fault keeps one definition.

_NOT_PLAIN = (AdapterFault, LookupError, AttributeError, TypeError, ValueError, OverflowError)
"""What a bulk step raises on a batch not of the usual shape (a fault, a missing field, a type a
bulk conversion does not take): the fast path then gives up, and the reference reads the batch
(and names the fault, where there is one)."""

_NONE_TYPE = type(None)
_EPOCH_NAIVE = datetime(1970, 1, 1)
_EPOCH_UTC = datetime(1970, 1, 1, tzinfo=UTC)
_FROM_ISO = datetime.fromisoformat
_TZINFO = attrgetter("tzinfo")
_FOLD = attrgetter("fold")
_GET_BODY = methodcaller("get_body")


def _paused_gc(fast_path: Callable[..., list[Record] | None], *args: Any) -> list[Record] | None:
    """``fast_path(*args)`` with the cyclic garbage collector paused (the state it had is put back).

    A fast path allocates a few container objects per event (the Kafka envelope's parsed dict
    and its headers' list and dict, the records and their header tuples) within a few hundred
    microseconds, and frees most of them before it returns; left running, the collector would
    run young collections every ~700 of them (~9 per 1,000-event batch, 8 % of the envelope
    path's instructions), traverse the parsed envelopes again and again and promote them to an
    older generation only to free them. Paused, what dies in the fast path is never traversed,
    and the survivors (the records) are collected once, in the next young collection after it.
    Reference counting frees as usual, and the fast paths make no reference cycles."""
    if not gc.isenabled():  # paused by the caller (or by another thread's fast path): leave it so
        return fast_path(*args)
    gc.disable()
    try:
        return fast_path(*args)
    finally:
        gc.enable()


def _kinds(values: Iterable[Any]) -> set[type]:
    """The exact types of ``values`` (``bool`` is not ``int`` here, nor a ``str`` subclass ``str``)."""
    return set(map(type, values))


def _azure_class(module: str, name: str) -> type | None:
    """An ``azure.functions`` event class when its module is loaded (it is whenever events are
    of that class), without importing azure.functions where the app does not run."""
    cls = getattr(sys.modules.get(module), name, None)
    return cls if isinstance(cls, type) else None


def _utc_column(values: Sequence[Any]) -> Sequence[datetime | None]:
    """:func:`parse_timestamp` of every value, in bulk for the usual shapes: ISO 8601 text (the
    Kafka trigger's, with ``Z``) or datetimes (the Event Hubs converter's enqueued time, naive
    UTC clock time), all in UTC or all naive. Raises on anything else (the caller gives up)."""
    kinds = _kinds(values)
    if kinds == {str}:
        stamps: Sequence[datetime] = list(map(_FROM_ISO, values))
    elif kinds == {datetime}:
        stamps = values
    else:
        raise TypeError("timestamps not all text or all datetimes")
    zones = list(map(_TZINFO, stamps))
    if all(map(is_, zones, repeat(UTC))):
        pass  # parse_timestamp keeps these as they are
    elif all(map(is_, zones, repeat(None))) and not any(map(_FOLD, stamps)):
        # The same clock time in UTC as ``replace(tzinfo=UTC)`` gives (a timedelta is exact to
        # the microsecond at any date), without its keyword parsing: ~0.1 us an event against
        # ~1 us on CPython 3.11.
        stamps = list(map(add, repeat(_EPOCH_UTC), map(sub, stamps, repeat(_EPOCH_NAIVE))))
    else:
        raise ValueError("timestamps not all in UTC or all naive")
    if _DOTNET_MIN_DATE in stamps:  # .NET's DateTime.MinValue: no timestamp
        return [None if ts == _DOTNET_MIN_DATE else ts for ts in stamps]
    return stamps


def _kafka_header_column(values: Sequence[Any], memo: dict[str, bytes | None]) -> list[tuple[Header, ...]]:
    """:func:`kafka_headers` of every event's headers: none and a single header of the usual
    shape read inline (one loop for the batch instead of two calls an event), the rest by
    :func:`kafka_headers`. (Reading them position by position with ``map``s was no faster.)"""
    out: list[tuple[Header, ...]] = []
    append = out.append
    for value in values:
        if type(value) is list and len(value) < 2:
            if not value:
                append(())
                continue
            item = value[0]
            if type(item) is dict:
                name, text = item.get("Key"), item.get("Value", _MISSING)
                if type(name) is str:
                    if text is None:
                        append(((name, None),))
                        continue
                    if type(text) is str:
                        data = memo.get(text, _MISSING)
                        if data is _MISSING:
                            data = memo[text] = _strict_b64(text)
                        if data is not None:
                            append(((name, data),))
                            continue
        append(kafka_headers(value, memo))
    return out


def _kafka_batch(values: Sequence[Any], keys: Sequence[Any], headers: Sequence[Any], topics: Sequence[Any],
                 partitions: Sequence[Any], offsets: Sequence[Any], timestamps: Sequence[Any],
                 key_type: KafkaKeyType, streams: _KafkaStreams) -> list[Record] | None:
    """The records of a Kafka batch from its columns, or None when the batch is not of the usual
    shape: topics text, offsets and partitions integers (a missing partition is 0), keys text
    or null, timestamps as :func:`_utc_column` takes them, no fault anywhere."""
    try:
        if _kinds(topics) != {str} or _kinds(offsets) != {int} or not _kinds(keys) <= {str, _NONE_TYPE}:
            return None
        kinds = _kinds(partitions)
        if not kinds <= {int, _NONE_TYPE}:
            return None
        if _NONE_TYPE in kinds:
            partitions = [0 if partition is None else partition for partition in partitions]
        # Keys repeat within a batch: each distinct one converted once.
        decoded = {key: streams.key(key, key_type) for key in set(keys)}
        stamps = _utc_column(timestamps)
        header_column = _kafka_header_column(headers, streams.b64)
        named = {topic: streams(topic) for topic in set(topics)}
    except _NOT_PLAIN:
        return None
    stream_column = repeat(named[topics[0]]) if len(named) == 1 else map(named.__getitem__, topics)
    return list(map(Record, values, map(decoded.__getitem__, keys), header_column, topics, partitions, offsets, stamps,
                    repeat("kafka"), repeat(""), stream_column))  # fmt: skip


_KAFKA_FIELDS = ("key", "headers", "topic", "partition", "offset", "timestamp")
_KAFKA_PRIVATE: tuple[Callable[[Any], Any], ...] = tuple(map(attrgetter, (f"_KafkaEvent__{name}" for name in ("body", *_KAFKA_FIELDS))))
"""The fields behind ``azure.functions.KafkaEvent``'s ``get_body`` and properties (each returns its
attribute as is, azure-functions 1.26 and 2.3.0): read without a Python call per property."""
_KAFKA_PUBLIC: tuple[Callable[[Any], Any], ...] = (_GET_BODY, *map(attrgetter, _KAFKA_FIELDS))


def _kafka_event_batch(events: Sequence[KafkaEventLike], key_type: KafkaKeyType,
                       streams: _KafkaStreams) -> list[Record] | None:
    """:func:`_kafka_batch` of raw-binary events (``dataType: binary``), or None."""
    try:
        private = _kinds(events) == {_azure_class("azure.functions.kafka", "KafkaEvent")}
        # A column per field, one map each (no tuple per event to transpose).
        values, keys, headers, topics, partitions, offsets, timestamps = [
            list(map(read, events)) for read in (_KAFKA_PRIVATE if private else _KAFKA_PUBLIC)]
    except _NOT_PLAIN:
        return None
    return _kafka_batch(values, keys, headers, topics, partitions, offsets, timestamps, key_type, streams)


_ENVELOPE: tuple[Callable[[Any], Any], ...] = tuple(map(itemgetter, ("Value", "Key", "Headers", "Topic", "Partition", "Offset", "Timestamp")))
"""The envelope's fields under the extension's spelling (a missing one: the reference reads the
event, camelCase included)."""


def _envelope_batch(events: Sequence[KafkaEventLike], key_type: KafkaKeyType,
                    streams: _KafkaStreams) -> list[Record] | None:
    """:func:`_kafka_batch` of JSON-envelope events (``dataType: string``), or None."""
    try:
        private = _kinds(events) == {_azure_class("azure.functions.kafka", "KafkaEvent")}
        docs = list(map(orjson.loads, map(_KAFKA_PRIVATE[0] if private else _GET_BODY, events)))
        # No type check of the parsed envelopes: every JSON value but an object (all orjson gives
        # as ``dict``) makes ``itemgetter`` of a text key raise TypeError, and a missing field
        # KeyError, so the reference reads every batch with one.
        texts, keys, headers, topics, partitions, offsets, timestamps = [list(map(read, docs)) for read in _ENVELOPE]
        del docs  # the parsed envelopes freed now, before the records are made
        try:
            # ``str.encode`` refuses anything but text (TypeError): no type check first.
            values: list[bytes | None] = list(map(str.encode, texts))
        except TypeError:  # null values (tombstones) among them; any other type has no ``encode``
            values = [None if text is None else text.encode() for text in texts]
    except _NOT_PLAIN:
        return None
    return _kafka_batch(values, keys, headers, topics, partitions, offsets, timestamps, key_type, streams)


_HUB_FIELDS = ("sequence_number", "enqueued_time", "partition_key")
_HUB_PRIVATE: tuple[Callable[[Any], Any], ...] = tuple(map(attrgetter, (f"_EventHubEvent__{name}" for name in ("body", *_HUB_FIELDS))))
"""The fields behind ``azure.functions.EventHubEvent``'s ``get_body`` and properties (each
returns its attribute as is, azure-functions 1.26 and 2.3.0)."""
_HUB_PUBLIC: tuple[Callable[[Any], Any], ...] = (_GET_BODY, *map(attrgetter, _HUB_FIELDS))


def _hub_header_column(properties: Sequence[Any], encoding: HeaderEncoding) -> Sequence[tuple[Header, ...]]:
    """:func:`eventhub_headers` of every event's application properties."""
    if not any(properties) and _kinds(properties) <= {dict, _NONE_TYPE}:
        return [()] * len(properties)
    return [eventhub_headers(props, encoding) for props in properties]


def _eventhub_batch(events: Sequence[EventHubEventLike], systems: Sequence[Mapping[str, Any]],
                    properties: Sequence[Any], encoding: HeaderEncoding, topic: str, partition: int,
                    stream: str) -> list[Record] | None:
    """The records of an Event Hubs batch from its columns, or None when the batch is not of the
    usual shape: every event with an integer sequence number and an enqueued time as
    :func:`_utc_column` takes them, no fault anywhere."""
    if not events:
        return None
    try:
        private = _kinds(events) == {_azure_class("azure.functions._eventhub", "EventHubEvent")}
        bodies, sequences, enqueued, partition_keys = [
            list(map(read, events)) for read in (_HUB_PRIVATE if private else _HUB_PUBLIC)]
        if _kinds(sequences) != {int}:
            return None
        headers = _hub_header_column(properties, encoding)
        if any(systems):  # some event's system properties were read (a Kafka key, a content type)
            keys: Iterable[bytes | None] = list(map(_eventhub_key, systems, partition_keys))
            headers = list(map(_with_content_type, headers, systems))
        elif _kinds(partition_keys) == {_NONE_TYPE}:
            keys = repeat(None)
        else:  # what _eventhub_key gives without system properties
            keys = [None if pk is None else str(pk).encode("utf-8") for pk in partition_keys]
        stamps = _utc_column(enqueued)
    except _NOT_PLAIN:
        return None
    return list(map(Record, bodies, keys, headers, repeat(topic), repeat(partition), sequences, stamps,
                    repeat("eventhub"), repeat(""), repeat(stream)))  # fmt: skip
