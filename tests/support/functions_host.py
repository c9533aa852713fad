"""What the Functions host sends the Python worker, built with the real ``azure.functions``
converters (FACTS.md): trigger data and metadata as ``meta.Datum`` values, decoded by
``KafkaTriggerConverter`` / ``EventHubTriggerConverter`` exactly as the worker decodes them.

Serialisation follows the extensions' sources: .NET ``byte[]`` becomes base64 text, a UTC
``DateTime`` an ISO string with up to 7 fractional digits and ``Z`` (Kafka), the Event Hubs
enqueued time a string without offset; string arrays and long arrays travel as protobuf
collections (here: any object with ``.string`` / ``.bytes`` / ``.sint64``), the rest as JSON.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Sequence
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
        """The extension's JSON for ``dataType: string`` (KafkaEventData serialised)."""
        return json.dumps(
            {
                "Offset": self.offset,
                "Partition": self.partition,
                "Topic": self.topic,
                "Timestamp": dotnet_utc(self.timestamp),
                # The value reaches the extension as a string: non-UTF-8 bytes are replaced.
                "Value": None if self.value is None else self.value.decode("utf-8", errors="replace"),
                "Key": self.dotnet_key(key_type),
                "Headers": self.dotnet_headers(),
                "LeaderEpoch": 0,
                "IsPartitionEOF": False,
            }
        )


def kafka_events(
    messages: Sequence[KafkaMessage], *, data_type: str = "binary", key_type: str = "binary"
) -> list[func.KafkaEvent]:
    """A Kafka trigger batch (cardinality many) as the worker hands it to the function."""
    if data_type == "binary":
        # A null value cannot travel in a bytes collection: the function sees empty bytes.
        body = Datum(Collection(bytes=[m.value or b"" for m in messages]), "collection_bytes")
    else:
        body = Datum(Collection(string=[m.envelope(key_type) for m in messages]), "collection_string")
    metadata = {
        "OffsetArray": Datum(Collection(sint64=[m.offset for m in messages]), "collection_sint64"),
        "TopicArray": Datum(Collection(string=[m.topic for m in messages]), "collection_string"),
        "PartitionArray": Datum(json.dumps([m.partition for m in messages]), "json"),
        "KeyArray": Datum(json.dumps([m.dotnet_key(key_type) for m in messages]), "json"),
        "TimestampArray": Datum(json.dumps([dotnet_utc(m.timestamp) for m in messages]), "json"),
        "HeadersArray": Datum(json.dumps([m.dotnet_headers() for m in messages]), "json"),
    }
    events = KafkaTriggerConverter.decode(body, trigger_metadata=metadata)
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

    @classmethod
    def from_kafka_producer(cls, sequence_number: int, value: bytes, *, key: bytes | None = None,
                            headers: Sequence[tuple[str, bytes | None]] = ()) -> HubEvent:
        """An event a Kafka producer wrote through the Event Hubs Kafka endpoint: headers
        become binary application properties, the key the x-opt-kafka-key annotation."""
        return cls(sequence_number, value, properties={n: b64(v) for n, v in headers}, kafka_key=key)

    def system_properties(self) -> dict[str, Any]:
        props: dict[str, Any] = {
            "x-opt-sequence-number": self.sequence_number,
            "x-opt-offset": str(self.sequence_number * 1024),
            "x-opt-enqueued-time": dotnet_utc(self.enqueued),
        }
        if self.partition_key is not None:
            props["x-opt-partition-key"] = self.partition_key
        if self.kafka_key is not None:
            props["x-opt-kafka-key"] = b64(self.kafka_key)
        props.update(
            SequenceNumber=self.sequence_number,
            Offset=self.sequence_number * 1024,
            OffsetString=str(self.sequence_number * 1024),
            PartitionKey=self.partition_key,
            EnqueuedTimeUtc=dotnet_unspecified(self.enqueued),
        )
        return props


def eventhub_events(events: Sequence[HubEvent], *, event_hub: str = "storm-events-json",
                    partition: str = "3") -> list[func.EventHubEvent]:
    """An Event Hubs trigger batch (cardinality many, binary) as the worker hands it over."""
    body = Datum(Collection(bytes=[e.body for e in events]), "collection_bytes")
    context = {
        "FullyQualifiedNamespace": "kafka-adx-test.servicebus.windows.net",
        "EventHubName": event_hub,
        "ConsumerGroup": "$Default",
        "PartitionId": partition,
    }
    metadata = {
        "PartitionContext": Datum(json.dumps(context), "json"),
        "TriggerPartitionContext": Datum(json.dumps(context), "json"),
        "SystemPropertiesArray": Datum(json.dumps([e.system_properties() for e in events]), "json"),
        "PropertiesArray": Datum(json.dumps([e.properties for e in events]), "json"),
        "PartitionKeyArray": Datum(Collection(string=[e.partition_key or "" for e in events]), "collection_string"),
        "OffsetArray": Datum(Collection(string=[str(e.sequence_number * 1024) for e in events]), "collection_string"),
        "SequenceNumberArray": Datum(Collection(sint64=[e.sequence_number for e in events]), "collection_sint64"),
        "EnqueuedTimeUtcArray": Datum(json.dumps([dotnet_unspecified(e.enqueued) for e in events]), "json"),
    }
    decoded = EventHubTriggerConverter.decode(body, trigger_metadata=metadata)
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
