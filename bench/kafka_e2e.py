"""The bench row "Kafka consumer, end to end from a real broker" (bench/run.py).

Starts the suite's KRaft broker (scripts/kafka_broker.py, as tests/fixtures/kafka.py does),
produces the workload's CSV and JSON records on 4 partitions, then measures the CPU time of the
*whole process* (``getrusage(RUSAGE_SELF)`` user + sys, so librdkafka's threads count) of

- ``KafkaIngestor`` (shared/kafka/consumer.py) running the pipeline into a memory sink, with and
  without validation, and
- the floor: a confluent-kafka ``Consumer`` reading the same topic with
  ``consume(num_messages=...)`` in batches, joining each batch's values and gzipping them at the
  pipeline's level (the least work that gives the same payloads from the same broker).

Every run reads its topic from the start with a fresh consumer group.

Then the peak RSS of ``kafka-adx consume`` itself (a child process, the console script's code,
into the local DuckDB sink as a user runs it), with its default flags and with 32 MiB batches,
over the CSV topic.
"""

from __future__ import annotations

import contextlib
import os
import resource
import subprocess
import sys
import time
import uuid
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.config import IngestionConfig
from shared.kafka.consumer import ConsumerOptions, KafkaIngestor

REPO = Path(__file__).resolve().parent.parent
CONFIG = REPO / "bench" / "ingestion.yaml"
PARTITIONS = 4
CONSUME_BATCH = 1000
BATCH_RECORDS = 5000
TARGETS = {True: 0.5, False: 0.7}
"""Ratio to the floor each case should reach: validated, not validated."""
RSS_TARGET_MB = 200
"""Most peak RSS ``kafka-adx consume`` may take, in MB (issue 13, item 4)."""
BIG_BATCH_BYTES = 32 * 1024 * 1024
"""The 32 MiB batches of the second memory row (``--batch-bytes``; ``--batch-records`` raised so
that the bytes, not the count, close a batch)."""


def cpu_seconds() -> float:
    """User + system CPU seconds of this process so far (all its threads)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class KafkaMeasured:
    """One consumer run and the floor of its format."""

    label: str
    records: int
    raw_bytes: int
    consumer_s: float
    floor_s: float
    target: float

    @property
    def ratio(self) -> float:
        """Consumer throughput / floor throughput."""
        return self.floor_s / self.consumer_s


@dataclass
class ConsumeMemory:
    """Peak RSS of one ``kafka-adx consume`` child process."""

    label: str
    records: int
    peak_rss_bytes: int
    cpu_s: float
    seconds: float


# `kafka-adx` as its console script runs it, writing this image's peak RSS (VmHWM) at exit:
# wait4's ru_maxrss would carry the pre-exec high-water mark of the forked bench process over.
_CONSUME_WRAPPER = (
    "import atexit, os, sys\n"
    "def _peak():\n"
    "    status = open('/proc/self/status').read().split('VmHWM:')[1].split()[0]\n"
    "    open(os.environ['KAFKA_ADX_BENCH_PEAK_FILE'], 'w').write(status)\n"
    "atexit.register(_peak)\n"
    "sys.argv[0] = 'kafka-adx'\n"
    "from shared.cli.app import main\n"
    "main()\n"
)


def measure_consume_memory(bootstrap: str, topic: str, count: int, workdir: Path, label: str,
                           flags: Sequence[str] = ()) -> ConsumeMemory:
    """Run ``kafka-adx consume`` over ``count`` records of ``topic`` into a fresh local DuckDB and
    return its peak RSS; fails unless every record landed."""
    import duckdb

    run_dir = workdir / f"consume-{uuid.uuid4().hex[:8]}"
    run_dir.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("ADX_INGEST_URI", "ADX_ENGINE_URI", "DEADLETTER_BLOB_URI")}
    env.update(LOCAL_DB=str(run_dir / "local.duckdb"), LOCAL_DEADLETTER_DIR=str(run_dir / "deadletter"),
               KAFKA_ADX_BENCH_PEAK_FILE=str(run_dir / "peak-kib"),
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])))
    command = [sys.executable, "-c", _CONSUME_WRAPPER, "consume", "--config", str(CONFIG), "-t", topic,
               "-b", bootstrap, "-g", f"rss-{uuid.uuid4().hex}", "--max-records", str(count), "--idle-exit", "30",
               *flags]  # fmt: skip
    log_path = run_dir / "consume.log"
    with open(log_path, "wb") as log_file:
        started = time.perf_counter()
        child = subprocess.Popen(command, env=env, stdout=log_file, stderr=subprocess.STDOUT, cwd=run_dir)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"kafka bench: kafka-adx consume failed:\n{log_path.read_text()[-2000:]}")
    with duckdb.connect(str(run_dir / "local.duckdb"), read_only=True) as con:
        row = con.execute('SELECT count(*) FROM "Bench"."StormEvents"').fetchone()
    if not row or row[0] != count:
        raise SystemExit(f"kafka bench: consume landed {row[0] if row else 0} of {count} records in DuckDB")
    peak_kib = int((run_dir / "peak-kib").read_text())
    return ConsumeMemory(label, count, peak_kib * 1024, usage.ru_utime + usage.ru_stime, seconds)


def _create_topics(bootstrap: str, names: Sequence[str]) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(n, num_partitions=PARTITIONS, replication_factor=1) for n in names])
    for future in futures.values():
        future.result(timeout=30)
    deadline = time.monotonic() + 30
    while True:
        metadata = admin.list_topics(timeout=5)
        ready = all(
            n in metadata.topics and len(metadata.topics[n].partitions) == PARTITIONS
            and all(p.leader >= 0 for p in metadata.topics[n].partitions.values())
            for n in names
        )
        if ready:
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"kafka bench: topics {', '.join(names)} not ready after 30 s")
        time.sleep(0.05)


def _produce(bootstrap: str, topic: str, values: Sequence[bytes]) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "batch.size": 1_000_000,
                         "compression.type": "none", "queue.buffering.max.messages": 500_000})
    produce, poll = producer.produce, producer.poll
    for index, value in enumerate(values):
        while True:
            try:
                produce(topic, value, partition=index % PARTITIONS)
                break
            except BufferError:
                poll(0.05)
    if producer.flush(60):
        raise SystemExit(f"kafka bench: could not produce every record to {topic}")


def _floor(bootstrap: str, topic: str, count: int, level: int) -> float:
    """CPU seconds of the floor: batched consume, join, gzip per BATCH_RECORDS records."""
    from confluent_kafka import Consumer

    started = cpu_seconds()
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"floor-{uuid.uuid4().hex}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    received = 0
    pending: list[bytes] = []
    try:
        while received < count:
            for message in consumer.consume(num_messages=CONSUME_BATCH, timeout=0.25):
                if message.error() is None:
                    pending.append(message.value())
            while len(pending) >= BATCH_RECORDS or (pending and received + len(pending) >= count):
                chunk, pending = pending[:BATCH_RECORDS], pending[BATCH_RECORDS:]
                compressor = zlib.compressobj(level, zlib.DEFLATED, 31)
                compressor.compress(b"\n".join(chunk) + b"\n")
                compressor.flush()
                received += len(chunk)
    finally:
        consumer.close()
    return cpu_seconds() - started


def _consumer(bootstrap: str, topic: str, count: int, pipeline: Any) -> float:
    """CPU seconds of KafkaIngestor reading ``count`` records of ``topic`` into ``pipeline``."""
    options = ConsumerOptions(topics=(topic,), group=f"bench-{uuid.uuid4().hex}", batch_records=BATCH_RECORDS,
                              max_records=count, idle_exit=30.0)
    started = cpu_seconds()
    stats = KafkaIngestor(pipeline, {"bootstrap.servers": bootstrap}, options).run()
    elapsed = cpu_seconds() - started
    if stats.result.ingested != count:
        raise SystemExit(f"kafka bench: {topic}: {stats.result.ingested} of {count} record(s) ingested "
                         f"({stats.result.dead_lettered} dead-lettered, stopped by {stats.stopped_by})")
    return elapsed


def measure_kafka(csv_values: list[bytes], json_values: list[bytes], config: IngestionConfig, workdir: Path,
                  new_pipeline: Callable[[IngestionConfig, Path], Any], bench_cpu: int | None,
                  repeat: int = 1) -> list[KafkaMeasured | ConsumeMemory] | str:
    """The four end-to-end rows and the two memory rows, or why they are skipped (no Java/Maven)."""
    from scripts.kafka_broker import KafkaToolsMissing, install_kafka, start_broker

    try:
        libs_dir = install_kafka()
    except KafkaToolsMissing as exc:
        return f"skipped: no local Kafka broker ({exc})"
    broker = start_broker(libs_dir, num_partitions=PARTITIONS)
    try:
        if bench_cpu is not None:
            pin_away(broker.pid, bench_cpu)
        bootstrap = broker.bootstrap
        level = config.limits.gzip_level
        sources = {"csv": csv_values, "json": json_values}
        _create_topics(bootstrap, [f"bench-{fmt}{suffix}" for fmt in sources for suffix in ("", "-novalidate")])
        for fmt, values in sources.items():
            for suffix in ("", "-novalidate"):
                _produce(bootstrap, f"bench-{fmt}{suffix}", values)
        time.sleep(3.0)  # let the broker settle (its writes and loopback traffic cost this CPU too)
        # One untimed read of every topic first: what is timed is a warm broker serving from the
        # page cache, for the first case as for the last.
        for fmt, values in sources.items():
            for suffix in ("", "-novalidate"):
                _floor(bootstrap, f"bench-{fmt}{suffix}", len(values), level)
        out: list[KafkaMeasured | ConsumeMemory] = []
        for fmt, values in sources.items():
            count = len(values)
            raw = sum(map(len, values))
            floor_s = consumer_s = novalidate_s = float("inf")
            for turn in range(repeat):
                if not turn % 2:  # floor and consumer take turns at going first
                    floor_s = min(floor_s, _floor(bootstrap, f"bench-{fmt}", count, level))
                consumer_s = min(consumer_s, _consumer(bootstrap, f"bench-{fmt}", count,
                                                       new_pipeline(config, workdir / "deadletter-kafka")))
                novalidate_s = min(novalidate_s, _consumer(bootstrap, f"bench-{fmt}-novalidate", count,
                                                           new_pipeline(config, workdir / "deadletter-kafka")))
                if turn % 2:
                    floor_s = min(floor_s, _floor(bootstrap, f"bench-{fmt}", count, level))
            name = fmt.upper()
            out.append(KafkaMeasured(f"Kafka consumer, {name}, validated", count, raw, consumer_s, floor_s,
                                     TARGETS[True]))
            out.append(KafkaMeasured(f"Kafka consumer, {name}, no validation", count, raw, novalidate_s, floor_s,
                                     TARGETS[False]))
        count = len(csv_values)
        out.append(measure_consume_memory(bootstrap, "bench-csv", count, workdir, "default flags"))
        out.append(measure_consume_memory(bootstrap, "bench-csv", count, workdir, "--batch-bytes 32 MiB",
                                          ["--batch-bytes", str(BIG_BATCH_BYTES), "--batch-records", str(count)]))
        return out
    finally:
        broker.stop()


def pin_away(broker_pid: int, bench_cpu: int) -> None:
    """Keep the broker (every thread of its process tree) off the bench's CPU when there are
    others: the broker is not what is measured."""
    others = set(range(os.cpu_count() or 1)) - {bench_cpu}
    if not others or not hasattr(os, "sched_setaffinity"):
        return
    for pid in _process_tree(broker_pid):
        # Every thread: a process's affinity is its first thread's, and the JVM's other threads
        # (network, log, GC) exist by now, each with its own.
        for tid in _threads(pid):
            with contextlib.suppress(OSError):
                os.sched_setaffinity(tid, others)


def _threads(pid: int) -> list[int]:
    """The thread ids of process ``pid`` (Linux /proc; just ``pid`` elsewhere)."""
    try:
        return [int(tid) for tid in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        return [pid]


def _process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (Linux /proc; just ``pid`` elsewhere)."""
    tree = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return tree
    for child in children:
        tree += _process_tree(int(child))
    return tree


def report_lines(measured: list[KafkaMeasured | ConsumeMemory] | str) -> list[str]:
    """The section of the bench table: records per CPU-second of consumer and floor, ratio, target;
    then the peak RSS of `kafka-adx consume`."""
    title = "Kafka consumer, end to end from a real broker"
    if isinstance(measured, str):
        return ["", f"{title}: {measured}"]
    lines = ["", f"{title} ({PARTITIONS} partitions, whole-process CPU time incl. librdkafka threads; "
                 "floor: batched consume + join + gzip)",
             f"{'case':<42} {'consumer rec/s':>14} {'MB/s':>7} {'floor rec/s':>12} {'MB/s':>7} {'ratio':>6}  target"]
    for m in measured:
        if isinstance(m, ConsumeMemory):
            continue
        verdict = "ok" if m.ratio >= m.target else "MISSED"
        lines.append(
            f"{m.label:<42} {m.records / m.consumer_s:>14,.0f} {m.raw_bytes / m.consumer_s / 1e6:>7,.1f} "
            f"{m.records / m.floor_s:>12,.0f} {m.raw_bytes / m.floor_s / 1e6:>7,.1f} {m.ratio:>6.2f}  "
            f">= {m.target:.1f} {verdict}"
        )
    for m in measured:
        if isinstance(m, ConsumeMemory):
            peak_mb = m.peak_rss_bytes / 1e6
            verdict = "ok" if peak_mb <= RSS_TARGET_MB else "MISSED"
            lines.append(
                f"{'Kafka consume peak RSS, ' + m.label:<42} {peak_mb:>8,.1f} MB peak RSS  <= {RSS_TARGET_MB} MB "
                f"{verdict}  ({m.records:,} CSV records into DuckDB, {m.seconds:.1f} s, {m.cpu_s:.1f} CPU s)"
            )
    return lines
