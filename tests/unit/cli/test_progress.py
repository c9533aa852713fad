"""Long work shows progress the way users expect: ``ingest`` and ``replay`` draw a bar with
percent and ETA on a terminal when the input's size is known, and write nothing of it when
standard error is not a terminal. The terminal is a real pseudo-terminal."""

from __future__ import annotations

import gzip
import json
import os
import pty
import subprocess
import sys
from pathlib import Path

from shared.cli.common import input_size

REPO = Path(__file__).resolve().parents[3]


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ADX_", "DEADLETTER_", "LOCAL_", "INGESTION_"))}
    env.update(LOCAL_DB=str(tmp_path / "db.duckdb"), LOCAL_DEADLETTER_DIR=str(tmp_path / "dl"),
               INGESTION_CONFIG=str(REPO / "ingestion.yaml"), COLUMNS="120")  # fmt: skip
    return env


def run(tmp_path: Path, *args: str, terminal: bool) -> tuple[int, str, str]:
    """Run the CLI with standard error on a pseudo-terminal (or a pipe); (code, stdout, stderr)."""
    command = [sys.executable, "-m", "shared.cli.app", *args]
    if not terminal:
        done = subprocess.run(command, env=_env(tmp_path), cwd=tmp_path, capture_output=True, text=True, timeout=120)
        return done.returncode, done.stdout, done.stderr
    main, child = pty.openpty()
    proc = subprocess.Popen(command, env=_env(tmp_path), cwd=tmp_path, stdout=subprocess.PIPE, stderr=child,
                            stdin=subprocess.DEVNULL)  # fmt: skip
    os.close(child)
    chunks = []
    while True:
        try:
            data = os.read(main, 65536)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    out = proc.stdout.read().decode() if proc.stdout else ""
    code = proc.wait(timeout=120)
    os.close(main)
    return code, out, b"".join(chunks).decode(errors="replace")


def events(path: Path, n: int) -> Path:
    lines = b"".join(json.dumps({"StartTime": "2007-01-01T00:00:00Z", "EventId": i}).encode() + b"\n" for i in range(n))
    path.write_bytes(gzip.compress(lines) if path.suffix == ".gz" else lines)
    return path


def test_the_input_size_of_plain_and_gzip_files(tmp_path: Path) -> None:
    plain = events(tmp_path / "a.jsonl", 100)
    packed = events(tmp_path / "b.jsonl.gz", 100)
    assert input_size([str(plain)]) == plain.stat().st_size
    assert input_size([str(plain), str(packed)]) == 2 * plain.stat().st_size  # the uncompressed size
    assert input_size(["-"]) is None


def test_ingest_draws_a_bar_on_a_terminal_and_nothing_in_a_pipe(tmp_path: Path) -> None:
    data = events(tmp_path / "in.jsonl.gz", 30_000)
    code, out, err = run(tmp_path, "ingest", "-t", "storm-events-json", str(data), terminal=True)
    assert code == 0, err
    assert "ingest storm-events-json  [" in err and "100%" in err and "30,000 records" in err
    assert "30,000 received, 30,000 ingested" in out
    code, out, err = run(tmp_path, "ingest", "-t", "storm-events-json", str(data), terminal=False)
    assert code == 0 and "%" not in err and "[#" not in err


def test_replay_draws_a_bar_over_the_sets(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b"".join(b'{"EventId": %d, broken\n' % i for i in range(3)))
    run(tmp_path, "ingest", "-t", "storm-events-json", str(bad), terminal=False)
    code, out, err = run(tmp_path, "replay", "--dry-run", terminal=True)
    assert code == 0, err
    assert "replay  [" in err and "100%" in err and "1/1 set(s)" in err
    assert "would replay 3 letter(s)" in out
    code, out, err = run(tmp_path, "replay", "--dry-run", terminal=False)
    assert code == 0 and "%" not in err
