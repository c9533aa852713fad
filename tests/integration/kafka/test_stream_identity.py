"""``kafka-adx consume`` names each record's stream by cluster id, topic and topic id, read from the
real broker once per assignment: a topic deleted and created again under the same name is a new
stream, so its batch and dead-letter ids cannot coincide with the old incarnation's."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer, TopicCollection
from confluent_kafka.admin import AdminClient, NewTopic

from shared.config import load_config
from shared.kafka.consumer import ConsumerOptions, KafkaIngestor
from shared.pipeline.core import Pipeline, Result
from shared.pipeline.records import Record
from shared.settings import Settings
from shared.wiring import build_pipeline
from tests.fixtures.kafka import topic_ready
from tests.support.kafka_e2e import CONFIG, dead_letters

pytestmark = pytest.mark.kafka

PARTITIONS = 2
WAIT = 30.0
"""Upper bound of every wait on the broker (a hang guard: each wait ends on a state, not a time)."""


class Recording:
    """The real local pipeline, remembering the records each flush handed it."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.records: list[Record] = []

    def process(self, records: Sequence[Record], *, attempt: int = 1, final_attempt: bool = False) -> Result:
        self.records.extend(records)
        return self.pipeline.process(list(records), attempt=attempt, final_attempt=final_attempt)


def _pipeline(root: Path) -> Pipeline:
    settings = Settings(local_db=root / "kafka-adx.duckdb", local_deadletter_dir=root / "deadletter")
    return build_pipeline(settings, load_config(CONFIG))


def _produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    for index, value in enumerate(values):
        producer.produce(topic, value=value, key=f"k{index}".encode(), headers=[("seq", str(index).encode())])
    assert producer.flush(WAIT) == 0, "every record must be delivered"


def _consume(bootstrap: str, topic: str, root: Path, count: int, **ingestor: Any) -> Recording:
    """Run the consumer in this process until it has taken ``count`` records (--max-records)."""
    root.mkdir()
    recording = Recording(_pipeline(root))
    options = ConsumerOptions(topics=(topic,), group=f"stream-{uuid.uuid4().hex[:8]}", max_records=count)
    try:
        KafkaIngestor(recording, {"bootstrap.servers": bootstrap}, options, **ingestor).run()  # type: ignore[arg-type]
    finally:
        recording.pipeline.close()
    assert len(recording.records) == count
    return recording


def _wait(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, f"{what} after {WAIT:g}s"
        time.sleep(0.05)


def _topic_id(admin: AdminClient, topic: str) -> str:
    return str(admin.describe_topics(TopicCollection([topic]))[topic].result(timeout=WAIT).topic_id)


def _recreate(admin: AdminClient, topic: str) -> None:
    """Delete ``topic`` and create it again under the same name, waiting on the broker's state."""
    admin.delete_topics([topic])[topic].result(timeout=WAIT)
    _wait(lambda: topic not in admin.list_topics(timeout=5).topics, f"{topic} still listed")

    def created() -> bool:
        # Creating can be refused while the deletion is still being completed: retry until it is not.
        try:
            admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1)])[topic].result(
                timeout=WAIT
            )
        except KafkaException as exc:
            if exc.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS:
                return False
            raise
        return True

    _wait(created, f"{topic} not created again")

    _wait(lambda: topic_ready(admin, topic, PARTITIONS), f"{topic} has no leader for every partition")


def test_a_topic_created_again_under_the_same_name_is_a_new_stream(
    tmp_path: Path, kafka_bootstrap: str, kafka_admin: object, kafka_topic: Callable[..., str]
) -> None:
    assert isinstance(kafka_admin, AdminClient)
    topic = kafka_topic(partitions=PARTITIONS, prefix="e2e-recreated")
    cluster_id = kafka_admin.list_topics(timeout=5).cluster_id
    assert cluster_id
    # Valid events plus one that is not JSON: its dead letter must carry the stream too.
    values = [b'{"EventId": %d, "State": "TEXAS"}' % i for i in range(20)] + [b"not json"]

    _produce(kafka_bootstrap, topic, values)
    old_id = _topic_id(kafka_admin, topic)
    old = _consume(kafka_bootstrap, topic, tmp_path / "old", len(values))

    _recreate(kafka_admin, topic)
    new_id = _topic_id(kafka_admin, topic)
    assert new_id != old_id, "the broker gives a recreated topic a new topic id"
    _produce(kafka_bootstrap, topic, values)
    new = _consume(kafka_bootstrap, topic, tmp_path / "new", len(values))

    # Same name, same partitions, same offsets: only the stream tells the two apart.
    assert sorted((r.partition, r.offset) for r in old.records) == sorted((r.partition, r.offset) for r in new.records)
    assert {r.stream for r in old.records} == {f"kafka:{cluster_id}/{topic}:{old_id}"}
    assert {r.stream for r in new.records} == {f"kafka:{cluster_id}/{topic}:{new_id}"}
    # One shared string per topic, not one built per message.
    assert len({id(r.stream) for r in new.records}) == 1

    (old_letter,) = dead_letters(tmp_path / "old" / "deadletter")
    (new_letter,) = dead_letters(tmp_path / "new" / "deadletter")
    assert old_letter.record.stream == f"kafka:{cluster_id}/{topic}:{old_id}"
    assert new_letter.record.stream == f"kafka:{cluster_id}/{topic}:{new_id}"


def test_without_a_topic_id_the_stream_is_cluster_and_topic_and_the_reason_is_logged_once(
    tmp_path: Path, kafka_bootstrap: str, kafka_admin: object, kafka_topic: Callable[..., str],
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    assert isinstance(kafka_admin, AdminClient)
    topic = kafka_topic(partitions=PARTITIONS, prefix="e2e-noid")
    cluster_id = kafka_admin.list_topics(timeout=5).cluster_id
    values = [b'{"EventId": %d}' % i for i in range(10)]
    _produce(kafka_bootstrap, topic, values)

    def no_admin(config: dict[str, Any]) -> Any:
        raise KafkaException(KafkaError(KafkaError._INVALID_ARG, "admin client refused (test)"))

    with caplog.at_level(logging.WARNING, logger="kafka_adx.consumer"):
        recording = _consume(kafka_bootstrap, topic, tmp_path / "run", len(values), admin_factory=no_admin)
    assert {r.stream for r in recording.records} == {f"kafka:{cluster_id}/{topic}"}
    warnings = [r.getMessage() for r in caplog.records if "stream identity" in r.getMessage()]
    assert len(warnings) == 1 and "admin client refused (test)" in warnings[0], warnings


def test_the_admin_client_that_reads_topic_ids_gets_the_connection_settings_only() -> None:
    from shared.kafka.consumer import admin_config, consumer_config

    def on_error(error: object) -> None: ...

    client = {"bootstrap.servers": "b:9092", "security.protocol": "SASL_SSL", "sasl.mechanism": "PLAIN",
              "session.timeout.ms": 6000, "heartbeat.interval.ms": 500, "error_cb": on_error}  # fmt: skip
    config = consumer_config(client, ConsumerOptions(topics=("t",), group="g"))
    admin = admin_config(config)
    assert admin == {"bootstrap.servers": "b:9092", "security.protocol": "SASL_SSL", "sasl.mechanism": "PLAIN",
                     "client.id": f"{config['client.id']}-admin"}  # fmt: skip
