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
    "function entry, Event Hubs, 100 events",
    "function entry, Kafka, binary, 100 events",
    "peak memory, ingest",
]


def test_quick_bench_prints_every_row() -> None:
    # A subprocess: the bench pins itself to one CPU, which must not happen to the test session.
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "run.py"), "--quick"],
        cwd=REPO, capture_output=True, text=True, timeout=180, check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "machine:" in out
    assert re.search(r"case\s+pipeline rec/s\s+MB/s\s+floor rec/s\s+MB/s\s+ratio\s+target", out)
    for label in ROWS:
        assert label in out, f"missing row {label!r} in:\n{out}"
    for label in ROWS[:5]:  # each pipeline case has a ratio and a verdict or '-'
        line = next(line for line in out.splitlines() if line.startswith(label))
        assert re.search(r"\d\.\d\d\s+(>= \d\.\d (ok|MISSED)|-)$", line), line
    memory = next(line for line in out.splitlines() if line.startswith("peak memory"))
    assert re.search(r"[\d.]+ MB peak RSS\s+< 300 MB (ok|MISSED)", memory), memory
