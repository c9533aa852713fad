"""The kafka-adx command line, run as a user runs it (a subprocess of the installed entry point
for the end-to-end cases, click's runner for the rest)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import orjson
from click.testing import CliRunner

from shared.cli.app import main
from shared.ops.kql import generate_kql

REPO = Path(__file__).resolve().parents[3]
CONFIG = str(REPO / "ingestion.yaml")


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_help_lists_the_commands() -> None:
    code, out, _ = run("--help")
    assert code == 0
    for command in ("validate", "preview", "ingest", "kql", "demo"):
        assert command in out


def test_a_command_loads_only_its_own_module() -> None:
    # consume is a long-running process whose memory counts: the group imports a command's
    # module when the command is looked up, so consume carries none of the others' modules.
    code = (
        "import sys, click\n"
        "from shared.cli.app import COMMANDS, main\n"
        "assert main.get_command(click.Context(main), 'consume').name == 'consume'\n"
        "print(' '.join(sorted({m for m, _ in COMMANDS.values()} & set(sys.modules))))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert proc.stdout.split() == ["shared.cli.kafka"]


def test_every_command_of_the_table_is_the_one_its_name_says() -> None:
    import click

    from shared.cli.app import COMMANDS

    ctx = click.Context(main)
    assert main.list_commands(ctx) == sorted(COMMANDS)
    for name in COMMANDS:
        command = main.get_command(ctx, name)
        assert command is not None and command.name == name


def test_validate_ok_and_errors(tmp_path: Path) -> None:
    assert run("validate", "--config", CONFIG)[0] == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("database: db\ntables:\n  T:\n    columns: [{name: a, type: text}]\nroutes:\n  - {topic: x, table: U, format: csv}\n")
    code, _, err = run("validate", "--config", str(bad))
    assert code == 1
    assert f"{bad}: 1 error(s)" in err
    assert f"{bad}: tables.T.columns[0].type" in err
    # Cross-references are checked once every field is valid.
    bad.write_text("database: db\ntables:\n  T:\n    columns: [{name: a, type: string}]\nroutes:\n  - {topic: x, table: U, format: csv}\n")
    code, _, err = run("validate", "--config", str(bad))
    assert code == 1
    assert f"{bad}: routes[0] (topic 'x'): table 'U' is not declared under tables" in err


def test_kql_prints_the_generated_script() -> None:
    code, out, _ = run("kql", "--config", CONFIG)
    assert code == 0
    assert ".create-merge table ['Storms']" in out
    # The tutorial's mapping: its producer's six fields, in order.
    assert (".create table ['Storms'] ingestion csv mapping 'Storms_CSV_Mapping' "
            "@'[{\"column\":\"StartTime\",\"Properties\":{\"Ordinal\":\"0\"}}") in out
    assert '{"column":"Source","Properties":{"Ordinal":"5"}}]' in out
    assert ('.alter table [\'Storms\'] policy ingestionbatching '
            '@\'{"MaximumBatchingTimeSpan":"00:00:15","MaximumNumberOfItems":100,"MaximumRawDataSizeMB":300}\'') in out
    from shared.config import load_config

    assert out == generate_kql(load_config(CONFIG))


def test_preview_shows_rows_and_dead_letter_reasons(tmp_path: Path) -> None:
    data = tmp_path / "in.jsonl"
    data.write_bytes(b'{"StartTime": "2007-01-01T00:00:00Z", "EventId": 5, "State": "IOWA", "StormSummary": {"a": 1}}\n'
                     b'{"EventId": "five"}\n{broken\n')
    code, out, err = run("preview", "--config", CONFIG, "--topic", "storm-events-json", "--key", "k1", "--json", str(data))
    assert code == 0
    items = [orjson.loads(line) for line in out.splitlines()]
    assert items[0]["table"] == "Weather.StormEvents"
    (row,) = items[0]["rows"]
    assert row["EventId"] == 5 and row["KafkaKey"] == "k1" and row["KafkaTopic"] == "storm-events-json"
    assert row["StartTime"].startswith("2007-01-01T00:00:00")
    assert items[1]["dead_letter"]["field"] == "EventId"
    assert "invalid JSON" in items[2]["dead_letter"]["reason"]
    assert "1 record(s) would be ingested, 2 dead-lettered" in err


def test_preview_with_routing_header(tmp_path: Path) -> None:
    data = tmp_path / "in.jsonl"
    data.write_bytes(b'{"EventId": 5, "State": "IOWA"}\n')
    code, out, _ = run("preview", "--config", CONFIG, "-t", "storm-events-json", "--header", "Table=Storms", str(data))
    assert code == 0 and "-> Weather.Storms:" in out
    code, out, _ = run("preview", "--config", CONFIG, "-t", "storm-events-json", "--header", "Table=RawEvents", str(data))
    assert "DEAD-LETTER (route)" in out and "allow-list" in out


def test_ingest_end_to_end_into_duckdb(tmp_path: Path) -> None:
    data = tmp_path / "events.csv"
    # A record of the Kafka tutorial's producer (StormEvents.csv datetimes), then a short one.
    data.write_bytes(b"2007-01-01 00:00:00.0000000,2007-01-01 01:00:00.0000000,2,IOWA,Hail,Public\n"
                     b"too,few,fields\n")
    env = {**os.environ, "LOCAL_DB": str(tmp_path / "db.duckdb"), "LOCAL_DEADLETTER_DIR": str(tmp_path / "dl"),
           "INGESTION_CONFIG": CONFIG}
    env.pop("ADX_INGEST_URI", None)
    proc = subprocess.run([sys.executable, "-m", "shared.cli.app", "ingest", "--topic", "storm-events", str(data)],
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr  # 1: something was dead-lettered
    assert "2 received, 1 ingested, 1 dead-lettered" in proc.stdout
    con = duckdb.connect(str(tmp_path / "db.duckdb"), read_only=True)
    assert con.execute('SELECT "EventId", "State", "Source" FROM "Weather"."Storms"').fetchall() == [(2, "IOWA", "Public")]
    (letter_file,) = list((tmp_path / "dl").glob("*.jsonl"))
    envelope = orjson.loads(letter_file.read_bytes())
    assert envelope["reason"].startswith(f"{data}:2 ")
    assert "has 3 fields, expected" in envelope["reason"]


def test_ingest_reports_a_config_error_cleanly(tmp_path: Path) -> None:
    code, _, err = run("ingest", "--config", str(tmp_path / "missing.yaml"), "--topic", "x", CONFIG)
    assert code == 2 and "ingestion file not found" in err  # 2: an error, nothing was read


def test_demo_without_java_ingests_generated_files_and_says_why(tmp_path: Path) -> None:
    # No java on PATH (and no JAVA_HOME): no local broker can run, so the demo falls back to
    # ingesting files. (The Kafka demo: tests/integration/kafka/test_tutorial.py.)
    env = {k: v for k, v in os.environ.items() if k not in ("JAVA_HOME", "ADX_INGEST_URI")}
    env["PATH"] = str(tmp_path / "no-bin")
    proc = subprocess.run([sys.executable, "-m", "shared.cli.app", "demo", "--config", CONFIG, "--records", "1000",
                           "--dir", str(tmp_path / "demo")], env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
    out = proc.stdout
    assert proc.returncode == 0, proc.stderr
    assert "no local Kafka broker (java is not installed" in out
    assert "ingesting generated files instead of the Kafka tutorial" in out
    # 1000 events with a poison record every 500: 1002 records per file, 2 dead-lettered per topic.
    assert "storm-events <- storm-events-tutorial.csv: 1,002 received, 1,000 ingested, 2 dead-lettered" in out
    assert "storm-events-csv <- storm-events.csv: 1,002 received, 1,000 ingested, 2 dead-lettered" in out
    assert "storm-events-json <- storm-events.jsonl: 1,002 received, 1,000 ingested, 2 dead-lettered" in out
    assert "events per state and type" in out
    assert "Storms (the Kafka tutorial's table): 1,000 rows" in out
    con = duckdb.connect(str(tmp_path / "demo" / "kafka-adx.duckdb"), read_only=True)
    assert con.execute('SELECT count(*) FROM "Weather"."StormEvents"').fetchone() == (2000,)
    assert con.execute('SELECT count(*) FROM "Weather"."Storms"').fetchone() == (1000,)
    letters = list((tmp_path / "demo" / "deadletter").glob("*.jsonl"))
    assert sum(len(p.read_bytes().splitlines()) for p in letters) == 6
