"""Probe of the memory of one ``consume`` batch without Kafka: the pipeline into the local DuckDB
sink, in a child process per run, batch by batch as ``kafka-adx consume`` hands them over.

The child builds each batch's records the way the consumer does (a list of ``Record``s of the
bench's CSV storm events, kept until the pipeline returns), runs ``Pipeline.process`` into a
``DuckDbSink`` on a file, and samples its RSS every 10 ms per phase (``build``: the pending
records; ``pipeline``: encoding and gzip; ``sink``: the DuckDB load). CPU is the whole process's (DuckDB's threads too) inside
``Pipeline.process`` only. Variants are the preludes
of bench/memory_consume.py.

    .venv/bin/python bench/memory_sink.py --variants base,mem32+buf4 --runs 3
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
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.memory_consume import SAMPLER, VARIANTS  # noqa: E402

_CHILD = SAMPLER + r"""
threading.Thread(target=_sample, daemon=True).start()
for code in json.loads(os.environ["PROBE_PRELUDE"]):
    exec(code, {})
from shared.config import load_config
from shared.deadletters.local import LocalDeadLetterStore
from shared.ops.sample import storm_events, to_csv
from shared.pipeline.core import Pipeline
from shared.pipeline.records import Record
from shared.sinks.duckdb import DuckDbSink

workdir, config_path = sys.argv[1], sys.argv[2]
batch_records, batches, max_bytes = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
config = load_config(config_path)
sink = DuckDbSink(config, os.path.join(workdir, "local.duckdb"))
pipeline = Pipeline(config, sink, LocalDeadLetterStore(os.path.join(workdir, "deadletter")))
original_write = DuckDbSink.write
def write(self, batch):
    _phase[0] = "sink"
    try:
        return original_write(self, batch)
    finally:
        _phase[0] = "pipeline"
DuckDbSink.write = write
events = storm_events(batch_records * batches)
imported = _rss_kib()
cpu = 0.0
offset = 0
ingested = 0
for _ in range(batches):
    _phase[0] = "build"
    records, size = [], 0
    while len(records) < batch_records and size < max_bytes:
        value = to_csv(next(events))
        records.append(Record(value=value, topic="bench-csv", partition=offset % 4, offset=offset, source="kafka"))
        size += len(value)
        offset += 1
    _phase[0] = "pipeline"
    started = time.process_time()
    result = pipeline.process(records)
    cpu += time.process_time() - started
    ingested += result.ingested
    del records
_phase[0] = "close"
pipeline.close()
_stop.set()
print(json.dumps({"hwm_kib": _rss_kib("VmHWM:"), "peaks_kib": _peaks, "imported_kib": imported,
                  "cpu_s": cpu, "ingested": ingested, "records": offset}))
"""


def main(argv: list[str] | None = None) -> int:
    """Run each variant's child ``--runs`` times in turns; print each run and the medians."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", default="base")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--batches", type=int, default=3)
    parser.add_argument("--batch-records", type=int, default=1_000_000)
    parser.add_argument("--batch-bytes", type=int, default=32 * 1024 * 1024)
    parser.add_argument("--config", default=str(REPO / "bench" / "ingestion.yaml"))
    args = parser.parse_args(argv)
    chosen = [(spec, json.dumps([VARIANTS[part] for part in spec.split("+")])) for spec in args.variants.split(",")]
    results: dict[str, list[dict[str, object]]] = {}
    for turn in range(args.runs):
        for name, prelude in chosen if turn % 2 == 0 else list(reversed(chosen)):
            with tempfile.TemporaryDirectory(prefix="kafka-adx-sinkprobe-") as tmp:
                env = dict(os.environ, PROBE_PRELUDE=prelude,
                           PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
                started = time.perf_counter()
                proc = subprocess.run([sys.executable, "-c", _CHILD, tmp, args.config, str(args.batch_records),
                                       str(args.batches), str(args.batch_bytes)], env=env, capture_output=True,
                                      text=True)  # fmt: skip
                if proc.returncode != 0:
                    raise SystemExit(f"{name} failed:\n{proc.stderr[-3000:]}")
                out = json.loads(proc.stdout.strip().splitlines()[-1])
                out["seconds"] = time.perf_counter() - started
            results.setdefault(name, []).append(out)
            peaks = out["peaks_kib"]
            print(f"{name:<22} peak {out['hwm_kib'] / 1024:7.1f} MiB  cpu {out['cpu_s']:6.2f} s  "
                  f"imported {out['imported_kib'] / 1024:5.1f}  "
                  + " ".join(f"{k} {v / 1024:.0f}" for k, v in sorted(peaks.items()))
                  + ("" if out["ingested"] == out["records"] else f"  INGESTED {out['ingested']} of {out['records']}"),
                  flush=True)
    print("\nmedians (range), MiB")
    for name, outs in results.items():
        peaks_mib = [int(o["hwm_kib"]) / 1024 for o in outs]  # type: ignore[call-overload]
        cpus = [float(o["cpu_s"]) for o in outs]  # type: ignore[arg-type]
        print(f"{name:<22} peak {statistics.median(peaks_mib):7.1f} ({min(peaks_mib):.1f}-{max(peaks_mib):.1f})"
              f"  cpu {statistics.median(cpus):6.2f} ({min(cpus):.2f}-{max(cpus):.2f}) s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
