"""The Event Hubs adapter turns an AMQP producer's content type into a ``content-type`` header.

The host hands ``EventData.content_type`` (where azure-schemaregistry's ``AvroEncoder`` puts
``avro/binary+<schema id>``) over only as the ``content-type`` entry of the event's system
properties (``SystemPropertiesArray``; see shared/sources/functions.py for the extension source).
The batches here are built as the host sends them and decoded by the real ``azure.functions``
converter (tests/support/functions_host.py)."""

from __future__ import annotations

import json

from shared.formats import wire
from shared.sources import functions as fx
from tests.support.functions_host import HubEvent, datum, eventhub_events, eventhub_trigger_data

AZURE = "avro/binary+3f2a9c1e0b7d4e5f8a6b1c2d3e4f5a6b"


def test_the_host_sends_the_content_type_in_the_system_properties_only() -> None:
    _, metadata = eventhub_trigger_data([HubEvent(1, b"x", content_type=AZURE)])
    [system] = json.loads(datum(metadata["SystemPropertiesArray"]).value)
    [properties] = json.loads(datum(metadata["PropertiesArray"]).value)
    assert system["content-type"] == AZURE and properties == {}
    assert not any("ContentType" in name for name in metadata)  # the binding contract has no ContentTypeArray


def test_an_amqp_content_type_becomes_a_content_type_header() -> None:
    events = [HubEvent(10, b"\x02ab", content_type=AZURE, properties={"source": "plant-7"}),
              HubEvent(11, b"\x02cd"),
              HubEvent.from_kafka_producer(12, b"\x00\x00\x00\x00\x01z", headers=[("trace", b"t1")])]  # fmt: skip
    adapted = fx.eventhub_records(eventhub_events(events))  # "plant-7" is not base64: taken as text
    assert adapted.errors == []
    first, second, third = adapted.records
    assert first.headers == (("source", b"plant-7"), ("content-type", AZURE.encode()))
    assert second.headers == () and third.headers == (("trace", b"t1"),)
    framed = wire.split(first, azure=True)
    assert (framed.registry, framed.schema_id, bytes(framed.payload)) == ("azure", AZURE.split("+")[1], b"\x02ab")


def test_a_content_type_application_property_wins_over_the_amqp_content_type() -> None:
    for name in wire.CONTENT_TYPE_HEADERS:
        event = HubEvent(1, b"v", content_type="application/json", properties={name: AZURE})
        [record] = fx.eventhub_records(eventhub_events([event]), header_encoding="text").records
        assert record.headers == ((name, AZURE.encode()),)


def test_an_empty_content_type_gives_no_header() -> None:
    [record] = fx.eventhub_records(eventhub_events([HubEvent(1, b"v", content_type="")])).records
    assert record.headers == ()


def test_the_kafka_key_and_the_content_type_are_both_read() -> None:
    event = HubEvent(5, b"v", kafka_key=b"\xffk", content_type=AZURE)
    [record] = fx.eventhub_records(eventhub_events([event])).records
    assert (record.key, record.headers) == (b"\xffk", (("content-type", AZURE.encode()),))
