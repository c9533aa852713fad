"""Source-aware batch ids and no re-queue on redelivery, against the ADX stand-in and Azurite
with the real azure-kusto-ingest SDK (the delivery-trust issue, items 1-3)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from shared.deadletters.blob import BlobDeadLetterStore
from shared.errors import TransientError
from shared.pipeline.core import Pipeline, RetryPolicy
from shared.sinks.adx import AdxSink
from shared.sources.files import FileSource
from tests.support.adx import dead_letters, landed, landed_ids, make_config, records
from tests.support.adx_standin import AdxStandIn, FaultProxy


def _jsonl(path: Path, ids: range) -> Path:
    path.write_text("".join(json.dumps({"id": i, "kind": "k"}) + "\n" for i in ids))
    return path


def _tags(message: dict[str, Any]) -> list[str]:
    return list(json.loads(message["AdditionalProperties"].get("tags", "[]")))


def test_two_files_of_one_length_on_a_dedup_route_queue_two_blobs_with_two_tags(
    tmp_path: Path, sink: AdxSink, standin: AdxStandIn, dl_store: BlobDeadLetterStore
) -> None:
    """``ingest day1.jsonl`` then ``ingest day2.jsonl`` (same length, other records): each run
    queues its own blob and ingest-by tag, so ADX keeps both days; a rerun of day1 reuses
    day1's tag (ADX drops the copy)."""
    day1 = _jsonl(tmp_path / "day1.jsonl", range(0, 5))
    day2 = _jsonl(tmp_path / "day2.jsonl", range(5, 10))
    assert day1.stat().st_size == day2.stat().st_size
    for path in (day1, day2):
        # A process per run, as the command line has.
        Pipeline(make_config(), sink, dl_store).process(FileSource([path], "events-dedup"))
    messages = standin.queued_messages()
    assert len(messages) == 2
    assert len({m["BlobPath"].split("?")[0] for m in messages}) == 2
    tags = [_tags(m) for m in messages]
    assert tags[0] != tags[1] and all(t and t[0].startswith("ingest-by:") for t in tags)
    assert sorted(landed_ids(standin)) == list(range(10))  # each blob holds its own day's rows

    Pipeline(make_config(), sink, dl_store).process(FileSource([day1], "events-dedup"))
    rerun = standin.queued_messages()[-1]
    assert _tags(rerun) == tags[0]  # ADX skips it: ingestIfNotExists on day1's tag
    assert json.loads(rerun["AdditionalProperties"]["ingestIfNotExists"]) == [tags[0][0].removeprefix("ingest-by:")]


def test_storage_failing_after_the_first_batch_on_three_attempts_queues_each_record_once(
    sink: AdxSink, standin: AdxStandIn, blob_proxy: FaultProxy, dl_store: BlobDeadLetterStore
) -> None:
    """A route without dedup: the first batch used to be queued on every attempt (5 of 10
    records three times). The process remembers it queued it."""
    pipeline = Pipeline(make_config(max_batch_records=5), sink, dl_store, retry=RetryPolicy(attempts=1))
    sent = records("events", range(10))
    blob_proxy.fail("-tmp-", 503, method="PUT", after=1)  # the first batch's upload goes through
    for attempt in (1, 2):
        with pytest.raises(TransientError):
            pipeline.process(sent, attempt=attempt, final_attempt=False)
    result = pipeline.process(sent, attempt=3, final_attempt=True)
    assert Counter(landed_ids(standin)) == Counter(range(5))  # once each
    assert len(landed(standin)) == 1
    assert sorted(x.record.offset for x in dead_letters(dl_store)) == list(range(5, 10))
    assert (result.ingested, result.dead_lettered, result.already_queued) == (5, 5, 5)
