"""The function adapters' fast paths (shared/sources/functions.py) give exactly what the reference
paths give: the same records and the same errors (record and reason), for batches built by the
real ``azure.functions`` converters from what the host sends (tests/support/functions_host.py)
and for events whose metadata is odd in every way the adapter has a rule for.

The fast paths: the whole-batch ones (``_kafka_event_batch``, ``_envelope_batch``,
``_eventhub_batch``: every field of the batch read by C-level ``map``s, checked by the set of
its types, converted in bulk, naive enqueued times made UTC by timedelta arithmetic; a batch not
of the usual shape falls back to the per-event loop), ``parse_timestamp`` (no ``strip``/``astimezone`` for text or a datetime already in
UTC, a naive datetime made UTC with ``replace``), ``_strict_b64`` (binascii's strict mode and a
round trip rather than ``b64decode(validate=True)``), ``kafka_headers`` (the usual shape read
directly), the Kafka event and envelope records (each property or field read once, ``_field``
inlined) and ``eventhub_records`` (the batch's arrays and partition id read once per batch, no
header tuple built for an event without properties, the converter's metadata ``Datum``s parsed
for the three arrays read, the system properties only when they name the Kafka key or the
content type). The references below are the per-event code the fast paths replaced."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.formats.wire import CONTENT_TYPE_HEADERS
from shared.pipeline.records import Header, Record
from shared.sources import functions as fx
from shared.sources.functions import Adapted, AdapterError, AdapterFault
from tests.support.functions_host import HubEvent, KafkaMessage, eventhub_events, kafka_events

# --------------------------------------------------------------------------- references


def ref_strict_b64(text: str) -> bytes | None:
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return data if base64.b64encode(data).decode("ascii") == text else None


def ref_event_record(event: Any, key_type: fx.KafkaKeyType, streams: Any) -> Record:
    topic = event.topic
    if not isinstance(topic, str) or event.offset is None:
        raise AdapterFault("Kafka event has no topic or offset metadata")
    return Record(
        value=event.get_body(),
        key=fx._kafka_key(event.key, key_type),
        headers=fx._kafka_headers(event.headers),
        topic=topic,
        partition=fx._int(event.partition if event.partition is not None else 0, "partition"),
        offset=fx._int(event.offset, "offset"),
        timestamp=fx._parse_timestamp(event.timestamp),
        source="kafka",
        stream=streams(topic),
    )


def ref_envelope_record(body: Any, key_type: fx.KafkaKeyType, streams: Any) -> Record:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise AdapterFault(f"body is not a Kafka trigger JSON envelope ({exc})") from None
    if not isinstance(doc, dict):
        raise AdapterFault("body is not a Kafka trigger JSON envelope (not an object)")
    topic = fx._field(doc, "Topic")
    if not isinstance(topic, str) or fx._field(doc, "Offset") is None:
        raise AdapterFault("Kafka trigger JSON envelope has no Topic or Offset")
    return Record(
        value=fx._text_bytes(fx._field(doc, "Value")),
        key=fx._kafka_key(fx._field(doc, "Key"), key_type),
        headers=fx._kafka_headers(fx._field(doc, "Headers")),
        topic=topic,
        partition=fx._int(fx._field(doc, "Partition") or 0, "Partition"),
        offset=fx._int(fx._field(doc, "Offset"), "Offset"),
        timestamp=fx._parse_timestamp(fx._field(doc, "Timestamp")),
        source="kafka",
        stream=streams(topic),
    )


def ref_kafka_records(events: Sequence[Any], *, envelope: bool, key_type: fx.KafkaKeyType, brokers: str) -> Adapted:
    out = Adapted()
    streams = fx._KafkaStreams(brokers)
    for event in events:
        try:
            if envelope:
                record = ref_envelope_record(event.get_body(), key_type, streams)
            else:
                record = ref_event_record(event, key_type, streams)
        except AdapterFault as exc:
            out.errors.append(AdapterError(fx._kafka_fallback(event, streams), str(exc)))
            continue
        out.records.append(record)
    return out


def ref_item(array: Any, index: int) -> Mapping[str, Any]:
    if isinstance(array, list) and index < len(array) and isinstance(array[index], Mapping):
        return array[index]  # type: ignore[no-any-return]
    return {}


def ref_content_type(headers: tuple[Header, ...], system: Mapping[str, Any]) -> tuple[Header, ...]:
    """An AMQP content type (system property ``content-type``) as a header, unless an
    application property already gives one under a name the decoder reads."""
    ctype = system.get("content-type")
    if isinstance(ctype, str) and ctype and not any(name in CONTENT_TYPE_HEADERS for name, _ in headers):
        return (*headers, ("content-type", ctype.encode("utf-8")))
    return headers


def ref_eventhub_records(events: Sequence[Any], *, event_hub: str | None, header_encoding: fx.HeaderEncoding,
                         namespace: str) -> Adapted:
    meta = events[0].metadata if events else {}  # the public property: every array converted
    meta = meta if isinstance(meta, Mapping) else {}
    context = meta.get("PartitionContext")
    context = context if isinstance(context, Mapping) else {}
    topic = event_hub or str(context.get("EventHubName") or "")
    stream = fx.eventhub_stream(namespace or str(context.get("FullyQualifiedNamespace") or ""), topic)
    partition_id = context.get("PartitionId")
    properties = meta.get("PropertiesArray")
    systems = meta.get("SystemPropertiesArray")
    out = Adapted()
    for index, event in enumerate(events):
        system = ref_item(systems, index)
        body = event.get_body()
        try:
            sequence = fx._sequence_number(event, system)
            if sequence is None:
                raise AdapterFault("event has no sequence number")
            enqueued = event.enqueued_time
            record = Record(
                value=body,
                key=fx._eventhub_key(system, event.partition_key),
                headers=ref_content_type(fx.eventhub_headers(
                    properties[index] if isinstance(properties, list) and index < len(properties) else None,
                    header_encoding), system),
                topic=topic,
                partition=fx._partition_id(partition_id),
                offset=fx._int(sequence, "sequence number"),
                timestamp=fx._parse_timestamp(enqueued if enqueued is not None else system.get("EnqueuedTimeUtc")),
                source="eventhub",
                stream=stream,
            )
        except AdapterFault as exc:
            fallback = Record(
                value=body, topic=topic,
                partition=fx._safe(lambda: fx._partition_id(partition_id), 0),
                offset=fx._safe(lambda: fx._int(fx._sequence_number(event, system), "sequence number"), 0),  # noqa: B023
                timestamp=fx._safe(lambda: fx._parse_timestamp(event.enqueued_time), None),  # noqa: B023
                source="eventhub", stream=stream,
            )  # fmt: skip
            out.errors.append(AdapterError(fallback, str(exc)))
            continue
        out.records.append(record)
    return out


def outcome(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """What a call gives: its value, or the fault's class and text."""
    try:
        return fn(*args, **kwargs)
    except (AdapterFault, TypeError, ValueError) as exc:
        return type(exc).__name__, str(exc)


# --------------------------------------------------------------------------- strategies

instants = st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 30),
                        timezones=st.sampled_from([UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5, minutes=-30))]))  # fmt: skip
timestamp_texts = st.one_of(
    instants.map(lambda ts: ts.isoformat()),
    instants.map(lambda ts: ts.astimezone(UTC).isoformat().replace("+00:00", "Z")),
    instants.map(lambda ts: ts.replace(tzinfo=None).isoformat()),  # the host's unspecified kind
    instants.map(lambda ts: f" {ts.isoformat()}\n"),
    instants.map(lambda ts: ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "7Z"),  # seven digits
    st.sampled_from(["0001-01-01T00:00:00", "0001-01-01T00:00:00Z", "0001-01-01T00:00:00+00:00", "", "now",
                     "2024-13-01T00:00:00Z", "2024-05-01", "2024-05-01T12:00:00+25:00"]),
    st.text(max_size=12),
)  # fmt: skip
timestamp_values = st.one_of(
    timestamp_texts, instants, instants.map(lambda ts: ts.replace(tzinfo=None)), st.none(),
    st.integers(-2**62, 2**62), st.just(datetime(1, 1, 1)), st.just(datetime(1, 1, 1, tzinfo=UTC)),
)  # fmt: skip
b64_texts = st.one_of(st.binary(max_size=8).map(lambda b: base64.b64encode(b).decode()),
                      st.sampled_from(["QR==", "QQ", "Q===", "=QQ=", "QQ==\n", " QQ==", "QQ==QQ==", "é", "a-b_"]),
                      st.text(max_size=8))  # fmt: skip
header_items = st.one_of(
    st.fixed_dictionaries({"Key": st.sampled_from(["a", "b", "ce"]), "Value": st.none() | b64_texts}),
    st.fixed_dictionaries({"key": st.sampled_from(["a", "b"]), "value": st.none() | b64_texts}),
    st.fixed_dictionaries({"Key": st.none() | st.integers(-2**62, 2**62), "Value": st.none() | b64_texts}),
    st.fixed_dictionaries({"Key": st.just("n"), "Value": st.integers(-2**62, 2**62) | st.lists(st.integers(-1, 256), max_size=3)}),
    st.fixed_dictionaries({"Key": st.just("only-key")}),
    st.integers(-2**62, 2**62), st.text(max_size=3),
)  # fmt: skip
header_values = st.one_of(st.none(), st.lists(header_items, max_size=3), st.lists(header_items, max_size=3).map(json.dumps),
                          st.just("not json"), st.integers(-2**62, 2**62), st.just({"Key": "a"}))  # fmt: skip


def test_strict_base64_agrees_with_the_reference() -> None:
    @given(b64_texts)
    @settings(max_examples=400, deadline=None)
    def check(text: str) -> None:
        assert fx._strict_b64(text) == ref_strict_b64(text)

    check()


@given(timestamp_values)
@settings(max_examples=500, deadline=None)
def test_parse_timestamp_agrees_with_the_reference(value: Any) -> None:
    got, want = outcome(fx.parse_timestamp, value), outcome(fx._parse_timestamp, value)
    assert got == want
    if isinstance(got, datetime):
        assert got.tzinfo is not None and got.utcoffset() == timedelta(0)


@given(header_values)
@settings(max_examples=400, deadline=None)
def test_kafka_headers_agree_with_the_reference(value: Any) -> None:
    assert outcome(fx.kafka_headers, value) == outcome(fx._kafka_headers, value)


# --------------------------------------------------------------------------- Kafka batches

kafka_messages = st.builds(
    KafkaMessage,
    topic=st.sampled_from(["orders", "clicks"]),
    offset=st.integers(0, 2**40),
    value=st.none() | st.binary(max_size=20) | st.text(max_size=10).map(str.encode),
    partition=st.integers(0, 3),
    key=st.none() | st.binary(max_size=6),
    headers=st.lists(st.tuples(st.sampled_from(["a", "b"]), st.none() | st.binary(max_size=4)), max_size=3),
    timestamp=st.sampled_from([datetime(2024, 5, 1, 12, tzinfo=UTC), datetime(2024, 5, 1, 12, 0, 0, 123000, tzinfo=UTC)])
    | instants.filter(lambda ts: ts.year >= 1000),
)  # fmt: skip


def same(got: Adapted, want: Adapted) -> None:
    assert got.records == want.records
    # Every field exactly, types included (bytes, not bytearray; int, not bool; the timestamp's
    # tzinfo object and fold): a record's repr shows them, its equality does not.
    assert repr(got.records) == repr(want.records)
    assert [(e.record, e.reason) for e in got.errors] == [(e.record, e.reason) for e in want.errors]


@given(st.lists(kafka_messages, max_size=12), st.sampled_from(["binary", "string"]), st.sampled_from(["binary", "string"]))
@settings(max_examples=150, deadline=None)
def test_kafka_batches_from_the_converter_agree(messages: list[KafkaMessage], data_type: str, key_type: Any) -> None:
    events = kafka_events(messages, data_type=data_type, key_type=key_type)
    kwargs = {"envelope": data_type == "string", "key_type": key_type, "brokers": "b:9092,a:9092"}
    got = fx.kafka_records(events, **kwargs)
    same(got, ref_kafka_records(events, **kwargs))
    assert len(got.records) == len(messages)
    if messages:  # a converter's batch is of the usual shape: read column by column
        assert kafka_batch(events, envelope=data_type == "string", key_type=key_type) is not None


@dataclass
class OddKafkaEvent:
    """A Kafka event with whatever metadata the strategy gives (the converter never makes most)."""

    body: Any
    key: Any = None
    offset: Any = 0
    partition: Any = 0
    topic: Any = "t"
    timestamp: Any = None
    headers: Any = None

    def get_body(self) -> Any:
        return self.body


odd_ints = st.one_of(st.integers(-3, 2**40), st.none(), st.booleans(), st.sampled_from(["7", " 8 ", "x", "", "1.5"]), st.floats(0, 3))
odd_kafka_events = st.builds(
    OddKafkaEvent,
    body=st.binary(max_size=8),
    key=st.one_of(st.none(), st.just(""), b64_texts, st.integers(-2**62, 2**62), st.lists(st.integers(0, 300), max_size=3)),
    offset=odd_ints, partition=odd_ints,
    topic=st.one_of(st.sampled_from(["t", "u"]), st.none(), st.integers(-2**62, 2**62)),
    timestamp=timestamp_values, headers=header_values,
)  # fmt: skip
envelope_fields = st.fixed_dictionaries(
    {},
    optional={
        "Topic": st.sampled_from(["t", "u"]) | st.none() | st.integers(-2**62, 2**62), "topic": st.sampled_from(["v"]),
        "Offset": odd_ints, "offset": odd_ints, "Partition": odd_ints, "partition": odd_ints,
        "Value": st.none() | st.text(max_size=6) | st.integers(-2**62, 2**62) | st.booleans() | st.floats(allow_nan=False, allow_infinity=False) | st.lists(st.integers(-2**62, 2**62), max_size=2),
        "value": st.text(max_size=3),
        "Key": st.none() | b64_texts | st.integers(-2**62, 2**62), "key": b64_texts,
        "Headers": header_values, "headers": header_values,
        "Timestamp": timestamp_texts | st.none() | st.integers(-2**62, 2**62), "timestamp": timestamp_texts,
    },
)  # fmt: skip
envelope_bodies = st.one_of(envelope_fields.map(orjson.dumps), st.sampled_from([b"", b"[]", b"{", b"null", b'"x"']),
                            envelope_fields.map(lambda doc: orjson.dumps(doc).decode()))  # fmt: skip


@given(st.lists(odd_kafka_events, max_size=8), st.sampled_from(["binary", "string"]))
@settings(max_examples=300, deadline=None)
def test_odd_kafka_events_agree(events: list[OddKafkaEvent], key_type: Any) -> None:
    kwargs = {"envelope": False, "key_type": key_type, "brokers": "a:9092"}
    same(fx.kafka_records(events, **kwargs), ref_kafka_records(events, **kwargs))


@given(st.lists(envelope_bodies.map(OddKafkaEvent), max_size=8), st.sampled_from(["binary", "string"]))
@settings(max_examples=300, deadline=None)
def test_odd_kafka_envelopes_agree(events: list[OddKafkaEvent], key_type: Any) -> None:
    kwargs = {"envelope": True, "key_type": key_type, "brokers": ""}
    same(fx.kafka_records(events, **kwargs), ref_kafka_records(events, **kwargs))


# --------------------------------------------------------------------------- Event Hubs batches

property_values = st.one_of(st.none(), b64_texts, st.integers(-2**62, 2**62), st.booleans(), st.floats(allow_nan=False, allow_infinity=False),
                            st.lists(st.integers(-2**62, 2**62), max_size=2))  # fmt: skip
hub_events = st.builds(
    HubEvent,
    sequence_number=st.integers(0, 2**40),
    body=st.binary(max_size=12),
    properties=st.dictionaries(st.sampled_from(["a", "b", "source", "content-type", "contentType"]), property_values,
                               max_size=3),
    partition_key=st.none() | st.text(max_size=4),
    kafka_key=st.none() | st.binary(max_size=4),
    enqueued=instants.filter(lambda ts: ts.year >= 1000),
    content_type=st.none() | st.sampled_from(["avro/binary+0a1b2c", "application/json", ""]) | st.text(max_size=4),
)  # fmt: skip


@given(st.lists(hub_events, max_size=10), st.sampled_from(["base64", "text"]), st.sampled_from(["0", "3", "x", "31"]),
       st.sampled_from([None, "configured"]), st.sampled_from(["", "NS.servicebus.windows.net"]))  # fmt: skip
@settings(max_examples=150, deadline=None)
def test_eventhub_batches_from_the_converter_agree(events: list[HubEvent], encoding: Any, partition: str,
                                                   hub: str | None, namespace: str) -> None:
    batch = eventhub_events(events, partition=partition)
    kwargs = {"event_hub": hub, "header_encoding": encoding, "namespace": namespace}
    if batch:  # the converter's Datums are read directly (not through EventHubEvent.metadata)
        assert fx._raw_metadata(batch[0]._EventHubEvent__trigger_metadata) is not None  # type: ignore[attr-defined]
    got = fx.eventhub_records(batch, **kwargs)
    same(got, ref_eventhub_records(batch, **kwargs))
    assert got.count == len(events)
    if batch:  # a converter's batch is of the usual shape: read column by column
        assert hub_batch(batch, encoding) is not None


@dataclass
class OddHubEvent:
    """An Event Hubs event with whatever fields and shared batch metadata the strategy gives."""

    body: Any
    sequence_number: Any
    enqueued_time: Any
    partition_key: Any
    metadata: Any

    def get_body(self) -> Any:
        return self.body


system_entries = st.one_of(
    st.fixed_dictionaries({}, optional={"SequenceNumber": odd_ints, "EnqueuedTimeUtc": timestamp_texts,
                                        "PartitionKey": st.none() | st.text(max_size=3),
                                        "x-opt-kafka-key": st.none() | b64_texts | st.lists(st.integers(0, 300), max_size=2),
                                        "content-type": st.none() | st.text(max_size=3) | st.integers(0, 9)}),
    st.none(), st.integers(-2**62, 2**62),
)  # fmt: skip
odd_metadata = st.fixed_dictionaries(
    {},
    optional={
        "PartitionContext": st.one_of(st.none(), st.integers(-2**62, 2**62), st.fixed_dictionaries(
            {}, optional={"PartitionId": odd_ints, "EventHubName": st.sampled_from(["h", "H2"]),
                          "FullyQualifiedNamespace": st.just("sb://X.servicebus.windows.net/")})),
        "PropertiesArray": st.none() | st.integers(-2**62, 2**62) | st.lists(
            st.none() | st.integers(-2**62, 2**62) | st.dictionaries(st.sampled_from(["a", "b", "Content-Type"]), property_values,
                                                                     max_size=2), max_size=10),
        "SystemPropertiesArray": st.none() | st.lists(system_entries, max_size=10),
    },
)  # fmt: skip


@given(odd_metadata, st.lists(st.tuples(st.binary(max_size=4), odd_ints, timestamp_values, st.none() | st.text(max_size=3)),
                              max_size=8), st.sampled_from(["base64", "text"]))  # fmt: skip
@settings(max_examples=300, deadline=None)
def test_odd_eventhub_events_agree(metadata: dict[str, Any], fields: list[tuple[Any, ...]], encoding: Any) -> None:
    events = [OddHubEvent(body, sequence, enqueued, key, metadata) for body, sequence, enqueued, key in fields]
    kwargs = {"event_hub": None, "header_encoding": encoding, "namespace": ""}
    same(fx.eventhub_records(events, **kwargs), ref_eventhub_records(events, **kwargs))


def test_a_timestamp_out_of_range_in_utc_is_that_events_fault() -> None:
    """Year 1 at +02:00 is before year 1 in UTC: the event is dead-lettered with the reason,
    the batch's other events are records (it used to raise OverflowError out of the adapter)."""
    events = [OddKafkaEvent(b"a", timestamp="0001-01-01T00:00:00+02:00"), OddKafkaEvent(b"b", offset=1)]
    adapted = fx.kafka_records(events, envelope=False, key_type="binary")
    assert [r.value for r in adapted.records] == [b"b"]
    [error] = adapted.errors
    assert error.record.value == b"a" and "out of range in UTC" in error.reason


# --------------------------------------------------------------------------- whole-batch fast paths


def kafka_batch(events: Sequence[Any], *, envelope: bool, key_type: fx.KafkaKeyType) -> list[Record] | None:
    """The whole-batch fast path alone (None: it gave up and the per-event loop reads the batch)."""
    streams = fx._KafkaStreams("a:9092")
    return fx._envelope_batch(events, key_type, streams) if envelope else fx._kafka_event_batch(events, key_type, streams)


def hub_batch(events: Sequence[Any], encoding: fx.HeaderEncoding) -> list[Record] | None:
    meta = fx._batch_metadata(events)
    count = len(events)
    return fx._eventhub_batch(events, fx._items(meta.get("SystemPropertiesArray"), count),
                              fx._entries(meta.get("PropertiesArray"), count), encoding, "h", 3, "eventhub:/h")  # fmt: skip


utc_instants = instants.filter(lambda ts: 1 < ts.year < 9999).map(lambda ts: ts.astimezone(UTC))
naive_instants = instants.map(lambda ts: ts.replace(tzinfo=None))
usual_stamps = st.one_of(
    st.lists(utc_instants.map(lambda ts: ts.isoformat().replace("+00:00", "Z")), min_size=1, max_size=6),
    st.lists(utc_instants.map(lambda ts: ts.isoformat()), min_size=1, max_size=6),
    st.lists(naive_instants.map(lambda ts: ts.isoformat()), min_size=1, max_size=6),
    st.lists(naive_instants, min_size=1, max_size=6),
    st.lists(utc_instants, min_size=1, max_size=6),
    st.lists(st.sampled_from([datetime(1, 1, 1), datetime(1, 1, 1, 0, 0, 1), datetime(9999, 12, 31, 23, 59, 59, 999999),
                              datetime(2024, 5, 1, 2, 30, fold=1)]) | naive_instants, min_size=1, max_size=6),
    st.lists(st.sampled_from(["0001-01-01T00:00:00Z", "0001-01-01T00:00:00", "9999-12-31T23:59:59.9999999Z"])
             | utc_instants.map(lambda ts: ts.isoformat()), min_size=1, max_size=6),
    st.lists(timestamp_values, min_size=1, max_size=6),
)  # fmt: skip


def bulk_takes(values: list[Any]) -> bool:
    """Whether the bulk conversion takes these: all datetimes or all ISO text, all in UTC or all
    naive (fold 0)."""
    if all(type(v) is datetime for v in values):
        stamps = values
    elif all(type(v) is str for v in values):
        try:
            stamps = [datetime.fromisoformat(v) for v in values]
        except ValueError:
            return False
    else:
        return False
    return all(ts.tzinfo is UTC for ts in stamps) or all(ts.tzinfo is None and not ts.fold for ts in stamps)


@given(usual_stamps)
@settings(max_examples=500, deadline=None)
def test_timestamps_in_bulk_agree_with_the_reference(values: list[Any]) -> None:
    try:
        got = fx._utc_column(values)
    except fx._NOT_PLAIN:
        assert not bulk_takes(values)  # given up only on what it does not take
        return
    assert bulk_takes(values)
    want = [fx._parse_timestamp(v) for v in values]
    assert repr(list(got)) == repr(want)
    assert all(ts is None or ts.tzinfo is UTC for ts in got)


def test_timestamps_in_bulk_take_the_usual_shapes() -> None:
    naive = [datetime(2024, 5, 1, 12, 0, 0, 250000), datetime(1, 1, 1), datetime(9999, 12, 31, 23, 59, 59, 999999)]
    assert list(fx._utc_column(naive)) == [datetime(2024, 5, 1, 12, 0, 0, 250000, tzinfo=UTC), None,
                                           datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)]  # fmt: skip
    assert list(fx._utc_column(["2024-05-01T12:00:00.1234567Z", "0001-01-01T00:00:00+00:00"])) == [
        datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC), None]


b64_of_bytes = st.binary(max_size=6).map(lambda b: base64.b64encode(b).decode())
usual_headers = st.lists(st.fixed_dictionaries({"Key": st.sampled_from(["a", "source"]), "Value": st.none() | b64_of_bytes}),
                         max_size=2)  # fmt: skip
usual_kafka_fields: dict[str, Any] = {
    "body": st.binary(max_size=8),
    "key": st.none() | st.just("") | b64_of_bytes,
    "offset": st.integers(0, 2**40),
    "partition": st.none() | st.integers(0, 3),
    "topic": st.sampled_from(["t", "u"]),
    "timestamp": st.sampled_from(["2024-05-01T12:00:00Z", "2024-05-01T12:00:00.001Z", "0001-01-01T00:00:00Z"])
    | utc_instants.map(lambda ts: ts.isoformat().replace("+00:00", "Z")),
    "headers": usual_headers,
}  # fmt: skip
odd_kafka_fields: dict[str, Any] = {
    "body": st.none() | st.text(max_size=2),
    "key": st.one_of(b64_texts, st.integers(-2**62, 2**62), st.lists(st.integers(0, 300), max_size=2)),
    "offset": odd_ints, "partition": odd_ints,
    "topic": st.none() | st.integers(0, 3),
    "timestamp": timestamp_values, "headers": header_values,
}  # fmt: skip


@st.composite
def near_usual_kafka_events(draw: st.DrawFn) -> list[OddKafkaEvent]:
    """Batches of the usual shape, or with one field of one event odd (so that the fast path
    goes as far as that field before it gives up)."""
    events = draw(st.lists(st.builds(OddKafkaEvent, **usual_kafka_fields), min_size=1, max_size=8))
    if draw(st.booleans()):
        name = draw(st.sampled_from(sorted(odd_kafka_fields)))
        setattr(events[draw(st.integers(0, len(events) - 1))], name, draw(odd_kafka_fields[name]))
    return events


@given(near_usual_kafka_events(), st.sampled_from(["binary", "string"]))
@settings(max_examples=400, deadline=None)
def test_near_usual_kafka_batches_agree(events: list[OddKafkaEvent], key_type: Any) -> None:
    kwargs = {"envelope": False, "key_type": key_type, "brokers": "a:9092"}
    same(fx.kafka_records(events, **kwargs), ref_kafka_records(events, **kwargs))


envelope_renames = {"Value": "value", "Key": "key", "Headers": "headers", "Topic": "topic", "Partition": "partition",
                    "Offset": "offset", "Timestamp": "timestamp"}  # fmt: skip


@st.composite
def near_usual_envelopes(draw: st.DrawFn) -> list[OddKafkaEvent]:
    """Envelope batches of the usual shape, or with one event's envelope odd in one way."""
    docs = draw(st.lists(st.fixed_dictionaries({
        "Offset": usual_kafka_fields["offset"], "Partition": st.integers(0, 3), "Topic": usual_kafka_fields["topic"],
        "Timestamp": usual_kafka_fields["timestamp"], "Value": st.none() | st.text(max_size=6),
        "Key": usual_kafka_fields["key"], "Headers": usual_headers,
    }), min_size=1, max_size=8))  # fmt: skip
    bodies: list[Any] = [orjson.dumps(doc) for doc in docs]
    if draw(st.booleans()):
        index = draw(st.integers(0, len(docs) - 1))
        doc = docs[index]
        how = draw(st.sampled_from(["field", "camel", "missing", "body"]))
        name = draw(st.sampled_from(sorted(envelope_renames)))
        if how == "field":
            doc[name] = draw(envelope_fields.map(lambda d: next(iter(d.values()), None)) | st.integers(-2**62, 2**62)
                             | st.lists(st.integers(-3, 3), max_size=2) | st.booleans())  # fmt: skip
        elif how == "camel":
            doc[envelope_renames[name]] = doc.pop(name)
        elif how == "missing":
            del doc[name]
        bodies[index] = draw(st.sampled_from([b"", b"[]", b"{", b"null", b'"x"', b"{}, {}"])) if how == "body" else orjson.dumps(doc)
    return [OddKafkaEvent(body) for body in bodies]


@given(near_usual_envelopes(), st.sampled_from(["binary", "string"]))
@settings(max_examples=400, deadline=None)
def test_near_usual_envelope_batches_agree(events: list[OddKafkaEvent], key_type: Any) -> None:
    kwargs = {"envelope": True, "key_type": key_type, "brokers": ""}
    same(fx.kafka_records(events, **kwargs), ref_kafka_records(events, **kwargs))


usual_hub_fields: dict[str, Any] = {
    "body": st.binary(max_size=4),
    "sequence_number": st.integers(0, 2**40),
    "enqueued_time": naive_instants | st.just(datetime(1, 1, 1)),
    "partition_key": st.none() | st.text(max_size=3),
}
odd_hub_fields: dict[str, Any] = {
    "body": st.none() | st.text(max_size=2),
    "sequence_number": odd_ints,
    "enqueued_time": timestamp_values | utc_instants | st.just(datetime(2024, 5, 1, 2, 30, fold=1)),
    "partition_key": st.integers(-3, 3) | st.text(max_size=3),
}
usual_metadata = st.fixed_dictionaries(
    {"PartitionContext": st.fixed_dictionaries({"PartitionId": st.sampled_from(["0", "3"]), "EventHubName": st.just("h")})},
    optional={
        "PropertiesArray": st.lists(st.none() | st.dictionaries(st.sampled_from(["a", "b", "Content-Type"]), property_values,
                                                                max_size=2), max_size=10),
        "SystemPropertiesArray": st.lists(system_entries, max_size=10),
    },
)  # fmt: skip


@st.composite
def near_usual_hub_events(draw: st.DrawFn) -> list[OddHubEvent]:
    """Event Hubs batches of the usual shape (the enqueued times all naive or all UTC), or with
    one field of one event odd."""
    metadata = draw(usual_metadata | odd_metadata)
    rows = draw(st.lists(st.fixed_dictionaries(usual_hub_fields), min_size=1, max_size=8))
    if draw(st.booleans()):
        for row in rows:
            row["enqueued_time"] = row["enqueued_time"].replace(tzinfo=UTC)
    if draw(st.booleans()):
        name = draw(st.sampled_from(sorted(odd_hub_fields)))
        rows[draw(st.integers(0, len(rows) - 1))][name] = draw(odd_hub_fields[name])
    return [OddHubEvent(metadata=metadata, **row) for row in rows]


@given(near_usual_hub_events(), st.sampled_from(["base64", "text"]))
@settings(max_examples=400, deadline=None)
def test_near_usual_eventhub_batches_agree(events: list[OddHubEvent], encoding: Any) -> None:
    kwargs = {"event_hub": None, "header_encoding": encoding, "namespace": ""}
    same(fx.eventhub_records(events, **kwargs), ref_eventhub_records(events, **kwargs))


def test_the_fast_paths_read_the_usual_batches() -> None:
    """A batch of the usual shape is read column by column (not by the per-event loop), with and
    without properties, content types, Kafka keys, null keys and tombstones."""
    stamp = datetime(2024, 5, 1, 12, tzinfo=UTC)
    messages = [KafkaMessage("t", n, b"v" if n % 3 else None, partition=n % 2, key=None if n % 2 else b"k",
                             headers=[("a", b"1")] if n % 2 else [], timestamp=stamp) for n in range(6)]  # fmt: skip
    for data_type in ("binary", "string"):
        events = kafka_events(messages, data_type=data_type)
        assert kafka_batch(events, envelope=data_type == "string", key_type="binary") == \
            ref_kafka_records(events, envelope=data_type == "string", key_type="binary", brokers="a:9092").records  # fmt: skip
    hubs = [HubEvent(0, b"x"), HubEvent(1, b"y", properties={"a": "MQ=="}, partition_key="p"),
            HubEvent.from_kafka_producer(2, b"z", key=b"k", headers=[("b", b"2")]),
            HubEvent(3, b"w", content_type="avro/binary+0a")]  # fmt: skip
    batch = eventhub_events(hubs, event_hub="h", partition="3")
    got = hub_batch(batch, "base64")
    assert got is not None
    assert [r.key for r in got] == [None, b"p", b"k", None]
    assert [r.headers for r in got] == [(), (("a", b"1"),), (("b", b"2"),), (("content-type", b"avro/binary+0a"),)]
    assert {r.timestamp for r in got} == {datetime(2024, 5, 1, 12, 0, 0, 250000, tzinfo=UTC)}
