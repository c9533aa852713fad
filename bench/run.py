"""`make bench`: pipeline throughput against floors measured in the same run, the function entry
point's cost per event, local mode (`kafka-adx ingest` into DuckDB) against DuckDB's own bulk load,
and the peak memory of `kafka-adx ingest` over a large file.

Everything runs pinned to one CPU. Each pipeline case is measured against a *floor*: the least
work that produces the same output with the same libraries (orjson, the csv module, zlib at the
pipeline's gzip level), so the ratio says how much the pipeline's own machinery costs:

(a)  server-mapped JSON passthrough  vs  orjson.loads each record, newline-join, gzip
(b)  server-mapped CSV passthrough   vs  csv-module read of each record (field count), join, gzip
(c)  client-mapped JSON -> CSV rows with three metadata columns
                                     vs  orjson.loads each record, csv.writer rows, gzip
(a0), (b0)  the same passthroughs with validation off  vs  newline-join + gzip

local mode, JSON / CSV: `kafka-adx ingest` of the demo's kind of file (storm events, mapped by
kafka-adx with Kafka metadata columns) into a fresh DuckDB, CPU seconds of the whole process
                                     vs  a Python process loading the same rows (an equivalent file
                                         holding the metadata columns too) with DuckDB's
                                         read_json / read_csv into the same table

Timings are the best of ``--repeat`` runs, pipeline and floor interleaved so that both see the
same machine. Nothing here is a pass/fail test: the table shows ratios next to their targets.

    python bench/run.py            # full: 200,000 records and a ~1 GB file (a few minutes)
    python bench/run.py --quick    # seconds: a smoke run (tests/bench runs it)
    python bench/run.py --profile c   # pyinstrument profile of one case (pip install pyinstrument)
"""

from __future__ import annotations

import argparse
import csv
import gc
import io
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # `python bench/run.py` from a checkout without `pip install -e .`
    sys.path.insert(0, str(REPO))

from bench.avro import AvroMeasured, avro_lines, measure_avro  # noqa: E402
from bench.function_entry import BATCH as FUNCTION_BATCH  # noqa: E402
from bench.function_entry import EntryMeasured, entry_lines, measure_function_entry  # noqa: E402
from bench.kafka_e2e import KafkaMeasured, measure_kafka, report_lines  # noqa: E402
from shared.config import IngestionConfig, load_config  # noqa: E402
from shared.deadletters.local import LocalDeadLetterStore  # noqa: E402
from shared.ops.sample import COLUMNS, storm_events, to_csv, to_json  # noqa: E402
from shared.pipeline.core import Pipeline  # noqa: E402
from shared.pipeline.records import Record  # noqa: E402
from shared.pipeline.sink import MemorySink  # noqa: E402

CONFIG = Path(__file__).resolve().parent / "ingestion.yaml"
METADATA_TOPIC = "bench-json-client"
MEMORY_TARGET_MB = 300


# --------------------------------------------------------------------------- set-up


def pin_to_one_cpu() -> int | None:
    """Pin this process (and the children it starts) to one CPU; returns it (None: no support)."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    cpu = max(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return cpu


@dataclass
class Workload:
    """The same storm events as JSON records and as CSV rows."""

    json: list[bytes]
    csv: list[bytes]

    @classmethod
    def generate(cls, count: int) -> Workload:
        """``count`` storm events from the sample generator (deterministic)."""
        events = list(storm_events(count))
        return cls([to_json(e) for e in events], [to_csv(e) for e in events])

    @staticmethod
    def mean_size(values: Sequence[bytes]) -> float:
        """Mean record size in bytes."""
        return sum(map(len, values)) / max(len(values), 1)


def gzip_all(data: bytes, level: int) -> bytes:
    """One gzip stream, as the batch builder writes it."""
    compressor = zlib.compressobj(level, zlib.DEFLATED, 31)
    return compressor.compress(data) + compressor.flush()


# --------------------------------------------------------------------------- floors


def floor_json(values: Sequence[bytes], level: int) -> bytes:
    """(a): validate each record with orjson, then newline-join and gzip."""
    loads = orjson.loads
    for value in values:
        loads(value)
    return gzip_all(b"\n".join(values) + b"\n", level)


def floor_csv(values: Sequence[bytes], level: int) -> bytes:
    """(b): read each record with the csv module to count its fields, then join and gzip."""
    reader = csv.reader
    for value in values:
        len(next(reader((value.decode("utf-8"),))))
    return gzip_all(b"\n".join(values) + b"\n", level)


def floor_client(values: Sequence[bytes], level: int) -> bytes:
    """(c): orjson-parse each record and write the same rows (table columns, the dynamic column
    as JSON text, then topic, partition, offset) with the csv module, then gzip."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    loads, dumps = orjson.loads, orjson.dumps
    data_columns = COLUMNS[:-1]
    for offset, value in enumerate(values):
        doc = loads(value)
        row = [doc.get(name) for name in data_columns]
        row.append(dumps(doc.get("StormSummary")).decode())
        row += (METADATA_TOPIC, 0, offset)
        writer.writerow(row)
    return gzip_all(out.getvalue().encode("utf-8"), level)


def floor_join(values: Sequence[bytes], level: int) -> bytes:
    """(a0), (b0): newline-join and gzip."""
    return gzip_all(b"\n".join(values) + b"\n", level)


@dataclass(frozen=True)
class Case:
    """One pipeline measurement and its floor."""

    key: str
    label: str
    topic: str
    source: str
    """``json`` or ``csv``: which workload values."""
    floor: Callable[[Sequence[bytes], int], bytes]
    target: float | None


CASES = (
    Case("a", "(a)  JSON passthrough, validated", "bench-json", "json", floor_json, 0.8),
    Case("b", "(b)  CSV passthrough, validated", "bench-csv", "csv", floor_csv, 0.8),
    Case("c", "(c)  JSON -> CSV rows + 3 metadata cols", METADATA_TOPIC, "json", floor_client, 0.5),
    Case("a0", "(a0) JSON passthrough, no validation", "bench-json-novalidate", "json", floor_join, None),
    Case("b0", "(b0) CSV passthrough, no validation", "bench-csv-novalidate", "csv", floor_join, None),
)


# --------------------------------------------------------------------------- measuring


@contextmanager
def frozen_input() -> Iterator[None]:
    """Keep what exists now (the input, alive for the whole measurement) out of the garbage
    collector's way, as a streamed input would be; pipeline and floor alike."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def timed(fn: Callable[[], Any]) -> float:
    """CPU seconds one call of ``fn`` takes (after a full collection, so runs start alike).

    CPU time, not wall time: everything measured is single-threaded, and on a shared machine
    CPU time leaves out the time other processes held the core."""
    gc.collect()
    started = time.process_time()
    fn()
    return time.process_time() - started


@dataclass
class Measured:
    """Best times of one case."""

    case: Case
    records: int
    raw_bytes: int
    pipeline_s: float
    floor_s: float

    @property
    def ratio(self) -> float:
        """Pipeline throughput / floor throughput."""
        return self.floor_s / self.pipeline_s


def new_pipeline(config: IngestionConfig, deadletter_dir: Path) -> Pipeline:
    """A pipeline into a memory sink that counts batches and keeps no payloads."""
    return Pipeline(config, MemorySink(keep_payloads=False), LocalDeadLetterStore(deadletter_dir))


def measure_case(case: Case, values: list[bytes], config: IngestionConfig, workdir: Path, repeat: int) -> Measured:
    """Best-of-``repeat`` pipeline and floor times, interleaved, taking turns at going first."""
    records = [Record(value=v, topic=case.topic, partition=0, offset=i, source="kafka") for i, v in enumerate(values)]
    pipeline = new_pipeline(config, workdir / "deadletter")
    level = config.limits.gzip_level

    def run_pipeline() -> None:
        pipeline.forget_written()  # each run writes every batch again, not "already queued"
        result = pipeline.process(records)
        if result.ingested != len(records) or result.already_queued:  # the numbers would be meaningless
            raise SystemExit(f"{case.key}: {result.dead_lettered} record(s) dead-lettered: {result.reasons}")

    def run_floor() -> None:
        case.floor(values, level)

    best_pipeline = best_floor = float("inf")
    with frozen_input():
        for turn in range(repeat):
            if turn % 2:
                best_floor = min(best_floor, timed(run_floor))
            best_pipeline = min(best_pipeline, timed(run_pipeline))
            if not turn % 2:
                best_floor = min(best_floor, timed(run_floor))
    return Measured(case, len(values), sum(map(len, values)), best_pipeline, best_floor)


# --------------------------------------------------------------------------- peak memory


@dataclass
class MemoryMeasured:
    """Peak RSS of one `kafka-adx ingest` child process."""

    file_bytes: int
    records: int
    peak_rss_bytes: int
    seconds: float
    rows_in_db: int


def write_jsonl(path: Path, values: Sequence[bytes], size: int) -> int:
    """Stream a JSON-lines file of about ``size`` bytes by cycling ``values``; returns records."""
    block = b"\n".join(values) + b"\n"
    per_block = len(values)
    written = records = 0
    with open(path, "wb") as out:
        while written < size:
            if written + len(block) <= size:
                out.write(block)
                written += len(block)
                records += per_block
                continue
            for value in values:  # the last, partial block, record by record
                if written >= size:
                    break
                out.write(value + b"\n")
                written += len(value) + 1
                records += 1
    return records


# `kafka-adx` exactly as its console script runs it (shared.cli.app:main), plus an exit hook that
# records the peak RSS of this program image: VmHWM belongs to the address space exec created.
# (wait4's ru_maxrss would not do: Linux carries the pre-exec high-water mark over, i.e. the
# size of this benchmark process at fork time.)
_PEAK_WRAPPER = """
import atexit, os, sys

def _record_peak():
    with open("/proc/self/status") as status:
        peak_kib = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
    with open(os.environ["KAFKA_ADX_BENCH_PEAK_FILE"], "w") as out:
        out.write(peak_kib)

atexit.register(_record_peak)
sys.argv[0] = "kafka-adx"
from shared.cli.app import main
main()
"""


def ingest_env(workdir: Path, name: str) -> dict[str, str]:
    """The environment of a `kafka-adx ingest` child: local mode into ``<name>.duckdb`` (the ADX
    and blob settings of this shell removed), its peak RSS recorded in ``peak-<name>``."""
    env = {k: v for k, v in os.environ.items() if k not in ("ADX_INGEST_URI", "ADX_ENGINE_URI", "DEADLETTER_BLOB_URI")}
    env["LOCAL_DB"] = str(workdir / f"{name}.duckdb")
    env["LOCAL_DEADLETTER_DIR"] = str(workdir / f"deadletter-{name}")
    env["KAFKA_ADX_BENCH_PEAK_FILE"] = str(workdir / f"peak-{name}")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def ingest_command(topic: str, data: Path) -> list[str]:
    """`kafka-adx ingest --topic <topic> <data>` with the bench's ingestion file."""
    return [sys.executable, "-c", _PEAK_WRAPPER, "ingest", "--config", str(CONFIG), "--topic", topic, str(data)]


def run_child(command: Sequence[str], env: dict[str, str], log_path: Path, cwd: Path) -> tuple[float, float, int]:
    """Run a child process to its end: (CPU seconds of the whole process, user + system and
    all its threads; wall seconds; wait4's ru_maxrss in KiB). Exits the bench with the child's
    output if it failed."""
    with open(log_path, "wb") as log_file:
        started = time.perf_counter()
        child = subprocess.Popen(command, env=env, stdout=log_file, stderr=subprocess.STDOUT, cwd=cwd)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"{log_path.stem} failed ({code}):\n{log_path.read_text()[-2000:]}")
    return usage.ru_utime + usage.ru_stime, seconds, usage.ru_maxrss


def count_rows(db: str | Path, table: str) -> int:
    """Rows of ``table`` in a DuckDB file."""
    import duckdb

    with duckdb.connect(str(db), read_only=True) as con:
        row = con.execute(f"SELECT count(*) FROM {table}").fetchone()
    return int(row[0]) if row else 0


def measure_memory(values: list[bytes], size: int, workdir: Path) -> MemoryMeasured:
    """Run `kafka-adx ingest` over a generated JSON-lines file into the local DuckDB sink and
    return the child's peak RSS (Linux: VmHWM; elsewhere wait4's ru_maxrss, an upper bound)."""
    data = workdir / "big.jsonl"
    records = write_jsonl(data, values, size)
    env = ingest_env(workdir, "memory")
    peak_file = Path(env["KAFKA_ADX_BENCH_PEAK_FILE"])
    command = ingest_command("bench-json", data)
    try:
        _, seconds, maxrss_kib = run_child(command, env, workdir / "ingest.log", workdir)
        file_bytes = data.stat().st_size
    finally:
        data.unlink(missing_ok=True)
    rows = count_rows(env["LOCAL_DB"], '"Bench"."StormEvents"')
    if rows != records:
        raise SystemExit(f"memory run: {records} records written, {rows} rows in DuckDB")
    peak_kib = int(peak_file.read_text()) if peak_file.exists() else maxrss_kib
    return MemoryMeasured(file_bytes, records, peak_kib * 1024, seconds, rows)


# --------------------------------------------------------------------------- local mode

LOCAL_TARGET = 0.5
LOCAL_TABLE = "StormEventsKafka"


@dataclass(frozen=True)
class LocalCase:
    """One local-mode row: the route `kafka-adx ingest` takes, the records' shape and the table
    (``metadata``: the mapping adds topic, partition and offset, which the floor's file holds)."""

    label: str
    topic: str
    source: str
    table: str = LOCAL_TABLE
    metadata: bool = True


LOCAL_CASES = (
    LocalCase("JSON", "bench-local-json", "json"),
    LocalCase("CSV", "bench-local-csv", "csv"),
    # Server-mapped (the mapping ADX applies to the producer's bytes, done by DuckDB locally): the
    # tutorial's route shape (6-field CSV from its producer, ordinal mapping) and StormEvents JSON
    # / CSV by path / ordinal mappings, validated; and without validation, where Python maps and
    # checks nothing per record (the upper bound of any client mapping).
    LocalCase("tutorial CSV, server-mapped", "bench-local-tutorial", "tutorial", "Storms", False),
    LocalCase("JSON, server-mapped", "bench-json", "json", "StormEvents", False),
    LocalCase("CSV, server-mapped", "bench-csv", "csv", "StormEvents", False),
    LocalCase("JSON, server-mapped, no validation", "bench-json-novalidate", "json", "StormEvents", False),
    LocalCase("CSV, server-mapped, no validation", "bench-csv-novalidate", "csv", "StormEvents", False),
)
"""The local-mode rows."""

# The floor: a Python process that does nothing but DuckDB's bulk load of the rows, with
# DuckDB's default settings (the local sink's 64 MB memory_limit is too small for read_json's
# buffers: the floor gets the memory it wants) but, like the sink, one thread per CPU it may use.
_FLOOR_LOAD = """
import os, sys, duckdb
db, ddl, load = sys.argv[1:4]
con = duckdb.connect(db)
con.execute(f"SET threads = {len(os.sched_getaffinity(0))}")
con.execute(ddl)
con.execute(load)
con.close()
"""


@dataclass
class LocalMeasured:
    """Best CPU seconds of `kafka-adx ingest` and of DuckDB's bulk load of the same rows."""

    label: str
    records: int
    raw_bytes: int
    ingest_s: float
    floor_s: float
    peak_rss_bytes: int

    @property
    def ratio(self) -> float:
        """kafka-adx throughput / floor throughput."""
        return self.floor_s / self.ingest_s


def equivalent_rows(values: Sequence[bytes], source: str, topic: str) -> bytes:
    """The rows local mode stores, as one file for DuckDB to load: each record with the
    metadata columns the mapping adds (topic, partition 0 = the first file, offset = record
    number), as JSON members or CSV fields."""
    if source == "json":
        tail = f',"KafkaTopic":"{topic}","KafkaPartition":0,"KafkaOffset":'.encode()
        return b"".join(v[:-1] + tail + b"%d}\n" % n for n, v in enumerate(values, start=1))
    tail = f",{topic},0,".encode()
    return b"".join(v + tail + b"%d\n" % n for n, v in enumerate(values, start=1))


def floor_sql(config: IngestionConfig, source: str, path: Path, table: str = LOCAL_TABLE) -> tuple[str, str]:
    """(CREATE TABLE, INSERT ... SELECT FROM read_json/read_csv) of the floor, the table typed
    as the local sink creates it."""
    from shared.mapping.types import TYPES

    columns = config.tables[table].columns
    ddl = "CREATE TABLE t (" + ", ".join(f'"{c.name}" {TYPES[c.type].duckdb}' for c in columns) + ")"
    typed = ", ".join(f"'{c.name}': '{TYPES[c.type].duckdb}'" for c in columns)
    names = ", ".join(f'"{c.name}"' for c in columns)
    if source == "json":
        read = f"read_json('{path}', format = 'newline_delimited', columns = {{{typed}}})"
    else:
        read = f"read_csv('{path}', header = false, columns = {{{typed}}}, auto_detect = false, delim = ',', quote = '\"')"
    return ddl, f"INSERT INTO t SELECT {names} FROM {read}"


def measure_local(workload: Workload, config: IngestionConfig, workdir: Path, repeat: int,
                  local_filter: Sequence[str] | None = None) -> list[LocalMeasured]:
    """Each local-mode case: `kafka-adx ingest` of the records as a file and the floor's load of
    the same rows, each in a child process into a fresh DuckDB file, interleaved, best of
    ``repeat``; the rows in DuckDB are counted after every run."""
    out = []
    for case in LOCAL_CASES:
        if local_filter is not None and case.label not in local_filter:
            continue
        out.append(measure_local_case(case, local_values(workload, case.source), config, workdir, repeat))
    return out


def local_values(workload: Workload, source: str) -> list[bytes]:
    """The records of a local-mode case: the workload's JSON or CSV, or the tutorial producer's
    6-field CSV records of the same events."""
    if source == "tutorial":
        from shared.ops.sample import go_csv_record, tutorial_fields

        return [go_csv_record(tutorial_fields(e)).encode()[:-1] for e in storm_events(len(workload.csv))]
    return workload.json if source == "json" else workload.csv


def measure_local_case(case: LocalCase, values: list[bytes], config: IngestionConfig, workdir: Path,
                       repeat: int) -> LocalMeasured:
    """One local-mode case: `kafka-adx ingest` and the floor, interleaved, best of ``repeat``."""
    source = "json" if case.source == "json" else "csv"
    data = workdir / f"local.{source}"
    data.write_bytes(b"\n".join(values) + b"\n")
    rows_file = workdir / f"local-rows.{source}"
    if case.metadata:
        rows_file.write_bytes(equivalent_rows(values, source, case.topic))
    else:
        shutil.copyfile(data, rows_file)
    ddl, load = floor_sql(config, source, rows_file, case.table)
    best_ingest = best_floor = float("inf")
    peak = 0
    database = config.database
    for turn in range(repeat):
        for step in (("floor", "ingest") if turn % 2 else ("ingest", "floor")):
            db = workdir / f"local-{step}.duckdb"
            db.unlink(missing_ok=True)
            if step == "ingest":
                env = ingest_env(workdir, "local-ingest")
                shutil.rmtree(env["LOCAL_DEADLETTER_DIR"], ignore_errors=True)
                cpu, _, maxrss_kib = run_child(ingest_command(case.topic, data), env, workdir / "local-ingest.log",
                                               workdir)
                rows = count_rows(db, f'"{database}"."{case.table}"')
                peak_file = Path(env["KAFKA_ADX_BENCH_PEAK_FILE"])
                peak = max(peak, (int(peak_file.read_text()) if peak_file.exists() else maxrss_kib) * 1024)
                best_ingest = min(best_ingest, cpu)
            else:
                command = [sys.executable, "-c", _FLOOR_LOAD, str(db), ddl, load]
                cpu, _, _ = run_child(command, dict(os.environ), workdir / "local-floor.log", workdir)
                rows = count_rows(db, "t")
                best_floor = min(best_floor, cpu)
            if rows != len(values):
                raise SystemExit(f"local mode, {case.label}, {step}: {len(values)} records, {rows} rows in DuckDB")
    data.unlink()
    rows_file.unlink()
    return LocalMeasured(case.label, len(values), sum(map(len, values)), best_ingest, best_floor, peak)


# --------------------------------------------------------------------------- report


def machine() -> str:
    """One line describing the machine and the software."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import duckdb

    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") if hasattr(os, "sysconf") else 0
    return (f"{cpu}, {os.cpu_count()} CPUs, {memory / 2**30:.0f} GiB RAM, Python {platform.python_version()}, "
            f"{platform.system()} {platform.release()}, orjson {orjson.__version__}, "
            f"zlib {zlib.ZLIB_RUNTIME_VERSION}, duckdb {duckdb.__version__}")


def mb(count: float) -> str:
    """Bytes as decimal megabytes."""
    return f"{count / 1e6:,.1f}"


def report(workload: Workload, cpu: int | None, repeat: int, level: int, cases: list[Measured],
           entries: list[EntryMeasured], memory: MemoryMeasured | None,
           kafka: list[KafkaMeasured] | str | None = None, local: Sequence[LocalMeasured] = (),
           avro: AvroMeasured | None = None) -> str:
    """The one table the bench prints."""
    lines = [
        f"kafka-adx bench: {len(workload.json):,} storm events (JSON {Workload.mean_size(workload.json):.0f} B, "
        f"CSV {Workload.mean_size(workload.csv):.0f} B per record), gzip level {level}, "
        f"pinned to CPU {cpu if cpu is not None else '(not pinned)'}, CPU time, best of {repeat}",
        f"machine: {machine()}",
        "",
        f"{'case':<42} {'pipeline rec/s':>14} {'MB/s':>7} {'floor rec/s':>12} {'MB/s':>7} {'ratio':>6}  target",
    ]
    for m in cases:
        target = f">= {m.case.target:.1f} {'ok' if m.ratio >= m.case.target else 'MISSED'}" if m.case.target else "-"
        lines.append(
            f"{m.case.label:<42} {m.records / m.pipeline_s:>14,.0f} {mb(m.raw_bytes / m.pipeline_s):>7} "
            f"{m.records / m.floor_s:>12,.0f} {mb(m.raw_bytes / m.floor_s):>7} {m.ratio:>6.2f}  {target}"
        )
    lines += avro_lines(avro)
    lines += entry_lines(entries)
    lines += local_lines(local)
    if memory is not None:
        ok = "ok" if memory.peak_rss_bytes < MEMORY_TARGET_MB * 1e6 else "MISSED"
        lines.append(
            f"{'peak memory, ingest ' + mb(memory.file_bytes) + ' MB JSON -> DuckDB':<42} "
            f"{memory.records / memory.seconds:>14,.0f} {mb(memory.file_bytes / memory.seconds):>7} "
            f"{mb(memory.peak_rss_bytes):>10} MB peak RSS  < {MEMORY_TARGET_MB} MB {ok} "
            f"({memory.records:,} records in {memory.seconds:,.1f} s)"
        )
    if kafka is not None:
        lines += report_lines(kafka)
    return "\n".join(lines)


def local_lines(local: Sequence[LocalMeasured]) -> list[str]:
    """The local-mode rows, in the pipeline rows' columns: records per CPU-second of the whole
    `kafka-adx ingest` process and of the floor's, MB/s of record bytes, ratio, target."""
    lines = []
    for m in local:
        ok = "ok" if m.ratio >= LOCAL_TARGET else "MISSED"
        lines.append(
            f"{'local mode, ' + m.label:<48} {m.records / m.ingest_s:>14,.0f} {mb(m.raw_bytes / m.ingest_s):>7} "
            f"{m.records / m.floor_s:>12,.0f} {mb(m.raw_bytes / m.floor_s):>7} {m.ratio:>6.2f}  "
            f">= {LOCAL_TARGET:.1f} {ok}"
        )
    if local:
        lines.append(f"{'':<42} (local mode: CPU s of the whole process, kafka-adx ingest "
                     f"{', '.join(f'{m.ingest_s:.2f}' for m in local)} vs DuckDB's load "
                     f"{', '.join(f'{m.floor_s:.2f}' for m in local)}; peak RSS "
                     f"{', '.join(mb(m.peak_rss_bytes) for m in local)} MB)")
    return lines


# --------------------------------------------------------------------------- main


def profile_case(key: str, workload: Workload, config: IngestionConfig, workdir: Path) -> None:
    """Print a pyinstrument profile of one pipeline case."""
    try:
        from pyinstrument import Profiler
    except ImportError:
        raise SystemExit("--profile needs pyinstrument: pip install pyinstrument") from None
    case = next((c for c in CASES if c.key == key), None)
    if case is None:
        raise SystemExit(f"--profile: no case {key!r} (one of {', '.join(c.key for c in CASES)})")
    values = workload.json if case.source == "json" else workload.csv
    records = [Record(value=v, topic=case.topic, partition=0, offset=i) for i, v in enumerate(values)]
    pipeline = new_pipeline(config, workdir / "deadletter")
    profiler = Profiler(interval=0.0005)
    profiler.start()
    pipeline.process(records)
    profiler.stop()
    print(profiler.output_text(unicode=False, color=False))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="smoke run: few records, small file, one repeat")
    parser.add_argument("--records", type=int, help="records per case (default 200,000; 3,000 with --quick)")
    parser.add_argument("--repeat", type=int, help="runs per measurement, best kept (default 5; 1 with --quick)")
    parser.add_argument("--memory-mb", type=float, help="size of the ingest file in MB (default 1000; 10 with --quick)")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory run")
    parser.add_argument("--no-local", action="store_true", help="skip the local-mode rows (kafka-adx ingest into DuckDB)")
    parser.add_argument("--only-local", action="store_true", help="run only the local-mode rows")
    parser.add_argument("--local-case", action="append", metavar="LABEL",
                        help="run only this local-mode row (its label, e.g. 'CSV, server-mapped'; repeatable)")
    parser.add_argument("--no-kafka", action="store_true", help="skip the end-to-end Kafka consumer rows")
    parser.add_argument("--no-avro", action="store_true", help="skip the Avro row (bench/avro.py)")
    parser.add_argument("--kafka-records", type=int,
                        help="records per Kafka end-to-end case (default 1,000,000; 5,000 with --quick)")
    parser.add_argument("--only-kafka", action="store_true", help="run only the end-to-end Kafka consumer rows")
    parser.add_argument("--profile", metavar="CASE", help="print a pyinstrument profile of one case (a, b, c, a0, b0)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    count = args.records or (3_000 if args.quick else 200_000)
    repeat = args.repeat or (1 if args.quick else 5)
    memory_bytes = int((args.memory_mb or (10 if args.quick else 1000)) * 1e6)
    invocations = max(1, min(count // FUNCTION_BATCH, 3 if args.quick else 50))

    kafka_count = args.kafka_records or (5_000 if args.quick else 1_000_000)

    cpu = pin_to_one_cpu()
    config = load_config(CONFIG)
    workload = Workload.generate(count)
    with tempfile.TemporaryDirectory(prefix="kafka-adx-bench-") as tmp:
        workdir = Path(tmp)
        if args.profile:
            profile_case(args.profile, workload, config, workdir)
            return 0
        kafka: list[KafkaMeasured] | str | None = None
        if not args.no_kafka and not args.only_local:
            events = workload if kafka_count == count else Workload.generate(kafka_count)
            kafka = measure_kafka(events.csv, events.json, config, workdir, new_pipeline, cpu,
                                  repeat=1 if args.quick else 2)
            del events
        if args.only_kafka:
            print("\n".join(report_lines(kafka or "skipped (--no-kafka)")))
            return 0
        if args.only_local:
            print("\n".join(local_lines(measure_local(workload, config, workdir, min(repeat, 3), args.local_case))))
            return 0
        measured = []
        for case in CASES:
            values = workload.json if case.source == "json" else workload.csv
            measured.append(measure_case(case, values, config, workdir, repeat))
        avro = None if args.no_avro else measure_avro(list(storm_events(count)), config, workdir, new_pipeline,
                                                      gzip_all, repeat)
        entries = measure_function_entry(workload.json, config, workdir, new_pipeline, invocations, repeat)
        local = [] if args.no_local else measure_local(workload, config, workdir, min(repeat, 3), args.local_case)
        memory = None if args.no_memory else measure_memory(workload.json[:10_000], memory_bytes, workdir)
    print(report(workload, cpu, repeat, config.limits.gzip_level, measured, entries, memory, kafka, local, avro))
    return 0


if __name__ == "__main__":
    sys.exit(main())
