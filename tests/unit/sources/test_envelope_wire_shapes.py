"""The Kafka trigger's JSON envelope (``dataType: string``) as the host really writes it, and the
adapter reading every other spelling of the same JSON alike.

The host serialises each event with Newtonsoft (``JsonConvert.SerializeObject(KafkaEventData)``):
compact, non-ASCII characters as they are, U+0085/U+2028/U+2029 escaped, the properties in their
declaration order. :mod:`tests.support.functions_host` writes it so, byte for byte, so that the
tests and the bench see the host's shape. The adapter must still take any valid JSON of the same
envelope (spaces, ``\\uXXXX`` escapes, ``\\/``, another key order): the same records, on the
whole-batch fast path and on the per-event reference."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from azure.functions.kafka import KafkaTriggerConverter
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.sources import functions as fx
from tests.support.functions_host import KafkaMessage, datum, kafka_trigger_data, newtonsoft_json


def test_the_host_writes_the_envelope_as_newtonsoft_does() -> None:
    message = KafkaMessage("orders", 7, 'é "q" \\ \u2028\u2029\u0085 \x01\x1f\x7f\t / 😀'.encode(), partition=2,
                           key=b"k", headers=[("h", b"\x00"), ("n", None)],
                           timestamp=datetime(2024, 5, 1, 12, 0, 0, 123000, tzinfo=UTC))  # fmt: skip
    assert message.envelope("binary") == (
        '{"Offset":7,"Partition":2,"Topic":"orders","Timestamp":"2024-05-01T12:00:00.123Z",'
        '"Value":"é \\"q\\" \\\\ \\u2028\\u2029\\u0085 \\u0001\\u001f\x7f\\t / 😀",'
        '"LeaderEpoch":0,"IsPartitionEOF":false,"Key":"aw==",'
        '"Headers":[{"Key":"h","Value":"AA=="},{"Key":"n","Value":null}]}'
    )
    # A tombstone, a string key, no headers; a whole second: no fraction (Newtonsoft's "FFFFFFF").
    message = KafkaMessage("t", 0, None, timestamp=datetime(2024, 5, 1, 12, tzinfo=UTC))
    assert message.envelope("string") == (
        '{"Offset":0,"Partition":0,"Topic":"t","Timestamp":"2024-05-01T12:00:00Z","Value":null,'
        '"LeaderEpoch":0,"IsPartitionEOF":false,"Key":null,"Headers":[]}'
    )


def test_newtonsoft_json_is_compact_and_keeps_non_ascii() -> None:
    assert (
        newtonsoft_json({"a": ["é", None, 1, True], "b": "\u2028"}) == '{"a":["é",null,1,true],"b":"\\u2028"}'
    )


# --------------------------------------------------------------------------- other spellings

texts = st.text(st.characters(codec="utf-8"), max_size=12) | st.sampled_from(
    ['"', "\\", '\\"', ',"', '","Key":', "\u2028", "/", "\x00"]
)
messages = st.builds(
    KafkaMessage,
    topic=st.sampled_from(["orders", "café", 'q"t']),
    offset=st.integers(0, 2**40),
    value=st.none() | texts.map(str.encode) | st.binary(max_size=8),
    partition=st.integers(0, 3),
    key=st.none() | texts.map(str.encode),
    headers=st.lists(st.tuples(texts, st.none() | st.binary(max_size=4)), max_size=3),
    timestamp=st.integers(0, 10**12).map(lambda ms: datetime(2000, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)),
)  # fmt: skip


def fields(message: KafkaMessage, key_type: str) -> dict[str, Any]:
    """The envelope's fields, as :meth:`KafkaMessage.envelope` writes them."""
    return orjson.loads(message.envelope(key_type))  # type: ignore[no-any-return]


def spellings(message: KafkaMessage, key_type: str) -> list[str]:
    """The host's envelope and other valid JSON of the same object."""
    doc = fields(message, key_type)
    facts_order = {name: doc[name] for name in ("Offset", "Partition", "Topic", "Timestamp", "Value", "Key", "Headers",
                                                "LeaderEpoch", "IsPartitionEOF")}  # fmt: skip
    return [
        message.envelope(key_type),
        json.dumps(doc),  # the earlier test host's: spaces, every non-ASCII character as \\uXXXX
        json.dumps(doc, indent=1, ensure_ascii=False),
        json.dumps(doc, separators=(",", ":")).replace("/", "\\/"),
        newtonsoft_json(facts_order),
        newtonsoft_json(dict(reversed(doc.items()))),
    ]


def events_of(bodies: Sequence[str], batch: Sequence[KafkaMessage], key_type: str) -> list[Any]:
    """The converter's events for these bodies, with the batch's metadata."""
    _, metadata = kafka_trigger_data(batch, data_type="string", key_type=key_type)
    events = KafkaTriggerConverter.decode(datum(("collection_string", list(bodies))),
                                          trigger_metadata={k: datum(v) for k, v in metadata.items()})  # fmt: skip
    assert isinstance(events, list)
    return events


@given(st.lists(messages, min_size=1, max_size=6), st.sampled_from(["binary", "string"]))
@settings(max_examples=150, deadline=None)
def test_every_spelling_of_the_envelope_gives_the_same_records(
    batch: list[KafkaMessage], key_type: Any
) -> None:
    per_message = [spellings(m, key_type) for m in batch]
    want = None
    for index in range(len(per_message[0])):
        events = events_of([s[index] for s in per_message], batch, key_type)
        got = fx.kafka_records(events, envelope=True, key_type=key_type, brokers="a:9092")
        assert not got.errors
        streams = fx._KafkaStreams("a:9092")
        reference = [fx._envelope_record(event.get_body(), key_type, streams) for event in events]
        assert repr(got.records) == repr(reference)
        # Every spelling is read column by column, not by the per-event loop.
        assert fx._envelope_batch(events, key_type, fx._KafkaStreams("a:9092")) is not None
        if want is None:
            want = repr(got.records)
        assert repr(got.records) == want
    # And they are the messages the producer wrote (a value not UTF-8 already replaced by the host).
    adapted = fx.kafka_records(
        events_of([s[0] for s in per_message], batch, key_type), envelope=True, key_type=key_type
    )
    for record, message in zip(adapted.records, batch, strict=True):
        assert record.value == (
            None if message.value is None else message.value.decode(errors="replace").encode()
        )
        assert (record.topic, record.partition, record.offset, record.timestamp) == (
            message.topic,
            message.partition,
            message.offset,
            message.timestamp,
        )
