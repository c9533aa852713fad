"""The local broker really stores and serves Kafka records: keys, headers, partitions, offsets."""

from __future__ import annotations

import json
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition

pytestmark = pytest.mark.kafka

PARTITIONS = 3
KEYS = [f"device-{i}" for i in range(10)]
KEYED = 60
UNKEYED_TO_PARTITION_2 = 5


@dataclass(frozen=True)
class Sent:
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes | None]]


def _headers(seq: int) -> list[tuple[str, bytes | None]]:
    # A null value and a repeated header name: both are legal in Kafka and must survive as sent.
    return [("seq", str(seq).encode()), ("source", b"test_broker"), ("trace", None),
            ("tag", b"a"), ("tag", b"b")]  # fmt: skip


def _produce(bootstrap: str, topic: str) -> tuple[dict[int, Sent], dict[int, tuple[int, int]]]:
    """Send the records; return them by seq, and where the broker put each (partition, offset)."""
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 5})
    sent: dict[int, Sent] = {}
    placed: dict[int, tuple[int, int]] = {}
    failures: list[str] = []

    def on_delivery(seq: int) -> Callable[[KafkaError | None, Message], None]:
        # Delivery reports carry no headers, so each record gets a callback that knows its seq.
        def report(err: KafkaError | None, msg: Message) -> None:
            if err is not None:
                failures.append(f"{seq}: {err}")
            else:
                placed[seq] = (msg.partition(), msg.offset())

        return report

    for seq in range(KEYED + UNKEYED_TO_PARTITION_2):
        keyed = seq < KEYED
        record = Sent(
            key=KEYS[seq % len(KEYS)].encode() if keyed else None,
            value=json.dumps({"seq": seq}).encode(),
            headers=_headers(seq),
        )
        sent[seq] = record
        extra = {} if keyed else {"partition": 2}
        producer.produce(
            topic, record.value, record.key, headers=record.headers, on_delivery=on_delivery(seq), **extra
        )
    assert producer.flush(30) == 0, "records still queued after 30 s"
    assert failures == []
    return sent, placed


def _consume(bootstrap: str, topic: str, expected: int) -> tuple[list[Message], Consumer]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"test-broker-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    received: list[Message] = []
    deadline = time.monotonic() + 30
    while len(received) < expected and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is None:
            continue
        assert msg.error() is None, msg.error()
        received.append(msg)
    return received, consumer


def test_keyed_records_with_headers_round_trip_through_three_partitions(
    kafka_bootstrap: str, kafka_topic: Callable[..., str]
) -> None:
    topic = kafka_topic(partitions=PARTITIONS)
    sent, placed = _produce(kafka_bootstrap, topic)
    total = len(sent)
    assert sorted(placed) == list(range(total))

    received, consumer = _consume(kafka_bootstrap, topic, total)
    try:
        assert len(received) == total
        by_seq = {int(dict(m.headers() or [])["seq"] or b"-1"): m for m in received}
        assert sorted(by_seq) == list(range(total)), "a record was lost or delivered twice"
        for seq, msg in by_seq.items():
            assert msg.topic() == topic
            assert msg.key() == sent[seq].key
            assert msg.value() == sent[seq].value
            assert msg.headers() == sent[seq].headers
            assert (msg.partition(), msg.offset()) == placed[seq]

        # One key always maps to one partition, the keys use every partition, and the unkeyed
        # records went where they were sent.
        partitions_of_key: dict[bytes, set[int]] = defaultdict(set)
        for seq in range(KEYED):
            partitions_of_key[KEYS[seq % len(KEYS)].encode()].add(placed[seq][0])
        assert all(len(parts) == 1 for parts in partitions_of_key.values())
        assert set().union(*partitions_of_key.values()) == set(range(PARTITIONS))
        assert {placed[seq][0] for seq in range(KEYED, total)} == {2}

        # Within a partition, records arrive in the order they were produced.
        seqs_in_partition: dict[int, list[int]] = defaultdict(list)
        for msg in received:
            seqs_in_partition[msg.partition()].append(int(dict(msg.headers() or [])["seq"] or b"-1"))
        assert all(seqs == sorted(seqs) for seqs in seqs_in_partition.values())

        # The log holds exactly these records, and a synchronous commit lands at its end.
        ends = {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10) for p in range(PARTITIONS)
        }
        assert sum(high - low for low, high in ends.values()) == total
        consumer.commit(asynchronous=False)
        committed = consumer.committed([TopicPartition(topic, p) for p in range(PARTITIONS)], timeout=10)
        assert {tp.partition: tp.offset for tp in committed} == {p: high for p, (_, high) in ends.items()}
    finally:
        consumer.close()
