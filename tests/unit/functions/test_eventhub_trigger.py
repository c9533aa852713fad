"""The Event Hubs trigger, called as the worker calls it: events from producers using the Event
Hubs Kafka endpoint (headers as binary application properties, key as x-opt-kafka-key) behave
exactly like Kafka records; AMQP producers' properties and partition keys work too."""

from __future__ import annotations

import time
from collections.abc import Callable

from shared.ops.sample import storm_events, to_json
from shared.sources.functions import eventhub_records
from tests.support.functions_app import EVENTHUB_ENV, LocalApp
from tests.support.functions_host import Context, HubEvent, eventhub_events

EVENTS = list(storm_events(5, seed=11))


def test_kafka_endpoint_producers_route_by_header_and_fill_key_columns(
    local_app: Callable[[dict[str, str]], LocalApp],
) -> None:
    app = local_app(EVENTHUB_ENV)
    batch = [
        HubEvent.from_kafka_producer(100, to_json(EVENTS[0]), key=b"station-7"),
        HubEvent.from_kafka_producer(101, to_json(EVENTS[1]), headers=[("Table", b"Storms")]),
        HubEvent.from_kafka_producer(102, b"", key=b"station-8"),
        HubEvent.from_kafka_producer(103, to_json(EVENTS[2]), headers=[("Table", b"Secrets")]),
    ]
    app.call("eventhub_ingest", eventhub_events(batch, partition="3"), Context("eventhub_ingest"))

    assert app.rows(
        'SELECT EventId, KafkaTopic, KafkaPartition, KafkaOffset, KafkaKey FROM "Weather"."StormEvents"'
    ) == [(EVENTS[0]["EventId"], "storm-events-json", 3, 100, "station-7")]
    assert app.rows('SELECT EventId FROM "Weather"."Storms"') == [(EVENTS[1]["EventId"],)]
    letters = {letter.record.offset: letter for letter in app.dead_letters()}
    assert sorted(letters) == [102, 103]
    assert letters[102].reason == "storm-events-json[3]@102: value is empty"
    assert letters[102].record.key == b"station-8"
    assert letters[103].stage == "route" and letters[103].record.headers == (("Table", b"Secrets"),)


def test_adapter_maps_event_hubs_metadata_to_record_fields() -> None:
    hub = HubEvent.from_kafka_producer(7, b"v", key=b"\x00k\xff", headers=[("bin", b"\x00\x01"), ("none", None)])
    amqp = HubEvent(8, b"w", properties={"Table": "Logs", "n": 3, "ok": True}, partition_key="device-1")
    adapted = eventhub_records(eventhub_events([hub, amqp], event_hub="hub-a", partition="12"), event_hub="hub-a")
    assert adapted.errors == []
    first, second = adapted.records
    assert (first.topic, first.partition, first.offset, first.source) == ("hub-a", 12, 7, "eventhub")
    assert first.key == b"\x00k\xff"  # Kafka key bytes, not the partition key
    assert first.headers == (("bin", b"\x00\x01"), ("none", None))
    assert first.timestamp is not None and first.timestamp.isoformat() == "2024-05-01T12:00:00.250000+00:00"
    assert second.key == b"device-1"  # no Kafka key: the partition key
    # base64 mode: "Logs" is valid base64, so AMQP producers sending text set EVENTHUB_HEADER_ENCODING=text.
    assert dict(second.headers)["n"] == b"3" and dict(second.headers)["ok"] == b"true"
    text = eventhub_records(eventhub_events([amqp]), header_encoding="text").records[0]
    assert text.headers == (("Table", b"Logs"), ("n", b"3"), ("ok", b"true"))
    assert text.topic == "storm-events-json"  # no configured name: the partition context's


def test_amqp_producers_route_by_text_properties_with_text_encoding(
    local_app: Callable[[dict[str, str]], LocalApp],
) -> None:
    app = local_app({**EVENTHUB_ENV, "EVENTHUB_HEADER_ENCODING": "text"})
    batch = [HubEvent(1, to_json(EVENTS[3]), properties={"Table": "Storms"}, partition_key="p")]
    app.call("eventhub_ingest", eventhub_events(batch), Context("eventhub_ingest"))
    assert app.rows('SELECT EventId FROM "Weather"."Storms"') == [(EVENTS[3]["EventId"],)]


def test_a_batch_of_5000_events_lands_whole(local_app: Callable[[dict[str, str]], LocalApp]) -> None:
    app = local_app(EVENTHUB_ENV)
    batch = [
        HubEvent.from_kafka_producer(1000 + i, to_json(event), key=f"k{i}".encode(), headers=[("source", b"bulk")])
        for i, event in enumerate(storm_events(5000, seed=5))
    ]
    events = eventhub_events(batch, partition="0")
    started = time.perf_counter()
    app.call("eventhub_ingest", events, Context("eventhub_ingest"))
    seconds = time.perf_counter() - started
    print(f"5000-event Event Hubs batch: {seconds:.2f}s")  # reported, not asserted (no timing asserts)
    assert app.rows('SELECT count(*), min(KafkaOffset), max(KafkaOffset), count(DISTINCT KafkaKey) FROM "Weather"."StormEvents"') == [
        (5000, 1000, 5999, 5000)
    ]
    assert app.dead_letters() == []


def _same_positions() -> list[HubEvent]:
    return [HubEvent.from_kafka_producer(500 + i, to_json(event), key=b"k") for i, event in enumerate(EVENTS[:3])]


def test_batches_of_two_namespaces_with_the_same_positions_are_different_streams() -> None:
    a = eventhub_records(eventhub_events(_same_positions(), partition="4"), event_hub="storm-events-json",
                         namespace="ns-a.servicebus.windows.net").records  # fmt: skip
    b = eventhub_records(eventhub_events(_same_positions(), partition="4"), event_hub="storm-events-json",
                         namespace="ns-b.servicebus.windows.net").records  # fmt: skip
    assert [(r.topic, r.partition, r.offset) for r in a] == [(r.topic, r.partition, r.offset) for r in b]
    assert {r.stream for r in a} == {"eventhub:ns-a.servicebus.windows.net/storm-events-json"}
    assert {r.stream for r in b} == {"eventhub:ns-b.servicebus.windows.net/storm-events-json"}


def test_the_same_events_twice_are_the_same_stream_whatever_the_spelling() -> None:
    first = eventhub_records(eventhub_events(_same_positions()), event_hub="storm-events-json",
                             namespace="ns-a.servicebus.windows.net").records  # fmt: skip
    again = eventhub_records(eventhub_events(_same_positions()), event_hub="Storm-Events-JSON",
                             namespace=" NS-A.servicebus.windows.net ").records  # fmt: skip
    assert [r.stream for r in first] == [r.stream for r in again]
    # Without the setting, the namespace the host names in the partition context.
    context_only = eventhub_records(eventhub_events(_same_positions())).records
    assert {r.stream for r in context_only} == {"eventhub:kafka-adx-test.servicebus.windows.net/storm-events-json"}


class _UnreadableKey(HubEvent):
    """An event whose x-opt-kafka-key is not what the host serialises from a byte[]."""

    def system_properties(self) -> dict[str, object]:
        return {**super().system_properties(), "x-opt-kafka-key": {"not": "bytes"}}


def test_an_unreadable_event_is_dead_lettered_under_its_real_partition_and_sequence_number(
    local_app: Callable[[dict[str, str]], LocalApp],
) -> None:
    app = local_app(EVENTHUB_ENV)
    batch = [HubEvent.from_kafka_producer(41, to_json(EVENTS[0])), _UnreadableKey(42, to_json(EVENTS[1]))]
    # The host sends the partition id as a string ("0".."31").
    app.call("eventhub_ingest", eventhub_events(batch, partition="17"), Context("eventhub_ingest"))

    assert app.rows('SELECT KafkaPartition, KafkaOffset FROM "Weather"."StormEvents"') == [(17, 41)]
    (letter,) = app.dead_letters()
    assert (letter.record.partition, letter.record.offset) == (17, 42)
    assert letter.reason == "storm-events-json[17]@42: Kafka key has type dict, expected base64 text"
    assert letter.record.value == to_json(EVENTS[1]) and letter.record.source == "eventhub"
    assert letter.record.timestamp is not None  # the enqueued time was readable, so it is kept
    assert letter.record.stream == "eventhub:kafka-adx-test.servicebus.windows.net/storm-events-json"
