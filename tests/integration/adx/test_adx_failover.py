"""FACTS.md hazard: when the upload to the first temp container fails, the SDK retries the next
container with the already-consumed stream and queues a 0-byte blob. These tests reproduce the
failover against Azurite and check the bytes of the blob that was queued."""

from __future__ import annotations

import gzip
import io

from azure.kusto.data import KustoConnectionStringBuilder
from azure.kusto.ingest import QueuedIngestClient

from shared.sinks.adx import AdxSink, ingestion_properties, stream_descriptor
from tests.support.adx import batch_of, landed, records
from tests.support.adx_standin import AdxStandIn, FaultProxy


def test_plain_sdk_queues_a_zero_byte_blob_after_a_container_failover(
    standin: AdxStandIn, blob_proxy: FaultProxy
) -> None:
    """The hazard itself, with the unguarded SDK client (so the guard test below means something).
    A 403 is not retried by the storage SDK, so the failover happens at once."""
    blob_proxy.fail(standin.containers[0], 403, method="PUT")
    client = QueuedIngestClient(KustoConnectionStringBuilder.with_no_authentication(standin.url))
    batch = batch_of("events", records("events", [1, 2, 3]))
    try:
        client.ingest_from_stream(stream_descriptor(batch), ingestion_properties(batch))
    finally:
        client.close()

    [message] = standin.queued_messages()
    assert f"/{standin.containers[1]}/" in message["BlobPath"]
    assert standin.blob_bytes(message["BlobPath"]) == b""  # queued, and empty
    [failed] = blob_proxy.requests(standin.containers[0], failed=True)
    assert failed.body_size == len(batch.payload)  # the first try consumed the whole stream


def test_guarded_upload_fails_over_with_the_whole_payload(
    sink: AdxSink, standin: AdxStandIn, blob_proxy: FaultProxy
) -> None:
    blob_proxy.fail(standin.containers[0], 503, method="PUT")  # down for good (retried, then failover)
    batch = batch_of("events", records("events", [1, 2, 3]))
    sink.write(batch)

    [item] = landed(standin)
    message = item.message
    assert message is not None
    assert f"/{standin.containers[1]}/" in message["BlobPath"]
    data = standin.blob_bytes(message["BlobPath"])
    assert data == batch.payload
    assert gzip.decompress(data) == batch.decompressed()
    assert item.ids == [1, 2, 3]
    # The first container was really tried (first try + one retry) before failing over.
    assert len(blob_proxy.requests(standin.containers[0], failed=True)) == 2
    # No empty blob anywhere.
    assert all(len(b) > 0 for b in standin.blobs().values())


def test_guarded_upload_with_a_403_on_the_first_container(
    sink: AdxSink, standin: AdxStandIn, blob_proxy: FaultProxy
) -> None:
    """Same fault as the hazard test, through the sink: the whole payload lands."""
    blob_proxy.fail(standin.containers[0], 403, method="PUT")
    batch = batch_of("events", records("events", [4, 5]))
    sink.write(batch)
    [item] = landed(standin)
    assert standin.blob_bytes(item.message["BlobPath"]) == batch.payload  # type: ignore[index]


def test_stream_handed_to_the_sdk_is_fresh_per_call() -> None:
    batch = batch_of("events", records("events", [1]))
    first, second = stream_descriptor(batch), stream_descriptor(batch)
    assert first.stream is not second.stream
    first.stream.read()
    assert isinstance(second.stream, io.BytesIO) and second.stream.read() == batch.payload
    assert ingestion_properties(batch).additional_properties is not ingestion_properties(batch).additional_properties


def test_plain_sdk_queues_a_zero_byte_blob_when_the_same_batch_is_sent_again(standin: AdxStandIn) -> None:
    """No storage fault at all: a redelivered batch has the same source id, hence the same blob
    name; the SDK does not overwrite, gets 409 on the first container, fails over with the
    consumed stream and queues an empty blob. (Deterministic ids are what makes retries
    idempotent, so every retry would hit this.)"""
    client = QueuedIngestClient(KustoConnectionStringBuilder.with_no_authentication(standin.url))
    batch = batch_of("events", records("events", [1, 2]))
    try:
        for _ in range(2):
            client.ingest_from_stream(stream_descriptor(batch), ingestion_properties(batch))
    finally:
        client.close()
    sizes = [len(standin.blob_bytes(m["BlobPath"])) for m in standin.queued_messages()]
    assert sizes == [len(batch.payload), 0]


def test_guarded_sink_sends_a_redelivered_batch_whole_every_time(sink: AdxSink, standin: AdxStandIn) -> None:
    batch = batch_of("events", records("events", [1, 2]))
    for _ in range(3):
        sink.write(batch)
    messages = standin.queued_messages()
    assert len(messages) == 3
    assert all(standin.blob_bytes(m["BlobPath"]) == batch.payload for m in messages)
