"""``kafka-adx doctor`` as a real process against the ADX stand-in (through the real
azure-kusto-data client), and the comparison rules it relies on."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.ops.doctor import (
    MappingSpec,
    Runner,
    drift,
    expected_schema,
    parse_cslschema,
    spec_from_entries,
    spec_of,
)
from tests.support.adx import DATABASE, config_data, make_config
from tests.support.adx_standin import AdxStandIn

REPO = Path(__file__).resolve().parents[3]
# The command on its own (the CLI registers it as `kafka-adx doctor`).
DOCTOR = [sys.executable, "-c", "from shared.cli.doctor import doctor; doctor()"]
_SCRUBBED = ("KAFKA_", "ADX_", "DEADLETTER_", "LOCAL_", "INGESTION_CONFIG", "AZURE_", "IDENTITY_")


def run_doctor(tmp_path: Path, ingest_uri: str, *args: str) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "ingestion.yaml"
    config.write_text(yaml.safe_dump(config_data()))
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUBBED)}
    env.update({"PYTHONPATH": str(REPO), "INGESTION_CONFIG": str(config), "ADX_AUTH": "none",
                "ADX_INGEST_URI": ingest_uri})
    return subprocess.run([*DOCTOR, *args], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)


def test_no_drift_exits_0_and_prints_nothing_on_stdout(standin: AdxStandIn, tmp_path: Path) -> None:
    proc = run_doctor(tmp_path, standin.url)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout == ""
    assert "no drift: 3 table(s) match" in proc.stderr
    # It read the cluster with the engine's management commands.
    details = {s.detail for s in standin.seen}
    assert {".show tables", ".show table ['Clicks'] cslschema", ".show table ['Live'] ingestion mappings"} <= details


def test_each_difference_is_one_line_and_exits_1(standin: AdxStandIn, tmp_path: Path) -> None:
    standin.drop_column(DATABASE, "Clicks", "topic")
    standin.set_column_type(DATABASE, "Events", "id", "int")
    standin.set_mapping(DATABASE, "Events", "EventsMap", "json", [
        {"column": "id", "Properties": {"Path": "$.event_id"}},
        {"column": "kind", "Properties": {"Path": "$.kind"}},
    ])  # fmt: skip
    standin.drop_table(DATABASE, "Live")
    proc = run_doctor(tmp_path, standin.url)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines == [
        "db1.Clicks: missing column topic (string) [kql: .create-merge table adds it]",
        "db1.Events: column id is int in the cluster, long in the file",
        "db1.Events: json mapping EventsMap differs: cluster json [id<-Path=$.event_id; kind<-Path=$.kind]; "
        "file json [id<-Path=$.id; kind<-Path=$.kind]",
        "db1.Live: missing table (2 columns) [kql: .create-merge table]",
    ]
    assert "4 difference(s)" in proc.stderr


def test_missing_mapping_extra_column_and_column_order(standin: AdxStandIn) -> None:
    standin.set_mapping(DATABASE, "Live", "LiveMap", "json", None)
    live = standin.table(DATABASE, "Live")
    live.columns = [("kind", "string"), ("id", "long"), ("note", "string")]

    lines = [f.line() for f in drift(make_config(), _runner(standin))]
    assert lines == [
        "db1.Live: column note (string) is in the cluster, not in the file",
        "db1.Live: column order differs: cluster kind, id; file id, kind",
        "db1.Live: missing json mapping LiveMap",
    ]


@pytest.mark.parametrize("path", ["ingestion.yaml", "tests/support/kafka_e2e.yaml"])
def test_the_repositorys_ingestion_files_show_no_drift_once_their_kql_ran(standin: AdxStandIn, path: str) -> None:
    """Every construct `kafka-adx kql` writes (csv ordinals, transforms, constants, views) reads
    back as what the file declares."""
    from shared.config import load_config

    config = load_config(REPO / path)
    standin.apply_config(config)
    assert drift(config, _runner(standin)) == []


def _runner(standin: AdxStandIn) -> Runner:
    def run(database: str, command: str) -> list[dict[str, Any]]:
        table = standin.run_mgmt(database, command)["Tables"][0]
        names = [c["ColumnName"] for c in table["Columns"]]
        return [dict(zip(names, row, strict=True)) for row in table["Rows"]]

    return run


def test_an_unreachable_cluster_exits_2(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = run_doctor(tmp_path, f"http://127.0.0.1:{port}")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stdout == ""
    assert f"ADX_ENGINE_URI (derived from ADX_INGEST_URI) (127.0.0.1:{port}): cannot read the cluster's schema: " \
           "connection refused" in proc.stderr


def test_an_identity_that_may_not_read_the_schema_exits_2(standin: AdxStandIn, tmp_path: Path) -> None:
    standin.schema_forbidden = True
    proc = run_doctor(tmp_path, standin.url)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "ADX refused the identity (HTTP 403" in proc.stderr and "Viewer role" in proc.stderr


def test_a_missing_database_is_drift(standin: AdxStandIn, tmp_path: Path) -> None:
    del standin.databases[DATABASE]
    proc = run_doctor(tmp_path, standin.url)
    assert proc.returncode == 1
    assert proc.stdout.splitlines() == ["db1: database does not exist (or is not visible)"]


def test_help_documents_the_exit_codes(tmp_path: Path) -> None:
    proc = run_doctor(tmp_path, "http://127.0.0.1:1", "--help")
    assert proc.returncode == 0
    text = " ".join(proc.stdout.split())
    assert "Exit codes:" in text
    assert "0 ok: no drift" in text and "1 attention: drift" in text and "2 error: the cluster cannot be reached" in text


# --------------------------------------------------------------------------------------------
# Comparison rules
# --------------------------------------------------------------------------------------------


def test_cslschema_parsing_handles_quoted_names_and_type_aliases() -> None:
    assert parse_cslschema("id:long,['odd-name']:string, ['a.b'] : int64,when:datetime") == [
        ("id", "long"), ("odd-name", "string"), ("a.b", "long"), ("when", "datetime")]  # fmt: skip
    assert parse_cslschema("") == []


def test_mappings_compare_by_meaning_not_by_spelling() -> None:
    mapping = make_config().tables["Events"].mappings["EventsMap"]
    ours = spec_of(mapping)
    # ADX may add an empty datatype, or show the legacy flat form: the same mapping.
    shown = spec_from_entries("Json", [{"column": "id", "datatype": "", "Properties": {"Path": "$.id"}},
                                        {"Column": "kind", "Path": "$.kind", "DataType": ""}])
    assert shown == ours
    assert spec_from_entries("csv", [{"column": "id", "Properties": {"Ordinal": 0}}]) == \
        MappingSpec("csv", (("id", (("Ordinal", "0"),)),))


@pytest.mark.parametrize("metadata_mapping", ["ClicksMap"])
def test_expected_schema_leaves_out_client_side_mappings(metadata_mapping: str) -> None:
    schema = expected_schema(make_config())
    assert set(schema) == {DATABASE}
    assert set(schema[DATABASE]) == {"Events", "Clicks", "Live"}
    assert metadata_mapping not in schema[DATABASE]["Clicks"].mappings
    assert set(schema[DATABASE]["Events"].mappings) == {"EventsMap"}
