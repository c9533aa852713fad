"""A standalone Kafka consumer running the pipeline: ``kafka-adx consume``.

For users who host outside Azure Functions (containers, VMs) and for local end-to-end work.

Commit protocol (the delivery contract of DESIGN.md, for a consumer):

1. Records are polled into a pending batch (``enable.auto.commit`` and
   ``enable.auto.offset.store`` are off: librdkafka never commits on its own).
2. The batch is flushed when it reaches ``batch_records`` records or ``batch_bytes`` bytes, or
   when its oldest record has waited ``batch_wait`` seconds: :meth:`Pipeline.process` runs
   with ``final_attempt=True``, so when it returns every record was ingested or dead-lettered.
3. Only then are the next offsets of every partition in the batch committed, synchronously.
4. Before partitions are revoked in a rebalance the pending batch is flushed and committed, so
   the next owner starts exactly where this consumer stopped. Pending records of partitions
   that were *lost* (session timeout) are dropped uncommitted: their new owner redelivers them.
5. SIGTERM / SIGINT: stop polling, flush, commit, close (leaving the group). A second signal
   interrupts at once.

So a crash (SIGKILL, OOM, power loss) loses nothing: at most the records after the last commit
are ingested a second time (at-least-once; the ``dedup`` route option makes ADX skip batches it
already has).

When the dead-letter store fails, :meth:`Pipeline.process` raises :class:`DeadLetterError`.
The consumer then retries the *same* records with exponential backoff for up to
``deadletter_retry_timeout`` seconds (kept below ``max.poll.interval.ms`` so the consumer keeps
its partitions), and if the store is still down it stops **without committing** and the
command exits with code 2: a supervisor restarts it and the records are redelivered from the
last commit. A retry may ingest a pipeline batch a second time (never loses one).
"""

from __future__ import annotations

import contextlib
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
from shared.pipeline import Pipeline, Result
from shared.records import Record

log = logging.getLogger("kafka_adx.consumer")

TopicPartitionKey = tuple[str, int]


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
    """How long to retry a batch while the dead-letter store fails before giving up uncommitted."""
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


def to_record(message: Any) -> Record:
    """A confluent-kafka ``Message`` as a :class:`Record` (timestamp as aware UTC, or None)."""
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
    )


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
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if consumer_factory is None:
            from confluent_kafka import Consumer

            consumer_factory = Consumer
        self.pipeline = pipeline
        self.options = options
        self.config = consumer_config(client_config, options)
        self._factory = consumer_factory
        self.sleep = sleep
        self.clock = clock
        self.stats = ConsumeStats()
        self.consumer: Any = None
        self._pending: list[Record] = []
        self._pending_bytes = 0
        self._pending_since = 0.0
        self._assignment: set[TopicPartitionKey] = set()
        self._stop_reason = ""
        self._abort: BaseException | None = None
        self._committing_allowed = True
        self._last_activity = clock()
        self._assigned_once = False
        self._received = 0

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
        try:
            while not self.stopping:
                message = self.consumer.poll(options.poll_timeout)
                self._raise_if_aborted()
                if message is not None:
                    self._take(message)
                    # Drain what is already fetched without waiting, up to one batch.
                    while not self.stopping and not self._due():
                        message = self.consumer.poll(0)
                        self._raise_if_aborted()
                        if message is None:
                            break
                        self._take(message)
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

    def _take(self, message: Any) -> None:
        error = message.error()
        if error is not None:
            self._on_error(error)
            return
        topic_partition = (message.topic(), message.partition())
        if topic_partition not in self._assignment:
            # Fetched before a rebalance took the partition away: its new owner reads it.
            log.debug("dropping a record of %s[%d], no longer assigned", *topic_partition)
            return
        record = to_record(message)
        if not self._pending:
            self._pending_since = self.clock()
        self._pending.append(record)
        self._pending_bytes += record.size
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
        records, self._pending, self._pending_bytes = self._pending, [], 0
        result = self._process(records)
        self.stats.result.merge(result)
        self.stats.raw_bytes += sum(r.size for r in records)
        self.stats.flushes += 1
        offsets: dict[TopicPartitionKey, int] = {}
        for record in records:
            key = (record.topic, record.partition)
            offsets[key] = max(offsets.get(key, -1), record.offset + 1)
        log.info(
            "flushed %d record(s): %d ingested, %d dead-lettered, in %.2f s",
            result.received, result.ingested, result.dead_lettered, result.seconds,
        )  # fmt: skip
        self._commit(offsets)

    def _process(self, records: list[Record]) -> Result:
        """``Pipeline.process`` with backoff while the dead-letter store fails (module docstring)."""
        deadline = self.clock() + self.options.deadletter_retry_timeout
        attempt = 1
        while True:
            try:
                return self.pipeline.process(records, attempt=attempt, final_attempt=True)
            except (DeadLetterError, TransientError) as exc:
                delay = min(30.0, 0.5 * 2 ** (attempt - 1))
                if self.stopping or self.clock() + delay > deadline:
                    raise ConsumerAborted(
                        f"{len(records)} record(s) could be neither ingested nor dead-lettered "
                        f"after {attempt} attempt(s): {exc}"
                    ) from exc
                log.error("%s; retrying the same %d record(s) in %.1f s (nothing committed)",
                          exc, len(records), delay)  # fmt: skip
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
        for attempt in range(1, 6):
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
                if error.retriable() and attempt < 5:
                    log.warning("commit failed (%s), retrying", error.str())
                    self.sleep(0.2 * 2**attempt)
                    continue
                raise ConsumerAborted(f"cannot commit offsets: {error.str()}") from None
            failed = [tp for tp in committed or () if tp.error is not None]
            if failed:
                names = ", ".join(f"{tp.topic}[{tp.partition}]: {tp.error.str()}" for tp in failed)
                if all(tp.error.name() in _REBALANCE_ERRORS for tp in failed):
                    log.warning("offsets of %s not committed after a rebalance", names)
                    return
                if attempt < 5:
                    partitions = [TopicPartition(tp.topic, tp.partition, tp.offset) for tp in failed]
                    log.warning("commit failed for %s, retrying", names)
                    self.sleep(0.2 * 2**attempt)
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
        self._last_activity = self.clock()
        log.info("assigned %s", _names(partitions))

    def _on_revoke(self, consumer: Any, partitions: list[Any]) -> None:
        revoked = {(tp.topic, tp.partition) for tp in partitions}
        if not self._committing_allowed:  # aborting: leave everything uncommitted
            self._assignment -= revoked
            return
        log.info("revoking %s: flushing %d pending record(s) and committing first", _names(partitions),
                 len(self._pending))  # fmt: skip
        try:
            self._flush_and_commit()
        except BaseException as exc:  # re-raised by the loop right after poll() returns
            self._committing_allowed = False
            self._abort = exc
        self._assignment -= revoked

    def _on_lost(self, consumer: Any, partitions: list[Any]) -> None:
        lost = {(tp.topic, tp.partition) for tp in partitions}
        kept = [r for r in self._pending if (r.topic, r.partition) not in lost]
        dropped = len(self._pending) - len(kept)
        self._pending = kept
        self._pending_bytes = sum(r.size for r in kept)
        self.stats.uncommitted_dropped += dropped
        self._assignment -= lost
        log.warning("lost %s (session timed out); dropped %d uncommitted record(s), the new owner "
                    "redelivers them", _names(partitions), dropped)  # fmt: skip

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
