"""What the Functions host sends the Python worker for the Kafka and Event Hubs triggers
(cardinality many), built once as the host serialises it (:data:`Wire` values) and handed over two
ways: decoded by the real ``azure.functions`` converters (``KafkaTriggerConverter`` /
``EventHubTriggerConverter``) into the events the function receives, or turned into the protobuf
``TypedData`` of an ``InvocationRequest`` for the runtime tests (:mod:`tests.support.runtime_host`).

The rules, from the sources (paths in Azure/azure-functions-host at 89dc438, the Kafka extension
Azure/azure-functions-kafka-extension at f4fd2bb, the Event Hubs extension in
Azure/azure-sdk-for-net):

- which binding data exists: ``KafkaTriggerBindingStrategy.AddBindingData`` (Kafka extension,
  src/Microsoft.Azure.WebJobs.Extensions.Kafka/Trigger/KafkaTriggerBindingStrategy.cs: Partition,
  Offset, Timestamp, Topic, Key, Headers, LeaderEpoch and IsPartitionEOF arrays) and
  ``EventHubTriggerBindingStrategy.AddBindingData`` (sdk/eventhub/Microsoft.Azure.WebJobs.
  Extensions.EventHubs/src/Triggers/EventHubTriggerBindingStrategy.cs: PartitionKey, Offset,
  SequenceNumber, EnqueuedTimeUtc, Properties and SystemProperties arrays, PartitionContext);
- how each value travels: ``GrpcMessageConversionExtensions.ToRpc`` (host,
  src/WebJobs.Script.Grpc/MessageExtensions/GrpcMessageConversionExtensions.cs): ``byte[][]`` as
  ``collection_bytes`` without its null entries, ``string[]`` as ``collection_string`` without its
  null *and empty* entries (the Python worker does not advertise
  ``IncludeEmptyEntriesInMessagePayload``), ``long[]`` as ``collection_sint64``, anything else as
  Newtonsoft JSON (``byte[]`` as base64, a UTC ``DateTime`` with ``Z``, an Unspecified one without
  offset, a ``DateTimeOffset`` with ``+00:00``). So a collection is not index-aligned with the
  batch when the batch holds a null or empty entry;
- binding data whose value is null is not sent at all (``ScriptInvocationContextExtensions.
  ShouldSkipBindingData``, src/WebJobs.Script.Grpc/Extensions/ScriptInvocationContextExtensions.cs).
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import azure.functions as func
from azure.functions import _abc
from azure.functions.eventhub import EventHubTriggerConverter
from azure.functions.kafka import KafkaTriggerConverter
from azure.functions.meta import Datum


class Collection:
    """Stands in for the worker's protobuf Collection{String,Bytes,SInt64} messages."""

    def __init__(self, *, string: Sequence[str] = (), bytes: Sequence[bytes] = (), sint64: Sequence[int] = ()) -> None:
        self.string = list(string)
        self.bytes = list(bytes)
        self.sint64 = list(sint64)


def b64(data: bytes | None) -> str | None:
    """.NET byte[] as JSON: base64 text."""
    return None if data is None else base64.b64encode(data).decode("ascii")


def dotnet_utc(ts: datetime) -> str:
    """A UTC DateTime as Newtonsoft writes it: fraction trimmed, up to 7 digits, ``Z``."""
    ts = ts.astimezone(UTC)
    text = ts.strftime("%Y-%m-%dT%H:%M:%S")
    if ts.microsecond:
        text += "." + f"{ts.microsecond:06d}0".rstrip("0")
    return text + "Z"


def dotnet_unspecified(ts: datetime) -> str:
    """``DateTimeOffset.DateTime`` (kind Unspecified) as Newtonsoft writes it: no offset."""
    return dotnet_utc(ts)[:-1]


def dotnet_offset(ts: datetime) -> str:
    """A UTC ``DateTimeOffset`` as Newtonsoft writes it: ``+00:00``, not ``Z``."""
    return dotnet_utc(ts)[:-1] + "+00:00"


Wire = tuple[str, Any]
"""One value as the host serialises it for the worker: ``("collection_bytes", [bytes])``,
``("collection_string", [str])``, ``("collection_sint64", [int])`` or ``("json", text)``."""


def host_bytes_array(values: Sequence[bytes | None]) -> Wire:
    """``byte[][]``: null entries are left out (``ToRpcByteArray``)."""
    return "collection_bytes", [v for v in values if v is not None]


def host_string_array(values: Sequence[str | None]) -> Wire:
    """``string[]``: null and empty entries are left out (``ToRpcStringArray`` without
    ``IncludeEmptyEntriesInMessagePayload``)."""
    return "collection_string", [v for v in values if v]


def host_long_array(values: Sequence[int]) -> Wire:
    """``long[]`` (``ToRpcLongArray``)."""
    return "collection_sint64", list(values)


_NEWTONSOFT_ESCAPES = str.maketrans({"\u0085": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def newtonsoft_json(value: Any) -> str:
    """``JsonConvert.SerializeObject(value)`` (``Formatting.None``, ``StringEscapeHandling.Default``)
    of a JSON-ready value, byte for byte: no spaces, non-ASCII characters as they are, ``"`` and
    ``\\`` and control characters escaped (``\\b \\t \\n \\f \\r``, the others ``\\u00xx`` in
    lower-case hex, as ``json.dumps`` writes them), and U+0085, U+2028, U+2029 as ``\\u`` escapes,
    which ``json.dumps`` leaves as they are (Newtonsoft.Json src/Newtonsoft.Json/Utilities/
    JavaScriptUtils.cs, ``WriteEscapedJavaScriptString``). Properties in the dict's order (Newtonsoft
    writes a class's in declaration order)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).translate(_NEWTONSOFT_ESCAPES)


def host_json(value: Any) -> Wire:
    """Any other object: ``JsonConvert.SerializeObject(value, Formatting.None)``."""
    return "json", newtonsoft_json(value)


def datum(wire: Wire) -> Datum:
    """A wire value as the worker's ``meta.Datum`` (what the converters decode)."""
    kind, value = wire
    if kind == "json":
        return Datum(value, "json")
    field_name = kind.removeprefix("collection_")
    return Datum(Collection(**{field_name: value}), kind)


# --------------------------------------------------------------------------- Kafka


@dataclass
class KafkaMessage:
    """One Kafka message as a producer wrote it."""

    topic: str
    offset: int
    value: bytes | None
    partition: int = 0
    key: bytes | None = None
    headers: list[tuple[str, bytes | None]] = field(default_factory=list)
    timestamp: datetime = field(default_factory=lambda: datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC))

    def dotnet_key(self, key_type: str = "binary") -> str | None:
        """The key as the extension serialises it: ``keyDataType: Binary`` (what the app asks
        for) gives ``byte[]``, JSON base64; ``String`` is Confluent's UTF-8 deserialiser, which
        replaces bytes that are not UTF-8."""
        if self.key is None:
            return None
        if key_type == "binary":
            return b64(self.key)
        return self.key.decode("utf-8", errors="replace")

    def dotnet_headers(self) -> list[dict[str, Any]]:
        return [{"Key": name, "Value": b64(value)} for name, value in self.headers]

    def envelope(self, key_type: str = "binary") -> str:
        """The extension's JSON for ``dataType: string``: ``JsonConvert.SerializeObject`` of the
        ``KafkaEventData<TValue>`` the listener builds (``KafkaEventData.CreateFrom``, the binding
        parameter being no generic ``KafkaEventData<TKey, TValue>``;
        src/Microsoft.Azure.WebJobs.Extensions.Kafka/Trigger/KafkaEventDataConvertManager.cs,
        ``ConvertToString``), byte for byte as Newtonsoft writes it (:func:`newtonsoft_json`):
        the properties in their declaration order in src/.../KafkaEventData.cs (``Key`` and
        ``Headers`` are declared last), the ``Timestamp`` a UTC ``DateTime``
        (``Timestamp.UtcDateTime``) as :func:`dotnet_utc`, header values ``byte[]`` as base64."""
        return newtonsoft_json(
            {
                "Offset": self.offset,
                "Partition": self.partition,
                "Topic": self.topic,
                "Timestamp": dotnet_utc(self.timestamp),
                # The value reaches the extension as a string: non-UTF-8 bytes are replaced.
                "Value": None if self.value is None else self.value.decode("utf-8", errors="replace"),
                "LeaderEpoch": 0,
                "IsPartitionEOF": False,
                "Key": self.dotnet_key(key_type),
                "Headers": self.dotnet_headers(),
            }
        )


def kafka_trigger_data(
    messages: Sequence[KafkaMessage], *, data_type: str = "binary", key_type: str = "binary"
) -> tuple[Wire, dict[str, Wire]]:
    """A Kafka trigger batch as the host sends it: the body and the trigger metadata."""
    if data_type == "binary":
        # A null value (a tombstone) becomes an empty byte[] before the host sees it
        # (KafkaEventDataConvertManager.ConvertToByteArray, src/.../Trigger/KafkaEventDataConvertManager.cs),
        # so it stays in the collection and the function sees empty bytes.
        body = host_bytes_array([m.value or b"" for m in messages])
    else:
        body = host_string_array([m.envelope(key_type) for m in messages])
    metadata = {
        "PartitionArray": host_json([m.partition for m in messages]),
        "OffsetArray": host_long_array([m.offset for m in messages]),
        "TimestampArray": host_json([dotnet_utc(m.timestamp) for m in messages]),
        "TopicArray": host_string_array([m.topic for m in messages]),
        "KeyArray": host_json([m.dotnet_key(key_type) for m in messages]),
        "HeadersArray": host_json([m.dotnet_headers() for m in messages]),
        "LeaderEpochArray": host_json([0 for _ in messages]),
        "IsPartitionEOFArray": host_json([False for _ in messages]),
    }
    return body, metadata


def kafka_events(
    messages: Sequence[KafkaMessage], *, data_type: str = "binary", key_type: str = "binary"
) -> list[func.KafkaEvent]:
    """A Kafka trigger batch (cardinality many) as the worker hands it to the function."""
    body, metadata = kafka_trigger_data(messages, data_type=data_type, key_type=key_type)
    events = KafkaTriggerConverter.decode(datum(body), trigger_metadata={k: datum(v) for k, v in metadata.items()})
    assert isinstance(events, list)
    return events


# --------------------------------------------------------------------------- Event Hubs


@dataclass
class HubEvent:
    """One Event Hubs event. ``properties`` are application properties as the host serialises
    them (binary values already base64 text); ``kafka_key`` is the x-opt-kafka-key annotation."""

    sequence_number: int
    body: bytes
    properties: dict[str, Any] = field(default_factory=dict)
    partition_key: str | None = None
    kafka_key: bytes | None = None
    enqueued: datetime = field(default_factory=lambda: datetime(2024, 5, 1, 12, 0, 0, 250000, tzinfo=UTC))
    content_type: str | None = None
    """The AMQP content type (``EventData.content_type``): the host puts it in the event's
    system properties as ``content-type`` (AmqpSystemProperties.cs), when set."""

    @classmethod
    def from_kafka_producer(cls, sequence_number: int, value: bytes, *, key: bytes | None = None,
                            headers: Sequence[tuple[str, bytes | None]] = ()) -> HubEvent:
        """An event a Kafka producer wrote through the Event Hubs Kafka endpoint: headers
        become binary application properties, the key the x-opt-kafka-key annotation."""
        return cls(sequence_number, value, properties={n: b64(v) for n, v in headers}, kafka_key=key)

    @classmethod
    def from_avro_encoder(cls, sequence_number: int, message: Mapping[str, Any], *,
                          properties: dict[str, Any] | None = None) -> HubEvent:
        """An event an AMQP producer sent with what azure-schemaregistry's ``AvroEncoder.encode``
        gave (``{"content": bytes, "content_type": "avro/binary+<id>"}``), as
        ``EventData.from_message_content`` builds it: the content is the body, the content type
        the AMQP content type (not an application property)."""
        return cls(sequence_number, bytes(message["content"]), properties=dict(properties or {}),
                   content_type=str(message["content_type"]))

    def system_properties(self) -> dict[str, Any]:
        props: dict[str, Any] = {
            "x-opt-sequence-number": self.sequence_number,
            "x-opt-offset": str(self.sequence_number * 1024),
            "x-opt-enqueued-time": dotnet_offset(self.enqueued),  # a DateTimeOffset
        }
        if self.partition_key is not None:
            props["x-opt-partition-key"] = self.partition_key
        if self.kafka_key is not None:
            props["x-opt-kafka-key"] = b64(self.kafka_key)
        if self.content_type is not None:
            # Properties-section fields come before the annotations in EventData.SystemProperties.
            props = {"content-type": self.content_type, **props}
        props.update(
            SequenceNumber=self.sequence_number,
            Offset=self.sequence_number * 1024,
            OffsetString=str(self.sequence_number * 1024),
            PartitionKey=self.partition_key,
            EnqueuedTimeUtc=dotnet_unspecified(self.enqueued),
        )
        return props


def eventhub_trigger_data(events: Sequence[HubEvent], *, event_hub: str = "storm-events-json",
                          partition: str = "3") -> tuple[Wire, dict[str, Wire]]:
    """An Event Hubs trigger batch (cardinality many, binary) as the host sends it."""
    context = {
        "FullyQualifiedNamespace": "kafka-adx-test.servicebus.windows.net",
        "EventHubName": event_hub,
        "ConsumerGroup": "$Default",
        "PartitionId": partition,
    }
    metadata = {
        "PartitionContext": host_json(context),
        "SystemPropertiesArray": host_json([e.system_properties() for e in events]),
        "PropertiesArray": host_json([e.properties for e in events]),
        "PartitionKeyArray": host_string_array([e.partition_key for e in events]),
        "OffsetArray": host_string_array([str(e.sequence_number * 1024) for e in events]),
        "SequenceNumberArray": host_long_array([e.sequence_number for e in events]),
        "EnqueuedTimeUtcArray": host_json([dotnet_unspecified(e.enqueued) for e in events]),
    }
    return host_bytes_array([e.body for e in events]), metadata


def eventhub_events(events: Sequence[HubEvent], *, event_hub: str = "storm-events-json",
                    partition: str = "3") -> list[func.EventHubEvent]:
    """An Event Hubs trigger batch (cardinality many, binary) as the worker hands it over."""
    body, metadata = eventhub_trigger_data(events, event_hub=event_hub, partition=partition)
    decoded = EventHubTriggerConverter.decode(datum(body), trigger_metadata={k: datum(v) for k, v in metadata.items()})
    assert isinstance(decoded, list)
    return decoded


# --------------------------------------------------------------------------- context


class RetryContext(_abc.RetryContext):
    """The retry context the worker fills from the host's invocation request."""

    def __init__(self, retry_count: int, max_retry_count: int) -> None:
        self._retry_count = retry_count
        self._max_retry_count = max_retry_count

    @property
    def retry_count(self) -> int:
        return self._retry_count

    @property
    def max_retry_count(self) -> int:
        return self._max_retry_count

    @property
    def exception(self) -> Any:
        return None


class Context(func.Context):
    """An invocation context with the parts the function reads."""

    def __init__(self, function_name: str, retry_count: int = 0, max_retry_count: int = 5) -> None:
        self._function_name = function_name
        self._invocation_id = str(uuid.uuid4())
        self._retry = RetryContext(retry_count, max_retry_count)

    @property
    def invocation_id(self) -> str:
        return self._invocation_id

    @property
    def thread_local_storage(self) -> Any:
        return None

    @property
    def function_name(self) -> str:
        return self._function_name

    @property
    def function_directory(self) -> str:
        return "."

    @property
    def trace_context(self) -> Any:
        return None

    @property
    def retry_context(self) -> RetryContext:
        return self._retry
