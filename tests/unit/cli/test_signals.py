"""Ctrl-C and SIGTERM during ``kafka-adx ingest``: what was read is delivered, the summary is
printed, exit code 130.

Deterministic, no sleeps: the test feeds standard input through a pipe it holds open, and sends
the signal only once the process has taken every byte out of the pipe (FIONREAD on the pipe is
0) *and* is blocked in a new ``read`` of standard input (``/proc/<pid>/syscall``), i.e. every
record it was given went through the pipeline's hands and it waits for more. That is also the
case that needs care: a read blocked on standard input must still be interruptible.
"""

from __future__ import annotations

import array
import fcntl
import json
import os
import signal
import subprocess
import sys
import termios
import time
from pathlib import Path

import duckdb
import pytest

from shared.cli.common import StopOnSignal
from shared.errors import Interrupted

REPO = Path(__file__).resolve().parents[3]
CONFIG = str(REPO / "ingestion.yaml")
TOPIC = "storm-events-json"

pytestmark = pytest.mark.skipif(not Path("/proc/self/syscall").exists(), reason="needs Linux /proc/<pid>/syscall")


def _records(ids: range, poison_every: int) -> tuple[bytes, int, int]:
    """JSON lines for StormEvents, a poison line after every ``poison_every``-th: (data, good, poison)."""
    lines, poison = [], 0
    for i in ids:
        lines.append(json.dumps({"StartTime": "2007-01-01T00:00:00Z", "EventId": i, "State": "IOWA"}).encode())
        if i % poison_every == poison_every - 1:
            lines.append(b"{not json " + str(i).encode())
            poison += 1
    return b"\n".join(lines) + b"\n", len(ids), poison


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ADX_", "DEADLETTER_", "LOCAL_", "INGESTION_"))}
    env.update(LOCAL_DB=str(tmp_path / "db.duckdb"), LOCAL_DEADLETTER_DIR=str(tmp_path / "dl"), INGESTION_CONFIG=CONFIG)
    return env


def _pending_in_pipe(fd: int) -> int:
    buf = array.array("i", [0])
    fcntl.ioctl(fd, termios.FIONREAD, buf)
    return buf[0]


def _wait_until_blocked_on_stdin(proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    """Until every byte written was taken out of the pipe and the process waits in a new read of
    fd 0 (a read that already returned data cannot be blocked again: it is a new one)."""
    assert proc.stdin is not None
    fd = proc.stdin.fileno()
    deadline = time.monotonic() + timeout
    while True:
        assert proc.poll() is None, f"ingest exited early ({proc.returncode}): {proc.communicate()}"
        assert time.monotonic() < deadline, "ingest never blocked on standard input"
        if _pending_in_pipe(fd) == 0:
            syscall = Path(f"/proc/{proc.pid}/syscall").read_text()
            if syscall.startswith("0 0x0 "):  # read(0, ...)
                return
        time.sleep(0.01)


def _rows(tmp_path: Path) -> list[int]:
    with duckdb.connect(str(tmp_path / "db.duckdb"), read_only=True) as con:
        return [row[0] for row in con.execute('SELECT "EventId" FROM "Weather"."StormEvents"').fetchall()]


def _letter_count(tmp_path: Path) -> int:
    return sum(len(path.read_bytes().splitlines()) for path in (tmp_path / "dl").glob("*.jsonl"))


def _ingest_stdin(tmp_path: Path, data: bytes, sig: signal.Signals) -> subprocess.CompletedProcess[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "shared.cli.app", "ingest", "--topic", TOPIC, "-"],
        env=_env(tmp_path), cwd=tmp_path, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdin is not None
    proc.stdin.write(data)
    proc.stdin.flush()  # the pipe stays open: without the signal, ingest would wait for ever
    _wait_until_blocked_on_stdin(proc)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out.decode(), err.decode())


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_while_waiting_for_input_delivers_what_was_read_and_exits_130(
    tmp_path: Path, sig: signal.Signals
) -> None:
    data, good, poison = _records(range(300), poison_every=50)
    done = _ingest_stdin(tmp_path, data, sig)
    assert done.returncode == 130, done.stderr
    # The summary of what was read, then one line saying why it stopped.
    assert f"{TOPIC}: {good + poison:,} received, {good:,} ingested, {poison:,} dead-lettered" in done.stdout
    assert f"dead letters by stage: decode: {poison}" in done.stdout
    assert f"interrupted ({sig.name} received" in done.stderr
    assert "Aborted!" not in done.stderr and "Traceback" not in done.stderr
    # Counts add up: every record read is a row or a dead letter, none is both or neither.
    assert sorted(_rows(tmp_path)) == list(range(300))
    assert _letter_count(tmp_path) == poison


def test_a_rerun_after_an_interrupt_loses_nothing(tmp_path: Path) -> None:
    data, good, poison = _records(range(200), poison_every=40)
    half = data[: data.index(b"\n", len(data) // 2) + 1]  # whole lines only
    first = _ingest_stdin(tmp_path, half, signal.SIGINT)
    assert first.returncode == 130, first.stderr
    first_rows = len(_rows(tmp_path))
    first_letters = _letter_count(tmp_path)
    assert first_rows > 0 and first_rows + first_letters == half.count(b"\n")

    # The same input again, this time to its end: a normal run (1: poison was dead-lettered).
    rerun = subprocess.run(
        [sys.executable, "-m", "shared.cli.app", "ingest", "--topic", TOPIC, "-"],
        input=data, env=_env(tmp_path), cwd=tmp_path, capture_output=True, timeout=120,
    )  # fmt: skip
    assert rerun.returncode == 1, rerun.stderr
    assert f"{good + poison:,} received, {good:,} ingested, {poison:,} dead-lettered" in rerun.stdout.decode()
    rows = _rows(tmp_path)
    assert set(rows) == set(range(200)), "every record is in the table after the rerun"
    # At-least-once without dedup: the rerun may repeat what the interrupted run delivered,
    # never more than that.
    assert len(rows) <= first_rows + good


def test_the_first_signal_sets_a_flag_and_the_second_gets_the_default_action() -> None:
    """In process: the handler of :class:`StopOnSignal` records the signal and hands both signals
    back to their default action (the second one ends the process at once); leaving the block
    restores the handlers that were there before."""
    before = signal.getsignal(signal.SIGINT)
    records = iter(range(5))
    with StopOnSignal() as guard:
        wrapped = guard.wrap(records)
        assert next(wrapped) == 0
        os.kill(os.getpid(), signal.SIGINT)  # delivered here, in the main thread, before the next line
        assert guard.received == "SIGINT"
        assert signal.getsignal(signal.SIGINT) == signal.SIG_DFL
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
        with pytest.raises(Interrupted, match="SIGINT received"):
            next(wrapped)
        assert next(records) == 1, "the record after the signal is not read"
    assert signal.getsignal(signal.SIGINT) == before
