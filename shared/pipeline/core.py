"""The one pipeline every entry point uses: records -> route -> encode -> batch -> sink.

Delivery contract (README, "Nothing lost"; docs/delivery.md), for every call of :meth:`Pipeline.process`:

1. A poison record (null/empty, oversize, undecodable, unroutable, unmappable) goes to the
   dead-letter store with its reason; the rest of the batch goes on.
2. A transient sink failure is retried in process (``RetryPolicy``: bounded, exponential, with
   jitter). When those tries are used up and this is not the caller's final attempt,
   :class:`TransientError` is raised so the trigger redelivers the whole batch (deterministic
   batch ids, and ingest-by tags on dedup routes, make that retry idempotent).
3. On a terminal failure, or a transient one on the final attempt, the whole batch is written
   to the dead-letter store with the reason and processing goes on. If even that write fails,
   :class:`DeadLetterError` is raised: the caller must not advance its checkpoint.

When ``process`` returns, ``received == ingested + dead_lettered`` holds for the call; a caller
may then commit or checkpoint everything it passed in.

Redelivery: batch ids derive from the records' streams, positions and content
(:mod:`shared.pipeline.batching`), and a pipeline remembers the ids it has written (the last
``QUEUED_MEMORY`` of them, in memory): a batch it already queued is counted as ingested and not
queued again, so a retry of the same invocation re-queues nothing (ADX's ``ingest-by`` tags
cover redeliveries to other processes on ``dedup`` routes).

Partial progress: the counts go into the caller's :class:`Result` as batches and dead letters
are written, so a caller holds exact counts even when ``process`` raises. When the input itself
stops (:class:`InputStopped`: a truncated file, Ctrl-C) the pipeline first delivers what it has
read, then re-raises. With ``Result.track_settled()`` it also records which records are settled,
so that on an unexpected error a caller dead-letters only those that are not
(:meth:`Result.unsettled`).
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from shared.config import IngestionConfig, Route
from shared.errors import DeadLetterError, InputStopped, RecordError, TransientError, classify
from shared.pipeline.batching import Batch, BatchBuilder
from shared.pipeline.deadletter import DeadLetter, DeadLetterStore
from shared.pipeline.destination import Destination
from shared.pipeline.encoding import Encoder, encoder_for, passes_through
from shared.pipeline.records import Record
from shared.pipeline.retry import RetryPolicy as RetryPolicy  # re-exported: callers import it from here
from shared.pipeline.routing import Router
from shared.pipeline.sink import Sink
from shared.redact import redact

if TYPE_CHECKING:
    from shared.formats.registry import Registries

log = logging.getLogger("kafka_adx.pipeline")

UNROUTED = "(unrouted)"


@dataclass
class TableCounts:
    """Counts of one destination table."""

    ingested: int = 0
    dead_lettered: int = 0
    batches: int = 0
    raw_bytes: int = 0
    gzip_bytes: int = 0


@dataclass
class Result:
    """What a call of :meth:`Pipeline.process` did. ``received == ingested + dead_lettered``."""

    received: int = 0
    ingested: int = 0
    dead_lettered: int = 0
    tables: dict[str, TableCounts] = field(default_factory=dict)
    reasons: dict[str, int] = field(default_factory=dict)
    """Dead-letter counts by stage (decode, size, route, map, sink)."""
    seconds: float = 0.0
    oldest_timestamp: datetime | None = None
    already_queued: int = 0
    """Records of batches this process had queued before (counted as ingested, not re-queued)."""
    settled: set[int] | None = None
    """``id()`` of every record ingested or dead-lettered so far, when tracking is on."""

    def track_settled(self) -> Result:
        """Record which records get settled (for :meth:`unsettled`); returns ``self``."""
        self.settled = set()
        return self

    def unsettled(self, records: Iterable[Record]) -> list[Record]:
        """The records neither ingested nor dead-lettered yet (tracking must be on)."""
        if self.settled is None:
            raise ValueError("Result.track_settled() was not called before processing")
        settled = self.settled
        return [record for record in records if id(record) not in settled]

    @property
    def balanced(self) -> bool:
        """Whether every received record was ingested or dead-lettered."""
        return self.received == self.ingested + self.dead_lettered

    def table(self, name: str) -> TableCounts:
        """Counts of ``database.table`` (created on first use)."""
        counts = self.tables.get(name)
        if counts is None:
            counts = self.tables[name] = TableCounts()
        return counts

    def merge(self, other: Result) -> None:
        """Add another result's counts into this one."""
        self.received += other.received
        self.ingested += other.ingested
        self.dead_lettered += other.dead_lettered
        self.already_queued += other.already_queued
        self.seconds += other.seconds
        for name, counts in other.tables.items():
            mine = self.table(name)
            mine.ingested += counts.ingested
            mine.dead_lettered += counts.dead_lettered
            mine.batches += counts.batches
            mine.raw_bytes += counts.raw_bytes
            mine.gzip_bytes += counts.gzip_bytes
        for stage, count in other.reasons.items():
            self.reasons[stage] = self.reasons.get(stage, 0) + count
        if other.oldest_timestamp and (self.oldest_timestamp is None or other.oldest_timestamp < self.oldest_timestamp):
            self.oldest_timestamp = other.oldest_timestamp


def _older(oldest: list[datetime | None], timestamp: datetime | None) -> None:
    """Keep the older of ``oldest[0]`` and ``timestamp`` in ``oldest[0]`` (None: unknown)."""
    if timestamp is not None and (oldest[0] is None or timestamp < oldest[0]):
        oldest[0] = timestamp


class Pipeline:
    """Routes, encodes and batches records and hands batches to a sink (see module docstring).

    Create one per process and reuse it: routes, encoders and compiled mappings are cached.
    """

    #: Poison records are flushed to the dead-letter store in sets of at most this many.
    POISON_SET_SIZE = 1000
    #: Topics whose routing is remembered (beyond that, records are routed one by one).
    TOPIC_CACHE_SIZE = 10_000
    #: Batch ids remembered as written (oldest forgotten first): about 100 bytes each.
    QUEUED_MEMORY = 65_536

    def __init__(
        self,
        config: IngestionConfig,
        sink: Sink,
        deadletters: DeadLetterStore,
        *,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        on_batch: Callable[[Batch], None] | None = None,
        registries: Registries | None = None,
    ) -> None:
        self.config = config
        # Where the schema formats' schemas come from: shared.wiring.build_pipeline passes its
        # settings' registries; None reads the environment's (a pipeline built without settings).
        self.registries = registries
        self.sink = sink
        self.deadletters = deadletters
        self.retry = retry or RetryPolicy()
        self.sleep = sleep
        self.on_batch = on_batch
        self.router = Router(config)
        self._encoders: dict[Destination, Encoder] = {}
        # Records without headers are routed by their topic alone (header routing needs
        # headers), so their route, destination and encoder are looked up once per topic.
        # The last item: the encoder hands a value back as it is unless it ends with a newline
        # (passes_through), so the hot path in process skips the call for those values.
        self._by_topic: dict[str, tuple[Route, Destination, Encoder, bool]] = {}
        self._queued: OrderedDict[str, None] = OrderedDict()
        self.max_record_bytes = config.limits.max_record_bytes
        self.max_batch_bytes = config.limits.max_batch_bytes
        self.max_batch_records = config.limits.max_batch_records
        self.gzip_level = config.limits.gzip_level

    def close(self) -> None:
        """Close the sink and, when it holds a client, the dead-letter store (end of process)."""
        self.sink.close()
        close_store = getattr(self.deadletters, "close", None)
        if callable(close_store):
            close_store()

    def forget_written(self) -> None:
        """Forget the batch ids this pipeline wrote, so the same records are written again (for
        benchmarks that time one input several times; never needed in production)."""
        self._queued.clear()

    def encoder(self, dest: Destination) -> Encoder:
        """The (cached) encoder of a destination."""
        encoder = self._encoders.get(dest)
        if encoder is None:
            encoder = self._encoders[dest] = encoder_for(self.config, dest, self.registries)
        return encoder

    def prepare(self, record: Record) -> tuple[str, Destination, bytes]:
        """Route and encode one record: (route topic, destination, line), or RecordError."""
        value = record.value
        if value is None:
            raise RecordError("value is null", stage="decode")
        if not value or value.isspace():
            raise RecordError("value is empty", stage="decode")
        if len(value) > self.max_record_bytes:
            raise RecordError(
                f"record is {len(value)} bytes, over the limit of {self.max_record_bytes}", stage="size"
            )
        lane = None if record.headers else self._by_topic.get(record.topic)
        if lane is None:
            route, dest = self.router.resolve(record)
            encoder = self.encoder(dest)
            lane = (route, dest, encoder, passes_through(encoder))
            if not record.headers and len(self._by_topic) < self.TOPIC_CACHE_SIZE:
                self._by_topic[record.topic] = lane
        route, dest, encoder, _ = lane
        try:
            line = encoder.encode(record)
        except RecordError as exc:
            exc.route = route.topic
            exc.destination = dest
            raise
        except (ValueError, TypeError, ArithmeticError, RecursionError) as exc:
            # A decoder bug must not lose the record or stop the batch: dead-letter it, say so.
            log.exception("unexpected error encoding %s for %s", record.where, dest.describe())
            error = RecordError(f"cannot encode record: {type(exc).__name__}: {exc}", stage="decode")
            error.route = route.topic
            error.destination = dest
            raise error from exc
        return route.topic, dest, line

    def process(
        self,
        records: Iterable[Record],
        *,
        attempt: int = 1,
        final_attempt: bool = True,
        result: Result | None = None,
    ) -> Result:
        """Run records through the pipeline under the delivery contract; see the module doc.

        Counts go into ``result`` (a new one by default) as they happen and it is returned.
        """
        started = time.perf_counter()
        result = Result() if result is None else result
        builders: dict[Destination, BatchBuilder] = {}
        poison: list[DeadLetter] = []
        # Hot loop: the bound method, the per-topic lanes and the limits in locals; the builder
        # of the previous record's destination is reused without a dict lookup (hashing a
        # Destination costs more than encoding a small record).
        prepare = self.prepare
        # A record without headers whose topic has a lane is checked and encoded here, without
        # the call of prepare (the common case); prepare, the reference, does everything else,
        # and words every error: an encoding that fails here is done again by prepare, which
        # raises what it would have (pinned by tests/unit/pipeline/test_process_fast_path.py).
        # A subclass overriding prepare gets prepare for every record.
        lanes = self._by_topic if getattr(prepare, "__func__", None) is Pipeline.prepare else {}
        max_record = self.max_record_bytes
        max_bytes, max_records = self.max_batch_bytes, self.max_batch_records
        chunk_bytes = BatchBuilder.CHUNK_BYTES
        last_dest: Destination | None = None
        builder: BatchBuilder
        received = 0
        # The oldest timestamp among the records received: every record ends in a sealed batch
        # (whose oldest_timestamp covers its records) or in a dead letter, so it is taken from
        # those rather than compared record by record.
        oldest: list[datetime | None] = [None]
        try:
            for record in records:
                received += 1
                value = record.value
                lane = None if record.headers else lanes.get(record.topic)
                try:
                    if lane is not None and value and len(value) <= max_record and not value.isspace():
                        dest = lane[1]
                        if lane[3] and value[-1] != 10:  # not ending with "\n": passed through as it is
                            line = value
                        else:
                            try:
                                line = lane[2].encode(record)
                            except (RecordError, ValueError, TypeError, ArithmeticError, RecursionError):
                                _, dest, line = prepare(record)
                    else:
                        _, dest, line = prepare(record)
                except RecordError as exc:
                    poison.append(self._letter(record, exc, attempt))
                    _older(oldest, record.timestamp)
                    if len(poison) >= self.POISON_SET_SIZE:
                        self.dead_letter(poison, result)
                        poison = []
                    continue
                except TransientError as exc:
                    # A service the decoder needs (a schema registry) cannot answer: not the
                    # record's fault. Before the final attempt the caller retries the whole
                    # batch; on the final one nothing may be lost, so the record is
                    # dead-lettered with that reason, to be replayed once the service is back.
                    if not final_attempt:
                        raise
                    poison.append(self._unavailable(record, exc, attempt))
                    _older(oldest, record.timestamp)
                    if len(poison) >= self.POISON_SET_SIZE:
                        self.dead_letter(poison, result)
                        poison = []
                    continue
                if dest is not last_dest:
                    last_dest = dest
                    found = builders.get(dest)
                    if found is None:
                        found = builders[dest] = BatchBuilder(dest, self.gzip_level)
                    builder = found
                size = len(line) + 1
                if builder.raw_size + size > max_bytes and builder.records:
                    # Seal before the cap would be crossed: a batch never exceeds max_batch_bytes
                    # unless one record alone does.
                    self._deliver(self._seal(builder, oldest), result, attempt, final_attempt)
                # BatchBuilder.add, inlined (a call per record costs more than its body).
                builder.records.append(record)
                builder.lines.append(line)
                builder.raw_size += size
                if builder.raw_size - builder.compressed >= chunk_bytes:
                    builder.compress_lines()
                if len(builder.records) >= max_records:
                    self._deliver(self._seal(builder, oldest), result, attempt, final_attempt)
        except InputStopped:
            # The input ended early (truncated file, Ctrl-C): what was read is delivered first,
            # so the caller's counts cover it and nothing read is left unaccounted for.
            self._finish(builders, poison, result, received, oldest, started, attempt, final_attempt)
            raise
        self._finish(builders, poison, result, received, oldest, started, attempt, final_attempt)
        return result

    @staticmethod
    def _seal(builder: BatchBuilder, oldest: list[datetime | None]) -> Batch:
        """``builder.seal()``, its oldest timestamp folded into ``oldest[0]``."""
        batch = builder.seal()
        _older(oldest, batch.oldest_timestamp)
        return batch

    def _finish(
        self,
        builders: dict[Destination, BatchBuilder],
        poison: list[DeadLetter],
        result: Result,
        received: int,
        oldest: list[datetime | None],
        started: float,
        attempt: int,
        final_attempt: bool,
    ) -> None:
        """Deliver the open batches and the pending dead letters; check the counts."""
        result.received += received
        sealed = [self._seal(builder, oldest) for builder in builders.values() if len(builder)]
        first = oldest[0]
        if first is not None and (result.oldest_timestamp is None or first < result.oldest_timestamp):
            result.oldest_timestamp = first
        for batch in sealed:
            self._deliver(batch, result, attempt, final_attempt)
        if poison:
            self.dead_letter(poison, result)
        result.seconds += time.perf_counter() - started
        if not result.balanced:  # a bug, never expected: refuse to let a checkpoint advance
            raise AssertionError(f"pipeline counts do not add up: {result}")

    def _letter(self, record: Record, exc: RecordError, attempt: int) -> DeadLetter:
        reason = f"{record.where}: {exc.reason}"
        return DeadLetter(
            record=record,
            reason=reason,
            stage=exc.stage,
            field=exc.field,
            route=exc.route,
            destination=exc.destination,
            attempt=attempt,
        )

    def _unavailable(self, record: Record, exc: TransientError, attempt: int) -> DeadLetter:
        """The dead letter of a record whose decoder could not reach a service on the final
        attempt: stage ``decode``, the reason says it was transient, so a replay takes it."""
        error = RecordError(f"transient (final attempt): {exc}", stage="decode")
        error.route = self._route_name(record)
        return self._letter(record, error, attempt)

    def _route_name(self, record: Record) -> str | None:
        route = self.router.route_for(record.topic)
        return route.topic if route else None

    def dead_letter(self, letters: Sequence[DeadLetter], result: Result) -> None:
        """Write letters in sets of at most ``POISON_SET_SIZE`` and count them into ``result``;
        raises :class:`DeadLetterError` if the store fails (the caller must not checkpoint)."""
        for start in range(0, len(letters), self.POISON_SET_SIZE):
            chunk = letters[start : start + self.POISON_SET_SIZE]
            try:
                set_id = self.deadletters.write(chunk)
            except DeadLetterError:
                raise
            except Exception as exc:
                raise DeadLetterError(f"dead-letter store failed: {exc}") from exc
            result.dead_lettered += len(chunk)
            if result.settled is not None:
                result.settled.update(id(letter.record) for letter in chunk)
            for letter in chunk:
                result.reasons[letter.stage] = result.reasons.get(letter.stage, 0) + 1
                dest = letter.destination
                name = f"{dest.database}.{dest.table}" if dest else UNROUTED
                result.table(name).dead_lettered += 1
            log.info("dead-lettered %d record(s) as set %s", len(chunk), set_id)

    def _deliver(self, batch: Batch, result: Result, attempt: int, final_attempt: bool) -> None:
        """Write a batch with bounded retries; dead-letter it when it cannot be written."""
        dest = batch.destination
        name = f"{dest.database}.{dest.table}"
        if batch.batch_id in self._queued:
            # Written by this process before (a redelivery of the same records): queuing it
            # again would duplicate its rows on a route without ingest-by tags.
            self._queued.move_to_end(batch.batch_id)
            log.info("not queuing %s again: this process already wrote it", batch.describe())
            self._count(batch, result, name)
            result.already_queued += batch.count
            return
        tries = self.retry.tries()
        for try_number in tries:
            try:
                self.sink.write(batch)
            except Exception as exc:
                kind = classify(exc)
                if kind is TransientError and self.retry.may_retry(try_number):
                    delay = self.retry.delay(try_number)
                    log.warning("transient failure writing %s (try %d/%d), retrying in %.2fs: %s",
                                batch.describe(), try_number, len(tries), delay, exc)
                    self.sleep(delay)
                    continue
                if kind is TransientError and not final_attempt:
                    log.warning("transient failure writing %s; raising for redelivery: %s", batch.describe(), exc)
                    raise TransientError(f"{batch.describe()}: {exc}") from exc
                reason = f"{'terminal' if kind is not TransientError else 'transient (final attempt)'} " \
                         f"sink failure: {type(exc).__name__}: {redact(str(exc))}"
                log.error("dead-lettering %s: %s", batch.describe(), reason)
                letters = [
                    DeadLetter(
                        record=record,
                        reason=f"{record.where}: {reason}",
                        stage="sink",
                        route=self._route_name(record),
                        destination=dest,
                        batch_id=batch.batch_id,
                        attempt=attempt,
                        time=datetime.now(UTC),
                    )
                    for record in batch.records
                ]
                self.dead_letter(letters, result)
                return
            self._queued[batch.batch_id] = None
            if len(self._queued) > self.QUEUED_MEMORY:
                self._queued.popitem(last=False)
            self._count(batch, result, name)
            counts = result.table(name)
            counts.batches += 1
            counts.raw_bytes += batch.raw_size
            counts.gzip_bytes += len(batch.payload)
            log.info("wrote %s", batch.describe())
            if self.on_batch is not None:
                self.on_batch(batch)
            return

    @staticmethod
    def _count(batch: Batch, result: Result, name: str) -> None:
        """Count a batch's records as ingested (and settled)."""
        result.table(name).ingested += batch.count
        result.ingested += batch.count
        if result.settled is not None:
            result.settled.update(id(record) for record in batch.records)
