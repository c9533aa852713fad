"""``kafka-adx status`` in local mode: every exit code (0 healthy, 1 dead letters pending, 2 a
source that cannot be read), the per-table rows and last batch from the local DuckDB file, and
``--json`` for scripts."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from shared.cli.app import main

REPO = Path(__file__).resolve().parents[3]
CONFIG = str(REPO / "ingestion.yaml")


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ADX_", "DEADLETTER_", "LOCAL_", "INGESTION_"))}
    env.update(LOCAL_DB=str(tmp_path / "db.duckdb"), LOCAL_DEADLETTER_DIR=str(tmp_path / "dl"), INGESTION_CONFIG=CONFIG)
    return env


def cli(env: dict[str, str], *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.output


def ingest(env: dict[str, str], tmp_path: Path, lines: list[bytes]) -> None:
    data = tmp_path / "in.jsonl"
    data.write_bytes(b"".join(lines))
    cli(env, "ingest", "-t", "storm-events-json", str(data))


def good(i: int) -> bytes:
    return json.dumps({"StartTime": "2007-01-01T00:00:00Z", "EventId": i, "State": "IOWA"}).encode() + b"\n"


def test_healthy_when_records_went_in_and_nothing_is_dead_lettered(env: dict[str, str], tmp_path: Path) -> None:
    code, out = cli(env, "status")
    assert code == 0, out
    assert "state: HEALTHY" in out and "nothing ingested yet" in out
    ingest(env, tmp_path, [good(i) for i in range(5)])
    code, out = cli(env, "status", "--json")
    assert code == 0, out
    data = orjson.loads(out)
    assert data["state"] == "healthy" and data["exit_code"] == 0 and data["target"] == "local"
    [events] = [t for t in data["tables"] if t["table"] == "Weather.StormEvents"]
    # A dedup route: the local sink records its batches, so the last batch and the rates show.
    assert events["rows"] == 5 and events["rows_1h"] == 5 and events["last_batch"] is not None
    assert data["deadletters"]["pending"] == 0


def test_degraded_while_dead_letters_wait_for_a_replay(env: dict[str, str], tmp_path: Path) -> None:
    ingest(env, tmp_path, [good(1), b"{not json\n", b"{nor this\n"])
    code, out = cli(env, "status")
    assert code == 1, out
    assert "state: DEGRADED (2 dead letter(s) not replayed)" in out
    assert "by stage: decode 2" in out and "by table: Weather.StormEvents 2" in out
    data = orjson.loads(cli(env, "status", "--json")[1])
    assert data["exit_code"] == 1 and data["degraded"] == ["2 dead letter(s) not replayed"]
    [group] = data["deadletters"]["groups"]
    assert group["table"] == "Weather.StormEvents" and group["pending"] == 2


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_when_the_dead_letter_store_cannot_be_read(env: dict[str, str]) -> None:
    env["DEADLETTER_BLOB_URI"] = f"http://127.0.0.1:{_closed_port()}/devstoreaccount1/dl?sv=2024&sig=SECRET"
    env["ADX_AUTH"] = "none"
    code, out = cli(env, "status")
    assert code == 2, out
    assert "state: UNREACHABLE" in out and "cannot read: dead-letter store" in out
    assert "SECRET" not in out
    assert "Weather.StormEvents" in out  # what could be read is still shown


def test_unreachable_when_the_ingestion_file_is_broken(env: dict[str, str], tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("database: x\n")
    code, out = cli(env, "status", "--config", str(broken))
    assert code == 2 and "cannot read: ingestion file" in out


def test_watch_refreshes_until_interrupted_and_exits_with_the_last_code(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import shared.cli.status as status_cli
    from shared.cli.files import run_ingest
    from shared.config import load_config
    from shared.settings import Settings

    lines = tmp_path / "raw.txt"
    lines.write_text("".join(f"line {i}\n" for i in range(50)))
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 1:  # records arrive between the two refreshes (a route without dedup)
            run_ingest(Settings.from_env(), load_config(CONFIG), [str(lines)], "app-logs")
        if len(sleeps) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(status_cli.time, "sleep", sleep)
    code, out = cli(env, "status", "--watch", "--interval", "1", "--json")
    assert code == 0
    first, second = (orjson.loads(line) for line in out.splitlines())
    assert first["state"] == second["state"] == "healthy"
    assert sleeps == [1.0, 1.0]
    [raw] = [t for t in second["tables"] if t["table"] == "Weather.RawEvents"]
    # The local sink records no batch times for this route: the rate since the last refresh shows it moving.
    assert raw["rows"] == 50 and raw["last_batch"] is None and raw["rows_per_second_since_last_refresh"] > 0
    assert all(t["rows_per_second_since_last_refresh"] is None for t in first["tables"])
    code, out = cli(env, "status", "--watch", "--pop")
    assert code == 2 and "--pop with --watch" in out
