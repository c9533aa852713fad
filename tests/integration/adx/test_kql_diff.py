"""`kafka-adx kql --diff` as a real process against the ADX stand-in (through the real
azure-kusto-data client): what applying the file would change, per command, before anything
changes; a mapping that differs in the cluster (a Kafka Connect sink's) is never replaced unless
--alter-mappings. Also: the generated script on a database the tutorial set up fails rather than
replace the tutorial's mapping, and doctor's view of external tables and mappings."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.config import parse_config
from shared.ops.doctor import Runner, drift
from shared.ops.kql import generate_kql, plan_kql
from tests.support.adx import DATABASE, config_data
from tests.support.adx_standin import AdxStandIn, _MgmtError

REPO = Path(__file__).resolve().parents[3]
KQL = [sys.executable, "-c", "from shared.cli.kql import kql; kql()"]
_SCRUBBED = ("KAFKA_", "ADX_", "DEADLETTER_", "LOCAL_", "INGESTION_CONFIG", "AZURE_", "IDENTITY_")
# The Kafka Connect sink's mapping of the same name, as the tutorial created it by hand.
CONNECT_EVENTS_MAP = [{"column": "id", "Properties": {"Path": "$.event_id"}},
                      {"column": "kind", "Properties": {"Path": "$.kind"}}]


def run_kql(tmp_path: Path, env_extra: dict[str, str], *args: str, data: dict[str, Any] | None = None
            ) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "ingestion.yaml"
    config.write_text(yaml.safe_dump(data or config_data()))
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUBBED)}
    env.update({"PYTHONPATH": str(REPO), "INGESTION_CONFIG": str(config), "ADX_AUTH": "none", **env_extra})
    return subprocess.run([*KQL, *args], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)


def _runner(standin: AdxStandIn) -> Runner:
    def run(database: str, command: str) -> list[dict[str, Any]]:
        table = standin.run_mgmt(database, command)["Tables"][0]
        names = [c["ColumnName"] for c in table["Columns"]]
        return [dict(zip(names, row, strict=True)) for row in table["Rows"]]

    return run


def _paragraph(kql: str, needle: str) -> str:
    """The paragraph holding ``needle``, after the status paragraph before it when it is a command."""
    paragraphs = kql.split("\n\n")
    found = [i for i, p in enumerate(paragraphs) if needle in p]
    assert len(found) == 1, (needle, kql)
    index = found[0]
    if paragraphs[index].startswith("//"):
        return paragraphs[index]
    return f"{paragraphs[index - 1]}\n{paragraphs[index]}"


def test_diff_of_a_cluster_in_step_changes_nothing_and_leaves_existing_mappings_out(
        standin: AdxStandIn, tmp_path: Path) -> None:
    proc = run_kql(tmp_path, {"ADX_INGEST_URI": standin.url}, "--diff")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert _paragraph(proc.stdout, ".create-merge table ['Events'] (").startswith("// no change\n.create-merge table ['Events']")
    assert "// no change (left out)" in proc.stdout
    assert "mapping 'EventsMap'" not in proc.stdout  # a .create would fail on it
    assert _paragraph(proc.stdout, "['Events'] policy ingestionbatching").startswith(
        "// set (policies and views are not compared with the cluster)\n.alter table ['Events'] policy")
    # Read only: every command it sent was a .show.
    assert {s.detail.split()[0] for s in standin.seen if s.detail.startswith(".")} == {".show"}
    # And the output runs on that cluster as it is.
    standin.apply_kql(proc.stdout, DATABASE)


def test_diff_marks_creates_and_alters_and_its_output_brings_the_cluster_in_step(
        standin: AdxStandIn, tmp_path: Path) -> None:
    standin.drop_table(DATABASE, "Live")
    standin.drop_column(DATABASE, "Clicks", "offset")  # the last one: .create-merge appends it where it was
    standin.set_mapping(DATABASE, "Events", "EventsMap", "json", None)
    proc = run_kql(tmp_path, {"ADX_INGEST_URI": standin.url}, "--diff")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert _paragraph(proc.stdout, ".create-merge table ['Live'] (").startswith("// create\n.create-merge table ['Live']")
    assert _paragraph(proc.stdout, "'LiveMap'").startswith("// create\n.create table ['Live'] ingestion json mapping")
    assert _paragraph(proc.stdout, "'EventsMap'").startswith("// create\n.create table ['Events'] ingestion json mapping")
    assert _paragraph(proc.stdout, ".create-merge table ['Clicks'] (").startswith(
        "// alter: missing column offset (long) [kql: .create-merge table adds it]\n.create-merge table ['Clicks']")
    assert "set (on the new table)" in _paragraph(proc.stdout, "['Live'] policy ingestionbatching")
    standin.apply_kql(proc.stdout, DATABASE)
    assert drift(parse_config(config_data()), _runner(standin)) == []


def test_a_mapping_that_differs_in_the_cluster_is_refused_not_replaced(standin: AdxStandIn, tmp_path: Path) -> None:
    standin.set_mapping(DATABASE, "Events", "EventsMap", "json", CONNECT_EVENTS_MAP)
    before = standin.table(DATABASE, "Events").mappings["EventsMap"]
    proc = run_kql(tmp_path, {"ADX_INGEST_URI": standin.url}, "--diff")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    refused = _paragraph(proc.stdout, "mapping EventsMap")
    assert refused.startswith("// refused: json mapping EventsMap differs: cluster json [id<-Path=$.event_id; "
                              "kind<-Path=$.kind]; file json [id<-Path=$.id; kind<-Path=$.kind]")
    assert refused.endswith("(left out)") and "\n." not in refused  # a comment only: no command
    assert ("kafka-adx kql --diff: left out, differs in the cluster: db1.Events: json mapping EventsMap differs"
            in proc.stderr) and "--alter-mappings replaces it" in proc.stderr
    standin.apply_kql(proc.stdout, DATABASE)
    assert standin.table(DATABASE, "Events").mappings["EventsMap"] == before  # the sink's mapping is untouched

    forced = run_kql(tmp_path, {"ADX_INGEST_URI": standin.url}, "--diff", "--alter-mappings")
    assert forced.returncode == 0, forced.stdout + forced.stderr
    altered = _paragraph(forced.stdout, "'EventsMap'")
    assert altered.startswith("// alter: json mapping EventsMap differs: cluster json [id<-Path=$.event_id;")
    assert "\n.create-or-alter table ['Events'] ingestion json mapping 'EventsMap'" in altered
    standin.apply_kql(forced.stdout, DATABASE)
    assert drift(parse_config(config_data()), _runner(standin)) == []


def test_the_offline_script_fails_on_a_tutorial_database_rather_than_replace_its_mapping(standin: AdxStandIn) -> None:
    """What the deployment's database script does (`kafka-adx kql --no-comments`)."""
    standin.set_mapping(DATABASE, "Events", "EventsMap", "json", CONNECT_EVENTS_MAP)
    before = standin.table(DATABASE, "Events").mappings["EventsMap"]
    with pytest.raises(_MgmtError, match="'EventsMap' of kind 'IngestionMapping' already exists"):
        standin.apply_kql(generate_kql(parse_config(config_data()), comments=False), DATABASE)
    assert standin.table(DATABASE, "Events").mappings["EventsMap"] == before


def test_a_route_to_the_tutorials_mapping_uses_it_and_kql_leaves_it_alone(standin: AdxStandIn, tmp_path: Path) -> None:
    standin.set_mapping(DATABASE, "Events", "ConnectMap", "json", CONNECT_EVENTS_MAP)
    data = copy.deepcopy(config_data())
    data["routes"][0].update({"mapping": "ConnectMap", "mapping_ref": "external"})
    proc = run_kql(tmp_path, {"ADX_INGEST_URI": standin.url}, "--diff", data=data)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "// mapping ConnectMap is external (mapping_ref: external)" in proc.stdout
    assert "mapping 'ConnectMap'" not in proc.stdout
    standin.set_mapping(DATABASE, "Events", "ConnectMap", "json", None)
    missing = run_kql(tmp_path, {"ADX_INGEST_URI": standin.url}, "--diff", data=data)
    assert missing.returncode == 1
    assert "db1.Events: external mapping ConnectMap missing in the cluster: ingestion into it will fail" in missing.stderr
    lines = [f.line() for f in drift(parse_config(data), _runner(standin))]
    assert lines == ["db1.Events: missing external mapping ConnectMap (mapping_ref: external: the cluster must have it)"]


def test_an_external_table_is_compared_by_existence_only(standin: AdxStandIn) -> None:
    data = copy.deepcopy(config_data())
    data["tables"]["Sink"] = {"external": True}
    data["routes"].append({"topic": "sink", "table": "Sink", "format": "json", "mapping": "SinkMap",
                           "mapping_ref": "external"})
    config = parse_config(data)
    assert [f.line() for f in drift(config, _runner(standin))] == [
        "db1.Sink: missing external table (the file does not create it: the cluster must have it)"]
    plan = plan_kql(config, _runner(standin))
    assert plan.missing_external == ["db1.Sink: external table missing in the cluster"]
    standin.apply_kql(".create-merge table Sink (a:string, b:long)", DATABASE)
    standin.set_mapping(DATABASE, "Sink", "SinkMap", "json", [{"column": "a", "Properties": {"Path": "$.a"}}])
    assert drift(config, _runner(standin)) == []
    plan = plan_kql(config, _runner(standin))
    assert plan.missing_external == [] and plan.refused == []
    assert not [p for p in plan.databases[DATABASE] if p.table == "Sink" and not p.is_comment]


def test_diff_without_an_engine_uri_names_the_settings(tmp_path: Path) -> None:
    proc = run_kql(tmp_path, {}, "--diff")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stdout == ""
    assert "ADX_ENGINE_URI" in proc.stderr and "ADX_INGEST_URI" in proc.stderr
