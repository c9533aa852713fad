"""The Kafka trigger, called as the worker calls it, into the local sink: keys, headers, null
values, non-UTF-8 bytes and mixed topics in one batch; what landed plus what was dead-lettered
is exactly what was sent."""

from __future__ import annotations

import base64
import itertools
from collections.abc import Callable

import azure.functions as func
import orjson
import pytest

from shared.ops.sample import storm_events, to_csv, to_json, to_tutorial_csv
from shared.sources.functions import kafka_records
from tests.support.functions_app import KAFKA_ENV, LocalApp
from tests.support.functions_host import Context, KafkaMessage, kafka_events

EVENTS = list(storm_events(6, seed=3))


def host_events(messages: list[KafkaMessage], *, data_type: str = "binary", key_type: str = "string") -> list[func.KafkaEvent]:
    """The batch the host sends for a binding with ``dataType``/``keyDataType``: keys as text
    (String, the extension's default: decoded as UTF-8 with replacement characters) or as
    base64 of the bytes (Binary: .NET ``byte[]`` in JSON), in ``KeyArray`` and in the
    envelope's ``Key``; a null key is ``''`` in the envelope (FACTS.md)."""

    def key(message: KafkaMessage) -> str | None:
        if message.key is None:
            return None
        if key_type == "binary":
            return base64.b64encode(message.key).decode()
        return message.key.decode("utf-8", errors="replace")

    rebuilt = []
    for message, event in zip(messages, kafka_events(messages, data_type=data_type), strict=True):
        body = event.get_body()
        if data_type == "string":
            doc = orjson.loads(body)
            doc["Key"] = key(message) or ""
            body = orjson.dumps(doc)
        rebuilt.append(func.KafkaEvent(body=body, key=key(message), topic=event.topic, offset=event.offset,
                                       partition=event.partition, timestamp=event.timestamp, headers=event.headers))  # fmt: skip
    return rebuilt


def app_events(app: LocalApp, messages: list[KafkaMessage], *, data_type: str = "binary") -> list[func.KafkaEvent]:
    """:func:`host_events` for the key type the app's Kafka binding asks the extension for."""
    bindings = orjson.loads(app.functions["kafka_ingest"].get_function_json())["bindings"]
    key_type = str(bindings[0].get("keyDataType") or "string").lower()
    return host_events(messages, data_type=data_type, key_type=key_type)


def mixed_batch() -> list[KafkaMessage]:
    return [
        KafkaMessage("storm-events-json", 10, to_json(EVENTS[0]), key=b"station-10"),
        KafkaMessage("storm-events-json", 11, to_json(EVENTS[1]), headers=[("Table", b"Storms"), ("trace", None)]),
        KafkaMessage("storm-events-csv", 5, to_csv(EVENTS[2]), partition=1, key=b"station-5"),
        KafkaMessage("storm-events", 7, to_tutorial_csv(EVENTS[3]), partition=2),  # the Kafka tutorial's record
        KafkaMessage("audit", 1, "caf\u00e9 line".encode()),
        KafkaMessage("audit", 2, b"\xff\xfe not utf-8"),
        KafkaMessage("storm-events-json", 12, None),  # tombstone
        KafkaMessage("storm-events-json", 13, to_json(EVENTS[4]), headers=[("Table", b"Secrets")]),
    ]


def test_binary_batch_lands_with_metadata_and_every_poison_record_is_dead_lettered(
    local_app: Callable[[dict[str, str]], LocalApp],
) -> None:
    app = local_app(KAFKA_ENV)
    messages = mixed_batch()
    assert app.call("kafka_ingest", app_events(app, messages, data_type="binary"), Context("kafka_ingest")) is None

    storm_events_rows = app.rows(
        'SELECT EventId, KafkaTopic, KafkaPartition, KafkaOffset, KafkaKey FROM "Weather"."StormEvents" ORDER BY EventId'
    )
    assert storm_events_rows == [
        (EVENTS[0]["EventId"], "storm-events-json", 0, 10, "station-10"),
        (EVENTS[2]["EventId"], "storm-events-csv", 1, 5, "station-5"),
    ]
    # Header routing (Table=Storms is on the route's allow-list) and the server-side CSV route.
    assert app.rows('SELECT EventId FROM "Weather"."Storms" ORDER BY EventId') == [
        (EVENTS[1]["EventId"],), (EVENTS[3]["EventId"],)
    ]
    assert app.rows('SELECT Line FROM "Weather"."RawEvents"') == [("caf\u00e9 line",)]

    letters = {(letter.record.topic, letter.record.offset): letter for letter in app.dead_letters()}
    assert sorted(letters) == [("audit", 2), ("storm-events-json", 12), ("storm-events-json", 13)]
    assert letters["storm-events-json", 12].reason == "storm-events-json[0]@12: value is empty"
    assert "not on the allow-list" in letters["storm-events-json", 13].reason
    assert letters["storm-events-json", 13].field == "Table"
    assert letters["audit", 2].record.value == b"\xff\xfe not utf-8"  # original bytes kept for replay
    assert letters["audit", 2].reason == "audit[0]@2: value is not valid UTF-8 (byte 0)"
    assert len(storm_events_rows) + 2 + 1 + len(letters) == len(messages)


def test_json_envelope_batch_decodes_base64_headers_and_keys(local_app: Callable[[dict[str, str]], LocalApp]) -> None:
    app = local_app({**KAFKA_ENV, "KAFKA_DATA_TYPE": "string"})
    messages = mixed_batch()
    app.call("kafka_ingest", app_events(app, messages, data_type="string"), Context("kafka_ingest"))

    assert app.rows('SELECT EventId, KafkaKey FROM "Weather"."StormEvents" ORDER BY EventId') == [
        (EVENTS[0]["EventId"], "station-10"), (EVENTS[2]["EventId"], "station-5")
    ]
    assert len(app.rows('SELECT * FROM "Weather"."Storms"')) == 2
    # The extension already decoded the value as UTF-8: the invalid bytes arrive replaced, which
    # is why dataType binary is the default.
    assert sorted(app.rows('SELECT Line FROM "Weather"."RawEvents"')) == [("caf\u00e9 line",), ("\ufffd\ufffd not utf-8",)]
    letters = sorted(app.dead_letters(), key=lambda letter: letter.record.offset)
    assert [(letter.record.offset, letter.stage) for letter in letters] == [(12, "decode"), (13, "route")]
    assert letters[0].reason.endswith("value is null")


def test_adapter_reads_every_field_of_the_envelope() -> None:
    message = KafkaMessage("t", 42, b'{"a": 1}', partition=3, key=b"k", headers=[("Table", b"T"), ("bin", b"\x00\xff"), ("n", None)])
    for data_type, key_type in itertools.product(("binary", "string"), ("string", "binary")):
        events = host_events([message], data_type=data_type, key_type=key_type)
        adapted = kafka_records(events, envelope=data_type == "string", key_type=key_type)  # type: ignore[arg-type]
        assert adapted.errors == []
        (record,) = adapted.records
        assert (record.topic, record.partition, record.offset, record.key, record.value) == ("t", 3, 42, b"k", b'{"a": 1}')
        assert record.headers == (("Table", b"T"), ("bin", b"\x00\xff"), ("n", None))
        assert record.timestamp == message.timestamp and record.source == "kafka"


def test_unreadable_envelope_is_dead_lettered_with_its_reason_and_the_rest_ingested(
    local_app: Callable[[dict[str, str]], LocalApp],
) -> None:
    app = local_app({**KAFKA_ENV, "KAFKA_DATA_TYPE": "string"})
    good = KafkaMessage("storm-events-json", 20, to_json(EVENTS[5]))
    events = app_events(app, [good, KafkaMessage("storm-events-json", 21, b"x")], data_type="string")
    broken = orjson.loads(events[1].get_body())
    broken["Headers"] = [{"Key": "Table", "Value": "not base64!"}]
    events[1] = type(events[1])(body=orjson.dumps(broken), topic="storm-events-json", offset=21, partition=0)
    app.call("kafka_ingest", events, Context("kafka_ingest"))

    assert app.rows('SELECT KafkaOffset FROM "Weather"."StormEvents"') == [(20,)]
    (letter,) = app.dead_letters()
    assert letter.reason == "storm-events-json[0]@21: header 'Table' is not base64"
    assert letter.stage == "decode" and letter.record.value == orjson.dumps(broken)


@pytest.mark.parametrize("data_type", ["binary", "string"])
def test_timestamps_from_the_host_become_aware_utc(data_type: str) -> None:
    (record,) = kafka_records(kafka_events([KafkaMessage("t", 1, b"v")], data_type=data_type),
                              envelope=data_type == "string").records
    assert record.timestamp is not None and record.timestamp.utcoffset() is not None
    assert record.timestamp.isoformat() == "2024-05-01T12:00:00.123456+00:00"


def test_concurrent_invocations_share_the_worker_and_lose_nothing(local_app: Callable[[dict[str, str]], LocalApp]) -> None:
    # The worker runs sync functions on a thread pool: partitions are processed concurrently.
    from concurrent.futures import ThreadPoolExecutor

    app = local_app(KAFKA_ENV)
    batches = [
        [KafkaMessage("storm-events-json", 1000 * p + i, to_json(event), partition=p) for i, event in enumerate(storm_events(200, seed=p))]
        + [KafkaMessage("storm-events-json", 1000 * p + 999, None, partition=p)]
        for p in range(4)
    ]
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda b: app.call("kafka_ingest", app_events(app, b), Context("kafka_ingest")), batches))
    assert app.rows('SELECT KafkaPartition, count(*) FROM "Weather"."StormEvents" GROUP BY 1 ORDER BY 1') == [
        (0, 200), (1, 200), (2, 200), (3, 200)
    ]
    assert sorted(letter.record.partition for letter in app.dead_letters()) == [0, 1, 2, 3]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-05-01T12:00:00.1234567Z", "2024-05-01T12:00:00.123456+00:00"),  # .NET: 7 digits
        ("2024-05-01T12:00:00", "2024-05-01T12:00:00+00:00"),  # DateTime of kind Unspecified: UTC
        ("2024-05-01T14:00:00+02:00", "2024-05-01T12:00:00+00:00"),
        ("0001-01-01T00:00:00", None),  # DateTime.MinValue: no timestamp
        (None, None),
    ],
)
def test_host_timestamps_parse_to_aware_utc(text: str | None, expected: str | None) -> None:
    from shared.sources.functions import parse_timestamp

    parsed = parse_timestamp(text)
    assert (parsed.isoformat() if parsed else None) == expected


def test_unparseable_timestamp_is_an_adapter_error_naming_the_record() -> None:
    from shared.sources.functions import AdapterFault, parse_timestamp

    with pytest.raises(AdapterFault, match="not ISO 8601"):
        parse_timestamp("05/01/2024 12:00")
    events = kafka_events([KafkaMessage("t", 5, b"v", partition=2)])
    broken = type(events[0])(body=b"v", topic="t", offset=5, partition=2, timestamp="yesterday", headers=[])
    adapted = kafka_records([broken], envelope=False)
    assert adapted.records == [] and adapted.errors[0].record.where == "t[2]@5"
    assert adapted.errors[0].record.value == b"v"


@pytest.mark.parametrize("data_type", ["binary", "string"])
def test_records_carry_the_stream_of_their_cluster_and_topic(data_type: str) -> None:
    messages = [KafkaMessage("t1", 1, b"a"), KafkaMessage("t2", 1, b"b"), KafkaMessage("t1", 2, b"c")]
    events = kafka_events(messages, data_type=data_type)
    envelope = data_type == "string"
    # Any spelling of the same bootstrap list names the same cluster.
    records = kafka_records(events, envelope=envelope, brokers=" Broker-B:9092, broker-a:9092 ").records
    assert [r.stream for r in records] == ["kafka:broker-a:9092,broker-b:9092/t1",
                                           "kafka:broker-a:9092,broker-b:9092/t2",
                                           "kafka:broker-a:9092,broker-b:9092/t1"]  # fmt: skip
    assert records[0].stream is records[2].stream  # one shared string per topic, not one per record
    again = kafka_records(kafka_events(messages, data_type=data_type), envelope=envelope, brokers="broker-a:9092,broker-b:9092")
    assert [r.stream for r in again.records] == [r.stream for r in records]  # a redelivery: the same streams
    other = kafka_records(events, envelope=envelope, brokers="elsewhere:9092").records
    assert other[0].stream == "kafka:elsewhere:9092/t1" != records[0].stream
    # Callers that do not name the cluster still get a stream per topic.
    assert kafka_records(events, envelope=envelope).records[1].stream == "kafka:/t2"


@pytest.mark.parametrize("data_type", ["binary", "string"])
def test_binary_key_type_keeps_the_exact_key_bytes(data_type: str) -> None:
    keys = [b"station-1", b"\xff\xfe not utf-8", b"\x00", None, b""]
    messages = [KafkaMessage("t", i, b"v", key=key) for i, key in enumerate(keys)]
    adapted = kafka_records(host_events(messages, data_type=data_type, key_type="binary"), envelope=data_type == "string", key_type="binary")
    assert adapted.errors == []
    # The host cannot tell an empty key from none ('' both): both are no key, as a consumer sees a null key.
    assert [r.key for r in adapted.records] == [b"station-1", b"\xff\xfe not utf-8", b"\x00", None, None]


def test_binary_key_type_with_a_binding_still_sending_text_keys_dead_letters_instead_of_guessing() -> None:
    # A key that is not base64 means the binding does not say keyDataType Binary: loud, not silent.
    text_keys = host_events([KafkaMessage("t", 3, b"v", key=b"station 1")], key_type="string")
    adapted = kafka_records(text_keys, envelope=False, key_type="binary")
    assert adapted.records == [] and adapted.errors[0].reason == "key is not base64"
    assert adapted.errors[0].record.where == "t[0]@3"


def test_string_key_type_a_non_utf8_key_arrives_already_replaced_by_the_extension() -> None:
    # Why the app sets keyDataType Binary: with the default (String) the extension decodes the key
    # with replacement characters before the function sees it; the original bytes are gone.
    events = host_events([KafkaMessage("t", 1, b"v", key=b"\xff\xfe k")], key_type="string")
    (record,) = kafka_records(events, envelope=False).records
    assert record.key == "\ufffd\ufffd k".encode()
