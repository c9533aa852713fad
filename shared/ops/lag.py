"""Consumer lag of a Kafka consumer group, per partition (``kafka-adx status --group``): the
group's committed offset against the partition's end (high watermark), read with the admin API,
so nothing joins the group or moves its offsets.

Works for a ``consume`` group and for the function app's Kafka trigger group alike (both commit
to the broker); Event Hubs checkpoints of the Event Hubs trigger live in blob storage, not in a
Kafka group, and are not read here.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from shared.errors import KafkaAdxError

log = logging.getLogger("kafka_adx.status")


class LagError(KafkaAdxError):
    """The brokers did not answer the offset requests."""


@dataclass(frozen=True)
class PartitionLag:
    """One partition: the group's committed offset, the partition's end, and the difference."""

    topic: str
    partition: int
    committed: int | None
    """The next offset the group will read; None when it committed nothing on this partition."""
    end: int
    """The offset the next record written will get (high watermark)."""
    start: int
    """The oldest offset still on the broker."""

    @property
    def lag(self) -> int:
        """Records written and not yet committed by the group (from the oldest one kept when the
        group committed nothing)."""
        begin = self.start if self.committed is None else max(self.committed, self.start)
        return max(0, self.end - begin)


def consumer_lag(conf: dict[str, Any], group: str, topics: Sequence[str] = (), *, timeout: float = 10.0) -> list[PartitionLag]:
    """Per-partition lag of ``group``: every partition it committed on, and every partition of
    ``topics`` (plain names) as well. Raises :class:`LagError` when the brokers do not answer
    within ``timeout`` seconds (the error text never holds a credential: it names the request)."""
    from confluent_kafka import ConsumerGroupTopicPartitions, KafkaException, TopicPartition
    from confluent_kafka.admin import AdminClient
    from confluent_kafka.admin._listoffsets import OffsetSpec  # the package re-exports it untyped

    admin_conf = {k: v for k, v in conf.items() if k not in ("group.id", "error_cb")}
    admin_conf.setdefault("logger", logging.getLogger("kafka_adx.status.librdkafka"))
    admin = AdminClient(admin_conf)
    try:
        futures = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)], request_timeout=timeout)
        committed = {
            (tp.topic, tp.partition): (tp.offset if tp.offset >= 0 else None)
            for tp in futures[group].result(timeout=timeout).topic_partitions or ()
        }
        if topics:
            metadata = admin.list_topics(timeout=timeout)
            for topic in topics:
                info = metadata.topics.get(topic)
                if info is None or info.error is not None:
                    continue
                for partition in info.partitions:
                    committed.setdefault((topic, partition), None)
        if not committed:
            return []
        ends = _offsets(admin, committed, OffsetSpec.latest(), timeout, TopicPartition)  # type: ignore[no-untyped-call]
        starts = _offsets(admin, committed, OffsetSpec.earliest(), timeout, TopicPartition)  # type: ignore[no-untyped-call]
    except KafkaException as exc:
        error = exc.args[0] if exc.args else exc
        text = error.str() if hasattr(error, "str") else str(error)
        raise LagError(f"cannot read the offsets of group {group!r}: {text}") from None
    except TimeoutError:
        raise LagError(f"cannot read the offsets of group {group!r}: no answer within {timeout:.0f} s") from None
    return [
        PartitionLag(topic, partition, offset, ends[(topic, partition)], starts[(topic, partition)])
        for (topic, partition), offset in sorted(committed.items())
    ]


def _offsets(admin: Any, keys: Any, spec: Any, timeout: float, topic_partition: Any) -> dict[tuple[str, int], int]:
    """One ``list_offsets`` request for every (topic, partition) of ``keys``."""
    futures = admin.list_offsets({topic_partition(t, p): spec for t, p in keys}, request_timeout=timeout)
    return {(tp.topic, tp.partition): int(future.result(timeout=timeout).offset) for tp, future in futures.items()}
