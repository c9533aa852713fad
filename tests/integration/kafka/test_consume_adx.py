"""``kafka-adx consume`` into ADX: the real broker, the real azure-kusto-ingest SDK, the ADX
stand-in and Azurite; dead letters in a blob container. What the SDK queued is read back from
Azurite and compared with the topic."""

from __future__ import annotations

import csv
import io
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from shared.config import load_config
from shared.deadletters.blob import BlobDeadLetterStore
from tests.fixtures.azurite import Azurite
from tests.support.adx_standin import AdxStandIn
from tests.support.kafka_e2e import (
    CONFIG,
    ConsumerProcess,
    Workspace,
    committed,
    end_offsets,
    produce,
    read_topic,
)

pytestmark = [pytest.mark.kafka, pytest.mark.azurite]

PARTITIONS = 3
# Column order of E2E.Events in tests/support/kafka_e2e.yaml (client mapping sends CSV rows).
COLUMNS = ["StartTime", "EventId", "State", "Seq", "KafkaTopic", "KafkaPartition", "KafkaOffset", "KafkaKey",
           "KafkaTimestamp"]  # fmt: skip


def test_consume_into_adx_queues_every_record_once_and_dead_letters_poison_to_blob(
    tmp_path: Path,
    kafka_bootstrap: str,
    kafka_topic: Callable[..., str],
    azurite: Azurite,
    storage_names: str,
) -> None:
    ws = Workspace(tmp_path, kafka_bootstrap)
    topic = kafka_topic(partitions=PARTITIONS, prefix="e2e-adx")
    produce(ws, topic, "--records", "500", "--poison-every", "100")
    total = 505
    truth = read_topic(kafka_bootstrap, topic, total)
    poison = {k for k, sent in truth.items() if sent.poison}
    assert len(poison) == 5
    deadletter = f"{storage_names}-deadletter"
    azurite.create_container(deadletter)
    deadletter_url = azurite.container_sas_uri(deadletter)
    group = f"e2e-adx-{uuid.uuid4().hex[:8]}"

    with AdxStandIn(azurite, storage_names) as standin:
        standin.apply_config(load_config(CONFIG))  # the tables exist: consume checks before it reads
        env = {"ADX_INGEST_URI": standin.url, "ADX_AUTH": "none", "DEADLETTER_BLOB_URI": deadletter_url}
        consumer = ConsumerProcess(ws, topic, group, "--idle-exit", "2", "--batch-records", "200", env=env)
        assert consumer.wait(timeout=90) == 0, consumer.output()
        messages = standin.queued_messages()
        lines = standin.ingested_lines()

    assert not ws.db.exists(), "with ADX settings nothing goes to the local DuckDB"
    assert messages and all(m["DatabaseName"] == "E2E" and m["TableName"] == "Events" for m in messages)
    assert {m["AdditionalProperties"]["format"] for m in messages} == {"csv"}
    rows = [dict(zip(COLUMNS, row, strict=True)) for row in csv.reader(io.StringIO(b"\n".join(lines).decode()))]
    landed = Counter((int(r["KafkaPartition"]), int(r["KafkaOffset"])) for r in rows)
    assert landed == {k: 1 for k in truth if k not in poison}, "every good record is queued exactly once"
    for row in rows:
        sent = truth[(int(row["KafkaPartition"]), int(row["KafkaOffset"]))]
        assert row["KafkaTopic"] == topic
        assert sent.key is not None and row["KafkaKey"] == sent.key.decode() == row["State"]
        assert sent.headers["seq"] is not None and row["Seq"] == sent.headers["seq"].decode()

    store = BlobDeadLetterStore.from_url(deadletter_url)
    try:
        letters = [letter for set_id in store.sets() for letter in store.read(set_id)]
    finally:
        store.close()
    assert sorted((lt.record.partition, lt.record.offset) for lt in letters) == sorted(poison)
    assert all(lt.record.value == truth[(lt.record.partition, lt.record.offset)].value for lt in letters)
    assert committed(kafka_bootstrap, group, topic, PARTITIONS) == end_offsets(kafka_bootstrap, topic, PARTITIONS)
