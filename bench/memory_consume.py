"""Probe of the peak RSS of ``kafka-adx consume`` into the local DuckDB sink (issue 13, item 4).

The bench's two memory rows (bench/kafka_e2e.py) run ``kafka-adx consume`` as a child process
over the CSV topic and read its VmHWM at exit. This probe does the same over one broker and one
topic, with *variants* taking turns: each variant is Python code run in the child before the
CLI's ``main`` (a setting patched, an allocator call), so a lever is measured without editing the
code under test. A sampler thread in the child reads VmRSS every 10 ms and keeps the highest
value seen in each phase (``consume``: polling and the pending batch; ``pipeline``: encoding
and gzip; ``sink``: the DuckDB load), which says where the peak is.

    .venv/bin/python bench/memory_consume.py --records 300000 --runs 3 --variants base,mem32
    .venv/bin/python bench/memory_consume.py --list

Prints one line per run and then the medians per (variant, flags). Whole-process CPU seconds of
the child (wait4) come with each figure: a lever that saves memory but costs CPU shows it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.kafka_e2e import BIG_BATCH_BYTES, CONFIG, PARTITIONS, _create_topics, _produce  # noqa: E402

# A child's RSS sampler: the highest VmRSS seen in each phase (``_phase[0]``), every 10 ms.
SAMPLER = r"""
import atexit, json, os, sys, threading, time

def _rss_kib(field="VmRSS:"):
    with open("/proc/self/status") as status:
        return int(next(line.split()[1] for line in status if line.startswith(field)))

_phase = ["start"]
_peaks = {}
_stop = threading.Event()

def _sample():
    while not _stop.wait(0.01):
        rss = _rss_kib()
        phase = _phase[0]
        if rss > _peaks.get(phase, 0):
            _peaks[phase] = rss
"""

# The child: the sampler, the variant's prelude, then `kafka-adx` as its console script runs it.
_CHILD = SAMPLER + r"""
def _phased(cls, name, phase):
    original = getattr(cls, name)
    def wrapper(*args, **kwargs):
        before = _phase[0]
        _phase[0] = phase
        try:
            return original(*args, **kwargs)
        finally:
            _phase[0] = before
    setattr(cls, name, wrapper)

def _done():
    _stop.set()
    out = {"hwm_kib": _rss_kib("VmHWM:"), "peaks_kib": _peaks, "imported_kib": _imported}
    with open(os.environ["PROBE_OUT"], "w") as fh:
        json.dump(out, fh)

atexit.register(_done)
if os.environ.get("PROBE_SAMPLE") == "1":
    threading.Thread(target=_sample, daemon=True).start()
for _code in json.loads(os.environ.get("PROBE_PRELUDE", "[]")):
    exec(_code, {})  # each part in its own namespace, so that two parts may patch one method
sys.argv[0] = "kafka-adx"
from shared.cli.app import main
_imported = _rss_kib()
if os.environ.get("PROBE_SAMPLE") == "1":
    from shared.pipeline.core import Pipeline
    from shared.sinks.duckdb import DuckDbSink
    _phase[0] = "consume"
    _phased(Pipeline, "process", "pipeline")
    _phased(DuckDbSink, "write", "sink")
main()
"""

_LIBC = "import ctypes; _libc = ctypes.CDLL('libc.so.6')\n"



def _duck_setting(setting: str) -> str:
    """A prelude that runs ``SET <setting>`` on the sink's connection after its own settings."""
    return (
        "from shared.sinks.duckdb import DuckDbSink\n"
        "_i = DuckDbSink.__init__\n"
        "def _init(self, *a, **k):\n"
        "    _i(self, *a, **k)\n"
        f"    self.con.execute({'SET ' + setting!r})\n"
        "DuckDbSink.__init__ = _init\n"
    )


def _attach_row_groups(rows: int) -> str:
    """A prelude that makes the sink open its file as ``ATTACH ... (ROW_GROUP_SIZE rows)`` on an
    in-memory connection (then ``USE``), instead of ``duckdb.connect(file)``."""
    return (
        "import types, duckdb\n"
        "import shared.sinks.duckdb as sd\n"
        "def _connect(path):\n"
        "    con = duckdb.connect()\n"
        f"    con.execute(f\"ATTACH '{{path}}' AS local (ROW_GROUP_SIZE {rows})\")\n"
        "    con.execute('USE local')\n"
        "    return con\n"
        "sd.duckdb = types.SimpleNamespace(connect=_connect, Error=duckdb.Error)\n"
    )


def _consumer_settings(**settings: object) -> str:
    """A prelude that adds librdkafka ``settings`` (dots as underscores) to the consumer's
    defaults, as ``consumer_config`` would (user ``-X`` still on top: the bench gives none)."""
    config = {name.replace("_", "."): value for name, value in settings.items()}
    return (
        "import shared.kafka.consumer as kc\n"
        "_cc = kc.consumer_config\n"
        "def _config(client, options):\n"
        "    config = _cc(client, options)\n"
        f"    config.update({config!r})\n"
        "    return config\n"
        "kc.consumer_config = _config\n"
    )


# BatchBuilder writing the gzip stream into one BytesIO (its getvalue() hands over its buffer
# without a copy) instead of a list of chunks joined at seal (the stream twice for an instant).
_BYTESIO = """
import hashlib, io, zlib
from shared.pipeline import batching as _b
def _reset(self):
    self._compressor = zlib.compressobj(self.level, zlib.DEFLATED, 31)
    self._content = hashlib.sha256()
    self.chunks = io.BytesIO()
    self.lines = []
    self.compressed = 0
    self.records = []
    self.raw_size = 0
def compress_lines(self):
    self.lines.append(b"")
    data = b"\\n".join(self.lines)
    self._content.update(data)
    self.chunks.write(self._compressor.compress(data))
    self.lines = []
    self.compressed = self.raw_size
def seal(self):
    if self.lines:
        self.compress_lines()
    out = self.chunks
    out.write(self._compressor.flush())
    self.chunks = None
    payload = out.getvalue()
    del out
    records = tuple(self.records)
    ranges, oldest, newest = _b.ranges_and_span(records)
    batch = _b.Batch(destination=self.destination, payload=payload, raw_size=self.raw_size, records=records,
                     ranges=ranges, oldest_timestamp=oldest,
                     batch_id=_b.batch_id_for(self.destination, ranges, len(records), self._content.digest(),
                                              (oldest, newest)))
    self._reset()
    return batch
_b.BatchBuilder._reset = _reset
_b.BatchBuilder.compress_lines = compress_lines
_b.BatchBuilder.seal = seal
"""


VARIANTS: dict[str, str] = {
    "base": "",
    # librdkafka's fetch sizes on top of queued.max.messages.kbytes 4096.
    "fetch1m": _consumer_settings(fetch_max_bytes=1048576, max_partition_fetch_bytes=262144),
    "fetch4m": _consumer_settings(fetch_max_bytes=4194304, max_partition_fetch_bytes=1048576),
    "part256k": _consumer_settings(max_partition_fetch_bytes=262144),
    "part128k": _consumer_settings(max_partition_fetch_bytes=131072),
    "qmin500": _consumer_settings(queued_min_messages=500),
    "qmin1k": _consumer_settings(queued_min_messages=1000),
    "qmin2k": _consumer_settings(queued_min_messages=2000),
    "qmin5k": _consumer_settings(queued_min_messages=5000),
    "qmin100k": _consumer_settings(queued_min_messages=100000),  # librdkafka's default
    # How long librdkafka postpones a partition's next fetch once its queue is over a threshold
    # (its default 1000 ms: with a short queue the consumer then waits for data).
    "qb10": _consumer_settings(fetch_queue_backoff_ms=10),
    "kb1024": _consumer_settings(queued_max_messages_kbytes=1024),
    "qb100": _consumer_settings(fetch_queue_backoff_ms=100),
    "qb1000": _consumer_settings(fetch_queue_backoff_ms=1000),
    "bytesio": _BYTESIO,
    # glibc: hand freed heap pages back (malloc_trim) after each seal, before the sink write.
    "trimseal": _LIBC
    + (
        "from shared.pipeline.core import Pipeline\n"
        "_s = Pipeline._seal\n"
        "def _seal(builder, oldest):\n"
        "    try:\n"
        "        return _s(builder, oldest)\n"
        "    finally:\n"
        "        _libc.malloc_trim(0)\n"
        "Pipeline._seal = staticmethod(_seal)\n"
    ),
    # The tree in $PROBE_OLD_TREE (a copy of shared/ with the code before a change) imported
    # instead of this one: before/after in one session.
    "old": "import os, sys; sys.path.insert(0, os.environ['PROBE_OLD_TREE'])\n",
    # DuckDB's buffer pool: the sink's MEMORY_LIMIT.
    "mem48": "from shared.sinks.duckdb import DuckDbSink; DuckDbSink.MEMORY_LIMIT = '48MB'\n",
    "mem32": "from shared.sinks.duckdb import DuckDbSink; DuckDbSink.MEMORY_LIMIT = '32MB'\n",
    "mem24": "from shared.sinks.duckdb import DuckDbSink; DuckDbSink.MEMORY_LIMIT = '24MB'\n",
    # No DuckDB load at all (the connection still opened): what the rest of the process takes.
    "nosink": "from shared.sinks.duckdb import DuckDbSink; DuckDbSink.write = lambda self, batch: None\n",
    # glibc: at most 2 malloc arenas (DuckDB's threads each get one by default: 8 x cores).
    "arena2": _LIBC + "_libc.mallopt(-8, 2)\n",
    "arena1": _LIBC + "_libc.mallopt(-8, 1)\n",
    # glibc: a fixed 128 KiB mmap threshold (M_MMAP_THRESHOLD; glibc raises it as large blocks
    # are freed, after which they come from the heap and stay there).
    "mmap128k": _LIBC + "_libc.mallopt(-3, 128 * 1024)\n",
    # What the process holds when a flush starts: RSS (anonymous, file), the pending records.
    "flushstats": (
        "import sys\n"
        "from shared.pipeline.core import Pipeline\n"
        "_p = Pipeline.process\n"
        "def _status():\n"
        "    d = dict(l.split(':', 1) for l in open('/proc/self/status'))\n"
        "    return ' '.join(f\"{k} {int(d[k].split()[0]) // 1024}\" for k in ('VmRSS', 'RssAnon', 'RssFile'))\n"
        "def process(self, records, **kw):\n"
        "    recs = list(records)\n"
        "    size = sum(sys.getsizeof(r) + sys.getsizeof(r.value) + sys.getsizeof(r.topic) for r in recs)\n"
        "    print(f'flush: {len(recs)} records, {size / 1048576:.1f} MiB of objects; {_status()}; '\n"
        "          f'blocks {sys.getallocatedblocks()}', file=sys.stderr, flush=True)\n"
        "    try:\n"
        "        return _p(self, recs, **kw)\n"
        "    finally:\n"
        "        print(f'flushed: {_status()}', file=sys.stderr, flush=True)\n"
        "Pipeline.process = process\n"
        "from shared.kafka.consumer import KafkaIngestor\n"
        "_r = KafkaIngestor.run\n"
        "def run(self):\n"
        "    print(f'run starts: {_status()}', file=sys.stderr, flush=True)\n"
        "    return _r(self)\n"
        "KafkaIngestor.run = run\n"
    ),
    # glibc: give freed memory back after each sink write.
    "trim": _LIBC
    + (
        "from shared.sinks.duckdb import DuckDbSink\n"
        "_w = DuckDbSink.write\n"
        "def _write(self, batch):\n"
        "    try:\n"
        "        return _w(self, batch)\n"
        "    finally:\n"
        "        _libc.malloc_trim(0)\n"
        "DuckDbSink.write = _write\n"
    ),
    # DuckDB settings applied after the sink's own.
    "threads1": (
        "from shared.sinks.duckdb import DuckDbSink\n"
        "_i = DuckDbSink.__init__\n"
        "def _init(self, *a, **k):\n"
        "    _i(self, *a, **k)\n"
        "    self.con.execute('SET threads = 1')\n"
        "DuckDbSink.__init__ = _init\n"
    ),
    # The reference path's read_csv (server-mapped routes) with the direct load's 4 MiB buffer.
    "buf4": (
        "from shared.sinks.duckdb import DuckDbSink\n"
        "_s = DuckDbSink._insert\n"
        "def _insert(self, batch, select):\n"
        "    if 'buffer_size' not in select:\n"
        "        select = select.replace('strict_mode = false)', 'strict_mode = false, buffer_size = 4194304)')\n"
        "    return _s(self, batch, select)\n"
        "DuckDbSink._insert = _insert\n"
    ),
    # The database file attached with smaller row groups (DuckDB's default: 122,880 rows).
    "rg16k": _attach_row_groups(16384),
    "rg32k": _attach_row_groups(32768),
    "flush8": _duck_setting("allocator_flush_threshold = '8MB'"),
    "bgthreads": _duck_setting("allocator_background_threads = true"),
    "wbrg1": _duck_setting("write_buffer_row_group_count = 1"),
    "noorder": (
        "from shared.sinks.duckdb import DuckDbSink\n"
        "_i = DuckDbSink.__init__\n"
        "def _init(self, *a, **k):\n"
        "    _i(self, *a, **k)\n"
        "    self.con.execute('SET preserve_insertion_order = false')\n"
        "DuckDbSink.__init__ = _init\n"
    ),
}


def run_child(bootstrap: str, topic: str, count: int, workdir: Path, prelude: str, flags: list[str],
              sample: bool) -> dict[str, object]:
    """One ``kafka-adx consume`` child: its peak RSS, per-phase peaks, CPU and wall seconds."""
    run_dir = workdir / f"run-{uuid.uuid4().hex[:8]}"
    run_dir.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("ADX_INGEST_URI", "ADX_ENGINE_URI", "DEADLETTER_BLOB_URI")}
    env.update(LOCAL_DB=str(run_dir / "local.duckdb"), LOCAL_DEADLETTER_DIR=str(run_dir / "deadletter"),
               PROBE_OUT=str(run_dir / "probe.json"), PROBE_PRELUDE=prelude, PROBE_SAMPLE="1" if sample else "0",
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])))
    command = [sys.executable, "-c", _CHILD, "consume", "--config", str(CONFIG), "-t", topic, "-b", bootstrap,
               "-g", f"probe-{uuid.uuid4().hex}", "--max-records", str(count), "--idle-exit", "30", *flags]
    log_path = run_dir / "consume.log"
    keep = os.environ.get("PROBE_KEEP_LOGS")
    with open(log_path, "wb") as log_file:
        started = time.perf_counter()
        child = subprocess.Popen(command, env=env, stdout=log_file, stderr=subprocess.STDOUT, cwd=run_dir)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"consume failed:\n{log_path.read_text()[-3000:]}")
    import duckdb

    with duckdb.connect(str(run_dir / "local.duckdb"), read_only=True) as con:
        try:
            row = con.execute('SELECT count(*) FROM "Bench"."StormEvents"').fetchone()
        except duckdb.CatalogException:  # nothing written (the nosink variant)
            row = None
    if keep:  # a folder to copy each run's consume log to
        import shutil

        shutil.copy(log_path, Path(keep) / f"{run_dir.name}.log")
    out = json.loads((run_dir / "probe.json").read_text())
    # Fewer rows than records: batches were dead-lettered (a variant DuckDB ran out of memory in).
    out.update(cpu_s=usage.ru_utime + usage.ru_stime, seconds=seconds, landed=row[0] if row else 0)
    return out


def main(argv: list[str] | None = None) -> int:
    """Start a broker, produce the CSV topic, run the variants in turns; print each run and medians."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=300_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--variants", default="base")
    parser.add_argument("--flags", choices=["default", "big", "both"], default="both")
    parser.add_argument("--no-sample", action="store_true", help="no RSS sampler thread in the child")
    parser.add_argument("--extra", action="append", default=[], metavar="NAME=CODE",
                        help="an extra variant: its name and prelude code")
    parser.add_argument("--list", action="store_true")
    args = parser.parse_args(argv)
    variants = dict(VARIANTS)
    for extra in args.extra:
        name, _, code = extra.partition("=")
        variants[name] = code.replace("\\n", "\n") + "\n"
    if args.list:
        for name, code in variants.items():
            print(f"{name}:\n  " + (code.strip().replace("\n", "\n  ") or "(nothing)"))
        return 0
    chosen = []
    for spec in args.variants.split(","):
        # name or name+name: preludes concatenated
        chosen.append((spec, json.dumps([variants[part] for part in spec.split("+")])))
    flag_sets = {"default": [], "big": ["--batch-bytes", str(BIG_BATCH_BYTES), "--batch-records", str(args.records)]}
    flag_names = ["default", "big"] if args.flags == "both" else [args.flags]

    from scripts.kafka_broker import install_kafka, start_broker
    from shared.ops.sample import storm_events, to_csv

    values = [to_csv(e) for e in storm_events(args.records)]
    broker = start_broker(install_kafka(), num_partitions=PARTITIONS)
    results: dict[tuple[str, str], list[dict[str, object]]] = {}
    try:
        topic = "bench-csv"
        _create_topics(broker.bootstrap, [topic])
        _produce(broker.bootstrap, topic, values)
        del values
        time.sleep(2.0)
        with tempfile.TemporaryDirectory(prefix="kafka-adx-memprobe-") as tmp:
            workdir = Path(tmp)
            run_child(broker.bootstrap, topic, min(args.records, 20_000), workdir, "[]", [], False)  # warm-up
            for turn in range(args.runs):
                for name, prelude in chosen if turn % 2 == 0 else list(reversed(chosen)):
                    for flags in flag_names:
                        out = run_child(broker.bootstrap, topic, args.records, workdir, prelude, flag_sets[flags],
                                        not args.no_sample)
                        results.setdefault((name, flags), []).append(out)
                        peaks = out["peaks_kib"]
                        assert isinstance(peaks, dict)
                        print(f"{name:<22} {flags:<8} peak {int(out['hwm_kib']) / 1024:7.1f} MiB  "  # type: ignore[call-overload]
                              f"cpu {out['cpu_s']:6.2f} s  wall {out['seconds']:6.1f} s  "
                              f"imported {int(out['imported_kib']) / 1024:5.1f} MiB  "  # type: ignore[call-overload]
                              + " ".join(f"{k} {v / 1024:.0f}" for k, v in sorted(peaks.items()))
                              + ("" if out["landed"] == args.records else f"  LANDED {out['landed']}"), flush=True)
    finally:
        broker.stop()
    print("\nmedians (range) over", args.runs, "runs; MiB = 1,048,576 B (the bench prints MB = 10^6 B)")
    for (name, flags), outs in results.items():
        peaks = [int(o["hwm_kib"]) / 1024 for o in outs]  # type: ignore[call-overload]
        cpus = [float(o["cpu_s"]) for o in outs]  # type: ignore[arg-type]
        print(f"{name:<22} {flags:<8} peak {statistics.median(peaks):7.1f} ({min(peaks):.1f}-{max(peaks):.1f}) MiB"
              f" = {statistics.median(peaks) * 1.048576:6.1f} MB   cpu {statistics.median(cpus):6.2f} "
              f"({min(cpus):.2f}-{max(cpus):.2f}) s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
