"""The function app invoked through the real runtime library, on Python 3.13, as deployed.

``function_app.py`` runs unchanged in its own venv (requirements.txt only, with the app-pinned
``azure-functions-runtime``) and is driven by the host stand-in (:mod:`tests.support.runtime_host`)
with ``TypedData`` built as the Functions host builds them. The app is configured as in Azure:
ADX (the stand-in, over the SDK), dead letters in a blob container (Azurite). Every outcome is
read back from what really landed: the queued ingestion blobs and the dead-letter blobs.

The table ``Meta`` is client-mapped from record metadata (key, partition, offset, timestamp and
the ``trace`` header), so what the worker's conversion of the host's metadata gave the app is
visible, row by row, in what ADX would ingest.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from shared.config import parse_config
from shared.pipeline.deadletter import DeadLetter
from tests.fixtures.azurite import Azurite
from tests.support.adx import DATABASE, Landed, landed
from tests.support.adx_standin import AdxStandIn
from tests.support.functions_app import EVENTHUB_ENV, blob_dead_letters
from tests.support.functions_host import (
    HubEvent,
    KafkaMessage,
    Wire,
    eventhub_trigger_data,
    host_string_array,
    kafka_trigger_data,
)
from tests.support.runtime_host import Retry, RuntimeHost, deployment_package, protos, success

pytestmark = pytest.mark.azurite

TOPIC = "events"
T0 = datetime(2024, 5, 1, 12, 0, 0, 250000, tzinfo=UTC)

CONFIG = {
    "database": DATABASE,
    "tables": {
        "Meta": {
            "columns": [
                {"name": "id", "type": "long"}, {"name": "key", "type": "string"},
                {"name": "partition", "type": "int"}, {"name": "offset", "type": "long"},
                {"name": "ts", "type": "datetime"}, {"name": "trace", "type": "string"},
            ],
            "mappings": {"MetaMap": {"kind": "json", "columns": [
                {"column": "id", "Properties": {"Path": "$.id"}},
                {"column": "key", "Properties": {"Metadata": "key"}},
                {"column": "partition", "Properties": {"Metadata": "partition"}},
                {"column": "offset", "Properties": {"Metadata": "offset"}},
                {"column": "ts", "Properties": {"Metadata": "timestamp"}},
                {"column": "trace", "Properties": {"Metadata": "header:trace"}},
            ]}},
        },
    },
    "routes": [{"topic": TOPIC, "table": "Meta", "format": "json", "mapping": "MetaMap", "apply_mapping": "client"}],
}  # fmt: skip


def value(i: int) -> bytes:
    """The JSON value of record ``i`` (id = offset / sequence number)."""
    return json.dumps({"id": i}).encode()


POISON = b"{not json"


@dataclass
class RuntimeApp:
    """The deployed app in its worker, the ADX stand-in it ingests into and its dead letters."""

    host: RuntimeHost
    standin: AdxStandIn
    deadletter_uri: str
    init: Any
    metadata: Any

    def dead_letters(self) -> list[DeadLetter]:
        """Every dead letter in the blob container (read back with a fresh store)."""
        return blob_dead_letters(self.deadletter_uri)

    def rows(self) -> list[list[str]]:
        """The CSV rows queued for Meta, in order."""
        items = landed(self.standin)
        assert all(item.kind == "queued" and item.table == "Meta" for item in items), items
        return [line.decode().split(",") for item in items for line in item.lines or []]

    def landed(self) -> list[Landed]:
        """Every queued ingestion."""
        return landed(self.standin)


@pytest.fixture
def runtime_app(
    azurite: Azurite, storage_names: str, tmp_path: Path
) -> Iterator[Callable[[dict[str, str]], RuntimeApp]]:
    """A factory: the deployment package in its Python 3.13 worker, indexed with the given trigger
    settings plus ADX_INGEST_URI (the stand-in), ADX_AUTH=none, DEADLETTER_BLOB_URI (an Azurite
    container SAS URI) and INGESTION_CONFIG (a file in the package, as deployed)."""
    package = deployment_package(tmp_path / "wwwroot")
    (package / "ingestion.yaml").write_text(json.dumps(CONFIG))  # JSON is YAML
    container = f"{storage_names}-deadletter"
    azurite.create_container(container)
    standin = AdxStandIn(azurite, storage_names)
    standin.apply_config(parse_config(CONFIG, str(package / "ingestion.yaml")))
    hosts: list[RuntimeHost] = []

    def make(env: dict[str, str]) -> RuntimeApp:
        uri = azurite.container_sas_uri(container)
        settings = {**env, "ADX_INGEST_URI": standin.url, "ADX_AUTH": "none", "DEADLETTER_BLOB_URI": uri,
                    "INGESTION_CONFIG": str(package / "ingestion.yaml")}  # fmt: skip
        host = RuntimeHost(package, settings, tmp_path / f"worker-{len(hosts)}.log")
        hosts.append(host)
        init, metadata = host.start()
        return RuntimeApp(host, standin, uri, init, metadata)

    yield make
    for host in hosts:
        host.close()
    standin.close()


EVENTHUB = {**EVENTHUB_ENV, "EVENTHUB_NAME": TOPIC}
KAFKA = {"KAFKA_BROKERS": "127.0.0.1:9092", "KAFKA_TOPIC": TOPIC}


def hub_batch(ids: list[int], *, poison: tuple[int, ...] = ()) -> tuple[Wire, dict[str, Wire]]:
    """An Event Hubs batch a Kafka producer wrote through the Kafka endpoint: key k<i> (the
    x-opt-kafka-key annotation), header trace=t<i> (a binary application property); even ids
    have no key."""
    events = [
        HubEvent.from_kafka_producer(
            i, POISON if i in poison else value(i), key=None if i % 2 == 0 else f"k{i}".encode(),
            headers=[("trace", f"t{i}".encode())],
        )
        for i in ids
    ]  # fmt: skip
    for event in events:
        event.enqueued = T0 + timedelta(seconds=event.sequence_number)
    return eventhub_trigger_data(events, event_hub=TOPIC, partition="3")


def kafka_batch(ids: list[int], *, data_type: str = "binary", poison: tuple[int, ...] = (),
                partition: int = 2) -> tuple[Wire, dict[str, Wire]]:
    """A Kafka batch: key k<i> (none for even ids), header trace=t<i>."""
    messages = [
        KafkaMessage(TOPIC, i, POISON if i in poison else value(i), partition=partition,
                     key=None if i % 2 == 0 else f"k{i}".encode(), headers=[("trace", f"t{i}".encode())],
                     timestamp=T0 + timedelta(seconds=i))
        for i in ids
    ]  # fmt: skip
    return kafka_trigger_data(messages, data_type=data_type)


def expected_row(i: int, partition: int) -> list[str]:
    """The CSV row Meta gets for record ``i``: a missing key is an empty (null) column."""
    ts = (T0 + timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"  # ADX datetime text: 7 digits
    return [str(i), "" if i % 2 == 0 else f"k{i}", str(partition), str(i), ts, f"t{i}"]


def failure(response: Any) -> str:
    """The exception message of a failed InvocationResponse."""
    assert response.result.status == protos.StatusResult.Failure, "the invocation succeeded"
    return str(response.result.exception.message)


# --------------------------------------------------------------------------- batches


@pytest.mark.parametrize("trigger", ["eventhub", "kafka-binary", "kafka-string"])
def test_a_batch_lands_with_its_metadata_and_poison_is_dead_lettered(
    trigger: str, runtime_app: Callable[[dict[str, str]], RuntimeApp]
) -> None:
    ids, poison = list(range(1, 9)), (5,)
    if trigger == "eventhub":
        app, function, partition = runtime_app(EVENTHUB), "eventhub_ingest", 3
        body, metadata = hub_batch(ids, poison=poison)
        # The annotation is a DateTimeOffset (+00:00), EnqueuedTimeUtc a DateTime without offset;
        # both name the same instant, which becomes the record's timestamp (the ts column).
        system = json.loads(metadata["SystemPropertiesArray"][1])[0]
        assert system["x-opt-enqueued-time"] == "2024-05-01T12:00:01.25+00:00"
        assert system["EnqueuedTimeUtc"] == "2024-05-01T12:00:01.25"
    else:
        data_type = trigger.removeprefix("kafka-")
        app, function, partition = runtime_app({**KAFKA, "KAFKA_DATA_TYPE": data_type}), "kafka_ingest", 2
        body, metadata = kafka_batch(ids, data_type=data_type, poison=poison)

    response = app.host.invoke(function, body, metadata, Retry(0, 5))

    assert success(response), response.result.exception.message
    assert not response.HasField("return_value") or response.return_value.WhichOneof("data") is None
    assert app.rows() == [expected_row(i, partition) for i in ids if i not in poison]
    (letter,) = app.dead_letters()
    assert (letter.record.topic, letter.record.partition, letter.record.offset) == (TOPIC, partition, 5)
    assert letter.record.value == POISON and letter.stage == "decode" and letter.attempt == 1
    assert letter.record.headers == (("trace", b"t5"),) and letter.record.key == b"k5"
    # The batch's log line came back over the stream as an RpcLog of this invocation.
    summaries = [m for m in app.host.log_messages() if m.startswith("kafka-adx batch")]
    assert len(summaries) == 1 and "received=8" in summaries[0] and "ingested=7" in summaries[0], summaries


def test_the_collections_are_not_index_aligned_and_the_app_does_not_rely_on_them(
    runtime_app: Callable[[dict[str, str]], RuntimeApp],
) -> None:
    """Even ids have no key: the host leaves them out of PartitionKeyArray-like string arrays
    (here: AMQP partition keys, null for even ids), so that array is shorter than the batch; the
    app reads each event's key from its own SystemProperties entry instead."""
    app = runtime_app(EVENTHUB)
    events = [HubEvent(i, value(i), properties={"trace": "dA=="}, partition_key=None if i % 2 == 0 else f"p{i}")
              for i in range(1, 7)]  # fmt: skip
    body, metadata = eventhub_trigger_data(events, event_hub=TOPIC, partition="0")
    assert metadata["PartitionKeyArray"] == host_string_array(["p1", None, "p3", None, "p5", None])
    assert len(metadata["PartitionKeyArray"][1]) == 3 and len(body[1]) == 6

    assert success(app.host.invoke("eventhub_ingest", body, metadata, Retry(0, 5)))

    rows = app.rows()
    assert [(row[0], row[1], row[5]) for row in rows] == [
        (str(i), "" if i % 2 == 0 else f"p{i}", "t") for i in range(1, 7)
    ]


def test_a_null_kafka_key_is_null_whether_it_comes_as_null_or_as_an_empty_string(
    runtime_app: Callable[[dict[str, str]], RuntimeApp],
) -> None:
    """KeyArray holds null for a record without a key (keyDataType Binary); the string form
    was seen carrying '' instead. Both are a null key (a NULL column), by decision: an empty key
    cannot be told from none there, and none is by far the common case."""
    app = runtime_app(KAFKA)
    body, metadata = kafka_batch([1, 2, 3])
    keys = json.loads(metadata["KeyArray"][1])
    assert keys == ["azE=", None, "azM="]
    metadata["KeyArray"] = ("json", json.dumps([keys[0], "", keys[2]]))

    assert success(app.host.invoke("kafka_ingest", body, metadata, Retry(0, 5)))

    assert [row[1] for row in app.rows()] == ["k1", "", "k3"]


def test_a_tombstone_in_a_binary_kafka_batch_arrives_as_empty_bytes_and_is_dead_lettered(
    runtime_app: Callable[[dict[str, str]], RuntimeApp],
) -> None:
    app = runtime_app(KAFKA)
    messages = [KafkaMessage(TOPIC, 1, value(1)), KafkaMessage(TOPIC, 2, None), KafkaMessage(TOPIC, 3, value(3))]
    body, metadata = kafka_trigger_data(messages)
    assert body == ("collection_bytes", [value(1), b"", value(3)])

    assert success(app.host.invoke("kafka_ingest", body, metadata, Retry(0, 5)))

    assert [row[0] for row in app.rows()] == ["1", "3"]
    (letter,) = app.dead_letters()
    assert letter.record.offset == 2 and letter.record.value == b""


# --------------------------------------------------------------------------- attempts


def test_a_transient_adx_failure_fails_the_first_attempt_and_the_retry_ingests_once(
    runtime_app: Callable[[dict[str, str]], RuntimeApp],
) -> None:
    app = runtime_app(EVENTHUB)
    body, metadata = hub_batch([1, 2, 3], poison=(2,))
    app.standin.mgmt.fail = 1_000_000  # 500 on ".get ingestion resources"

    first = app.host.invoke("eventhub_ingest", body, metadata, Retry(0, 2))

    assert "TransientError" in failure(first)
    assert app.landed() == [] and app.dead_letters() == []  # the redelivery handles the whole batch
    app.standin.mgmt.clear()

    second = app.host.invoke("eventhub_ingest", body, metadata, Retry(1, 2, previous_error=failure(first)))

    assert success(second), second.result.exception.message
    assert [row[0] for row in app.rows()] == ["1", "3"]
    assert [(letter.record.offset, letter.attempt) for letter in app.dead_letters()] == [(2, 2)]


@pytest.mark.parametrize("retry", [Retry(2, 2, previous_error="TransientError"), None],
                         ids=["final-attempt", "no-retry-policy"])  # fmt: skip
def test_on_the_final_attempt_a_transient_failure_dead_letters_the_batch_and_succeeds(
    retry: Retry | None, runtime_app: Callable[[dict[str, str]], RuntimeApp]
) -> None:
    """The final attempt is the last of the retry policy's, or the only one when the host sends
    no retry context (a function without a retry policy)."""
    app = runtime_app(KAFKA)
    body, metadata = kafka_batch([1, 2, 3])
    app.standin.mgmt.fail = 1_000_000

    response = app.host.invoke("kafka_ingest", body, metadata, retry)

    assert success(response), response.result.exception.message
    assert app.landed() == []
    letters = app.dead_letters()
    assert sorted(letter.record.offset for letter in letters) == [1, 2, 3]
    assert {letter.stage for letter in letters} == {"sink"}
    assert {letter.attempt for letter in letters} == {3 if retry else 1}
    assert {letter.record.key for letter in letters} == {b"k1", None, b"k3"}


def test_a_middle_attempt_still_raises_for_redelivery(runtime_app: Callable[[dict[str, str]], RuntimeApp]) -> None:
    app = runtime_app(KAFKA)
    body, metadata = kafka_batch([1, 2])
    app.standin.mgmt.fail = 1_000_000

    response = app.host.invoke("kafka_ingest", body, metadata, Retry(1, 3, previous_error="TransientError"))

    assert "TransientError" in failure(response)
    assert app.landed() == [] and app.dead_letters() == []


# --------------------------------------------------------------------------- concurrency


def test_concurrent_invocations_each_land_once(runtime_app: Callable[[dict[str, str]], RuntimeApp]) -> None:
    """The host dispatches batches of different partitions at once; the worker runs them on its
    thread pool against one process-wide pipeline."""
    app = runtime_app(KAFKA)
    batches = {p: kafka_batch(list(range(100 * p + 1, 100 * p + 21)), partition=p) for p in range(6)}

    futures: dict[int, Future[Any]] = {
        p: app.host.invoke_async("kafka_ingest", body, metadata, Retry(0, 5)) for p, (body, metadata) in batches.items()
    }
    responses = {p: future.result(120) for p, future in futures.items()}

    assert all(success(r) for r in responses.values()), [r.result.exception.message for r in responses.values()]
    rows = app.rows()
    assert sorted(int(row[0]) for row in rows) == sorted(i for p in range(6) for i in range(100 * p + 1, 100 * p + 21))
    assert {(row[0], row[2]) for row in rows} == {(str(i), str(p)) for p in range(6) for i in range(100 * p + 1, 100 * p + 21)}
    assert app.dead_letters() == []
    # One worker state for all of them: its preflight (a probe of the ingestion container, run
    # when the worker state is built) ran once, and each batch logged its line.
    messages = app.host.log_messages()
    assert sum("Request URL" in m and "kafka-adx-preflight-probe" in m for m in messages) == 1
    assert sum(m.startswith("kafka-adx batch") for m in messages) == 6
