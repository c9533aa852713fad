"""A standalone Kafka consumer running the pipeline: ``kafka-adx consume``.

For users who host outside Azure Functions (containers, VMs) and for local end-to-end work.

Commit protocol (the delivery contract of docs/delivery.md, for a consumer):

1. Records are polled into a pending batch (``enable.auto.commit`` and
   ``enable.auto.offset.store`` are off: librdkafka never commits on its own).
2. The batch is flushed when it reaches ``batch_records`` records or ``batch_bytes`` bytes, or
   when its oldest record has waited ``batch_wait`` seconds and :meth:`Pipeline.process` runs;
   when it returns every record was ingested or dead-lettered. A transient failure (the sink
   after its own retries, a schema registry the decoder needs) retries the same records within
   ``deadletter_retry_timeout``; the attempt after that window is the final one
   (``final_attempt=True``), which dead-letters what it still cannot deliver.
3. Only then are the next offsets of every partition in the batch committed, synchronously.
4. Before partitions are revoked in a rebalance the pending batch is flushed and committed, so
   the next owner starts exactly where this consumer stopped. Pending records of partitions
   that were *lost* (session timeout) are dropped uncommitted: their new owner redelivers them.
5. SIGTERM / SIGINT: stop polling, flush, commit, close (leaving the group). A second signal
   interrupts at once.

Stream identity: every record's ``stream`` is ``kafka:<cluster id>/<topic>:<topic id>``
(:func:`shared.sources.functions.kafka_stream`), so that batch and dead-letter ids of two
clusters, or of a topic deleted and created again under the same name, never coincide. The ids
are read once per topic when its partitions are assigned (cluster id from the consumer's
metadata, topic id with ``AdminClient.describe_topics``) and forgotten when its last partition
goes, never per message. When a broker does not give them, the stream falls back to the
bootstrap servers and the topic name (logged once, with the reason).

So a crash (SIGKILL, OOM, power loss) loses nothing: at most the records after the last commit
are ingested a second time (at-least-once; the ``dedup`` route option makes ADX skip batches it
already has).

When the dead-letter store fails, :meth:`Pipeline.process` raises :class:`DeadLetterError`.
The consumer then retries the *same* records with jittered exponential backoff
(:data:`DEADLETTER_RETRY`) for up to ``deadletter_retry_timeout`` seconds counted from the first
failure (kept below ``max.poll.interval.ms`` so the consumer keeps its partitions), and if the store is still down it stops **without committing** and the
command exits with code 2: a supervisor restarts it and the records are redelivered from the
last commit. A retry may ingest a pipeline batch a second time (never loses one).
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import signal
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import FrameType
from typing import Any, Literal

from shared.errors import DeadLetterError, KafkaAdxError, TransientError
from shared.pipeline.batching import next_offsets
from shared.pipeline.core import Pipeline, Result
from shared.pipeline.records import Record
from shared.pipeline.retry import RetryPolicy, RetryWindow
from shared.sources.functions import kafka_cluster, kafka_stream

log = logging.getLogger("kafka_adx.consumer")

TopicPartitionKey = tuple[str, int]

DEADLETTER_RETRY = RetryPolicy(attempts=0, base_delay=0.5, max_delay=30.0)
"""Backoff while the dead-letter store fails: no limit in count, the loop is bounded in time by
``ConsumerOptions.deadletter_retry_timeout`` (a :class:`RetryWindow`)."""
COMMIT_RETRY = RetryPolicy(attempts=5, base_delay=0.4, max_delay=3.2)
"""Backoff of a synchronous commit that failed with a retriable error (five tries in all)."""


class ConsumerAborted(KafkaAdxError):
    """The consumer stopped without committing its pending records (they will be redelivered)."""


@dataclass(frozen=True)
class ConsumerOptions:
    """What to consume and when to flush."""

    topics: tuple[str, ...]
    """Topics to subscribe to (``^regex`` patterns allowed)."""
    group: str
    """Consumer group id: offsets are committed for this group."""
    batch_records: int = 5000
    """Flush when the pending batch has this many records."""
    batch_bytes: int = 16 * 1024 * 1024
    """Flush when the pending records' values add up to this many bytes."""
    batch_wait: float = 5.0
    """Flush when the oldest pending record has waited this many seconds."""
    start: Literal["earliest", "latest"] = "earliest"
    """Where a group with no committed offset starts (``auto.offset.reset``)."""
    max_records: int | None = None
    """Stop (flush, commit, exit) after this many records."""
    idle_exit: float | None = None
    """Stop (flush, commit, exit) after this many seconds without a record, counted from the last
    record or the last partition assignment."""
    deadletter_retry_timeout: float = 120.0
    """How long to retry a batch while the dead-letter store fails before giving up uncommitted
    (counted from the first failure, so a slow first attempt does not use it up)."""
    poll_timeout: float = 0.25
    """Longest wait of one poll (bounds how late a time-based flush or a signal is handled)."""


@dataclass
class ConsumeStats:
    """What a run did."""

    result: Result = field(default_factory=Result)
    raw_bytes: int = 0
    flushes: int = 0
    commits: int = 0
    uncommitted_dropped: int = 0
    """Pending records dropped because their partition was lost (redelivered to the new owner)."""
    rebalances: int = 0
    stopped_by: str = ""


# Commit errors that mean the group moved on without this member: the records are ingested, the
# offsets are not stored, the next owner re-reads them (duplicates, never a loss).
_REBALANCE_ERRORS = frozenset(
    {"ILLEGAL_GENERATION", "UNKNOWN_MEMBER_ID", "REBALANCE_IN_PROGRESS", "_ASSIGNMENT_LOST", "FENCED_INSTANCE_ID",
     "STALE_MEMBER_EPOCH", "_STATE"}
)  # fmt: skip


CONSUME_BATCH = 1000
"""Most messages one ``Consumer.consume`` call hands over."""


def to_record(message: Any, stream: str = "") -> Record:
    """A confluent-kafka ``Message`` as a :class:`Record` (timestamp as aware UTC, or None);
    ``stream`` is its topic's identity (one string shared by the topic's records).

    The reference conversion: :meth:`KafkaIngestor._take_all` does the same inline."""
    from confluent_kafka import TIMESTAMP_NOT_AVAILABLE

    ts_type, ts_ms = message.timestamp()
    timestamp = None
    if ts_type != TIMESTAMP_NOT_AVAILABLE and ts_ms >= 0:
        timestamp = datetime.fromtimestamp(ts_ms / 1000, tz=UTC)
    return Record(
        value=message.value(),
        key=message.key(),
        headers=tuple(message.headers() or ()),
        topic=message.topic(),
        partition=message.partition(),
        offset=message.offset(),
        timestamp=timestamp,
        source="kafka",
        stream=stream,
    )


# Consumer-only settings, left out of the admin client that reads topic ids (librdkafka warns
# about every consumer property given to a non-consumer client).
_CONSUMER_ONLY_PREFIXES = (
    "group.", "fetch.", "queued.", "auto.", "enable.auto.", "enable.partition.eof", "session.timeout.ms",
    "heartbeat.interval.ms", "max.poll.interval.ms", "partition.assignment.strategy", "isolation.level",
    "check.crcs", "coordinator.query.interval.ms", "consume.callback.max.messages", "offset.store.",
    "max.partition.fetch.bytes",
    "on_commit", "error_cb",
)  # fmt: skip

PREFETCH_KBYTES = 4096
"""librdkafka's ``queued.max.messages.kbytes`` for ``consume`` (its default is 65536): how much it
fetches ahead of the consumer. 64 MiB of read-ahead, and librdkafka's bookkeeping of each
message, took ~80 MB of the peak RSS (277 MB over 1,000,000 records into DuckDB, 199 MB with
4 MiB; docs/performance.md), and the smaller one cost no CPU in the bench. 4 MiB is ~80 ms of a
consumer taking ~50 MB/s: many fetch round trips on a LAN; over a link with a long round trip,
raise it with ``-X queued.max.messages.kbytes=...``."""

QUEUED_MIN_MESSAGES = 1000
"""librdkafka's ``queued.min.messages`` for ``consume`` (its default is 100000): how many messages
it keeps fetched ahead per partition, on top of the :data:`PREFETCH_KBYTES` bound. With
:data:`PARTITION_FETCH_BYTES` and :data:`FETCH_QUEUE_BACKOFF_MS` it took ~13 MiB off the peak RSS
of ``consume`` with 32 MiB batches (docs/performance.md) at no measurable CPU or wall-time cost
against a broker on the same network. Raise it with ``-X queued.min.messages=...``."""

PARTITION_FETCH_BYTES = 256 * 1024
"""librdkafka's ``max.partition.fetch.bytes`` for ``consume`` (its default is 1 MiB): the most one
fetch brings per partition. A fetch response stays in memory until its last message is consumed,
and librdkafka's threads keep the memory of the largest ones. Not a limit on a message's size
(the broker still sends a larger first batch). A distant broker may want more: ``-X
max.partition.fetch.bytes=...``."""

FETCH_QUEUE_BACKOFF_MS = 10
"""librdkafka's ``fetch.queue.backoff.ms`` for ``consume`` (its default is 1000): how long a
partition's next fetch waits once its queue is over :data:`QUEUED_MIN_MESSAGES`. With a short
queue the default left the consumer waiting for data (librdkafka's own advice: lower it with
low queue thresholds)."""

METADATA_TIMEOUT = 10.0
"""Seconds to wait for the cluster id and topic ids when partitions are assigned."""


def admin_config(config: dict[str, Any]) -> dict[str, Any]:
    """The connection part of a consumer's settings, for an admin client on the same cluster."""
    admin = {k: v for k, v in config.items() if not k.startswith(_CONSUMER_ONLY_PREFIXES)}
    if "client.id" in admin:
        admin["client.id"] = f"{admin['client.id']}-admin"
    return admin


def consumer_config(client_config: dict[str, Any], options: ConsumerOptions) -> dict[str, Any]:
    """The librdkafka consumer settings: the connection's, plus manual commits and the group."""
    config: dict[str, Any] = {
        "group.id": options.group,
        "client.id": f"kafka-adx-{socket.gethostname()}-{os.getpid()}",
        "auto.offset.reset": options.start,
        # Offsets are committed by this code, after ingestion, and by nothing else.
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "enable.partition.eof": False,
        "queued.max.messages.kbytes": PREFETCH_KBYTES,
        "queued.min.messages": QUEUED_MIN_MESSAGES,
        "max.partition.fetch.bytes": PARTITION_FETCH_BYTES,
        "fetch.queue.backoff.ms": FETCH_QUEUE_BACKOFF_MS,
    }
    # User properties (-X) win, except the two that would break the commit protocol.
    config.update(client_config)
    config["enable.auto.commit"] = False
    config["enable.auto.offset.store"] = False
    return config


class KafkaIngestor:
    """Consumes topics and runs the records through a pipeline (see the module docstring)."""

    def __init__(
        self,
        pipeline: Pipeline,
        client_config: dict[str, Any],
        options: ConsumerOptions,
        *,
        consumer_factory: Callable[[dict[str, Any]], Any] | None = None,
        admin_factory: Callable[[dict[str, Any]], Any] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        deadletter_retry: RetryPolicy = DEADLETTER_RETRY,
        commit_retry: RetryPolicy = COMMIT_RETRY,
    ) -> None:
        if consumer_factory is None:
            from confluent_kafka import Consumer

            consumer_factory = Consumer
        self.pipeline = pipeline
        self.options = options
        self.config = consumer_config(client_config, options)
        self._factory = consumer_factory
        self._admin_factory = admin_factory
        self.sleep = sleep
        self.clock = clock
        self.deadletter_retry = deadletter_retry
        self.commit_retry = commit_retry
        self.stats = ConsumeStats()
        self.consumer: Any = None
        self._pending: list[Record] = []
        self._pending_bytes = 0
        self._pending_offsets: dict[TopicPartitionKey, int] = {}
        """What :func:`next_offsets` gives for ``_pending``, kept up to date as records come."""
        self._pending_since = 0.0
        self._assignment: set[TopicPartitionKey] = set()
        self._stop_reason = ""
        self._abort: BaseException | None = None
        self._committing_allowed = True
        self._last_activity = clock()
        self._assigned_once = False
        self._received = 0
        self._cluster: str | None = None
        self._streams: dict[str, str] = {}
        """Topic -> the ``stream`` its records carry (read at assignment, see the module docstring)."""
        self._stream_fallback_logged = False
        self._idle_pending_logged = 0
        self._last_ms: int | None = None
        self._last_timestamp: datetime | None = None
        """The last timestamp converted, by its milliseconds: consecutive records of a busy
        topic often share one (the conversion is a tenth of the per-record cost)."""

    # -- control -------------------------------------------------------------------------------

    def request_stop(self, reason: str = "stop requested") -> None:
        """Ask the loop to flush, commit and exit at its next turn (signal-handler safe)."""
        if not self._stop_reason:
            self._stop_reason = reason

    @property
    def stopping(self) -> bool:
        """Whether a stop was requested."""
        return bool(self._stop_reason)

    # -- main loop -----------------------------------------------------------------------------

    def run(self) -> ConsumeStats:
        """Consume until stopped; returns what was done. Raises :class:`ConsumerAborted` (nothing
        pending committed) when the dead-letter store stays down or Kafka reports a fatal error."""
        options = self.options
        self.consumer = self._factory(self.config)
        self.consumer.subscribe(
            list(options.topics), on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost
        )
        log.info("consuming %s as group %s", ", ".join(options.topics), options.group)
        self._last_activity = self.clock()
        with _start_up_frozen():
            return self._run()

    def _run(self) -> ConsumeStats:
        options = self.options
        try:
            while not self.stopping:
                # One call hands over everything already fetched, up to CONSUME_BATCH messages
                # (the rebalance callbacks run inside it, before it returns).
                messages = self.consumer.consume(self._consume_size(), options.poll_timeout)
                self._raise_if_aborted()
                if messages:
                    self._take_all(messages)
                else:
                    self._log_idle_pending()
                if self._due():
                    self._flush_and_commit()
                self._check_idle()
            self._flush_and_commit()
        except BaseException as exc:
            # Nothing pending may be committed now, not even by the revoke callback of close().
            self._committing_allowed = False
            self._close()
            if isinstance(exc, KafkaAdxError) and not isinstance(exc, ConsumerAborted):
                raise ConsumerAborted(f"stopped without committing the pending records: {exc}") from exc
            raise
        self.stats.stopped_by = self._stop_reason
        self._close()
        return self.stats

    def _consume_size(self) -> int:
        limit = self.options.max_records
        if limit is None:
            return CONSUME_BATCH
        return max(1, min(CONSUME_BATCH, limit - self._received))

    def _take_all(self, messages: list[Any]) -> None:
        """Add the messages of one ``consume`` call to the pending batch, flushing (and
        committing) whenever it is full; :meth:`_take` per message, with the per-message work cut
        to what :func:`to_record` needs (pinned by tests/unit/kafka/test_consumer_fast_paths.py).

        Every message is taken, even past a flush: the consumer's position is already beyond
        them, so one skipped here and a later one committed would lose it. Only a stop ends the
        loop early (nothing after it is committed, so the rest is redelivered)."""
        from confluent_kafka import TIMESTAMP_NOT_AVAILABLE

        options = self.options
        batch_records, batch_bytes, max_records = options.batch_records, options.batch_bytes, options.max_records
        assignment, streams = self._assignment, self._streams
        last_ms, last_timestamp = self._last_ms, self._last_timestamp
        # The counters live in locals while the loop runs (written back before a flush reads
        # them and at the end); ``pending`` and ``offsets`` are the objects the flush takes.
        pending, offsets = self._pending, self._pending_offsets
        received, pending_bytes = self._received, self._pending_bytes
        # A consume call hands over runs of messages of one partition: the assignment check, the
        # stream and the partition's next offset are looked up once per run, and the offset is
        # kept in ``run_next`` until the run ends (stored into ``offsets`` then, and before a
        # flush reads them). ``run_topic`` None: no run open.
        run_topic: str | None = None
        run_partition = -1
        run_key: TopicPartitionKey = ("", -1)
        run_next = 0
        stream = ""
        append = pending.append
        for message in messages:
            if self._stop_reason:
                break
            error = message.error()
            if error is not None:
                self._on_error(error)
                continue
            topic = message.topic()
            partition = message.partition()
            if partition != run_partition or topic != run_topic:
                if run_topic is not None:
                    offsets[run_key] = run_next
                    run_topic = None
                run_key = (topic, partition)
                if run_key not in assignment:
                    log.debug("dropping a record of %s[%d], no longer assigned", topic, partition)
                    run_partition = -1
                    continue
                found = streams.get(topic)
                if found is None:  # assigned without the callback having named it (not expected)
                    self._resolve_streams({topic})
                    found = streams[topic]
                stream = found
                run_topic, run_partition = topic, partition
                run_next = offsets.get(run_key, 0)
            else:
                # The run's own str: ``message.topic()`` makes a new one per message (~58 B kept
                # with every pending record), equal to it.
                topic = run_topic or topic
            ts_type, ts_ms = message.timestamp()
            if ts_ms == last_ms and ts_type != TIMESTAMP_NOT_AVAILABLE:
                timestamp = last_timestamp
            elif ts_type != TIMESTAMP_NOT_AVAILABLE and ts_ms >= 0:
                timestamp = last_timestamp = datetime.fromtimestamp(ts_ms / 1000, tz=UTC)
                last_ms = ts_ms
            else:
                timestamp = None
            value = message.value()
            headers = message.headers()
            offset = message.offset()
            if not pending:
                self._pending_since = self.clock()
            append(
                Record(value, message.key(), tuple(headers) if headers else (), topic, partition, offset, timestamp,
                       "kafka", "", stream)
            )  # fmt: skip
            # next_offsets(pending), kept as the records come (one past the highest offset).
            if offset >= run_next:
                run_next = offset + 1
            received += 1
            if value is not None:
                pending_bytes += len(value)
            if max_records is not None and received >= max_records:
                self.request_stop(f"reached --max-records {max_records}")
            elif len(pending) >= batch_records or pending_bytes >= batch_bytes:
                offsets[run_key] = run_next
                self._received, self._pending_bytes = received, pending_bytes
                self._flush_and_commit()
                pending, offsets, pending_bytes = self._pending, self._pending_offsets, 0
                append = pending.append
                # The flush may have changed what is assigned: the next message opens a new run.
                run_topic, run_partition = None, -1
        if run_topic is not None:
            offsets[run_key] = run_next
        self._received, self._pending_bytes = received, pending_bytes
        self._last_ms, self._last_timestamp = last_ms, last_timestamp
        self._last_activity = self.clock()

    def _take(self, message: Any) -> None:
        """The reference path of :meth:`_take_all`, one message at a time."""
        error = message.error()
        if error is not None:
            self._on_error(error)
            return
        topic_partition = (message.topic(), message.partition())
        if topic_partition not in self._assignment:
            # Fetched before a rebalance took the partition away: its new owner reads it.
            log.debug("dropping a record of %s[%d], no longer assigned", *topic_partition)
            return
        topic = topic_partition[0]
        stream = self._streams.get(topic)
        if stream is None:  # assigned without the callback having named it (not expected)
            self._resolve_streams({topic})
            stream = self._streams[topic]
        record = to_record(message, stream)
        if not self._pending:
            self._pending_since = self.clock()
        self._pending.append(record)
        self._pending_bytes += record.size
        self._pending_offsets[topic_partition] = max(self._pending_offsets.get(topic_partition, 0), record.offset + 1)
        self._received += 1
        self._last_activity = self.clock()
        if self.options.max_records is not None and self._received >= self.options.max_records:
            self.request_stop(f"reached --max-records {self.options.max_records}")

    def _on_error(self, error: Any) -> None:
        from confluent_kafka import KafkaError

        if error.code() == KafkaError._PARTITION_EOF:
            return
        if error.fatal():
            raise ConsumerAborted(f"fatal Kafka error: {error.str()}")
        log.warning("Kafka: %s", error.str())

    def _due(self) -> bool:
        if not self._pending:
            return False
        options = self.options
        return (
            len(self._pending) >= options.batch_records
            or self._pending_bytes >= options.batch_bytes
            or self.clock() - self._pending_since >= options.batch_wait
        )

    def _log_idle_pending(self) -> None:
        # A poll found nothing more to read: say how much this consumer holds uncommitted, once
        # per change (debug level: at a trickle it would repeat every few polls). Operators see
        # the consumer waiting for its batch to fill; tests wait for this exact state.
        pending = len(self._pending)
        if pending and pending != self._idle_pending_logged:
            self._idle_pending_logged = pending
            log.debug("idle with %d record(s) pending, uncommitted", pending)

    def _check_idle(self) -> None:
        idle = self.options.idle_exit
        if (
            idle is not None
            and self._assigned_once  # joining the group is not idling
            and self.clock() - self._last_activity >= idle
        ):
            self.request_stop(f"no record for {idle:g} s (--idle-exit)")

    def _raise_if_aborted(self) -> None:
        if self._abort is not None:
            abort, self._abort = self._abort, None
            raise abort

    # -- flush and commit ----------------------------------------------------------------------

    def _flush_and_commit(self) -> None:
        """Run the pending records through the pipeline, then commit the next offsets."""
        if not self._pending:
            return
        records, raw_bytes, offsets = self._pending, self._pending_bytes, self._pending_offsets
        self._pending, self._pending_bytes, self._pending_offsets = [], 0, {}  # raw_bytes: the sizes summed
        self._idle_pending_logged = 0
        result = self._process(records)
        self.stats.result.merge(result)
        self.stats.raw_bytes += raw_bytes
        self.stats.flushes += 1
        log.info(
            "flushed %d record(s): %d ingested, %d dead-lettered, in %.2f s",
            result.received, result.ingested, result.dead_lettered, result.seconds,
        )  # fmt: skip
        self._commit(offsets)

    def _process(self, records: list[Record]) -> Result:
        """``Pipeline.process`` with backoff while the dead-letter store fails (module docstring)."""
        # The retry window opens at the first failure: how long the failed attempt took (a slow
        # machine, a large batch) must not eat into it.
        window = RetryWindow(self.options.deadletter_retry_timeout, self.clock)
        attempt = 1
        # A transient failure (the sink after its own retries, a schema registry the decoder
        # needs) retries the same records while the window allows; the attempt after the
        # window closes is the final one, which dead-letters what it still cannot deliver.
        final = False
        while True:
            try:
                return self.pipeline.process(records, attempt=attempt, final_attempt=final)
            except (DeadLetterError, TransientError) as exc:
                delay = self.deadletter_retry.delay(attempt)
                closing = not window.allows(delay)
                if self.stopping or final or (closing and isinstance(exc, DeadLetterError)):
                    raise ConsumerAborted(
                        f"{len(records)} record(s) could be neither ingested nor dead-lettered "
                        f"after {attempt} attempt(s): {exc}"
                    ) from exc
                final = closing
                log.error("%s; %s the same %d record(s) in %.1f s (nothing committed)%s", exc,
                          "final attempt for" if final else "retrying", len(records), delay,
                          ": what still cannot be delivered is dead-lettered" if final else "")  # fmt: skip
                self._interruptible_sleep(delay)
                attempt += 1

    def _interruptible_sleep(self, seconds: float) -> None:
        end = self.clock() + seconds
        while not self.stopping and self.clock() < end:
            self.sleep(min(0.2, end - self.clock()))

    def _commit(self, offsets: dict[TopicPartitionKey, int]) -> None:
        from confluent_kafka import KafkaError, KafkaException, TopicPartition

        if not self._committing_allowed or not offsets:
            return
        partitions = [TopicPartition(t, p, o) for (t, p), o in sorted(offsets.items())]
        policy = self.commit_retry
        for attempt in policy.tries():
            try:
                committed = self.consumer.commit(offsets=partitions, asynchronous=False)
            except KafkaException as exc:
                error = exc.args[0]
                if not isinstance(error, KafkaError):
                    raise
                if error.code() == KafkaError._NO_OFFSET:
                    return
                if error.name() in _REBALANCE_ERRORS:
                    log.warning("offsets not committed, the group rebalanced (%s); the next owner of "
                                "these partitions re-reads from the last commit", error.str())  # fmt: skip
                    return
                if error.retriable() and policy.may_retry(attempt):
                    log.warning("commit failed (%s), retrying", error.str())
                    self.sleep(policy.delay(attempt))
                    continue
                raise ConsumerAborted(f"cannot commit offsets: {error.str()}") from None
            failed = [tp for tp in committed or () if tp.error is not None]
            if failed:
                names = ", ".join(f"{tp.topic}[{tp.partition}]: {tp.error.str()}" for tp in failed)
                if all(tp.error.name() in _REBALANCE_ERRORS for tp in failed):
                    log.warning("offsets of %s not committed after a rebalance", names)
                    return
                if policy.may_retry(attempt):
                    partitions = [TopicPartition(tp.topic, tp.partition, tp.offset) for tp in failed]
                    log.warning("commit failed for %s, retrying", names)
                    self.sleep(policy.delay(attempt))
                    continue
                raise ConsumerAborted(f"cannot commit offsets: {names}")
            self.stats.commits += 1
            log.debug("committed %s", ", ".join(f"{t}[{p}]@{o}" for (t, p), o in sorted(offsets.items())))
            return

    # -- rebalance callbacks (run inside poll, on this thread) ---------------------------------

    def _on_assign(self, consumer: Any, partitions: list[Any]) -> None:
        self.stats.rebalances += 1
        self._assigned_once = True
        self._assignment |= {(tp.topic, tp.partition) for tp in partitions}
        self._resolve_streams({tp.topic for tp in partitions})
        self._last_activity = self.clock()
        log.info("assigned %s", _names(partitions))

    def _on_revoke(self, consumer: Any, partitions: list[Any]) -> None:
        revoked = {(tp.topic, tp.partition) for tp in partitions}
        if not self._committing_allowed:  # aborting: leave everything uncommitted
            self._assignment -= revoked
            self._forget_streams()
            return
        log.info("revoking %s: flushing %d pending record(s) and committing first", _names(partitions),
                 len(self._pending))  # fmt: skip
        try:
            self._flush_and_commit()
        except BaseException as exc:  # re-raised by the loop right after poll() returns
            self._committing_allowed = False
            self._abort = exc
        self._assignment -= revoked
        self._forget_streams()

    def _on_lost(self, consumer: Any, partitions: list[Any]) -> None:
        lost = {(tp.topic, tp.partition) for tp in partitions}
        kept = [r for r in self._pending if (r.topic, r.partition) not in lost]
        dropped = len(self._pending) - len(kept)
        self._pending = kept
        self._pending_bytes = sum(r.size for r in kept)
        self._pending_offsets = next_offsets(kept)
        self.stats.uncommitted_dropped += dropped
        self._assignment -= lost
        self._forget_streams()
        log.warning("lost %s (session timed out); dropped %d uncommitted record(s), the new owner "
                    "redelivers them", _names(partitions), dropped)  # fmt: skip

    # -- stream identity -----------------------------------------------------------------------

    def _resolve_streams(self, topics: set[str]) -> None:
        """Name the stream of each topic not named yet (runs at assignment, never per message).
        Never raises: a topic whose ids cannot be read gets the fallback stream."""
        missing = sorted(topic for topic in topics if topic not in self._streams)
        if not missing:
            return
        cluster = self._cluster_identity(missing[0])
        topic_ids = self._topic_ids(missing)
        for topic in missing:
            self._streams[topic] = kafka_stream(cluster, topic, topic_ids.get(topic, ""))
        log.debug("streams: %s", ", ".join(self._streams[topic] for topic in missing))

    def _forget_streams(self) -> None:
        # A topic with no partition left here may be deleted and created again before it comes
        # back: read its topic id afresh then.
        assigned = {topic for topic, _ in self._assignment}
        for topic in [topic for topic in self._streams if topic not in assigned]:
            del self._streams[topic]

    def _cluster_identity(self, topic: str) -> str:
        if self._cluster is not None:
            return self._cluster
        cluster_id = None
        reason = ""
        try:
            # One topic's metadata is enough to learn the cluster id (and far cheaper than all).
            cluster_id = self.consumer.list_topics(topic=topic, timeout=METADATA_TIMEOUT).cluster_id
            if not cluster_id:
                reason = "the broker reports no cluster id"
        except Exception as exc:  # metadata is best effort: the fallback still names the cluster
            reason = f"reading the cluster id failed: {exc}"
        if cluster_id:
            self._cluster = str(cluster_id)
        else:
            self._cluster = kafka_cluster(str(self.config.get("bootstrap.servers", "")))
            self._log_fallback(f"{reason}; the cluster is named by its bootstrap servers ({self._cluster})")
        return self._cluster

    def _topic_ids(self, topics: list[str]) -> dict[str, str]:
        """Topic ids of ``topics`` (Kafka's base64 text form); topics that have none are left out."""
        try:
            from confluent_kafka import TopicCollection
            from confluent_kafka.admin import AdminClient

            factory = self._admin_factory or AdminClient
            admin = factory(admin_config(self.config))
            futures = admin.describe_topics(TopicCollection(topics), request_timeout=METADATA_TIMEOUT)
        except Exception as exc:  # no admin client: every topic falls back
            self._log_fallback(f"cannot describe {', '.join(topics)} ({exc}); streams name the topic only")
            return {}
        ids: dict[str, str] = {}
        failed: list[str] = []
        for topic, future in futures.items():
            try:
                topic_id = future.result(timeout=METADATA_TIMEOUT + 5).topic_id
            except Exception as exc:  # e.g. DescribeTopicPartitions not allowed or not supported
                failed.append(f"{topic}: {exc}")
                continue
            text = str(topic_id) if topic_id is not None else ""
            if text and text != "AAAAAAAAAAAAAAAAAAAAAA":  # Kafka's zero Uuid: no id known
                ids[topic] = text
            else:
                failed.append(f"{topic}: the broker reports no topic id")
        if failed:
            self._log_fallback(f"no topic id for {'; '.join(failed)}; their streams name the topic only, so a "
                               "topic created again under the same name shares ids with the old one")  # fmt: skip
        return ids

    def _log_fallback(self, message: str) -> None:
        if not self._stream_fallback_logged:
            self._stream_fallback_logged = True
            log.warning("stream identity: %s", message)

    def _close(self) -> None:
        if self.consumer is None:
            return
        try:
            # close() revokes the assignment (the revoke callback then finds nothing pending, or
            # is told not to commit) and leaves the group, so the others rebalance at once.
            self.consumer.close()
        except Exception as exc:  # closing is best effort once the outcome is decided
            log.warning("closing the consumer: %s", exc)
        finally:
            self.consumer = None


GC_YOUNG_THRESHOLD = 50_000
"""The garbage collector's first threshold while consuming (CPython's default is 700): see
:func:`_start_up_frozen`."""


@contextlib.contextmanager
def _start_up_frozen() -> Iterator[None]:
    """Keep what start-up created (modules, configuration, clients) out of the garbage
    collector's full passes while consuming (``gc.freeze``): they live as long as the process,
    and scanning them again at every full collection cost ~5 % of the consumer's CPU. Nothing is
    frozen when the caller froze objects itself (their unfreeze is theirs).

    While consuming, the youngest generation is also collected only after
    :data:`GC_YOUNG_THRESHOLD` net allocations instead of 700: a pending batch of records is
    freed as a whole once flushed, and with the default threshold the collector scanned and
    promoted each batch's records a hundred times over (~600 collections, ~3-4 % of the CPU, for
    300,000 records). Cyclic garbage is still collected, in fewer, larger passes; a threshold the
    caller raised (or 0, collection off) is left as it is. Both settings are put back on return."""
    thresholds = gc.get_threshold()
    if 0 < thresholds[0] < GC_YOUNG_THRESHOLD:
        gc.set_threshold(GC_YOUNG_THRESHOLD, *thresholds[1:])
    try:
        if gc.get_freeze_count():
            yield
            return
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            gc.unfreeze()
    finally:
        gc.set_threshold(*thresholds)


def _names(partitions: list[Any]) -> str:
    return ", ".join(f"{tp.topic}[{tp.partition}]" for tp in partitions) or "nothing"


@contextlib.contextmanager
def stop_on_signals(ingestor: KafkaIngestor) -> Iterator[None]:
    """While active, SIGTERM and SIGINT make ``ingestor`` flush, commit and stop; a second
    signal falls back to the default behaviour (interrupt at once)."""
    previous: dict[int, Any] = {}

    def handler(signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        ingestor.request_stop(f"{name} received")
        log.info("%s received: flushing, committing and stopping (again to interrupt)", name)
        for sig, old in previous.items():
            signal.signal(sig, old)

    for signum in (signal.SIGTERM, signal.SIGINT):
        previous[signum] = signal.signal(signum, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
