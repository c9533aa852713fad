"""The same producer records, keys included, have the same outcome on every path into the pipeline:
the Kafka trigger (``dataType`` binary and string, ``keyDataType: Binary``), the Event Hubs trigger
(a Kafka producer writing through the Event Hubs Kafka endpoint: key as ``x-opt-kafka-key``) and
``kafka-adx consume`` on the real broker.

The rule for keys (the one headers follow, ``shared/mapping/compiled.py``): a key is bytes, decoded only
when a mapping reads it, as strict UTF-8; on a validating route a key that is not UTF-8
dead-letters its record with a reason naming the key column, and the dead letter keeps the exact
key bytes for replay.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest
from azure.functions.kafka import KafkaTriggerConverter
from azure.functions.meta import Datum
from confluent_kafka import Producer

from shared.config import load_config
from shared.kafka.consumer import ConsumerOptions, KafkaIngestor
from shared.pipeline.core import Pipeline
from shared.pipeline.records import Record
from shared.settings import Settings
from shared.sources.functions import eventhub_records, kafka_records
from shared.wiring import build_pipeline
from tests.support.functions_host import Collection, HubEvent, eventhub_events
from tests.support.kafka_e2e import CONFIG, dead_letters

pytestmark = pytest.mark.kafka


@dataclass(frozen=True)
class Sent:
    """One record as the producer wrote it."""

    key: bytes | None
    seq: int

    @property
    def value(self) -> bytes:
        return json.dumps({"EventId": self.seq, "State": "TEXAS"}).encode()

    @property
    def headers(self) -> list[tuple[str, bytes]]:
        return [("seq", str(self.seq).encode())]


SENT = [
    Sent(b"station-1", 0),
    Sent(b"\xff\xfe binary key", 1),  # not UTF-8
    Sent(None, 2),
    Sent("caf\u00e9".encode(), 3),  # UTF-8, not ASCII
    Sent(b"\x00\x01", 4),  # binary but valid UTF-8: the mapping takes it as text, like any header
]

# seq -> what became of the record, whichever path it took.
EXPECTED: dict[int, tuple[Any, ...]] = {
    0: ("ingested", "station-1"),
    1: (
        "dead-lettered",
        "map",
        "column KafkaKey (string): the record key is not valid UTF-8 (byte 0)",
        b"\xff\xfe binary key",
    ),
    2: ("ingested", ""),  # no key: an empty string column (ADX strings are never null)
    3: ("ingested", "caf\u00e9"),
    4: ("ingested", "\x00\x01"),
}


# --------------------------------------------------------------------------- the paths


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode("ascii")


def _kafka_trigger_events(topic: str, data_type: str) -> list[func.KafkaEvent]:
    """A Kafka trigger batch with ``keyDataType: Binary``: the host serialises each key (.NET
    ``byte[]``) as base64 text, in ``KeyArray`` and in the envelope's ``Key``; a null key is
    ``''`` in the envelope (FACTS.md) and null in ``KeyArray``."""
    ts = "2024-05-01T12:00:00.123Z"
    headers = [[{"Key": n, "Value": _b64(v)} for n, v in s.headers] for s in SENT]
    if data_type == "binary":
        body = Datum(Collection(bytes=[s.value for s in SENT]), "collection_bytes")
    else:
        envelopes = [
            json.dumps({"Offset": i, "Partition": 0, "Topic": topic, "Timestamp": ts, "Value": s.value.decode(),
                        "Key": _b64(s.key) or "", "Headers": headers[i], "LeaderEpoch": 0, "IsPartitionEOF": False})
            for i, s in enumerate(SENT)
        ]  # fmt: skip
        body = Datum(Collection(string=envelopes), "collection_string")
    metadata = {
        "OffsetArray": Datum(Collection(sint64=list(range(len(SENT)))), "collection_sint64"),
        "TopicArray": Datum(Collection(string=[topic] * len(SENT)), "collection_string"),
        "PartitionArray": Datum(json.dumps([0] * len(SENT)), "json"),
        "KeyArray": Datum(json.dumps([_b64(s.key) for s in SENT]), "json"),
        "TimestampArray": Datum(json.dumps([ts] * len(SENT)), "json"),
        "HeadersArray": Datum(json.dumps(headers), "json"),
    }
    events = KafkaTriggerConverter.decode(body, trigger_metadata=metadata)
    assert isinstance(events, list)
    return events


def _through_kafka_trigger(data_type: str) -> Callable[[str, str, Pipeline], None]:
    def run(bootstrap: str, topic: str, pipeline: Pipeline) -> None:
        adapted = kafka_records(
            _kafka_trigger_events(topic, data_type), envelope=data_type == "string", key_type="binary", brokers=bootstrap
        )
        assert adapted.errors == []
        pipeline.process(adapted.records, final_attempt=True)

    return run


def _through_eventhub(bootstrap: str, topic: str, pipeline: Pipeline) -> None:
    batch = [
        HubEvent.from_kafka_producer(1000 + s.seq, s.value, key=s.key, headers=s.headers) for s in SENT
    ]  # fmt: skip
    adapted = eventhub_records(eventhub_events(batch, event_hub=topic, partition="0"), event_hub=topic)
    assert adapted.errors == []
    pipeline.process(adapted.records, final_attempt=True)


class _Recording:
    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline

    def process(self, records: Sequence[Record], **kwargs: Any) -> Any:
        return self.pipeline.process(list(records), **kwargs)


def _through_consumer(bootstrap: str, topic: str, pipeline: Pipeline) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    for s in SENT:
        producer.produce(topic, value=s.value, key=s.key, headers=s.headers, partition=0)
    assert producer.flush(30) == 0
    options = ConsumerOptions(topics=(topic,), group=f"parity-{uuid.uuid4().hex[:8]}", max_records=len(SENT))
    KafkaIngestor(_Recording(pipeline), {"bootstrap.servers": bootstrap}, options).run()  # type: ignore[arg-type]


PATHS: dict[str, Callable[[str, str, Pipeline], None]] = {
    "kafka-trigger-binary": _through_kafka_trigger("binary"),
    "kafka-trigger-string": _through_kafka_trigger("string"),
    "eventhub-kafka-endpoint": _through_eventhub,
    "kafka-consumer": _through_consumer,
}


@pytest.mark.parametrize("path", sorted(PATHS))
def test_the_same_records_have_the_same_outcome_on_every_path(
    path: str, tmp_path: Path, kafka_bootstrap: str, kafka_topic: Callable[..., str]
) -> None:
    topic = kafka_topic(partitions=1, prefix="e2e-parity")
    settings = Settings(local_db=tmp_path / "kafka-adx.duckdb", local_deadletter_dir=tmp_path / "deadletter")
    pipeline = build_pipeline(settings, load_config(CONFIG))
    try:
        PATHS[path](kafka_bootstrap, topic, pipeline)
        rows = pipeline.sink.query('SELECT "EventId", "KafkaKey" FROM "E2E"."Events"')  # type: ignore[attr-defined]
    finally:
        pipeline.close()

    outcome: dict[int, tuple[Any, ...]] = {int(event_id): ("ingested", key) for event_id, key in rows}
    for letter in dead_letters(tmp_path / "deadletter"):
        seq = int(letter.record.header("seq") or b"-1")
        reason = letter.reason.split(": ", 1)[1]  # after "topic[partition]@offset: "
        outcome[seq] = ("dead-lettered", letter.stage, reason, letter.record.key)
    assert outcome == EXPECTED
