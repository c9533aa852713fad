"""Nothing is lost under each injected fault, read back from Azurite:

* not the final attempt: the call raises (the trigger redelivers everything), or what it
  returned for is in a queued blob / the dead-letter store;
* the final attempt: every record is in a queued blob or in the dead-letter store;
* after the fault clears, a replay ingests the dead letters once, and a second replay adds
  nothing (records ingested twice by a redelivery carry the same ingest-by tag, so ADX keeps
  one copy).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable

import pytest

from shared.deadletters.blob import BlobDeadLetterStore
from shared.deadletters.replay import pipeline_reingest, replay
from shared.errors import DeadLetterError, TransientError
from shared.pipeline.core import Pipeline, RetryPolicy
from shared.sinks.adx import AdxSink
from tests.support.adx import assert_nothing_lost, dead_letters, landed, make_config, poison, records
from tests.support.adx_standin import AdxStandIn, FaultProxy

CONFIG = make_config(max_batch_records=4)
SENT = [*records("events-dedup", range(12)), poison("events-dedup", 100)]
GOOD_IDS = set(range(12))

Fault = Callable[[AdxStandIn, FaultProxy, FaultProxy], None]


def _mgmt_throttle(st: AdxStandIn, blobs: FaultProxy, queues: FaultProxy) -> None:
    st.mgmt.throttle = 10_000


def _mgmt_5xx(st: AdxStandIn, blobs: FaultProxy, queues: FaultProxy) -> None:
    st.mgmt.fail = 10_000


def _storage_down_mid_batch(st: AdxStandIn, blobs: FaultProxy, queues: FaultProxy) -> None:
    blobs.fail("-tmp-", 503, method="PUT", after=1)  # the first batch's upload goes through


def _queue_unavailable(st: AdxStandIn, blobs: FaultProxy, queues: FaultProxy) -> None:
    queues.fail(st.ready_queue, 503, method="POST")


# fault -> ids queued before the first attempt raised
FAULTS: dict[str, tuple[Fault, set[int]]] = {
    "ingest endpoint throttling": (_mgmt_throttle, set()),
    "ingest endpoint 5xx": (_mgmt_5xx, set()),
    "storage down mid-batch": (_storage_down_mid_batch, {0, 1, 2, 3}),
    "queue unavailable": (_queue_unavailable, set()),
}


def heal(st: AdxStandIn, *proxies: FaultProxy) -> None:
    st.mgmt.clear()
    st.ingest.clear()
    for proxy in proxies:
        proxy.heal()


def tags_by_id(st: AdxStandIn) -> dict[int, set[str]]:
    """For each landed id, the ingest-by tags it landed with (one tag = ADX keeps one copy)."""
    out: dict[int, set[str]] = defaultdict(set)
    for item in landed(st):
        tag = json.loads(item.props.get("tags", "[]"))
        for record_id in item.ids:
            out[record_id].update(tag or ["(untagged)"])
    return out


def assert_each_ingested_once(st: AdxStandIn) -> None:
    tags = tags_by_id(st)
    assert set(tags) == GOOD_IDS
    assert all(len(t) == 1 and next(iter(t)).startswith("ingest-by:kafka-adx-") for t in tags.values()), tags


@pytest.mark.parametrize(("fault", "queued_first"), list(FAULTS.values()), ids=list(FAULTS))
def test_fault_then_final_attempt_then_replay(
    fault: Fault,
    queued_first: set[int],
    sink: AdxSink,
    standin: AdxStandIn,
    blob_proxy: FaultProxy,
    queue_proxy: FaultProxy,
    dl_store: BlobDeadLetterStore,
) -> None:
    pipeline = Pipeline(CONFIG, sink, dl_store, retry=RetryPolicy(attempts=1))
    fault(standin, blob_proxy, queue_proxy)

    # 1. Not the final attempt: the transient failure is raised for redelivery.
    with pytest.raises(TransientError):
        pipeline.process(SENT, final_attempt=False)
    assert_nothing_lost(standin, dl_store, SENT, raised=True)
    assert set(tags_by_id(standin)) == queued_first  # what was queued before the fault hit
    assert dead_letters(dl_store) == []  # nothing dead-lettered on a non-final attempt

    # 2. Final attempt, fault still there: every record is queued or dead-lettered.
    result = pipeline.process(SENT, attempt=2, final_attempt=True)
    assert result.balanced and result.received == len(SENT)
    assert result.dead_lettered >= 1 + 4  # the poison record and at least one whole batch
    assert_nothing_lost(standin, dl_store, SENT)
    sink_letters = [x for x in dead_letters(dl_store) if x.stage == "sink"]
    assert sink_letters and all(x.destination and x.destination.dedup for x in sink_letters)
    assert all("transient (final attempt)" in x.reason for x in sink_letters)

    # 3. The fault clears; a replay ingests every dead letter once.
    heal(standin, blob_proxy, queue_proxy)
    report = replay(dl_store, pipeline_reingest(pipeline))
    assert report.ingested == len(sink_letters)
    assert report.dead_lettered == 1  # the poison record is still not JSON: dead-lettered again
    assert_each_ingested_once(standin)

    # 4. A second replay ingests nothing new.
    messages = len(standin.queued_messages())
    again = replay(dl_store, pipeline_reingest(pipeline))
    assert again.ingested == 0
    assert again.letters_selected == 1  # only the poison record, which keeps failing
    assert len(standin.queued_messages()) == messages


def test_streaming_throttling_and_5xx_lose_nothing(
    sink: AdxSink, standin: AdxStandIn, dl_store: BlobDeadLetterStore
) -> None:
    """The streaming endpoint failing falls back to queued ingestion: everything lands."""
    pipeline = Pipeline(CONFIG, sink, dl_store, retry=RetryPolicy(attempts=1))
    standin.ingest.throttle = 2  # first batch: both streaming tries throttled
    standin.ingest.fail = 2  # second batch: both 500
    sent = records("live", range(12))
    result = pipeline.process(sent, final_attempt=False)
    assert (result.ingested, result.dead_lettered) == (12, 0)
    kinds = sorted(item.kind for item in landed(standin))
    assert kinds == ["queued", "queued", "streamed"]
    assert sorted(i for item in landed(standin) for i in item.ids) == list(range(12))


def test_dead_letter_storage_down_raises_so_the_batch_is_retried(
    sink: AdxSink,
    standin: AdxStandIn,
    blob_proxy: FaultProxy,
    dl_store: BlobDeadLetterStore,
    storage_names: str,
) -> None:
    pipeline = Pipeline(CONFIG, sink, dl_store, retry=RetryPolicy(attempts=1))
    standin.mgmt.permanent = True  # ADX refuses for good: the batches must be dead-lettered...
    down = blob_proxy.fail(f"{storage_names}-deadletter", 503)  # ...and dead-letter storage is down

    for final in (False, True):
        with pytest.raises(DeadLetterError):
            pipeline.process(SENT, final_attempt=final)
    assert landed(standin) == []

    # Dead-letter storage is back (ADX still refuses): the final attempt dead-letters everything.
    blob_proxy.heal(down)
    result = pipeline.process(SENT, attempt=3, final_attempt=True)
    assert (result.ingested, result.dead_lettered) == (0, len(SENT))
    assert_nothing_lost(standin, dl_store, SENT)
    assert all("terminal" in x.reason for x in dead_letters(dl_store) if x.stage == "sink")

    # ADX is fixed: the replay ingests each record once; a second replay adds nothing.
    standin.mgmt.clear()
    report = replay(dl_store, pipeline_reingest(pipeline))
    assert report.ingested == 12
    assert_each_ingested_once(standin)
    assert replay(dl_store, pipeline_reingest(pipeline)).ingested == 0
