"""``kafka-adx produce``: send sample storm events, or a file's records, to a topic at a rate.

Sample storm events come in three formats. ``json`` and ``csv`` (a full 22-field StormEvents
row) are keyed by state (so one state's events stay in order on one partition) and carry the
headers ``seq`` (0-based number of the message), ``source`` (``kafka-adx-produce``),
``event-type`` and ``content-type``. ``tutorial`` is what the Kafka tutorial's Go producer sends
(:func:`shared.ops.sample.to_tutorial_csv`): a 6-field CSV record with its trailing newline, no
key and no headers but those given. ``--poison-every N`` adds an undecodable or unmappable
record after every N-th event, keyed ``poison`` with the header ``poison: true``, to try the
dead-letter path.

Transports:

- Kafka (confluent-kafka): a local broker, any Kafka, or the Event Hubs Kafka endpoint (Entra
  ID token or connection string, see :mod:`shared.kafka.connection`);
- AMQP (azure-eventhub): an event hub with an Entra ID credential or a connection string;
  headers become application properties, the key becomes the partition key.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from shared.errors import KafkaAdxError
from shared.ops.sample import (
    POISON_CSV,
    POISON_JSON,
    POISON_TUTORIAL,
    storm_events,
    to_csv,
    to_json,
    to_tutorial_csv,
)
from shared.pipeline.records import Header

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

log = logging.getLogger("kafka_adx.producer")

SampleFormat = Literal["json", "csv", "tutorial"]
"""``json``, ``csv`` (StormEvents rows) or ``tutorial`` (the Kafka tutorial producer's records)."""


class ProduceError(KafkaAdxError):
    """Records could not be delivered."""


@dataclass(frozen=True, slots=True)
class OutMessage:
    """One message to send."""

    value: bytes
    key: bytes | None = None
    headers: tuple[Header, ...] = ()


def sample_messages(
    count: int,
    *,
    fmt: SampleFormat = "json",
    seed: int = 7,
    poison_every: int = 0,
    headers: tuple[Header, ...] = (),
) -> Iterator[OutMessage]:
    """``count`` storm events (plus poison records when ``poison_every``): keyed and with headers,
    or for ``tutorial`` bare as the tutorial's producer sends them; ``headers`` are added to
    every message."""
    encode = {"json": to_json, "csv": to_csv, "tutorial": to_tutorial_csv}[fmt]
    poison = {"json": POISON_JSON, "csv": POISON_CSV, "tutorial": POISON_TUTORIAL}[fmt]
    content_type = b"application/json" if fmt == "json" else b"text/csv"
    seq = 0
    for index, event in enumerate(storm_events(count, seed), start=1):
        if fmt == "tutorial":
            # The Go producer's sarama message: a value, no key, no headers.
            yield OutMessage(value=encode(event), headers=headers)
        else:
            yield OutMessage(
                value=encode(event),
                key=str(event["State"]).encode(),
                headers=(
                    ("seq", str(seq).encode()),
                    ("source", b"kafka-adx-produce"),
                    ("event-type", str(event["EventType"]).encode()),
                    ("content-type", content_type),
                    *headers,
                ),
            )
        seq += 1
        if poison_every and index % poison_every == 0:
            yield OutMessage(
                value=poison[(index // poison_every) % len(poison)],
                key=b"poison",
                headers=(("seq", str(seq).encode()), ("source", b"kafka-adx-produce"), ("poison", b"true"), *headers),
            )
            seq += 1


def file_messages(
    paths: list[str],
    *,
    fmt: str | None = None,
    skip_header: bool = False,
    key: bytes | None = None,
    headers: tuple[Header, ...] = (),
    max_record_bytes: int = 4 * 1024 * 1024,
) -> Iterator[OutMessage]:
    """The records of files (JSON lines, delimited rows with quoted line breaks, raw lines; .gz;
    ``-`` for standard input), each as a message with ``key`` and ``headers``."""
    from shared.sources.files import read_records

    for record in read_records(paths, "-", fmt=fmt, skip_header=skip_header, max_record_bytes=max_record_bytes):
        if record.value is None or not record.value.strip():
            continue  # a blank line is not a record worth sending
        yield OutMessage(value=record.value, key=key, headers=headers)


class Pacer:
    """Spaces sends to ``rate`` messages per second (None or 0: as fast as possible)."""

    def __init__(
        self,
        rate: float | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate = rate if rate and rate > 0 else None
        self.clock = clock
        self.sleep = sleep
        self.started = clock()

    def wait(self, sent: int) -> None:
        """Block until message number ``sent`` (0-based) is due."""
        if self.rate is None:
            return
        due = self.started + sent / self.rate
        delay = due - self.clock()
        if delay > 0:
            self.sleep(delay)


@dataclass
class ProduceStats:
    """What a run sent."""

    sent: int = 0
    delivered: int = 0
    failed: int = 0
    bytes: int = 0
    seconds: float = 0.0
    partitions: dict[int, int] = field(default_factory=dict)
    """Delivered messages per partition (Kafka transport)."""
    errors: list[str] = field(default_factory=list)
    """The first few delivery errors."""


class Sender(Protocol):
    """A transport."""

    stats: ProduceStats

    def send(self, message: OutMessage) -> None:
        """Queue one message (may block while the client's queue is full)."""
        ...

    def close(self, timeout: float) -> None:
        """Deliver everything queued (up to ``timeout`` seconds) and release the client."""
        ...


class KafkaSender:
    """Sends with a confluent-kafka ``Producer`` and counts delivery reports."""

    def __init__(
        self,
        client_config: dict[str, Any],
        topic: str,
        *,
        partition: int | None = None,
        idempotent: bool = True,
        producer_factory: Callable[[dict[str, Any]], Any] | None = None,
    ) -> None:
        if producer_factory is None:
            from confluent_kafka import Producer

            producer_factory = Producer
        config: dict[str, Any] = {"linger.ms": 20, "client.id": "kafka-adx-produce"}
        if idempotent:
            # No duplicates or reordering on the producer's own retries.
            config["enable.idempotence"] = True
        config.update(client_config)
        self.topic = topic
        self.partition = partition
        self.stats = ProduceStats()
        self.producer = producer_factory(config)
        self.producer.poll(0)  # serves the OAUTHBEARER token callback before the first send

    def _report(self, error: Any, message: Any) -> None:
        if error is not None:
            self.stats.failed += 1
            if len(self.stats.errors) < 5:
                self.stats.errors.append(str(error))
            return
        self.stats.delivered += 1
        partition = message.partition()
        self.stats.partitions[partition] = self.stats.partitions.get(partition, 0) + 1

    def send(self, message: OutMessage) -> None:
        """Queue one message; waits for room when librdkafka's queue is full."""
        extra: dict[str, Any] = {} if self.partition is None else {"partition": self.partition}
        while True:
            try:
                self.producer.produce(
                    self.topic,
                    value=message.value,
                    key=message.key,
                    headers=list(message.headers),
                    on_delivery=self._report,
                    **extra,
                )
                break
            except BufferError:
                self.producer.poll(0.1)
        self.stats.sent += 1
        self.stats.bytes += len(message.value)
        self.producer.poll(0)

    def close(self, timeout: float) -> None:
        """Flush; messages still queued after ``timeout`` count as failed.

        Flushes in one-second steps: an exception raised by a callback (the authentication
        guard's ``error_cb``) surfaces when a ``flush`` call returns, so a long single flush
        would hide it until the whole timeout had passed."""
        deadline = time.monotonic() + timeout
        left = self.producer.flush(min(1.0, timeout))
        while left and time.monotonic() < deadline:
            left = self.producer.flush(min(1.0, max(0.0, deadline - time.monotonic())))
        if left:
            self.stats.failed += left
            self.stats.errors.append(f"{left} message(s) still queued after {timeout:g} s")


def event_data(message: OutMessage) -> Any:
    """An azure-eventhub ``EventData``: body = value, application properties = headers (a repeated
    header name keeps its last value; null values stay null)."""
    from azure.eventhub import EventData

    event = EventData(message.value)
    if message.headers:
        event.properties = {name: value for name, value in message.headers}
    return event


class EventHubSender:
    """Sends over AMQP with azure-eventhub, in batches per partition key."""

    #: Sends every open batch at least this often, so a slow rate still streams.
    FLUSH_INTERVAL = 0.2
    MAX_OPEN_BATCHES = 64

    def __init__(
        self,
        eventhub: str,
        *,
        namespace: str | None = None,
        credential: TokenCredential | None = None,
        connection_string: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        from azure.eventhub import EventHubProducerClient

        if connection_string:
            self.client = EventHubProducerClient.from_connection_string(connection_string, eventhub_name=eventhub)
        elif namespace and credential is not None:
            self.client = EventHubProducerClient(
                fully_qualified_namespace=namespace, eventhub_name=eventhub, credential=credential
            )
        else:
            raise ProduceError("AMQP needs --eventhubs-namespace with an Entra ID credential, or a connection string")
        self.stats = ProduceStats()
        self.clock = clock
        self._batches: dict[bytes | None, Any] = {}
        self._counts: dict[bytes | None, int] = {}
        self._last_flush = clock()

    def _new_batch(self, key: bytes | None) -> Any:
        if key is None:
            return self.client.create_batch()
        return self.client.create_batch(partition_key=key.decode("utf-8", "replace"))

    def _send_batch(self, key: bytes | None) -> None:
        batch = self._batches.pop(key, None)
        count = self._counts.pop(key, 0)
        if batch is None or not count:
            return
        try:
            self.client.send_batch(batch)
        except Exception as exc:  # counted and reported; the command exits non-zero
            self.stats.failed += count
            if len(self.stats.errors) < 5:
                self.stats.errors.append(f"{type(exc).__name__}: {exc}")
            return
        self.stats.delivered += count

    def send(self, message: OutMessage) -> None:
        """Add the message to its partition key's batch; send batches that are full or old."""
        key = message.key
        batch = self._batches.get(key)
        if batch is None:
            batch = self._batches[key] = self._new_batch(key)
        event = event_data(message)
        try:
            batch.add(event)
        except ValueError:  # the batch is full: send it and start the next one
            self._send_batch(key)
            batch = self._batches[key] = self._new_batch(key)
            batch.add(event)  # a single event over the size limit raises: reported by the caller
        self._counts[key] = self._counts.get(key, 0) + 1
        self.stats.sent += 1
        self.stats.bytes += len(message.value)
        if len(self._batches) > self.MAX_OPEN_BATCHES or self.clock() - self._last_flush >= self.FLUSH_INTERVAL:
            self._flush()

    def _flush(self) -> None:
        for key in list(self._batches):
            self._send_batch(key)
        self._last_flush = self.clock()

    def close(self, timeout: float) -> None:
        """Send the open batches and close the client."""
        self._flush()
        self.client.close()


def produce(
    messages: Iterable[OutMessage],
    sender: Sender,
    *,
    rate: float | None = None,
    close_timeout: float = 60.0,
    progress: Callable[[ProduceStats], None] | None = None,
) -> ProduceStats:
    """Send every message at ``rate`` per second (None: as fast as possible) and wait for
    delivery. Raises :class:`ProduceError` if any message was not delivered."""
    pacer = Pacer(rate)
    started = time.perf_counter()
    try:
        for index, message in enumerate(messages):
            pacer.wait(index)
            sender.send(message)
            if progress is not None and (index + 1) % 1000 == 0:
                progress(sender.stats)
    finally:
        sender.close(close_timeout)
        sender.stats.seconds = time.perf_counter() - started
    stats = sender.stats
    if stats.failed:
        raise ProduceError(f"{stats.failed} of {stats.sent} message(s) not delivered: {'; '.join(stats.errors)}")
    return stats
