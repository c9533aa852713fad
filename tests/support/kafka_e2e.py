"""Helpers of the Kafka end-to-end tests: run ``kafka-adx`` as a real process, read the topic back
as the ground truth, and read what landed (DuckDB rows, dead letters, committed offsets)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from confluent_kafka import OFFSET_INVALID, TIMESTAMP_NOT_AVAILABLE, Consumer, TopicPartition

from shared.deadletters.local import LocalDeadLetterStore
from shared.pipeline.deadletter import DeadLetter

REPO = Path(__file__).resolve().parents[2]
CONFIG = Path(__file__).with_name("kafka_e2e.yaml")
CLI = [sys.executable, "-c", "from shared.cli.app import main; main()"]

# A dead consumer's partitions move after session.timeout.ms (the broker's minimum is 6 s);
# frequent heartbeats make a live member notice a rebalance quickly.
FAST_GROUP = ["-X", "session.timeout.ms=6000", "-X", "heartbeat.interval.ms=500"]

_SCRUBBED_PREFIXES = ("KAFKA_", "ADX_", "DEADLETTER_", "LOCAL_", "INGESTION_CONFIG", "EventHubConnection")


@dataclass(frozen=True)
class Sent:
    """One message as the broker stores it: the ground truth the tests compare against."""

    partition: int
    offset: int
    key: bytes | None
    headers: dict[str, bytes | None]
    value: bytes
    timestamp: datetime | None

    @property
    def poison(self) -> bool:
        return self.headers.get("poison") == b"true"


@dataclass
class Workspace:
    """A consumer's local mode: its DuckDB file and dead-letter folder, in a temp dir."""

    root: Path
    bootstrap: str

    @property
    def db(self) -> Path:
        return self.root / "kafka-adx.duckdb"

    @property
    def deadletter_dir(self) -> Path:
        return self.root / "deadletter"

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUBBED_PREFIXES)}
        env.update(
            {
                "PYTHONPATH": str(REPO),
                "INGESTION_CONFIG": str(CONFIG),
                "LOCAL_DB": str(self.db),
                "LOCAL_DEADLETTER_DIR": str(self.deadletter_dir),
                "KAFKA_BROKERS": self.bootstrap,
                "ADX_AUTH": "none",
            }
        )
        env.update(extra)
        return env


def run_cli(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``kafka-adx ARGS`` to completion."""
    return subprocess.run(
        [*CLI, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )


def produce(ws: Workspace, topic: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``kafka-adx produce -t TOPIC ARGS``; asserts it succeeded."""
    proc = run_cli(["produce", "-t", topic, *args], ws.env(), ws.root)
    assert proc.returncode == 0, f"produce failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return proc


class BackgroundProducer:
    """``kafka-adx produce --records N --rate R`` in the background."""

    def __init__(self, ws: Workspace, topic: str, count: int, rate: float) -> None:
        self.proc = subprocess.Popen(
            [*CLI, "produce", "-t", topic, "--records", str(count), "--rate", str(rate)],
            env=ws.env(), cwd=ws.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip

    def wait(self, timeout: float = 60) -> None:
        out, err = self.proc.communicate(timeout=timeout)
        assert self.proc.returncode == 0, f"produce failed ({self.proc.returncode}):\n{out}\n{err}"


class ConsumerProcess:
    """``kafka-adx consume`` running in the background; its output goes to files."""

    def __init__(
        self, ws: Workspace, topic: str, group: str, *args: str, name: str = "consumer",
        env: dict[str, str] | None = None, debug: bool = False,
    ) -> None:  # fmt: skip
        """``debug`` logs at DEBUG level, which includes the "idle with N record(s) pending"
        lines :meth:`wait_for_pending` reads."""
        self.ws = ws
        self.log = ws.root / f"{name}-{uuid.uuid4().hex[:6]}.log"
        self.out = self.log.with_suffix(".out")
        argv = [*CLI, "consume", "-t", topic, "-g", group, *FAST_GROUP, *args]
        if debug:
            argv += ["--log-level", "DEBUG"]
        with open(self.log, "wb") as err, open(self.out, "wb") as out:
            self.proc = subprocess.Popen(argv, env=ws.env(**(env or {})), cwd=ws.root, stdout=out, stderr=err,
                                         stdin=subprocess.DEVNULL)  # fmt: skip

    def output(self) -> str:
        return self.log.read_text(errors="replace") + self.out.read_text(errors="replace")

    def wait_for(self, text: str, timeout: float = 30) -> None:
        """Block until ``text`` appears in the consumer's log."""
        deadline = time.monotonic() + timeout
        while text not in self.log.read_text(errors="replace"):
            assert self.proc.poll() is None, f"consumer exited ({self.proc.returncode}):\n{self.output()}"
            assert time.monotonic() < deadline, f"no {text!r} after {timeout:g}s:\n{self.output()}"
            time.sleep(0.05)

    def wait_until(self, condition: Callable[[str], bool], what: str, timeout: float = 60) -> None:
        """Block until ``condition(log text)`` holds; ``timeout`` only guards against a hang."""
        deadline = time.monotonic() + timeout
        while not condition(self.log.read_text(errors="replace")):
            assert self.proc.poll() is None, f"consumer exited ({self.proc.returncode}):\n{self.output()}"
            assert time.monotonic() < deadline, f"not {what} after {timeout:g}s:\n{self.output()}"
            time.sleep(0.05)

    def pending(self, after: str | None = None) -> int:
        """Records the consumer last said it holds uncommitted while idle (0 if it has not said),
        counting only what it logged after the last line containing ``after``."""
        text = self.log.read_text(errors="replace")
        if after is not None:
            text = text[text.rfind(after) + len(after):] if after in text else ""
        counts = _PENDING.findall(text)
        return int(counts[-1]) if counts else 0

    def wait_for_pending(self, count: int, timeout: float = 60) -> None:
        """Block until the consumer has polled everything there is and holds ``count`` records
        pending, uncommitted (needs ``debug=True``)."""
        self.wait_until(lambda text: self.pending() == count, f"holding {count} record(s) pending", timeout)

    def wait(self, timeout: float = 60) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"consumer still running after {timeout:g}s:\n{self.output()}") from None

    def signal(self, sig: signal.Signals) -> None:
        self.proc.send_signal(sig)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


_PENDING = re.compile(r"idle with (\d+) record\(s\) pending")
_REVOKE_FLUSH = re.compile(r"revoking .*: flushing (\d+) pending")


def revoke_flushes(output: str) -> list[int]:
    """How many pending records each revoke of a consumer's log flushed, in order."""
    return [int(n) for n in _REVOKE_FLUSH.findall(output)]


def read_topic(bootstrap: str, topic: str, expected: int, timeout: float = 30) -> dict[tuple[int, int], Sent]:
    """Every message of ``topic`` by (partition, offset), read with a plain consumer."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"truth-{uuid.uuid4().hex[:8]}",
         "auto.offset.reset": "earliest", "enable.auto.commit": False}
    )  # fmt: skip
    consumer.subscribe([topic])
    found: dict[tuple[int, int], Sent] = {}
    deadline = time.monotonic() + timeout
    try:
        while len(found) < expected and time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is None:
                continue
            assert msg.error() is None, msg.error()
            ts_type, ts_ms = msg.timestamp()
            found[(msg.partition(), msg.offset())] = Sent(
                partition=msg.partition(),
                offset=msg.offset(),
                key=msg.key(),
                headers=dict(msg.headers() or []),
                value=msg.value(),
                timestamp=None if ts_type == TIMESTAMP_NOT_AVAILABLE else datetime.fromtimestamp(ts_ms / 1000, UTC),
            )
    finally:
        consumer.close()
    assert len(found) == expected, f"read {len(found)} of {expected} messages back from {topic}"
    return found


def end_offsets(bootstrap: str, topic: str, partitions: int) -> dict[int, int]:
    """High watermark of each partition."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"ends-{uuid.uuid4().hex[:8]}"})
    try:
        return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in range(partitions)}
    finally:
        consumer.close()


def committed(bootstrap: str, group: str, topic: str, partitions: int) -> dict[int, int]:
    """Offsets the group committed (0 where it committed nothing)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        tps = consumer.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
        return {tp.partition: (0 if tp.offset == OFFSET_INVALID else tp.offset) for tp in tps}
    finally:
        consumer.close()


@dataclass(frozen=True)
class Row:
    topic: str
    partition: int
    offset: int
    key: str | None
    seq: int | None
    event_id: int | None
    state: str | None
    timestamp: datetime | None


def db_rows(db: Path) -> list[Row]:
    """Rows of E2E.Events (read-only: only call once the consumer that wrote them exited)."""
    import duckdb

    if not db.exists():
        return []
    con = duckdb.connect(str(db), read_only=True)
    try:
        exists = con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'E2E' AND table_name = 'Events'"
        ).fetchone()
        if not exists or not exists[0]:
            return []
        result = con.execute(
            'SELECT "KafkaTopic", "KafkaPartition", "KafkaOffset", "KafkaKey", "Seq", "EventId", "State", '
            '"KafkaTimestamp" FROM "E2E"."Events"'
        ).fetchall()
    finally:
        con.close()
    return [Row(*r[:7], r[7].replace(tzinfo=UTC) if r[7] is not None else None) for r in result]


def dead_letters(directory: Path) -> list[DeadLetter]:
    """Every dead letter in a local dead-letter folder."""
    store = LocalDeadLetterStore(directory)
    return [letter for set_id in store.sets() for letter in store.read(set_id)]


def counts(rows: list[Row]) -> Counter[tuple[int, int]]:
    """How many rows each (partition, offset) has."""
    return Counter((r.partition, r.offset) for r in rows)


def describe(result: Any) -> str:
    return f"{result.stdout}\n{result.stderr}" if hasattr(result, "stdout") else str(result)
