"""``kafka-adx import-connect`` as a real process reading the tables and mappings of the ADX
stand-in through the real azure-kusto-data client (``.show tables``, ``.show table T
cslschema``, ``.show table T ingestion mappings``), then ``validate`` and ``preview`` of what it
wrote, as real processes too."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from shared.config import load_config
from tests.support.adx_standin import AdxStandIn, StandInTable
from tests.unit.ops.test_import_connect import APP_KEY, JAAS_PASSWORD, SEVERAL, TUTORIAL, TUTORIAL_SECRET

REPO = Path(__file__).resolve().parents[3]
_SCRUBBED = ("KAFKA_", "ADX_", "DEADLETTER_", "LOCAL_", "INGESTION_CONFIG", "AZURE_", "IDENTITY_")

STORMS_COLUMNS = [("StartTime", "datetime"), ("EndTime", "datetime"), ("EventId", "int"), ("State", "string"),
                  ("EventType", "string"), ("Source", "string")]  # fmt: skip
# What the tutorial's `.create table Storms ingestion csv mapping 'Storms_CSV_Mapping' '[...]'`
# stores: ADX's legacy flat syntax.
STORMS_CSV_MAPPING = json.dumps([
    {"Name": "StartTime", "datatype": "datetime", "Ordinal": 0},
    {"Name": "EndTime", "datatype": "datetime", "Ordinal": 1},
    {"Name": "EventId", "datatype": "int", "Ordinal": 2},
    {"Name": "State", "datatype": "string", "Ordinal": 3},
    {"Name": "EventType", "datatype": "string", "Ordinal": 4},
    {"Name": "Source", "datatype": "string", "Ordinal": 5},
])  # fmt: skip
# A tutorial-shaped record: StartTime,EndTime,EventId,State,EventType,Source.
STORM_RECORD = "2007-09-29 08:11:00.0000000,2007-09-29 08:11:00.0000000,61032,ATLANTIC SOUTH,Waterspout,Trained Spotter\n"


def cli(tmp_path: Path, *args: str, **env_extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUBBED)}
    env.update({"PYTHONPATH": str(REPO), "ADX_AUTH": "none", **env_extra})
    return subprocess.run([sys.executable, "-m", "shared.cli.app", *args], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)  # fmt: skip


def _assert_no_secret(proc: subprocess.CompletedProcess[str], out_dir: Path, *secrets: str) -> None:
    written = "".join(p.read_text() for p in out_dir.iterdir())
    for secret in secrets:
        assert secret not in written and secret not in proc.stdout and secret not in proc.stderr, secret


def test_the_tutorials_config_with_its_storms_table_previews_a_record_as_a_storms_row(
    standin: AdxStandIn, tmp_path: Path
) -> None:
    standin.databases["Weather"] = {"Storms": StandInTable(list(STORMS_COLUMNS),
                                                           {"Storms_CSV_Mapping": ("Csv", STORMS_CSV_MAPPING)})}
    (tmp_path / "adx-sink-config.json").write_text(TUTORIAL)
    # The tutorial's URLs are placeholders: the cluster comes from the settings.
    proc = cli(tmp_path, "import-connect", "adx-sink-config.json", "--database", "Weather", "--out", "out",
               ADX_ENGINE_URI=standin.url)
    assert proc.returncode == 1, proc.stdout + proc.stderr  # written; placeholders and the appkey are noted
    assert "tables.Storms" not in proc.stderr  # read from the cluster, not an external reference
    details = {s.detail for s in standin.seen}
    assert {".show tables", ".show table ['Storms'] cslschema", ".show table ['Storms'] ingestion mappings"} <= details

    config = load_config(tmp_path / "out" / "ingestion.yaml")
    storms = config.tables["Storms"]
    assert [(c.name, c.type) for c in storms.columns] == STORMS_COLUMNS
    mapping = storms.mappings["Storms_CSV_Mapping"]
    assert [(e.column, e.properties.ordinal) for e in mapping.columns] == [(c, i) for i, (c, _) in enumerate(STORMS_COLUMNS)]
    assert config.routes[0].validate_records is True  # a real table: records are checked

    validated = cli(tmp_path, "validate", "--config", "out/ingestion.yaml")
    assert validated.returncode == 0, validated.stdout + validated.stderr
    (tmp_path / "storm.csv").write_text(STORM_RECORD)
    preview = cli(tmp_path, "preview", "--config", "out/ingestion.yaml", "--topic", "storm-events", "--json", "storm.csv")
    assert preview.returncode == 0, preview.stderr
    row = json.loads(preview.stdout.splitlines()[0])
    assert row["table"] == "Weather.Storms"
    assert row["rows"] == [{"StartTime": "2007-09-29T08:11:00.0000000Z", "EndTime": "2007-09-29T08:11:00.0000000Z",
                            "EventId": 61032, "State": "ATLANTIC SOUTH", "EventType": "Waterspout",
                            "Source": "Trained Spotter"}]  # fmt: skip
    _assert_no_secret(proc, tmp_path / "out", TUTORIAL_SECRET)


def test_several_topics_read_from_the_cluster_the_file_names(standin: AdxStandIn, tmp_path: Path) -> None:
    standin.databases["Web"] = {
        "Clicks": StandInTable([("id", "long"), ("page", "string"), ("at", "datetime")], {
            "ClicksJson": ("Json", json.dumps([{"column": "id", "Properties": {"Path": "$.id"}},
                                               {"column": "page", "Properties": {"Path": "$.page"}},
                                               {"column": "at", "Properties": {"Path": "$.ts",
                                                                               "Transform": "DateTimeFromUnixSeconds"}}])),
        }),
        "Metrics": StandInTable([("name", "string"), ("value", "real")]),
    }  # fmt: skip
    # Sales does not exist in the cluster: Orders is written as an external reference.
    data = json.loads(json.dumps(SEVERAL))
    data["config"]["kusto.query.url"] = standin.url
    (tmp_path / "telemetry.json").write_text(json.dumps(data))
    proc = cli(tmp_path, "import-connect", "telemetry.json", "--out", "out")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "database Sales: does not exist in the cluster" in proc.stderr
    config = load_config(tmp_path / "out" / "ingestion.yaml")
    assert [c.name for c in config.tables["Clicks"].columns] == ["id", "page", "at"]
    at = config.tables["Clicks"].mappings["ClicksJson"].columns[2].properties
    assert (at.path, at.transform) == ("$.ts", "DateTimeFromUnixSeconds")
    assert [c.name for c in config.tables["Metrics"].columns] == ["name", "value"]
    routes = {r.topic: r for r in config.routes}
    assert routes["clicks"].ingestion == "streaming" and routes["clicks"].validate_records is True
    assert routes["metrics"].mapping is None
    assert config.tables["Orders"].external and routes["orders"].mapping_ref == "external"
    env = (tmp_path / "out" / "kafka-adx.env").read_text()
    assert f"ADX_ENGINE_URI={standin.url}\n" in env
    _assert_no_secret(proc, tmp_path / "out", APP_KEY, JAAS_PASSWORD)


def test_a_mapping_the_cluster_lacks_is_left_out_of_the_route(standin: AdxStandIn, tmp_path: Path) -> None:
    standin.databases["Weather"] = {"Storms": StandInTable(list(STORMS_COLUMNS))}
    (tmp_path / "adx-sink-config.json").write_text(TUTORIAL)
    proc = cli(tmp_path, "import-connect", "adx-sink-config.json", "--database", "Weather", "--out", "out",
               "--engine-uri", standin.url)
    assert proc.returncode == 1
    assert "mapping Weather.Storms.Storms_CSV_Mapping: not in the cluster" in proc.stderr
    config = load_config(tmp_path / "out" / "ingestion.yaml")
    assert config.routes[0].mapping is None and config.tables["Storms"].mappings == {}


def test_a_cluster_that_refuses_the_identity_exits_2(standin: AdxStandIn, tmp_path: Path) -> None:
    standin.schema_forbidden = True
    (tmp_path / "adx-sink-config.json").write_text(TUTORIAL)
    proc = cli(tmp_path, "import-connect", "adx-sink-config.json", "--database", "Weather", "--out", "out",
               "--engine-uri", standin.url)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "cannot read the cluster's tables: ADX refused the identity (HTTP 403" in proc.stderr
    assert "Viewer role" in proc.stderr and not (tmp_path / "out").exists()


def test_a_mapping_the_file_cannot_express_stays_in_the_cluster(standin: AdxStandIn, tmp_path: Path) -> None:
    transform = json.dumps([{"column": "StartTime", "Properties": {"Ordinal": "0", "Transform": "DateTimeFromTicks"}}])
    standin.databases["Weather"] = {"Storms": StandInTable(list(STORMS_COLUMNS),
                                                           {"Storms_CSV_Mapping": ("Csv", transform)})}
    (tmp_path / "adx-sink-config.json").write_text(TUTORIAL)
    proc = cli(tmp_path, "import-connect", "adx-sink-config.json", "--database", "Weather", "--out", "out",
               "--engine-uri", standin.url)
    assert proc.returncode == 1
    assert "mapping Weather.Storms.Storms_CSV_Mapping: column StartTime: transform DateTimeFromTicks" in proc.stderr
    config = load_config(tmp_path / "out" / "ingestion.yaml")
    route = config.routes[0]
    assert (route.mapping, route.mapping_ref, route.apply_mapping) == ("Storms_CSV_Mapping", "external", "server")
    assert [c.name for c in config.tables["Storms"].columns] == [c for c, _ in STORMS_COLUMNS]
