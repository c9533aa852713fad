"""The deployed path end to end: ``function_app.py`` indexed with ADX app settings, its
registered Event Hubs and Kafka functions called the way the worker calls them, the
process-wide worker built from those settings alone (ADX sink over the SDK, blob dead-letter
store), and every outcome read back from what really landed in Azurite: the queued ingestion
messages (blobs un-gzipped) the ADX stand-in's data manager would pick up, and the dead-letter
blobs.

One trigger batch holds records for a server-mapped destination (JSON + ``EventsMap``), for a
client-mapped one chosen by the ``Table`` header (``ClicksMap`` reads the ``topic`` and
``offset`` metadata, so the function sends CSV rows), and poison (not JSON, a table off the
header-routing allow-list, bad JSON for the client route).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from shared.config import parse_config
from shared.deadletters.blob import BlobDeadLetterStore
from shared.errors import TransientError
from shared.functions import worker as functions_worker
from shared.pipeline.deadletter import DeadLetter
from shared.sinks import adx
from shared.sinks.adx.sink import AdxSink
from tests.fixtures.azurite import Azurite
from tests.support.adx import DATABASE, Landed, config_data, fast_throttle_retries, landed
from tests.support.adx_standin import AdxStandIn
from tests.support.functions_app import EVENTHUB_ENV, blob_dead_letters, load_app
from tests.support.functions_host import Context, HubEvent, KafkaMessage, eventhub_events, kafka_events

pytestmark = pytest.mark.azurite

HUB = "events"
GOOD_EVENTS = [1, 2, 3, 4]
"""Ids (= offsets / sequence numbers) routed to Events: server mapping."""
GOOD_CLICKS = [5, 6, 7]
"""Ids with the header Table=Clicks: client mapping with metadata columns."""
POISON = {
    8: (b"{not json", None),
    9: (json.dumps({"id": 9, "kind": "x"}).encode(), b"Secret"),
    10: (b"[1, 2", b"Clicks"),
}
"""Offset -> (value, Table header): poison whatever the sink does."""
TOTAL = len(GOOD_EVENTS) + len(GOOD_CLICKS) + len(POISON)


def _batch() -> list[tuple[int, bytes, bytes | None]]:
    """(offset, value, Table header) of every record in the trigger batch, in offset order."""
    items = [(i, json.dumps({"id": i, "kind": "e"}).encode(), None) for i in GOOD_EVENTS]
    items += [(i, json.dumps({"id": i, "kind": "c"}).encode(), b"Clicks") for i in GOOD_CLICKS]
    items += [(offset, value, table) for offset, (value, table) in POISON.items()]
    return sorted(items)


def _headers(table: bytes | None) -> list[tuple[str, bytes | None]]:
    return [] if table is None else [("Table", table)]


def eventhub_batch() -> list[Any]:
    """The batch as a Kafka producer wrote it through the Event Hubs Kafka endpoint."""
    return eventhub_events(
        [HubEvent.from_kafka_producer(offset, value, key=f"k{offset}".encode(), headers=_headers(table))
         for offset, value, table in _batch()],
        event_hub=HUB,
    )


def kafka_batch() -> list[Any]:
    """The batch as the Kafka trigger hands it over (binary values)."""
    return kafka_events(
        [KafkaMessage(HUB, offset, value, key=f"k{offset}".encode(), headers=_headers(table))
         for offset, value, table in _batch()]
    )


@dataclass(frozen=True)
class Trigger:
    """One registered function: its app settings, name, batch and what its records carry."""

    env: dict[str, str]
    function: str
    batch: Callable[[], list[Any]]
    creation_time: str
    """ADX ``creationTime``: the batch's oldest record time (enqueued time / Kafka timestamp)."""


TRIGGERS = {
    "eventhub": Trigger({**EVENTHUB_ENV, "EVENTHUB_NAME": HUB}, "eventhub_ingest", eventhub_batch,
                        "2024-05-01T12:00:00.250000Z"),
    "kafka": Trigger({"KAFKA_BROKERS": "127.0.0.1:9092", "KAFKA_TOPIC": HUB}, "kafka_ingest", kafka_batch,
                     "2024-05-01T12:00:00.123456Z"),
}


@dataclass
class DeployedApp:
    """The function app indexed with ADX settings, its stand-in and its dead-letter container."""

    functions: dict[str, Any]
    standin: AdxStandIn
    deadletter_uri: str

    def call(self, name: str, events: list[Any], context: Context) -> Any:
        """Call a registered function the way the worker does."""
        return self.functions[name].get_user_function()(events=events, context=context)

    def dead_letters(self) -> list[DeadLetter]:
        """Every dead letter in the blob container (read back with a fresh store)."""
        return blob_dead_letters(self.deadletter_uri)


@pytest.fixture
def deployed(
    azurite: Azurite, storage_names: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[str], DeployedApp]]:
    """A factory: the app indexed with the given trigger's settings plus ADX_INGEST_URI (the
    stand-in), ADX_AUTH=none, DEADLETTER_BLOB_URI (an Azurite container SAS URI) and a small
    INGESTION_CONFIG. The process-wide worker is reset, so the first call builds it from
    those settings as a deployed worker does."""
    data = config_data()
    data["routes"] = [
        {**data["routes"][0], "header_routing": [{"table": "Clicks", "mapping": "ClicksMap", "apply_mapping": "client"}]}
    ]
    config = tmp_path / "ingestion.yaml"
    config.write_text(json.dumps(data))  # JSON is YAML
    container = f"{storage_names}-deadletter"
    azurite.create_container(container)
    standin = AdxStandIn(azurite, storage_names)
    standin.apply_config(parse_config(data, str(config)))  # the tables exist, as preflight checks
    functions_worker.reset()

    def make(trigger: str) -> DeployedApp:
        uri = azurite.container_sas_uri(container)
        functions = load_app(monkeypatch, {
            **TRIGGERS[trigger].env,
            "ADX_INGEST_URI": standin.url,
            "ADX_AUTH": "none",
            "DEADLETTER_BLOB_URI": uri,
            "INGESTION_CONFIG": str(config),
        })
        return DeployedApp(functions, standin, uri)

    yield make
    functions_worker.reset()  # closes the sink and the blob dead-letter store
    # The ADX clients are process-wide (keyed by URI): close and forget them, so a later test on
    # a reused port cannot pick up closed clients.
    adx.close_process_clients()
    standin.close()


def batch_counts(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    """The counts of every ``kafka-adx batch`` log line (the function returns nothing)."""
    return [
        {k: getattr(r, f"kafka_adx_{k}") for k in ("outcome", "received", "ingested", "dead_lettered")}
        for r in caplog.records
        if hasattr(r, "kafka_adx_received")
    ]


def ids_by_table(items: list[Landed]) -> dict[str, list[int]]:
    """Table -> ids of every queued message for it, in order."""
    out: dict[str, list[int]] = {}
    for item in items:
        out.setdefault(item.table, []).extend(item.ids)
    return out


@pytest.mark.parametrize("trigger", sorted(TRIGGERS))
def test_batch_lands_in_adx_and_poison_in_the_blob_dead_letters(
    trigger: str, deployed: Callable[[str], DeployedApp], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="kafka_adx.functions")
    app = deployed(trigger)
    spec = TRIGGERS[trigger]

    assert app.call(spec.function, spec.batch(), Context(spec.function, retry_count=0, max_retry_count=5)) is None

    # The worker was built from the settings alone: the ADX sink and the blob dead-letter store.
    state = functions_worker.worker()
    assert isinstance(state.pipeline.sink, AdxSink)
    assert isinstance(state.pipeline.deadletters, BlobDeadLetterStore)
    assert state.pipeline.retry.attempts == 1  # the trigger's retry policy retries, not the worker

    # What ADX would receive: one queued message per table, read back from Azurite.
    items = landed(app.standin)
    assert all(item.kind == "queued" for item in items)
    assert ids_by_table(items) == {"Events": GOOD_EVENTS, "Clicks": GOOD_CLICKS}
    events = next(item for item in items if item.table == "Events")
    clicks = next(item for item in items if item.table == "Clicks")
    for item in (events, clicks):
        assert item.message is not None and item.message["DatabaseName"] == DATABASE
        assert item.props["creationTime"] == spec.creation_time
    # Server mapping: the original JSON, ADX applies EventsMap.
    assert events.props["format"] == "json"
    assert events.props["ingestionMappingReference"] == "EventsMap"
    assert events.lines == [json.dumps({"id": i, "kind": "e"}).encode() for i in GOOD_EVENTS]
    # Client mapping: the function applied ClicksMap (metadata columns topic and offset) and
    # sends CSV rows in table column order, with no mapping reference.
    assert clicks.props["format"] == "csv"
    assert "ingestionMappingReference" not in clicks.props
    assert clicks.lines == [f"{i},c,{HUB},{i}".encode() for i in GOOD_CLICKS]

    # The poison, in the blob dead-letter container, original bytes and reason kept.
    letters = app.dead_letters()
    assert sorted(letter.record.offset for letter in letters) == sorted(POISON)
    by_offset = {letter.record.offset: letter for letter in letters}
    for offset, (value, _table) in POISON.items():
        assert by_offset[offset].record.value == value
        assert by_offset[offset].record.topic == HUB
    assert by_offset[8].stage == "decode" and "invalid JSON" in by_offset[8].reason
    assert by_offset[9].stage == "route" and "'Secret' is not on the allow-list" in by_offset[9].reason
    assert by_offset[10].stage == "decode" and "invalid JSON" in by_offset[10].reason

    # Nothing lost, nothing twice: received == ingested + dead-lettered, in the batch log line
    # and in what is really in Azurite.
    assert batch_counts(caplog) == [
        {"outcome": "partial", "received": TOTAL, "ingested": 7, "dead_lettered": len(POISON)}
    ]
    assert sum(len(item.ids) for item in items) + len(letters) == TOTAL


@pytest.mark.parametrize("fault", ["throttle", "fail"])
def test_persistent_adx_failure_raises_until_the_final_attempt_then_dead_letters_the_batch(
    fault: str, deployed: Callable[[str], DeployedApp], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="kafka_adx.functions")
    app = deployed("eventhub")
    spec = TRIGGERS["eventhub"]
    # 429s or 500s on every management command (".get ingestion resources" comes first).
    setattr(app.standin.mgmt, fault, 1_000_000)
    # The worker a deployed app builds from its settings; only the SDK's own wait between
    # throttled retries (up to 30 s each) is shortened, its retry logic is kept.
    sink = functions_worker.worker().pipeline.sink
    assert isinstance(sink, AdxSink)
    fast_throttle_retries(sink.clients)

    for retry_count in (0, 1):  # not the final attempt: raise, so the host redelivers
        with pytest.raises(TransientError):
            app.call(spec.function, spec.batch(), Context(spec.function, retry_count, max_retry_count=2))
        assert app.dead_letters() == []  # the redelivery handles the whole batch, poison included
    assert app.standin.count("/v1/rest/mgmt", 429 if fault == "throttle" else 500) >= 2

    # The final attempt: the whole batch goes to the blob dead-letter store, and it returns.
    assert app.call(spec.function, spec.batch(), Context(spec.function, 2, max_retry_count=2)) is None
    assert landed(app.standin) == []
    letters = app.dead_letters()
    assert sorted(letter.record.offset for letter in letters) == list(range(1, TOTAL + 1))
    for letter in letters:
        assert letter.attempt == 3
        if letter.record.offset not in POISON:
            assert letter.stage == "sink"
            assert ("KustoThrottlingError" if fault == "throttle" else "Internal_ServiceError") in letter.reason
    assert {letter.record.offset for letter in letters if letter.stage != "sink"} == set(POISON)
    assert [c["outcome"] for c in batch_counts(caplog)] == ["retry", "retry", "dead-lettered"]
    assert batch_counts(caplog)[-1] == {
        "outcome": "dead-lettered", "received": TOTAL, "ingested": 0, "dead_lettered": TOTAL
    }
