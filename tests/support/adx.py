"""Helpers of the ADX tests: an ingestion file with one route per ADX feature, records, and
readers of what really landed (queued blobs, streamed bodies, dead letters)."""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.config import IngestionConfig, parse_config
from shared.pipeline.batching import Batch, BatchBuilder
from shared.pipeline.deadletter import DeadLetter, DeadLetterStore
from shared.pipeline.encoding import encoder_for
from shared.pipeline.records import Record
from shared.pipeline.routing import Router
from shared.sinks.adx import AdxClients, AdxOptions
from shared.storage import StorageRetry
from tests.support.adx_standin import AdxStandIn

DATABASE = "db1"
T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def config_data(max_batch_records: int = 100_000) -> dict[str, Any]:
    """Tables Events (server JSON mapping), Clicks (mapping with metadata: client, CSV) and Live
    (streaming); routes events, events-dedup, clicks, live."""
    json_map = {"kind": "json", "columns": [
        {"column": "id", "Properties": {"Path": "$.id"}},
        {"column": "kind", "Properties": {"Path": "$.kind"}},
    ]}
    return {
        "database": DATABASE,
        "tables": {
            "Events": {"columns": [{"name": "id", "type": "long"}, {"name": "kind", "type": "string"}],
                       "mappings": {"EventsMap": json_map}},
            "Live": {"columns": [{"name": "id", "type": "long"}, {"name": "kind", "type": "string"}],
                     "mappings": {"LiveMap": json_map}},
            "Clicks": {
                "columns": [{"name": "id", "type": "long"}, {"name": "kind", "type": "string"},
                            {"name": "topic", "type": "string"}, {"name": "offset", "type": "long"}],
                "mappings": {"ClicksMap": {"kind": "json", "columns": [
                    {"column": "id", "Properties": {"Path": "$.id"}},
                    {"column": "kind", "Properties": {"Path": "$.kind"}},
                    {"column": "topic", "Properties": {"Metadata": "topic"}},
                    {"column": "offset", "Properties": {"Metadata": "offset"}},
                ]}},
            },
        },
        "routes": [
            {"topic": "events", "table": "Events", "format": "json", "mapping": "EventsMap"},
            {"topic": "events-dedup", "table": "Events", "format": "json", "mapping": "EventsMap", "dedup": True},
            {"topic": "clicks", "table": "Clicks", "format": "json", "mapping": "ClicksMap"},
            {"topic": "live", "table": "Live", "format": "json", "mapping": "LiveMap", "ingestion": "streaming"},
        ],
        "limits": {"max_batch_records": max_batch_records},
    }


def make_config(max_batch_records: int = 100_000) -> IngestionConfig:
    """The validated ingestion file of :func:`config_data`."""
    return parse_config(config_data(max_batch_records), "<adx tests>")


def records(topic: str, ids: Iterable[int], *, partition: int = 0, kind: str = "k") -> list[Record]:
    """JSON records ``{"id": n, "kind": ...}`` at offset n, timestamp T0 + n seconds."""
    return [
        Record(value=json.dumps({"id": i, "kind": kind}).encode(), key=f"key{i}".encode(), topic=topic,
               partition=partition, offset=i, timestamp=T0 + timedelta(seconds=i), source="kafka")
        for i in ids
    ]


def poison(topic: str, offset: int) -> Record:
    """A record that is not JSON."""
    return Record(value=b"{not json", topic=topic, offset=offset, timestamp=T0, source="kafka")


def record_id(line: bytes, wire_format: str) -> int:
    """The ``id`` of an ingested line (JSON object, or first CSV field)."""
    if wire_format == "csv":
        return int(next(csv.reader(io.StringIO(line.decode())))[0])
    return int(json.loads(line)["id"])


@dataclass
class Landed:
    """What ADX would ingest: per queued message or streamed request, its ids and properties."""

    kind: str
    """queued or streamed."""
    table: str
    ids: list[int]
    message: dict[str, Any] | None = None
    lines: list[bytes] | None = None

    @property
    def props(self) -> dict[str, Any]:
        """AdditionalProperties of a queued message."""
        return dict((self.message or {}).get("AdditionalProperties", {}))


def landed(standin: AdxStandIn) -> list[Landed]:
    """Every queued message (its blob un-gzipped) and every streamed request."""
    out = []
    for message in standin.queued_messages():
        data = standin.blob_bytes(message["BlobPath"])
        lines = [line for line in gzip.decompress(data).split(b"\n") if line]
        fmt = message["AdditionalProperties"]["format"]
        out.append(Landed("queued", message["TableName"], [record_id(x, fmt) for x in lines], message, lines))
    for request in standin.streamed:
        out.append(Landed("streamed", request.table, [record_id(x, request.stream_format) for x in request.lines],
                          lines=request.lines))
    return out


def landed_ids(standin: AdxStandIn) -> Counter[int]:
    """How often each id landed (queued or streamed)."""
    counts: Counter[int] = Counter()
    for item in landed(standin):
        counts.update(item.ids)
    return counts


def dead_letters(store: DeadLetterStore) -> list[DeadLetter]:
    """Every letter in the store."""
    return [letter for set_id in store.sets() for letter in store.read(set_id)]


def dead_ids(store: DeadLetterStore) -> Counter[tuple[str, int]]:
    """(topic, offset) of every dead letter."""
    return Counter((letter.record.topic, letter.record.offset) for letter in dead_letters(store))


def assert_nothing_lost(
    standin: AdxStandIn, store: DeadLetterStore, sent: Sequence[Record], *, raised: bool = False
) -> None:
    """Every record is in a queued/streamed batch or in the dead-letter store, unless the call
    raised (then the trigger redelivers them all). Ids equal offsets in these tests."""
    if raised:
        return
    ingested = landed_ids(standin)
    dead = dead_ids(store)
    missing = [r.where for r in sent if r.offset not in ingested and (r.topic, r.offset) not in dead]
    assert not missing, f"records neither ingested nor dead-lettered: {missing}"


# Fast but real: the same code paths as production, with short backoffs and timeouts.
FAST = AdxOptions(
    storage=StorageRetry(total=1, initial_backoff=0.05, increment_base=0.1, jitter=0.02,
                         connection_timeout=2, read_timeout=5),
    request_timeout=2,
    streaming_attempts=2,
    streaming_max_wait=0.2,
)


def fast_throttle_retries(clients: AdxClients) -> None:
    """Shorten the SDK's own waits between retries of throttled management commands (4 tries,
    up to 30 s each in production) so throttling tests stay quick; the retry logic is unchanged."""
    from azure.kusto.data.exceptions import KustoThrottlingError
    from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_fixed

    clients.queued._resource_manager._retryer = Retrying(
        wait=wait_fixed(0.05), retry=retry_if_exception_type(KustoThrottlingError),
        stop=stop_after_attempt(4), reraise=True,
    )


def batch_of(topic: str, recs: list[Record]) -> Batch:
    """Route and encode records with the real router/encoder and seal them into one batch."""
    router = Router(_BATCH_CONFIG)
    builder: BatchBuilder | None = None
    for record in recs:
        _, dest = router.resolve(record)
        builder = builder or BatchBuilder(dest)
        builder.add(record, encoder_for(_BATCH_CONFIG, dest).encode(record))
    assert builder is not None
    return builder.seal()


_BATCH_CONFIG = make_config()
