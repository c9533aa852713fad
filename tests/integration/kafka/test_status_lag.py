"""``kafka-adx status --group``: consumer lag per partition from the real broker (the group's
committed offsets against the partitions' ends), and its exit codes: 1 over ``--max-lag``, 0
once the group has caught up, 2 when the broker cannot be reached."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner
from confluent_kafka import Consumer, Producer, TopicPartition

from shared.cli.app import main

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ADX_", "DEADLETTER_", "LOCAL_", "INGESTION_", "KAFKA_"))}  # fmt: skip
    env.update(LOCAL_DB=str(tmp_path / "db.duckdb"), LOCAL_DEADLETTER_DIR=str(tmp_path / "dl"),
               INGESTION_CONFIG=str(REPO / "ingestion.yaml"))  # fmt: skip
    return env


def commit(bootstrap: str, group: str, offsets: dict[tuple[str, int], int]) -> None:
    """Commit offsets for ``group`` as a consumer of it would (no subscription needed)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        consumer.commit(offsets=[TopicPartition(t, p, o) for (t, p), o in offsets.items()], asynchronous=False)
    finally:
        consumer.close()


def test_lag_per_partition_and_its_exit_codes(
    env: dict[str, str], kafka_bootstrap: str, kafka_topic: Callable[..., str]
) -> None:
    topic = kafka_topic(partitions=2, prefix="status")
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    for i in range(30):
        producer.produce(topic, f"{i}".encode(), partition=i % 2)
    assert producer.flush(30) == 0
    group = f"status-{uuid.uuid4().hex[:8]}"
    commit(kafka_bootstrap, group, {(topic, 0): 5, (topic, 1): 14})
    args = ["status", "--json", "--group", group, "--brokers", kafka_bootstrap, "--max-lag", "3"]

    behind = CliRunner().invoke(main, args, env=env, catch_exceptions=False)
    assert behind.exit_code == 1, behind.output
    data = orjson.loads(behind.output)
    lag = {p["partition"]: (p["committed"], p["end"], p["lag"]) for p in data["consumer"]["partitions"]}
    assert lag == {0: (5, 15, 10), 1: (14, 15, 1)}
    assert data["degraded"] == ["lag over 3 on 1 partition(s)"]

    text = CliRunner().invoke(main, args[:1] + args[2:], env=env, catch_exceptions=False).output
    assert f"consumer group {group}: lag 11 record(s) on 2 partition(s)" in text
    assert f"{topic}[0]  committed 5  end 15  lag 10  OVER" in text

    commit(kafka_bootstrap, group, {(topic, 0): 15, (topic, 1): 15})
    caught_up = CliRunner().invoke(main, args, env=env, catch_exceptions=False)
    assert caught_up.exit_code == 0, caught_up.output
    assert orjson.loads(caught_up.output)["consumer"]["total_lag"] == 0

    # A topic the group never committed on: its partitions lag from the oldest record kept.
    other = kafka_topic(partitions=1, prefix="status")
    producer.produce(other, b"x", partition=0)
    assert producer.flush(30) == 0
    fresh = CliRunner().invoke(main, [*args, "--topic", other], env=env, catch_exceptions=False)
    parts = orjson.loads(fresh.output)["consumer"]["partitions"]
    assert {(p["topic"], p["committed"], p["lag"]) for p in parts if p["topic"] == other} == {(other, None, 1)}


def test_unreachable_broker_exits_2(env: dict[str, str]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = CliRunner().invoke(main, ["status", "--group", "g", "--brokers", f"127.0.0.1:{port}"], env=env,
                                catch_exceptions=False)  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "cannot read: Kafka group g: cannot read the offsets of group 'g'" in result.output
