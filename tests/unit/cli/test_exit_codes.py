"""Exit codes scripts can trust: one table (shared.cli.common.EXIT_CODES) shown in every
command's --help, and each code where it applies, in local mode (the ADX cases are in
tests/integration/adx/test_replay_status_cli.py, the signals in tests/unit/cli/test_signals.py)."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import duckdb
import pytest
from click.testing import CliRunner

from shared.cli.app import KafkaAdxGroup, main
from shared.cli.common import EXIT_CODES
from shared.errors import ConfigError

REPO = Path(__file__).resolve().parents[3]
CONFIG = str(REPO / "ingestion.yaml")
TOPIC = "storm-events-json"


def _line(i: int) -> bytes:
    return json.dumps({"StartTime": "2007-01-01T00:00:00Z", "EventId": i, "State": "IOWA"}).encode() + b"\n"


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ADX_", "DEADLETTER_", "LOCAL_", "INGESTION_"))}
    env.update(LOCAL_DB=str(tmp_path / "db.duckdb"), LOCAL_DEADLETTER_DIR=str(tmp_path / "dl"), INGESTION_CONFIG=CONFIG)
    env.update(extra)
    return env


def cli(tmp_path: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "shared.cli.app", *args], env=_env(tmp_path, **extra), cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)  # fmt: skip


def _rows(tmp_path: Path) -> int:
    with duckdb.connect(str(tmp_path / "db.duckdb"), read_only=True) as con:
        row = con.execute('SELECT count(*) FROM "Weather"."StormEvents"').fetchone()
    assert row is not None
    return int(row[0])


def test_every_command_shows_its_exit_codes_from_the_one_table() -> None:
    runner = CliRunner()
    assert isinstance(main, click.Group)
    commands = main.list_commands(click.Context(main))
    assert {"ingest", "consume", "replay", "status", "produce", "validate", "preview", "kql", "demo"} <= set(commands)
    for name in commands:
        text = runner.invoke(main, [name, "--help"], terminal_width=200).output
        assert "Exit codes:" in text, f"{name} --help has no exit codes"
        block = text.split("Exit codes:", 1)[1]
        rows = [line.split(None, 2) for line in block.splitlines() if line.strip()[:1].isdigit()]
        assert rows, name
        for code, label, _ in rows:
            assert int(code) in EXIT_CODES, (name, code)
            assert label == f"{EXIT_CODES[int(code)][0]}:", f"{name}: code {code} is labelled {label!r}"
    assert EXIT_CODES[0][0] == "ok" and EXIT_CODES[2][0] == "error" and EXIT_CODES[130][0] == "interrupted"


def test_ingest_exits_0_when_everything_went_in_and_1_when_a_record_was_dead_lettered(tmp_path: Path) -> None:
    good = tmp_path / "good.jsonl"
    good.write_bytes(b"".join(_line(i) for i in range(5)) + b"\n  \n")
    ok = cli(tmp_path, "ingest", "-t", TOPIC, str(good))
    assert ok.returncode == 0, ok.stderr
    assert "5 received, 5 ingested, 0 dead-lettered" in ok.stdout
    assert "  blank lines skipped: 2" in ok.stdout  # not records: counted apart
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(_line(9) + b"{poison\n")
    partial = cli(tmp_path, "ingest", "-t", TOPIC, str(bad))
    assert partial.returncode == 1, partial.stderr
    assert "2 received, 1 ingested, 1 dead-lettered" in partial.stdout


def test_a_truncated_gzip_file_exits_2_after_the_summary_of_what_was_read(tmp_path: Path) -> None:
    whole = gzip.compress(b"".join(_line(i) for i in range(20_000)))
    cut = tmp_path / "events.jsonl.gz"
    cut.write_bytes(whole[: len(whole) // 2])
    done = cli(tmp_path, "ingest", "-t", TOPIC, str(cut))
    assert done.returncode == 2, done.stderr
    assert "Aborted!" not in done.stderr and "Traceback" not in done.stderr
    first = done.stdout.splitlines()[0]
    received = int(first.split(": ", 1)[1].split(" received", 1)[0].replace(",", ""))
    assert 0 < received < 20_000
    assert f"{TOPIC}: {received:,} received, {received:,} ingested, 0 dead-lettered" == first
    # One line: which file, where reading failed, and that what came before was delivered.
    assert f"{cut}: cannot read past record {received} (byte " in done.stderr
    assert f"the {received:,} record(s) before it were delivered" in done.stderr
    assert _rows(tmp_path) == received


def test_preview_of_a_truncated_file_exits_2_naming_it(tmp_path: Path) -> None:
    whole = gzip.compress(b"".join(_line(i) for i in range(20_000)))
    cut = tmp_path / "events.jsonl.gz"
    cut.write_bytes(whole[: len(whole) // 3])
    done = cli(tmp_path, "preview", "-t", TOPIC, "--limit", "100000", str(cut))
    assert done.returncode == 2, done.stderr
    assert f"{cut}: cannot read past record" in done.stderr and "(before the error)" in done.stderr


def test_errors_exit_2(tmp_path: Path) -> None:
    data = tmp_path / "in.jsonl"
    data.write_bytes(_line(1))
    missing = cli(tmp_path, "ingest", "--config", str(tmp_path / "nope.yaml"), "-t", TOPIC, str(data))
    assert missing.returncode == 2 and "ingestion file not found" in missing.stderr
    bad_setting = cli(tmp_path, "ingest", "-t", TOPIC, str(data), ADX_INGEST_URI="not a uri")
    assert bad_setting.returncode == 2 and "ADX_INGEST_URI" in bad_setting.stderr
    usage = cli(tmp_path, "ingest", str(data))  # no --topic
    assert usage.returncode == 2 and "Missing option" in usage.stderr
    assert cli(tmp_path, "kql", "--config", str(tmp_path / "nope.yaml")).returncode == 2


def test_validate_exits_1_when_the_file_has_errors(tmp_path: Path) -> None:
    assert cli(tmp_path, "validate").returncode == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("database: db\ntables:\n  T:\n    columns: [{name: a, type: text}]\nroutes: []\n")
    found = cli(tmp_path, "validate", "--config", str(bad))
    assert found.returncode == 1 and f"{bad}: tables.T.columns[0].type" in found.stderr
    assert cli(tmp_path, "validate", ADX_INGEST_URI="not a uri").returncode == 2


def test_replay_exits_1_when_letters_fail_again_and_status_1_while_letters_wait(tmp_path: Path) -> None:
    data = tmp_path / "in.jsonl"
    data.write_bytes(_line(1) + b"{poison\n")
    assert cli(tmp_path, "status").returncode == 0  # nothing dead-lettered yet
    assert cli(tmp_path, "ingest", "-t", TOPIC, str(data)).returncode == 1
    waiting = cli(tmp_path, "status")
    assert waiting.returncode == 1 and "1 letter(s) in 1 set(s) not replayed yet" in waiting.stdout
    again = cli(tmp_path, "replay")
    assert again.returncode == 1, again.stderr
    assert "0 ingested, 1 dead-lettered again" in again.stdout and "1 letter(s) failed again" in again.stderr
    nothing = cli(tmp_path, "replay", "--dir", str(tmp_path / "empty"))
    assert nothing.returncode == 0 and "replayed 0 letter(s)" in nothing.stdout


@pytest.fixture
def group() -> KafkaAdxGroup:
    """A group of the CLI's class with commands that fail in each way."""
    g = KafkaAdxGroup("t")

    @g.command()
    def interrupted() -> None:
        raise KeyboardInterrupt

    @g.command()
    def config() -> None:
        raise ConfigError("bad setting in https://a/c?sv=1&sig=SECRETSIG")

    @g.command()
    def crash() -> None:
        raise RuntimeError("boom at https://a/c?sig=SECRETSIG&se=1")

    @g.command()
    def file_error() -> None:
        raise click.FileError("x.jsonl?sig=SECRETSIG", hint="gone")

    @g.command()
    @click.argument("path", type=click.Path(exists=True))
    def usage(path: str) -> None:
        raise AssertionError("not reached: the path does not exist")

    return g


def test_what_escapes_a_command_maps_onto_the_table_without_secrets(group: KafkaAdxGroup) -> None:
    runner = CliRunner()
    interrupted = runner.invoke(group, ["interrupted"])
    assert interrupted.exit_code == 130 and "interrupted" in interrupted.output
    for args in (["config"], ["crash"], ["file-error"], ["usage", "missing.gz?sv=1&sig=SECRETSIG"]):
        result = runner.invoke(group, args)
        name = args[0]
        assert result.exit_code == 2, (name, result.output)
        assert "SECRETSIG" not in result.output and "sig=REDACTED" in result.output, result.output
        assert "Traceback" not in result.output


def test_replay_stops_between_sets_on_a_signal_and_exits_130(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGINT while a set is being replayed: that set finishes and is marked, the next one is not
    started, exit code 130. The signal is sent by the process to itself right after the first
    set went through (so it lands at a known point, no timing involved)."""
    import shared.deadletters.replay as replay_module
    from shared.deadletters.local import LocalDeadLetterStore
    from shared.deadletters.replay import LocalReplayMarks
    from shared.pipeline.deadletter import DeadLetter
    from shared.pipeline.records import Record

    folder = tmp_path / "dl"
    store = LocalDeadLetterStore(folder)
    for n in (1, 2):
        record = Record(value=_line(n).strip(), topic=TOPIC, offset=n)
        store.write([DeadLetter(record=record, reason="terminal sink failure", stage="sink")])
    real = replay_module.pipeline_reingest

    def signalling(pipeline: Any) -> Any:
        run = real(pipeline)

        def once(letters: Any) -> Any:
            result = run(letters)
            os.kill(os.getpid(), signal.SIGINT)  # handled before the next line runs
            return result

        return once

    monkeypatch.setattr(replay_module, "pipeline_reingest", signalling)
    result = CliRunner().invoke(main, ["replay"], env=_env(tmp_path))
    assert result.exit_code == 130, result.output
    assert "interrupted (SIGINT)" in result.output and "stopped after 1 set(s)" in result.output
    marks = LocalReplayMarks(folder)
    assert sorted(marks.get_mark(s) is not None for s in store.sets()) == [False, True]
    assert _rows(tmp_path) == 1
    # Run again: the rest, and only the rest.
    rest = CliRunner().invoke(main, ["replay"], env=_env(tmp_path))
    assert rest.exit_code == 0, rest.output
    assert "1 letter(s) replayed before" in rest.output and _rows(tmp_path) == 2
