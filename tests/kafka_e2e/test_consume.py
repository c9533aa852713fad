"""``kafka-adx produce`` and ``kafka-adx consume`` end to end on the real broker, into DuckDB.

Every test produces keyed storm events with headers over several partitions with the real
``produce`` command, runs the real ``consume`` command as a separate process, reads the topic
back with a plain consumer as the ground truth, and compares it with the rows that landed
(each row names its topic, partition and offset), the dead letters and the committed offsets.
"""

from __future__ import annotations

import json
import re
import signal
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.kafka_e2e.support import (
    BackgroundProducer,
    ConsumerProcess,
    Sent,
    Workspace,
    committed,
    counts,
    db_rows,
    dead_letters,
    end_offsets,
    produce,
    read_topic,
)

pytestmark = pytest.mark.kafka

PARTITIONS = 4


@pytest.fixture
def ws(tmp_path: Path, kafka_bootstrap: str) -> Workspace:
    return Workspace(tmp_path, kafka_bootstrap)


def _group() -> str:
    return f"e2e-{uuid.uuid4().hex[:8]}"


def _produced(proc_stdout: str) -> int:
    # "delivered 1,234 record(s), ..."
    line = next(line for line in proc_stdout.splitlines() if line.startswith("delivered "))
    return int(line.split()[1].replace(",", ""))


def test_happy_path_every_record_lands_exactly_once_with_key_headers_and_metadata(
    ws: Workspace, kafka_topic: Callable[..., str]
) -> None:
    topic = kafka_topic(partitions=PARTITIONS, prefix="e2e-happy")
    total = 3000
    out = produce(ws, topic, "--records", str(total), "--header", "run=happy")
    assert _produced(out.stdout) == total
    truth = read_topic(ws.bootstrap, topic, total)
    assert {p for p, _ in truth} == set(range(PARTITIONS)), "the keys should spread over every partition"

    group = _group()
    consumer = ConsumerProcess(ws, topic, group, "--idle-exit", "2", "--batch-records", "700")
    assert consumer.wait() == 0, consumer.output()
    assert "3,000 received, 3,000 ingested, 0 dead-lettered" in consumer.output()

    rows = db_rows(ws.db)
    assert counts(rows) == {k: 1 for k in truth}, "every record must land exactly once"
    for row in rows:
        sent = truth[(row.partition, row.offset)]
        event = json.loads(sent.value)
        assert row.topic == topic
        assert row.key is not None and row.key.encode() == sent.key == event["State"].encode()
        assert row.state == event["State"]
        assert row.event_id == event["EventId"]
        assert sent.headers["seq"] is not None and row.seq == int(sent.headers["seq"])
        assert sent.headers["run"] == b"happy" and sent.headers["source"] == b"kafka-adx-produce"
        assert row.timestamp == sent.timestamp
    # Keyed by state: one state's events stay on one partition.
    partitions_of_state: dict[str | None, set[int]] = {}
    for row in rows:
        partitions_of_state.setdefault(row.key, set()).add(row.partition)
    assert all(len(parts) == 1 for parts in partitions_of_state.values())
    assert sorted(row.seq for row in rows if row.seq is not None) == list(range(total))

    assert committed(ws.bootstrap, group, topic, PARTITIONS) == end_offsets(ws.bootstrap, topic, PARTITIONS)
    assert dead_letters(ws.deadletter_dir) == []


def test_poison_records_are_dead_lettered_and_everything_else_ingested(
    ws: Workspace, kafka_topic: Callable[..., str]
) -> None:
    topic = kafka_topic(partitions=PARTITIONS, prefix="e2e-poison")
    produce(ws, topic, "--records", "1000", "--poison-every", "40")
    total = 1000 + 1000 // 40
    truth = read_topic(ws.bootstrap, topic, total)
    poison = {k for k, sent in truth.items() if sent.poison}
    assert len(poison) == 25

    group = _group()
    consumer = ConsumerProcess(ws, topic, group, "--idle-exit", "2", "--batch-records", "300")
    assert consumer.wait() == 0, consumer.output()

    rows = db_rows(ws.db)
    assert counts(rows) == {k: 1 for k in truth if k not in poison}
    letters = dead_letters(ws.deadletter_dir)
    lettered = [(letter.record.partition, letter.record.offset) for letter in letters]
    assert sorted(lettered) == sorted(poison), "each poison record is dead-lettered exactly once"
    for letter in letters:
        sent: Sent = truth[(letter.record.partition, letter.record.offset)]
        record = letter.record
        assert record.source == "kafka" and record.topic == topic
        assert record.value == sent.value and record.key == sent.key == b"poison"
        assert dict(record.headers) == sent.headers
        assert record.timestamp == sent.timestamp
        assert letter.stage in {"decode", "map"}
        assert f"{topic}[{record.partition}]@{record.offset}" in letter.reason
    # The commit covers the dead-lettered records too: nothing is redelivered.
    assert committed(ws.bootstrap, group, topic, PARTITIONS) == end_offsets(ws.bootstrap, topic, PARTITIONS)


def test_dead_letter_store_down_exits_2_without_committing_and_a_restart_delivers_everything(
    ws: Workspace, kafka_topic: Callable[..., str]
) -> None:
    topic = kafka_topic(partitions=PARTITIONS, prefix="e2e-dlq-down")
    produce(ws, topic, "--records", "400", "--poison-every", "50")
    total = 408
    truth = read_topic(ws.bootstrap, topic, total)
    poison = {k for k, sent in truth.items() if sent.poison}
    group = _group()

    # The dead-letter folder cannot be created (its parent is a file): the store is down.
    blocker = ws.root / "blocked"
    blocker.write_text("not a directory")
    env_dir = str(blocker / "deadletter")
    consumer = ConsumerProcess(ws, topic, group, "--batch-records", "100", "--deadletter-retry-timeout", "2",
                               env={"LOCAL_DEADLETTER_DIR": env_dir})  # fmt: skip
    assert consumer.wait() == 2, consumer.output()
    assert "retrying the same 100 record(s)" in consumer.output()  # backoff first, then give up
    assert "stopped without committing" in consumer.output()
    # Only batches that were fully ingested (no poison in them) are committed.
    at_stop = committed(ws.bootstrap, group, topic, PARTITIONS)
    first_run = counts(db_rows(ws.db))
    below = {(p, o) for p, o in truth if o < at_stop[p]}
    assert len(below) < total
    assert not below & poison and below <= set(first_run)

    # The store is back: the restarted consumer gets every record again, nothing is lost.
    restarted = ConsumerProcess(ws, topic, group, "--idle-exit", "2")
    assert restarted.wait() == 0, restarted.output()
    seen = counts(db_rows(ws.db))
    assert set(seen) == set(truth) - poison
    lettered = sorted((letter.record.partition, letter.record.offset) for letter in dead_letters(ws.deadletter_dir))
    assert lettered == sorted(poison)
    assert committed(ws.bootstrap, group, topic, PARTITIONS) == end_offsets(ws.bootstrap, topic, PARTITIONS)


def test_sigterm_flushes_and_commits_exactly_what_was_ingested(
    ws: Workspace, kafka_topic: Callable[..., str]
) -> None:
    topic = kafka_topic(partitions=PARTITIONS, prefix="e2e-term")
    total = 2000
    produce(ws, topic, "--records", str(total))
    truth = read_topic(ws.bootstrap, topic, total)
    group = _group()

    # Batches that never fill and never time out: only the SIGTERM drain can ingest and commit.
    consumer = ConsumerProcess(ws, topic, group, "--batch-records", "100000", "--batch-wait", "600")
    consumer.wait_for("assigned")
    time.sleep(1.0)
    assert committed(ws.bootstrap, group, topic, PARTITIONS) == dict.fromkeys(range(PARTITIONS), 0)
    consumer.signal(signal.SIGTERM)
    assert consumer.wait(timeout=30) == 0, consumer.output()
    assert "SIGTERM received" in consumer.output()

    after_term = committed(ws.bootstrap, group, topic, PARTITIONS)
    assert sum(after_term.values()) > 0, "SIGTERM must flush and commit what was polled"
    # What landed is exactly what was committed: no record ingested without its commit.
    expected = {(p, o): 1 for p, end in after_term.items() for o in range(end)}
    assert counts(db_rows(ws.db)) == expected

    # A second run picks up exactly where the first stopped.
    rerun = ConsumerProcess(ws, topic, group, "--idle-exit", "2")
    assert rerun.wait() == 0, rerun.output()
    assert counts(db_rows(ws.db)) == {k: 1 for k in truth}


def test_sigkill_mid_stream_loses_nothing_and_duplicates_only_the_uncommitted_window(
    ws: Workspace, kafka_topic: Callable[..., str]
) -> None:
    topic = kafka_topic(partitions=PARTITIONS, prefix="e2e-kill")
    total = 8000
    produce(ws, topic, "--records", str(total))
    truth = read_topic(ws.bootstrap, topic, total)
    group = _group()

    # Small batches: many commits, so the kill lands between two of them.
    consumer = ConsumerProcess(ws, topic, group, "--batch-records", "100", "--batch-wait", "0.5")
    deadline = time.monotonic() + 60
    while True:
        done = sum(committed(ws.bootstrap, group, topic, PARTITIONS).values())
        if done >= total // 5:
            break
        assert consumer.proc.poll() is None, consumer.output()
        assert time.monotonic() < deadline, f"only {done} records committed after 60 s:\n{consumer.output()}"
        time.sleep(0.02)
    consumer.signal(signal.SIGKILL)
    consumer.wait(timeout=10)
    at_kill = committed(ws.bootstrap, group, topic, PARTITIONS)
    assert 0 < sum(at_kill.values()) < total, f"the kill should land mid-stream, committed {at_kill}"
    ends = end_offsets(ws.bootstrap, topic, PARTITIONS)
    uncommitted = sum(ends[p] - at_kill[p] for p in range(PARTITIONS))

    restarted = ConsumerProcess(ws, topic, group, "--idle-exit", "2", "--batch-records", "1000")
    assert restarted.wait() == 0, restarted.output()

    seen = counts(db_rows(ws.db))
    missing = set(truth) - set(seen)
    assert not missing, f"{len(missing)} record(s) lost, e.g. {sorted(missing)[:5]}"
    assert set(seen) == set(truth)
    for (partition, offset), n in seen.items():
        if offset < at_kill[partition]:
            assert n == 1, f"committed record {partition}@{offset} was ingested {n} times"
        else:
            assert n <= 2, f"record {partition}@{offset} was ingested {n} times"
    duplicates = sum(n - 1 for n in seen.values())
    assert duplicates <= uncommitted
    assert committed(ws.bootstrap, group, topic, PARTITIONS) == ends


def test_rebalance_between_two_consumers_loses_and_duplicates_nothing(
    tmp_path: Path, kafka_bootstrap: str, kafka_topic: Callable[..., str]
) -> None:
    topic = kafka_topic(partitions=PARTITIONS, prefix="e2e-rebalance")
    # DuckDB allows one writing process per file: each consumer has its own local mode.
    ws_a = Workspace(tmp_path / "a", kafka_bootstrap)
    ws_b = Workspace(tmp_path / "b", kafka_bootstrap)
    for ws in (ws_a, ws_b):
        ws.root.mkdir()
    group = _group()
    first_half = 2000
    total = first_half + 2000
    # Batches that only a revoke or the idle exit flushes: the first consumer still holds its
    # records, uncommitted, when the second one joins.
    hold = ["--idle-exit", "4", "--batch-records", "100000", "--batch-wait", "600"]

    produce(ws_a, topic, "--records", str(first_half), "--seed", "1")
    first = ConsumerProcess(ws_a, topic, group, *hold, name="a")
    first.wait_for("assigned")
    time.sleep(1.0)
    assert committed(kafka_bootstrap, group, topic, PARTITIONS) == dict.fromkeys(range(PARTITIONS), 0)
    # More records arrive (about 2 s) while the second consumer joins and takes partitions.
    producer = BackgroundProducer(ws_b, topic, total - first_half, rate=1000)
    second = ConsumerProcess(ws_b, topic, group, *hold, name="b")
    producer.wait()
    assert first.wait() == 0, first.output()
    assert second.wait() == 0, second.output()

    truth = read_topic(kafka_bootstrap, topic, total)
    rows_a, rows_b = db_rows(ws_a.db), db_rows(ws_b.db)
    revoke_flushes = [int(n) for n in re.findall(r"revoking .*: flushing (\d+) pending", first.output())]
    assert revoke_flushes and revoke_flushes[0] > 0, f"the rebalance should find records pending:\n{first.output()}"
    assert rows_b, "the second consumer should have taken partitions and ingested records"
    assert counts(rows_a + rows_b) == {k: 1 for k in truth}, "a rebalance must neither lose nor duplicate"
    assert committed(kafka_bootstrap, group, topic, PARTITIONS) == end_offsets(kafka_bootstrap, topic, PARTITIONS)


def test_a_consumer_that_lost_its_partitions_drops_its_uncommitted_records_instead_of_duplicating(
    tmp_path: Path, kafka_bootstrap: str, kafka_topic: Callable[..., str]
) -> None:
    topic = kafka_topic(partitions=PARTITIONS, prefix="e2e-lost")
    ws_a = Workspace(tmp_path / "a", kafka_bootstrap)
    ws_b = Workspace(tmp_path / "b", kafka_bootstrap)
    for ws in (ws_a, ws_b):
        ws.root.mkdir()
    group = _group()
    total = 2000
    hold = ["--idle-exit", "4", "--batch-records", "100000", "--batch-wait", "600"]
    produce(ws_a, topic, "--records", str(total))

    first = ConsumerProcess(ws_a, topic, group, *hold, name="a")
    first.wait_for("assigned")
    time.sleep(1.0)  # it now holds every record, uncommitted
    # Frozen past its session timeout (6 s): the group gives its partitions to the second one.
    first.signal(signal.SIGSTOP)
    try:
        second = ConsumerProcess(ws_b, topic, group, *hold, name="b")
        second.wait_for("assigned", timeout=30)
        time.sleep(1.0)
    finally:
        first.signal(signal.SIGCONT)
    assert first.wait() == 0, first.output()
    assert second.wait() == 0, second.output()

    truth = read_topic(kafka_bootstrap, topic, total)
    dropped = [int(n) for n in re.findall(r"dropped (\d+) uncommitted", first.output())]
    assert dropped and dropped[0] > 0, f"the first consumer should have found its partitions lost:\n{first.output()}"
    assert counts(db_rows(ws_a.db) + db_rows(ws_b.db)) == {k: 1 for k in truth}
    assert committed(kafka_bootstrap, group, topic, PARTITIONS) == end_offsets(kafka_bootstrap, topic, PARTITIONS)
