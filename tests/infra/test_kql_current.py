"""infra/kql/database.kql and mappings.kql (the ADX database scripts of the deployment) must be
what the ingestion file calls for today, and the Bicep defaults must agree with the ingestion file."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

from shared.config import load_config
from shared.ops.kql import generate_kql
from tests.infra.bicep_model import INFRA, MAIN, REPO, parse

SCRIPT = INFRA / "kql" / "database.kql"
MAPPINGS = INFRA / "kql" / "mappings.kql"


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_infra_kql", REPO / "scripts" / "gen_infra_kql.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_database_scripts_are_current() -> None:
    for path, expected in _generator().expected_scripts(REPO / "ingestion.yaml").items():
        assert path.read_text(encoding="utf-8") == expected, (
            f"{path.relative_to(REPO)} is out of date with ingestion.yaml: run scripts/gen-infra-kql.sh"
        )


def test_the_two_scripts_hold_every_command_once_and_only_commands() -> None:
    kql = generate_kql(load_config(REPO / "ingestion.yaml"))
    commands = [p for p in kql.split("\n\n") if not p.lstrip().startswith("//")]
    schema = SCRIPT.read_text(encoding="utf-8").rstrip("\n").split("\n\n")
    mappings = MAPPINGS.read_text(encoding="utf-8").rstrip("\n").split("\n\n")
    paragraphs = schema + mappings
    assert sorted(p.strip() for p in paragraphs) == sorted(c.strip() for c in commands)
    # Mappings only in their own script, and created, never replaced, on a redeploy.
    assert all(" mapping " in p and p.startswith(".create table") for p in mappings), mappings
    assert not any(" ingestion " in p and " mapping " in p for p in schema)
    # Verbs an ARM database script accepts (Azure Data Explorer "database script" documentation).
    verbs = (".create", ".create-or-alter", ".create-merge", ".alter", ".alter-merge", ".add")
    for paragraph in paragraphs:
        # An ARM database script accepts only these management commands.
        assert paragraph.startswith(verbs), paragraph[:80]
    assert any(p.startswith(".create-merge table") for p in paragraphs)
    assert any("policy ingestionbatching" in p for p in paragraphs)


def test_generator_check_mode_detects_a_stale_script(tmp_path: Path) -> None:
    ok = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "gen_infra_kql.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    other = tmp_path / "ingestion.yaml"
    other.write_text(
        "database: X\ntables:\n  T:\n    columns: [{name: a, type: string}]\nroutes:\n  - {topic: t, table: T, format: txt}\n",
        encoding="utf-8",
    )
    before = SCRIPT.read_bytes()
    stale = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "gen_infra_kql.py"), "--check", "--config", str(other)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert SCRIPT.read_bytes() == before  # --check writes nothing
    assert stale.returncode == 1
    assert "out of date" in stale.stderr


def test_bicep_defaults_match_the_ingestion_file() -> None:
    config = load_config(REPO / "ingestion.yaml")
    params = parse(MAIN)["parameters"]
    assert params["adxDatabaseName"]["default"] == config.database
    streaming = any(route.ingestion == "streaming" for route in config.routes)
    # Streaming routes need streaming ingestion on the cluster.
    assert params["adxEnableStreamingIngest"]["default"] is True or not streaming


def test_trigger_event_hubs_and_consumer_group_exist() -> None:
    params = parse(MAIN)["parameters"]
    hubs = {hub["name"]: hub for hub in params["eventHubs"]["default"]}
    for name in params["triggerEventHubNames"]["default"].split(","):
        assert name in hubs, f"trigger event hub {name} is not created"
        assert params["triggerConsumerGroup"]["default"] in hubs[name]["consumerGroups"]
