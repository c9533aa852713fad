"""``kafka-adx produce`` and ``kafka-adx consume`` end to end on the real broker, into DuckDB.

Every test produces keyed storm events with headers over several partitions with the real
``produce`` command, runs the real ``consume`` command as a separate process, reads the topic
back with a plain consumer as the ground truth, and compares it with the rows that landed
(each row names its topic, partition and offset), the dead letters and the committed offsets.

No test depends on timing: each waits for a state the consumer reports or the broker shows
(records pending, a revoke, committed offsets) before acting, and a consumer stops on
``--max-records`` or a signal, never on ``--idle-exit`` (a busy machine can go quiet for longer
than any idle window). Timeouts only guard against a hang. Batches that must not flush on their
own use ``--batch-wait 600``.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.kafka_e2e import (
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
    revoke_flushes,
)

pytestmark = pytest.mark.kafka

PARTITIONS = 4
# Batches that neither fill nor time out: only a revoke, a signal or --max-records flushes them.
HOLD = ["--batch-records", "100000", "--batch-wait", "600"]


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
    consumer = ConsumerProcess(ws, topic, group, "--max-records", str(total), "--batch-records", "700")
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
    consumer = ConsumerProcess(ws, topic, group, "--max-records", str(total), "--batch-records", "300")
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
    group = _group()
    store_parent = ws.root / "store"
    env = {"LOCAL_DEADLETTER_DIR": str(store_parent / "deadletter")}

    # Batches of exactly 100 (no time-based flush); the retry window opens at the first failure,
    # so one retry always happens before the consumer gives up.
    consumer = ConsumerProcess(ws, topic, group, "--batch-records", "100", "--batch-wait", "600",
                               "--deadletter-retry-timeout", "2", env=env)  # fmt: skip
    # The store works at startup (the preflight checks it) and goes down before any record
    # arrives: the dead-letter folder's parent becomes a file.
    consumer.wait_for(f"assigned {topic}[")
    shutil.rmtree(store_parent, ignore_errors=True)
    store_parent.write_text("not a directory")
    produce(ws, topic, "--records", "400", "--poison-every", "50")
    total = 408
    truth = read_topic(ws.bootstrap, topic, total)
    poison = {k for k, sent in truth.items() if sent.poison}

    assert consumer.wait() == 2, consumer.output()
    assert "retrying the same 100 record(s)" in consumer.output()  # backoff first, then give up
    assert "stopped without committing" in consumer.output()
    # Only batches that were fully ingested (no poison in them) are committed.
    at_stop = committed(ws.bootstrap, group, topic, PARTITIONS)
    first_run = counts(db_rows(ws.db))
    below = {(p, o) for p, o in truth if o < at_stop[p]}
    assert len(below) < total
    assert not below & poison and below <= set(first_run)

    # The store is back: the restarted consumer gets every uncommitted record again, nothing is lost.
    store_parent.unlink()
    remaining = sum(end_offsets(ws.bootstrap, topic, PARTITIONS).values()) - sum(at_stop.values())
    restarted = ConsumerProcess(ws, topic, group, "--max-records", str(remaining), env=env)
    assert restarted.wait() == 0, restarted.output()
    seen = counts(db_rows(ws.db))
    assert set(seen) == set(truth) - poison
    letters = dead_letters(store_parent / "deadletter")
    assert sorted((letter.record.partition, letter.record.offset) for letter in letters) == sorted(poison)
    assert committed(ws.bootstrap, group, topic, PARTITIONS) == end_offsets(ws.bootstrap, topic, PARTITIONS)


def test_sigterm_flushes_and_commits_exactly_what_was_ingested(
    ws: Workspace, kafka_topic: Callable[..., str]
) -> None:
    topic = kafka_topic(partitions=PARTITIONS, prefix="e2e-term")
    total = 2000
    produce(ws, topic, "--records", str(total))
    group = _group()

    # Only the SIGTERM drain can ingest and commit; it comes once the consumer holds every record.
    consumer = ConsumerProcess(ws, topic, group, *HOLD, debug=True)
    consumer.wait_for_pending(total)
    assert committed(ws.bootstrap, group, topic, PARTITIONS) == dict.fromkeys(range(PARTITIONS), 0)
    consumer.signal(signal.SIGTERM)
    assert consumer.wait(timeout=30) == 0, consumer.output()
    assert "SIGTERM received" in consumer.output()

    # Everything it held was ingested and committed, once.
    after_term = committed(ws.bootstrap, group, topic, PARTITIONS)
    assert after_term == end_offsets(ws.bootstrap, topic, PARTITIONS)
    assert counts(db_rows(ws.db)) == {(p, o): 1 for p, end in after_term.items() for o in range(end)}

    # A second run picks up exactly where the first stopped: it reads only the new records.
    more = 500
    produce(ws, topic, "--records", str(more), "--seed", "2")
    truth = read_topic(ws.bootstrap, topic, total + more)
    rerun = ConsumerProcess(ws, topic, group, "--max-records", str(more))
    assert rerun.wait() == 0, rerun.output()
    assert counts(db_rows(ws.db)) == {k: 1 for k in truth}
    assert committed(ws.bootstrap, group, topic, PARTITIONS) == end_offsets(ws.bootstrap, topic, PARTITIONS)


def test_sigkill_mid_stream_loses_nothing_and_duplicates_only_the_uncommitted_window(
    ws: Workspace, kafka_topic: Callable[..., str]
) -> None:
    topic = kafka_topic(partitions=PARTITIONS, prefix="e2e-kill")
    batch, uncommitted = 100, 50
    total = 40 * batch + uncommitted
    produce(ws, topic, "--records", str(total))
    truth = read_topic(ws.bootstrap, topic, total)
    group = _group()

    # Batches of exactly 100 and no time-based flush: the consumer commits 40 batches and can
    # then commit nothing more (50 records never fill a batch). The kill lands in that state.
    consumer = ConsumerProcess(ws, topic, group, "--batch-records", str(batch), "--batch-wait", "600")
    deadline = time.monotonic() + 60
    while sum(committed(ws.bootstrap, group, topic, PARTITIONS).values()) < total - uncommitted:
        assert consumer.proc.poll() is None, consumer.output()
        assert time.monotonic() < deadline, f"the 40 batches were not committed after 60 s:\n{consumer.output()}"
        time.sleep(0.05)
    consumer.signal(signal.SIGKILL)
    consumer.wait(timeout=10)
    at_kill = committed(ws.bootstrap, group, topic, PARTITIONS)
    assert sum(at_kill.values()) == total - uncommitted
    # Nothing was ingested without its commit.
    assert counts(db_rows(ws.db)) == {(p, o): 1 for p, end in at_kill.items() for o in range(end)}

    # The restart reads exactly the uncommitted window again.
    restarted = ConsumerProcess(ws, topic, group, "--max-records", str(uncommitted), "--batch-records", "1000")
    assert restarted.wait() == 0, restarted.output()

    seen = counts(db_rows(ws.db))
    missing = set(truth) - set(seen)
    assert not missing, f"{len(missing)} record(s) lost, e.g. {sorted(missing)[:5]}"
    assert seen == {k: 1 for k in truth}, "the uncommitted window was never ingested, so nothing is duplicated"
    assert committed(ws.bootstrap, group, topic, PARTITIONS) == end_offsets(ws.bootstrap, topic, PARTITIONS)


def _two_workspaces(tmp_path: Path, bootstrap: str) -> tuple[Workspace, Workspace]:
    """One workspace per consumer: DuckDB allows one writing process per file, so each consumer
    has its own local mode."""
    pair = (Workspace(tmp_path / "a", bootstrap), Workspace(tmp_path / "b", bootstrap))
    for ws in pair:
        ws.root.mkdir()
    return pair


def test_rebalance_between_two_consumers_loses_and_duplicates_nothing(
    tmp_path: Path, kafka_bootstrap: str, kafka_topic: Callable[..., str]
) -> None:
    topic = kafka_topic(partitions=PARTITIONS, prefix="e2e-rebalance")
    ws_a, ws_b = _two_workspaces(tmp_path, kafka_bootstrap)
    group = _group()
    first_half = second_half = 2000

    # The first consumer holds every record of the first half, uncommitted, when the second joins.
    produce(ws_a, topic, "--records", str(first_half), "--seed", "1")
    first = ConsumerProcess(ws_a, topic, group, *HOLD, name="a", debug=True)
    first.wait_for_pending(first_half)
    assert committed(kafka_bootstrap, group, topic, PARTITIONS) == dict.fromkeys(range(PARTITIONS), 0)
    second = ConsumerProcess(ws_b, topic, group, *HOLD, name="b", debug=True)
    first.wait_for("revoking ")
    second.wait_for(f"assigned {topic}[")
    assert revoke_flushes(first.output())[0] == first_half, "the revoke flushes what the first consumer held"

    # More records over every partition, read by both members; once they have polled them all,
    # SIGTERM makes each flush and commit its share.
    produce(ws_b, topic, "--records", str(second_half), "--seed", "2")
    first.wait_until(lambda _: first.pending(after="revoking ") + second.pending() == second_half,
                     f"holding the {second_half} new records between them")  # fmt: skip
    for consumer in (first, second):
        consumer.signal(signal.SIGTERM)
    assert first.wait() == 0, first.output()
    assert second.wait() == 0, second.output()

    truth = read_topic(kafka_bootstrap, topic, first_half + second_half)
    rows_a, rows_b = db_rows(ws_a.db), db_rows(ws_b.db)
    assert rows_b, "the second consumer should have taken partitions and ingested records"
    assert counts(rows_a + rows_b) == {k: 1 for k in truth}, "a rebalance must neither lose nor duplicate"
    assert committed(kafka_bootstrap, group, topic, PARTITIONS) == end_offsets(kafka_bootstrap, topic, PARTITIONS)


def test_a_consumer_that_lost_its_partitions_drops_its_uncommitted_records_instead_of_duplicating(
    tmp_path: Path, kafka_bootstrap: str, kafka_topic: Callable[..., str]
) -> None:
    topic = kafka_topic(partitions=PARTITIONS, prefix="e2e-lost")
    ws_a, ws_b = _two_workspaces(tmp_path, kafka_bootstrap)
    group = _group()
    total = 2000
    produce(ws_a, topic, "--records", str(total))

    first = ConsumerProcess(ws_a, topic, group, *HOLD, name="a", debug=True)
    first.wait_for_pending(total)  # it holds every record, uncommitted
    # Frozen past its session timeout (6 s): the group gives its partitions to the second one,
    # which reads everything again from the last commit (none).
    first.signal(signal.SIGSTOP)
    try:
        second = ConsumerProcess(ws_b, topic, group, *HOLD, name="b", debug=True)
        second.wait_for_pending(total)
    finally:
        first.signal(signal.SIGCONT)
    # Woken up, the first finds its partitions lost and drops what it held; its rejoining makes
    # the second revoke, which flushes and commits everything before anyone reads again.
    first.wait_for("dropped ")
    second.wait_for("revoking ")
    for consumer in (first, second):
        consumer.signal(signal.SIGTERM)
    assert first.wait() == 0, first.output()
    assert second.wait() == 0, second.output()

    truth = read_topic(kafka_bootstrap, topic, total)
    dropped = [int(n) for n in re.findall(r"dropped (\d+) uncommitted", first.output())]
    assert dropped == [total], f"the first consumer should have dropped what it held:\n{first.output()}"
    assert revoke_flushes(second.output())[0] == total
    assert db_rows(ws_a.db) == [], "the records the first one dropped were never ingested by it"
    assert counts(db_rows(ws_b.db)) == {k: 1 for k in truth}
    assert committed(kafka_bootstrap, group, topic, PARTITIONS) == end_offsets(kafka_bootstrap, topic, PARTITIONS)
