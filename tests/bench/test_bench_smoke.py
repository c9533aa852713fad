"""`make bench` in its quickest mode: it runs end to end and prints the whole table. No timing is
asserted (numbers on a shared CI machine mean nothing); the bench itself exits non-zero when a
case dead-letters records, an event misses the sink or DuckDB holds fewer rows than written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

ROWS = [
    "(a)  JSON passthrough, validated",
    "(b)  CSV passthrough, validated",
    "(c)  JSON -> CSV rows + 3 metadata cols",
    "(a0) JSON passthrough, no validation",
    "(b0) CSV passthrough, no validation",
    "(d)  Avro -> CSV rows, registry schema",  # bench/avro.py
    "function entry, Event Hubs, ",  # the batch size follows the label
    "function entry, Kafka, binary, ",
    "function entry, Kafka, string, ",
    "local mode, JSON",
    "local mode, CSV",
    "peak memory, ingest",
]
KAFKA_ROWS = [  # bench/kafka_e2e.py, from the suite's real broker
    "Kafka consumer, CSV, validated",
    "Kafka consumer, CSV, no validation",
    "Kafka consumer, JSON, validated",
    "Kafka consumer, JSON, no validation",
]
KAFKA_MEMORY_ROWS = ["Kafka consume peak RSS, default flags", "Kafka consume peak RSS, --batch-bytes 32 MiB"]


def test_quick_bench_prints_every_row() -> None:
    # A subprocess: the bench pins itself to one CPU, which must not happen to the test session.
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "run.py"), "--quick"],
        cwd=REPO, capture_output=True, text=True, timeout=420, check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "machine:" in out
    assert re.search(r"case\s+pipeline rec/s\s+MB/s\s+floor rec/s\s+MB/s\s+ratio\s+target", out)
    for label in ROWS:
        assert label in out, f"missing row {label!r} in:\n{out}"
    for label in ROWS[:6]:  # each pipeline case (and the Avro row) has a ratio and a verdict or '-'
        line = next(line for line in out.splitlines() if line.startswith(label))
        assert re.search(r"\d\.\d\d\s+(>= \d\.\d (ok|MISSED)|-)$", line), line
    memory = next(line for line in out.splitlines() if line.startswith("peak memory"))
    assert re.search(r"[\d.]+ MB peak RSS\s+< 300 MB (ok|MISSED)", memory), memory
    # The Kafka rows: never skipped (the broker is the suite's own), each with both throughputs,
    # a ratio and a verdict; then the peak RSS of `kafka-adx consume` child processes.
    assert re.search(r"case\s+consumer rec/s\s+MB/s\s+floor rec/s\s+MB/s\s+ratio\s+target", out), out
    for label in KAFKA_ROWS:
        line = next((line for line in out.splitlines() if line.startswith(label)), "")
        assert re.search(r"[\d,]+\s+[\d.,]+\s+[\d,]+\s+[\d.,]+\s+\d+\.\d\d\s+>= 0\.[57] (ok|MISSED)$", line), (
            f"row {label!r} missing or malformed in:\n{out}"
        )
    for label in KAFKA_MEMORY_ROWS:
        line = next((line for line in out.splitlines() if line.startswith(label)), "")
        assert re.search(r"[\d.,]+ MB peak RSS\s+<= 200 MB (ok|MISSED)\s+\(5,000 CSV records", line), (
            f"row {label!r} missing or malformed in:\n{out}"
        )
