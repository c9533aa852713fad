"""The demo's Avro step without a broker: its records and schemas through confluent-kafka's real
AvroSerializer, the stand-in it falls back to where Apicurio Registry cannot run (and says so),
the stand-in's start/stop command line, and the step's skips. (The step on a broker with the real
Apicurio Registry, every value compared: tests/integration/kafka/test_tutorial.py; Apicurio's own
command line: tests/integration/kafka/test_avro_apicurio.py.)"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import fastavro
import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from scripts import schema_registry
from shared.cli import demo
from shared.config import load_config
from shared.settings import Settings

REPO = Path(__file__).resolve().parents[3]
SAMPLE = REPO / "ingestion.yaml"


def test_the_demo_records_serialize_in_both_schema_versions_and_decode_back() -> None:
    registry = schema_registry.start_stand_in()
    try:
        client = SchemaRegistryClient({"url": registry.url})
        context = SerializationContext(demo.AVRO_TOPIC, MessageField.VALUE)
        serializers = {v: AvroSerializer(client, json.dumps(demo._avro_schema(v))) for v in (1, 2)}
        events = demo.avro_events(10)
        framed = [(version, value, serializers[version](value, context)) for version, value in events]
        subject = f"{demo.AVRO_TOPIC}-value"
        assert client.get_subjects() == [subject]
        assert client.get_versions(subject) == [1, 2]
        for version, value, data in framed:
            assert data is not None and data[0] == 0
            schema_id = int.from_bytes(data[1:5], "big")
            assert schema_id == version  # the first schema registered got id 1, the evolution id 2
            schema = json.loads(client.get_schema(schema_id).schema_str or "")
            decoded = fastavro.schemaless_reader(io.BytesIO(data[5:]), fastavro.parse_schema(schema))
            assert decoded == value
    finally:
        registry.stop()
    assert not schema_registry.answers(registry.url)


def test_avro_events_are_half_version_1_without_narratives() -> None:
    events = demo.avro_events(demo.AVRO_RECORDS)
    assert [v for v, _ in events] == [1] * (demo.AVRO_RECORDS // 2) + [2] * (demo.AVRO_RECORDS // 2)
    assert all("EventNarrative" not in value for v, value in events if v == 1)
    assert all(value["EventNarrative"] for v, value in events if v == 2)


def test_the_stand_in_command_line_starts_once_and_stops(tmp_path: Path) -> None:
    state = tmp_path / "registry.json"
    run = [sys.executable, str(REPO / "scripts" / "schema_registry.py")]
    started = subprocess.run([*run, "start", "--stand-in", "--state-file", str(state)],
                             capture_output=True, text=True, timeout=60)  # fmt: skip
    assert started.returncode == 0, started.stderr
    url = started.stdout.strip().splitlines()[-1]
    try:
        assert "not a real registry" in started.stderr
        assert schema_registry.answers(url)
        again = subprocess.run([*run, "start", "--stand-in", "--state-file", str(state)],
                               capture_output=True, text=True, timeout=60)  # fmt: skip
        assert again.returncode == 0 and again.stdout.strip() == url and "already runs" in again.stderr
    finally:
        stopped = subprocess.run([*run, "stop", "--state-file", str(state)], capture_output=True, text=True, timeout=60)
    assert stopped.returncode == 0 and not state.exists()
    assert not schema_registry.answers(url)
    nothing = subprocess.run([*run, "stop", "--state-file", str(state)], capture_output=True, text=True, timeout=60)
    assert nothing.returncode == 0 and "nothing to stop" in nothing.stderr


def test_without_apicurio_the_stand_in_serves_and_the_demo_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    code, _ = demo._script("schema_registry.py", "kafka_adx_demo_registry")

    def no_maven() -> Path:
        raise code.RegistryToolsMissing("'mvn' is not installed")

    monkeypatch.setattr(code, "install_apicurio", no_maven)
    monkeypatch.setattr(code, "installed_app_dir", lambda: Path("/nonexistent"))
    registry, note = demo._launch_registry(load_config(SAMPLE))
    try:
        assert registry.kind == schema_registry.STAND_IN_KIND and schema_registry.answers(registry.url)
        assert note == "Apicurio Registry cannot run here: 'mvn' is not installed"
    finally:
        registry.stop()


def test_the_step_is_skipped_without_its_route(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = SAMPLE.read_text().replace("- topic: storm-events-avro", "- topic: storm-events-avro-renamed")
    (tmp_path / "ingestion.yaml").write_text(text)
    config = load_config(tmp_path / "ingestion.yaml")
    registry, note = demo._launch_registry(config)
    assert registry is None
    demo._avro_demo(config, Settings(), "127.0.0.1:1", registry, note)
    assert f"avro: skipped (the ingestion file has no route for the topic {demo.AVRO_TOPIC})" in capsys.readouterr().out


def test_the_step_is_skipped_and_says_why_without_a_registry(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(demo, "_script", lambda filename, name: (None, f"scripts/{filename} is not here"))
    config = load_config(SAMPLE)
    registry, note = demo._launch_registry(config)
    demo._avro_demo(config, Settings(), "127.0.0.1:1", registry, note)
    assert "avro: skipped (no local schema registry: scripts/schema_registry.py is not here)" in capsys.readouterr().out
