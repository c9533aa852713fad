"""What ADX would receive from the sink, read back from Azurite (queue messages decoded, blobs
un-gzipped) and from the stand-in's streaming endpoint."""

from __future__ import annotations

import gzip
import json
import uuid

import pytest

from shared.deadletters.local import LocalDeadLetterStore
from shared.errors import TerminalError
from shared.pipeline.batching import BatchBuilder
from shared.pipeline.core import Pipeline, RetryPolicy
from shared.pipeline.destination import Destination
from shared.pipeline.encoding import encoder_for
from shared.pipeline.records import Record
from shared.sinks.adx import AdxClients, AdxSink
from tests.support.adx import DATABASE, FAST, T0, batch_of, landed, make_config, record_id, records
from tests.support.adx_standin import AdxStandIn

CONFIG = make_config()


def test_server_mapped_route_queues_the_records_unchanged_with_the_mapping_reference(
    sink: AdxSink, standin: AdxStandIn
) -> None:
    recs = records("events", [3, 1, 2])
    batch = batch_of("events", recs)
    sink.write(batch)

    [item] = landed(standin)
    message = item.message
    assert message is not None
    assert item.kind == "queued"
    assert (message["DatabaseName"], message["TableName"]) == (DATABASE, "Events")
    assert item.lines == [r.value for r in recs]  # forwarded unchanged, in order
    assert message["RawDataSize"] == batch.raw_size == sum(len(r.value or b"") + 1 for r in recs)
    assert message["Id"] == str(batch.source_id)
    assert uuid.UUID(message["Id"]) == uuid.UUID(batch.batch_id[:32])  # derived from the batch id
    assert message["ReportLevel"] == 0  # FailuresOnly
    assert message["FlushImmediately"] is False
    assert "__kafka-adx-" in message["BlobPath"] and ".json.gz?" in message["BlobPath"]
    props = item.props
    assert props["format"] == "json"
    assert props["ingestionMappingReference"] == "EventsMap"
    assert props["ingestionMappingType"] == "Json"
    assert "ingestionMapping" not in props
    assert props["creationTime"] == "2024-05-01T12:00:01.000000Z"  # the oldest record (offset 1)
    assert props["authorizationContext"] == "standin-authorization-context"
    assert "tags" not in props and "ingestIfNotExists" not in props
    assert standin.streamed == []


def test_client_mapped_route_sends_csv_rows_in_column_order_without_a_mapping(
    sink: AdxSink, standin: AdxStandIn
) -> None:
    recs = records("clicks", [10, 11], partition=4, kind='quote " and, comma')
    sink.write(batch_of("clicks", recs))

    [item] = landed(standin)
    props = item.props
    assert item.table == "Clicks"
    assert props["format"] == "csv"
    assert "ingestionMappingReference" not in props and "ingestionMapping" not in props
    assert "ingestionMappingType" not in props
    # Columns id, kind, topic, offset: the metadata columns are filled in by the function.
    import csv
    import io

    rows = [next(csv.reader(io.StringIO(line.decode()))) for line in item.lines or []]
    assert rows == [["10", 'quote " and, comma', "clicks", "10"], ["11", 'quote " and, comma', "clicks", "11"]]


def test_dedup_route_carries_ingest_by_and_ingest_if_not_exists_tags_from_the_batch_id(
    sink: AdxSink, standin: AdxStandIn
) -> None:
    batch = batch_of("events-dedup", records("events-dedup", [1, 2]))
    sink.write(batch)
    sink.write(batch)  # a redelivered trigger batch: same blob name, same tags

    first, second = (item.props for item in landed(standin))
    tag = f"kafka-adx-{batch.batch_id[:32]}"
    assert json.loads(first["tags"]) == [f"ingest-by:{tag}"]
    assert json.loads(first["ingestIfNotExists"]) == [tag]
    assert second["tags"] == first["tags"] and second["ingestIfNotExists"] == first["ingestIfNotExists"]
    # The retry overwrote the blob of the first try instead of failing on it (same source id).
    blobs = standin.blobs()
    assert len(blobs) == 1
    assert [record_id(x, "json") for x in gzip.decompress(next(iter(blobs.values()))).splitlines()] == [1, 2]


def test_request_objects_are_fresh_for_every_call(sink: AdxSink, standin: AdxStandIn) -> None:
    """The SDK mutates additional_properties; a reused dict would leak tags into the next call."""
    sink.write(batch_of("events-dedup", records("events-dedup", [1])))
    sink.write(batch_of("events", records("events", [50])))

    dedup, plain = (item.props for item in landed(standin))
    assert "tags" in dedup
    assert "tags" not in plain and "ingestIfNotExists" not in plain
    assert plain["creationTime"] == "2024-05-01T12:00:50.000000Z"


def test_streaming_route_posts_to_the_streaming_endpoint(sink: AdxSink, standin: AdxStandIn) -> None:
    recs = records("live", [7, 8, 9])
    sink.write(batch_of("live", recs))

    [request] = standin.streamed
    assert (request.database, request.table) == (DATABASE, "Live")
    assert request.stream_format == "json" and request.mapping_name == "LiveMap"
    assert request.lines == [r.value for r in recs]
    assert request.headers.get("Content-Encoding") == "gzip"
    assert standin.queued_messages() == []
    assert sink.counts["streamed"] == 1


@pytest.mark.parametrize("fault", ["throttle", "fail"])
def test_streaming_throttling_or_5xx_falls_back_to_queued(sink: AdxSink, standin: AdxStandIn, fault: str) -> None:
    setattr(standin.ingest, fault, 10)
    batch = batch_of("live", records("live", [1, 2]))
    sink.write(batch)

    [item] = landed(standin)
    assert item.kind == "queued" and item.ids == [1, 2]
    assert item.props["ingestionMappingReference"] == "LiveMap"
    status = 429 if fault == "throttle" else 500
    assert standin.count("/v1/rest/ingest/", status) == FAST.streaming_attempts
    assert sink.counts["fallback"] == 1


def test_streaming_payload_over_the_limit_goes_queued_without_a_streaming_request(
    standin: AdxStandIn, adx_settings: object
) -> None:
    from dataclasses import replace

    clients = AdxClients(adx_settings, replace(FAST, streaming_max_bytes=64))  # type: ignore[arg-type]
    try:
        batch = batch_of("live", records("live", range(40)))
        assert len(batch.payload) > 64
        AdxSink(clients).write(batch)
    finally:
        clients.close()
    [item] = landed(standin)
    assert item.kind == "queued" and item.ids == list(range(40))
    assert standin.count("/v1/rest/ingest/") == 0


def test_streaming_disabled_404_goes_queued_and_stops_trying_streaming(sink: AdxSink, standin: AdxStandIn) -> None:
    standin.ingest.not_found = True
    sink.write(batch_of("live", records("live", [1])))
    tries = standin.count("/v1/rest/ingest/", 404)
    sink.write(batch_of("live", records("live", [2])))

    assert [item.ids for item in landed(standin) if item.kind == "queued"] == [[1], [2]]
    assert tries >= 1
    assert standin.count("/v1/rest/ingest/", 404) == tries  # the second batch did not try streaming


def test_streaming_permanent_error_is_terminal_and_queues_nothing(sink: AdxSink, standin: AdxStandIn) -> None:
    standin.ingest.permanent = True
    with pytest.raises(TerminalError, match="BadRequest_EntityNotFound"):
        sink.write(batch_of("live", records("live", [1])))
    assert landed(standin) == []


def test_destination_built_without_the_pipeline_is_encoded_as_configured(sink: AdxSink, standin: AdxStandIn) -> None:
    """A hand-built destination (as replay uses) goes through the same properties path."""
    dest = Destination(DATABASE, "Events", "json", "EventsMap", "server")
    builder = BatchBuilder(dest)
    record = Record(value=b'{"id": 5, "kind": "x"}', topic="t", offset=5, timestamp=T0)
    builder.add(record, encoder_for(CONFIG, dest).encode(record))
    sink.write(builder.seal())
    [item] = landed(standin)
    assert item.ids == [5] and item.props["ingestionMappingReference"] == "EventsMap"


def test_pipeline_with_the_adx_sink_balances(sink: AdxSink, standin: AdxStandIn, tmp_path: object) -> None:
    store = LocalDeadLetterStore(str(tmp_path))
    pipeline = Pipeline(CONFIG, sink, store, retry=RetryPolicy(attempts=1))
    sent = records("events", range(5)) + records("clicks", range(100, 103)) + records("live", range(200, 202))
    result = pipeline.process(sent)
    assert (result.received, result.ingested, result.dead_lettered) == (10, 10, 0)
    by_table = {item.table: sorted(item.ids) for item in landed(standin)}
    assert by_table == {"Events": [0, 1, 2, 3, 4], "Clicks": [100, 101, 102], "Live": [200, 201]}



def test_streaming_request_refused_as_too_large_falls_back_to_queued(sink: AdxSink, standin: AdxStandIn) -> None:
    standin.ingest.max_body = 10  # the service refuses the body (non-permanent error)
    sink.write(batch_of("live", records("live", [1, 2])))
    [item] = landed(standin)
    assert item.kind == "queued" and item.ids == [1, 2]
    assert standin.count("/v1/rest/ingest/", 413) >= 1


def test_one_set_of_clients_per_process(adx_settings: object) -> None:
    from shared.sinks.adx import clients_for

    first = AdxSink.from_settings(adx_settings)  # type: ignore[arg-type]
    second = AdxSink.from_settings(adx_settings)  # type: ignore[arg-type]
    assert first.clients is second.clients is clients_for(adx_settings)  # type: ignore[arg-type]
    assert first.clients.streaming is second.clients.streaming  # built once, on first use
    assert first.clients.streaming.queued_client is first.clients.queued  # fallback shares the guarded client


def test_connection_string_builders_are_fresh() -> None:
    from azure.identity import ManagedIdentityCredential

    from shared.sinks.adx import connection_string

    uri = "https://ingest-c.westeurope.kusto.windows.net"
    mi = ManagedIdentityCredential()
    # Separate builders: the SDK rewrites the one it is given.
    a, b = connection_string(uri, mi), connection_string(uri, mi)
    assert a is not b and a.azure_credential is mi
