"""KafkaIngestor's commit protocol without a broker: a small fake consumer with failure switches
drives each branch (commit retried, commit failing for good, dead-letter store down then back,
flush before a revoke, pending records of lost partitions dropped). The broker-backed tests are in
tests/kafka_e2e."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from confluent_kafka import TIMESTAMP_CREATE_TIME, KafkaError, KafkaException, TopicPartition

from shared.deadletters.local import LocalDeadLetterStore
from shared.errors import DeadLetterError
from shared.kafka.consumer import (
    FETCH_QUEUE_BACKOFF_MS,
    PARTITION_FETCH_BYTES,
    PREFETCH_KBYTES,
    QUEUED_MIN_MESSAGES,
    ConsumerAborted,
    ConsumerOptions,
    KafkaIngestor,
    admin_config,
    consumer_config,
)
from shared.pipeline.core import Pipeline
from shared.pipeline.deadletter import DeadLetter
from shared.pipeline.retry import RetryPolicy
from shared.pipeline.sink import MemorySink
from tests.support.records import make_config

TOPIC = "json"
GOOD = b'{"a": "x", "n": 1, "ts": "2024-01-01T00:00:00Z", "d": {}}'
POISON = b"{not json"


@dataclass
class FakeMessage:
    """A confluent-kafka ``Message`` with every field the ingestor reads."""

    _topic: str
    _partition: int
    _offset: int
    _value: bytes | None
    _key: bytes | None = None
    _headers: list[tuple[str, bytes | None]] | None = None
    _timestamp: tuple[int, int] = (TIMESTAMP_CREATE_TIME, 1_704_067_200_000)

    def error(self) -> None:
        return None

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def value(self) -> bytes | None:
        return self._value

    def key(self) -> bytes | None:
        return self._key

    def headers(self) -> list[tuple[str, bytes | None]] | None:
        return self._headers

    def timestamp(self) -> tuple[int, int]:
        return self._timestamp


class FakeConsumer:
    """A confluent-kafka ``Consumer`` stand-in: assigns its partitions on the first poll, hands out
    ``messages`` one per poll (or up to ``num_messages`` per ``consume``), then idles (each empty
    poll advances :attr:`now`).

    Switches: ``fail_commit_times`` commits raise ``commit_error`` (a retriable timeout by
    default) before one succeeds; ``partition_errors`` commits return that error on every
    partition instead; ``revoke_after`` / ``lose_after`` revoke or lose every partition once
    that many messages were handed out.
    """

    def __init__(
        self,
        messages: Sequence[FakeMessage],
        *,
        partitions: Sequence[int] = (0, 1),
        fail_commit_times: int = 0,
        commit_error: KafkaError | None = None,
        partition_errors: int = 0,
        partition_error: KafkaError | None = None,
        revoke_after: int | None = None,
        lose_after: int | None = None,
    ) -> None:
        self.messages = list(messages)
        self.partitions = [TopicPartition(TOPIC, p) for p in partitions]
        self.fail_commit_times = fail_commit_times
        self.commit_error = commit_error or KafkaError(KafkaError.REQUEST_TIMED_OUT, "timed out", retriable=True)
        self.partition_errors = partition_errors
        self.partition_error = partition_error or KafkaError(KafkaError.REQUEST_TIMED_OUT, "timed out", retriable=True)
        self.revoke_after = revoke_after
        self.lose_after = lose_after
        self.now = 0.0
        self.config: dict[str, Any] = {}
        self.events: list[str] = []
        """What happened, in order: ``assign``, ``revoke``, ``lost``, ``commit`` (a successful
        one, with its offsets), ``commit-failed``, ``close``."""
        self.commit_calls = 0
        self.committed: dict[tuple[str, int], int] = {}
        self._handed_out = 0
        self._callbacks: dict[str, Any] = {}
        self._assigned = False

    # -- the ingestor's hooks --------------------------------------------------------------

    def factory(self, config: dict[str, Any]) -> FakeConsumer:
        """``consumer_factory``: records the librdkafka settings it was given."""
        self.config = config
        return self

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    # -- the Consumer API ------------------------------------------------------------------

    def subscribe(self, topics: list[str], *, on_assign: Any, on_revoke: Any, on_lost: Any) -> None:
        self._callbacks = {"assign": on_assign, "revoke": on_revoke, "lost": on_lost}

    def poll(self, timeout: float) -> FakeMessage | None:
        if not self._assigned:
            self._assigned = True
            self.events.append("assign")
            self._callbacks["assign"](self, self.partitions)
        if self.revoke_after is not None and self._handed_out == self.revoke_after:
            self.revoke_after = None
            self.events.append("revoke")
            self._callbacks["revoke"](self, self.partitions)
            self.events.append("revoked")
            self._callbacks["assign"](self, self.partitions)  # the partitions come back
        if self.lose_after is not None and self._handed_out == self.lose_after:
            self.lose_after = None
            self.events.append("lost")
            self._callbacks["lost"](self, self.partitions)
        if self.messages:
            self._handed_out += 1
            return self.messages.pop(0)
        self.now += max(timeout, 0.1)
        return None

    def consume(self, num_messages: int = 1, timeout: float = -1) -> list[FakeMessage]:
        """Up to ``num_messages`` messages: the first as :meth:`poll` gives it (callbacks
        first), then what is "already fetched", stopping before a scheduled revoke or loss (a
        real consumer runs those callbacks at the start of a call, before handing messages)."""
        first = self.poll(timeout)
        if first is None:
            return []
        batch = [first]
        while self.messages and len(batch) < num_messages and self._handed_out not in (self.revoke_after,
                                                                                       self.lose_after):
            self._handed_out += 1
            batch.append(self.messages.pop(0))
        return batch

    def commit(self, *, offsets: list[TopicPartition], asynchronous: bool) -> list[Any]:
        assert asynchronous is False  # the protocol commits synchronously
        self.commit_calls += 1
        if self.fail_commit_times > 0:
            self.fail_commit_times -= 1
            self.events.append("commit-failed")
            raise KafkaException(self.commit_error)
        if self.partition_errors > 0:
            self.partition_errors -= 1
            self.events.append("commit-failed")
            return [SimpleNamespace(topic=tp.topic, partition=tp.partition, offset=tp.offset, error=self.partition_error)
                    for tp in offsets]  # fmt: skip
        for tp in offsets:
            self.committed[(tp.topic, tp.partition)] = tp.offset
        self.events.append("commit " + ",".join(f"{tp.partition}@{tp.offset}" for tp in offsets))
        return [SimpleNamespace(topic=tp.topic, partition=tp.partition, offset=tp.offset, error=None) for tp in offsets]

    def list_topics(self, *, topic: str, timeout: float) -> Any:
        return SimpleNamespace(cluster_id="fake-cluster")

    def close(self) -> None:
        self.events.append("close")
        self._callbacks["revoke"](self, self.partitions)


class FlakyStore:
    """A local dead-letter store that fails its first ``fail_times`` writes (the store is down)."""

    def __init__(self, root: Path, *, fail_times: int = 0) -> None:
        self.inner = LocalDeadLetterStore(root)
        self.fail_times = fail_times
        self.writes = 0

    def write(self, letters: Sequence[DeadLetter]) -> str:
        self.writes += 1
        if self.fail_times > 0:
            self.fail_times -= 1
            raise DeadLetterError("dead-letter store is down (injected)")
        return self.inner.write(letters)

    def sets(self) -> Any:
        return self.inner.sets()

    def read(self, set_id: str) -> list[DeadLetter]:
        return self.inner.read(set_id)

    def letters(self) -> list[DeadLetter]:
        return [letter for set_id in self.sets() for letter in self.read(set_id)]


def messages(*values: bytes, partition: int = 0, first: int = 10) -> list[FakeMessage]:
    return [FakeMessage(TOPIC, partition, first + i, value) for i, value in enumerate(values)]


def no_admin(config: dict[str, Any]) -> Any:
    raise RuntimeError("no admin client here")  # the stream falls back to the topic name


def run(
    fake: FakeConsumer,
    tmp_path: Path,
    *,
    store: FlakyStore | None = None,
    sink: MemorySink | None = None,
    **options: Any,
) -> tuple[KafkaIngestor, MemorySink, FlakyStore]:
    """Run an ingestor over ``fake`` until it idles for a second (or aborts: then it raises)."""
    sink = sink or MemorySink()
    store = store or FlakyStore(tmp_path / "deadletter")
    pipeline = Pipeline(make_config(), sink, store, retry=RetryPolicy(attempts=1))
    ingestor = KafkaIngestor(
        pipeline,
        {"bootstrap.servers": "fake:9092"},
        ConsumerOptions(topics=(TOPIC,), group="g", **{"idle_exit": 1.0, **options}),
        consumer_factory=fake.factory,
        admin_factory=no_admin,
        sleep=fake.sleep,
        clock=fake.clock,
    )
    ingestor.run()
    return ingestor, sink, store


def test_consumer_settings_leave_commits_to_the_ingestor(tmp_path: Path) -> None:
    fake = FakeConsumer(messages(GOOD))
    run(fake, tmp_path)
    assert fake.config["enable.auto.commit"] is False and fake.config["enable.auto.offset.store"] is False
    assert fake.config["group.id"] == "g"
    assert fake.config["queued.max.messages.kbytes"] == PREFETCH_KBYTES  # bounded read-ahead (peak RSS)


def test_a_user_property_sets_another_read_ahead() -> None:
    options = ConsumerOptions(topics=(TOPIC,), group="g")
    config = consumer_config({"bootstrap.servers": "b:9092", "queued.max.messages.kbytes": 65536}, options)
    assert config["queued.max.messages.kbytes"] == 65536
    assert "queued.max.messages.kbytes" not in admin_config(config)  # librdkafka would warn about it


def test_the_read_ahead_is_bounded_in_messages_too_and_a_user_property_wins() -> None:
    options = ConsumerOptions(topics=(TOPIC,), group="g")
    config = consumer_config({"bootstrap.servers": "b:9092"}, options)
    # librdkafka's defaults (100,000 messages a partition, 1 s backoff) cost ~20 MiB of peak RSS.
    assert config["queued.min.messages"] == QUEUED_MIN_MESSAGES
    assert config["fetch.queue.backoff.ms"] == FETCH_QUEUE_BACKOFF_MS
    assert config["max.partition.fetch.bytes"] == PARTITION_FETCH_BYTES
    read_ahead = {"queued.min.messages", "fetch.queue.backoff.ms", "max.partition.fetch.bytes"}
    assert not read_ahead & set(admin_config(config))  # consumer-only: librdkafka would warn
    user = {"bootstrap.servers": "b:9092", "queued.min.messages": 100000, "fetch.queue.backoff.ms": 1000,
            "max.partition.fetch.bytes": 1048576}  # fmt: skip
    config = consumer_config(user, options)
    assert [config[name] for name in sorted(read_ahead)] == [1000, 1048576, 100000]


def test_offsets_are_committed_after_the_records_were_ingested(tmp_path: Path) -> None:
    fake = FakeConsumer(messages(GOOD, GOOD, GOOD) + messages(GOOD, partition=1, first=40))
    ingestor, sink, _ = run(fake, tmp_path)
    assert sink.records_written == 4
    assert fake.committed == {(TOPIC, 0): 13, (TOPIC, 1): 41}  # the next offset to read
    assert ingestor.stats.commits == 1 and fake.events[-2:] == ["commit 0@13,1@41", "close"]


def test_a_commit_that_fails_twice_is_retried_with_bounded_backoff(tmp_path: Path) -> None:
    fake = FakeConsumer(messages(GOOD, GOOD), fail_commit_times=2)
    ingestor, sink, _ = run(fake, tmp_path)
    assert fake.commit_calls == 3 and ingestor.stats.commits == 1
    assert fake.committed == {(TOPIC, 0): 12}
    assert sink.records_written == 2  # ingested once: only the commit is retried


def test_failed_partitions_are_committed_again_on_their_own(tmp_path: Path) -> None:
    fake = FakeConsumer(messages(GOOD), partition_errors=1)
    ingestor, _, _ = run(fake, tmp_path)
    assert fake.events.count("commit-failed") == 1 and fake.committed == {(TOPIC, 0): 11}
    assert ingestor.stats.commits == 1


def test_a_commit_that_keeps_failing_aborts_after_five_tries(tmp_path: Path) -> None:
    fake = FakeConsumer(messages(GOOD), fail_commit_times=99)
    with pytest.raises(ConsumerAborted, match="cannot commit offsets"):
        run(fake, tmp_path)
    assert fake.commit_calls == 5 and fake.committed == {}
    assert fake.events[-1] == "close"  # closed, and the close's revoke committed nothing either


def test_a_non_retriable_commit_error_aborts_at_once(tmp_path: Path) -> None:
    fake = FakeConsumer(messages(GOOD), fail_commit_times=99,
                        commit_error=KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED, "denied"))  # fmt: skip
    with pytest.raises(ConsumerAborted, match="cannot commit offsets"):
        run(fake, tmp_path)
    assert fake.commit_calls == 1 and fake.committed == {}


def test_a_commit_refused_after_a_rebalance_is_left_to_the_next_owner(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fake = FakeConsumer(messages(GOOD), fail_commit_times=1,
                        commit_error=KafkaError(KafkaError.ILLEGAL_GENERATION, "generation changed"))  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="kafka_adx.consumer"):
        ingestor, sink, _ = run(fake, tmp_path)
    assert sink.records_written == 1 and ingestor.stats.commits == 0 and fake.committed == {}
    assert fake.commit_calls == 1  # not retried: the group moved on without this member
    assert "the group rebalanced" in caplog.text


def test_dead_letter_store_down_then_back_retries_the_same_records_before_committing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fake = FakeConsumer(messages(GOOD, POISON, GOOD))
    store = FlakyStore(tmp_path / "deadletter", fail_times=2)
    with caplog.at_level(logging.ERROR, logger="kafka_adx.consumer"):
        # A full batch flushes while running (a stop request would end the retries at once).
        ingestor, _, _ = run(fake, tmp_path, store=store, batch_records=3)
    assert store.writes == 3
    assert [(letter.record.offset, letter.record.value) for letter in store.letters()] == [(11, POISON)]
    assert caplog.text.count("retrying the same 3 record(s)") == 2
    assert fake.committed == {(TOPIC, 0): 13} and ingestor.stats.commits == 1
    assert ingestor.stats.result.received == 3 and ingestor.stats.result.dead_lettered == 1


def test_dead_letter_store_down_for_good_stops_without_committing(tmp_path: Path) -> None:
    fake = FakeConsumer(messages(GOOD, POISON))
    store = FlakyStore(tmp_path / "deadletter", fail_times=10_000)
    with pytest.raises(ConsumerAborted, match="could be neither ingested nor dead-lettered"):
        run(fake, tmp_path, store=store, batch_records=2, deadletter_retry_timeout=5.0)
    assert store.writes > 1  # retried within the window first
    assert fake.commit_calls == 0 and fake.committed == {}


def test_a_revoke_flushes_and_commits_the_pending_records_first(tmp_path: Path) -> None:
    fake = FakeConsumer(messages(GOOD, GOOD, GOOD), revoke_after=2)
    ingestor, sink, _ = run(fake, tmp_path, batch_records=100, batch_wait=600.0)
    # The two pending records were ingested and committed inside the revoke callback.
    revoke = fake.events.index("revoke")
    assert fake.events[revoke + 1:revoke + 3] == ["commit 0@12", "revoked"]
    assert fake.committed == {(TOPIC, 0): 13} and sink.records_written == 3
    assert ingestor.stats.commits == 2


def test_lost_partitions_drop_their_pending_records_uncommitted(tmp_path: Path) -> None:
    fake = FakeConsumer(messages(GOOD, GOOD, GOOD), lose_after=2)
    ingestor, sink, _ = run(fake, tmp_path, batch_records=100, batch_wait=600.0)
    assert ingestor.stats.uncommitted_dropped == 2
    # The third record came after the loss, from a partition no longer assigned: not taken either.
    assert sink.records_written == 0 and fake.commit_calls == 0 and fake.committed == {}
    assert "lost" in fake.events


def test_the_commit_retry_is_the_bounded_jittered_policy(tmp_path: Path) -> None:
    fake = FakeConsumer(messages(GOOD), fail_commit_times=4)
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        fake.sleep(seconds)

    pipeline = Pipeline(make_config(), MemorySink(), FlakyStore(tmp_path / "dl"), retry=RetryPolicy(attempts=1))
    ingestor = KafkaIngestor(
        pipeline, {}, ConsumerOptions(topics=(TOPIC,), group="g", idle_exit=1.0),
        consumer_factory=fake.factory, admin_factory=no_admin, clock=fake.clock, sleep=sleep,
    )  # fmt: skip
    ingestor.run()
    ceilings = [ingestor.commit_retry.backoff(n) for n in range(1, 5)]
    assert ceilings == [0.4, 0.8, 1.6, 3.2]
    assert len(sleeps) == 4 and all(0 <= s <= c for s, c in zip(sleeps, ceilings, strict=True))
    assert ingestor.commit_retry.jitter and ingestor.deadletter_retry.jitter


def test_a_sink_down_then_back_is_retried_with_the_same_records_and_nothing_dead_lettered(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fake = FakeConsumer(messages(GOOD, GOOD))
    with caplog.at_level(logging.ERROR, logger="kafka_adx.consumer"):
        _, sink, store = run(fake, tmp_path, sink=MemorySink(fail_times=2), batch_records=2)
    assert caplog.text.count("retrying the same 2 record(s)") == 2
    assert store.letters() == [] and sum(b.count for b in sink.batches) == 2
    assert fake.committed == {(TOPIC, 0): 12}


def test_a_sink_down_for_good_dead_letters_the_batch_on_the_final_attempt_then_commits(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fake = FakeConsumer(messages(GOOD, GOOD))
    with caplog.at_level(logging.ERROR, logger="kafka_adx.consumer"):
        ingestor, sink, store = run(fake, tmp_path, sink=MemorySink(fail_times=10_000), batch_records=2,
                                    deadletter_retry_timeout=5.0)
    assert "final attempt for the same 2 record(s)" in caplog.text
    assert [letter.record.offset for letter in store.letters()] == [10, 11]
    assert all("transient (final attempt)" in letter.reason for letter in store.letters())
    assert sink.batches == [] and fake.committed == {(TOPIC, 0): 12}
    assert ingestor.stats.result.received == 2 and ingestor.stats.result.dead_lettered == 2
