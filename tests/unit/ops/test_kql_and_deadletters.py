"""KQL generation and the dead-letter envelope."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import orjson

from shared.config import parse_config
from shared.deadletters.envelope import from_envelope, to_envelope
from shared.deadletters.local import LocalDeadLetterStore
from shared.ops.kql import generate_kql, mapping_json
from shared.pipeline.deadletter import DeadLetter
from shared.pipeline.destination import Destination
from tests.support.records import make_config, rec


def test_kql_creates_tables_mappings_and_policies() -> None:
    config = parse_config({
        "database": "db",
        "tables": {"T": {"columns": [{"name": "a", "type": "string"}, {"name": "t", "type": "datetime"}],
                         "batching_max_delay": "00:00:10",
                         "mappings": {"m": {"kind": "json", "columns": [
                             {"column": "a", "Properties": {"ConstValue": "it's"}},
                             {"column": "t", "Properties": {"Path": "$.t", "Transform": "DateTimeFromUnixSeconds"}}]}}}},
        "routes": [{"topic": "x", "table": "T", "format": "json", "mapping": "m", "ingestion": "streaming", "dedup": True}],
    })
    kql = generate_kql(config)
    assert ".create-merge table ['T'] (['a']:string, ['t']:datetime)" in kql
    assert ("'m' @'[{\"column\":\"a\",\"Properties\":{\"ConstValue\":\"it''s\"}},{\"column\":\"t\",\"Properties\":"
            "{\"Path\":\"$.t\",\"Transform\":\"DateTimeFromUnixSeconds\"}}]'") in kql
    assert '"MaximumBatchingTimeSpan":"00:00:10"' in kql
    assert ".alter table ['T'] policy streamingingestion enable" in kql
    assert '"TagPrefix":"ingest-by:kafka-adx-"' in kql
    assert generate_kql(config) == kql  # deterministic


def test_mapping_json_is_adx_syntax(sample_config) -> None:  # type: ignore[no-untyped-def]
    mapping = sample_config.tables["Storms"].mappings["Storms_CSV_Mapping"]
    assert orjson.loads(mapping_json(mapping))[0] == {"column": "StartTime", "Properties": {"Ordinal": "0"}}


def test_sample_kql_skips_metadata_mappings(sample_config) -> None:  # type: ignore[no-untyped-def]
    kql = generate_kql(sample_config)
    assert "mapping 'StormEvents_JSON_Mapping'" not in kql
    assert "// mapping StormEvents_JSON_Mapping reads record metadata" in kql


def test_envelope_round_trip(tmp_path: Path) -> None:
    record = replace(rec(b"\x00\xffbytes", "json", 5, partition=1), key=b"k", headers=(("h", b"\x01"), ("n", None)))
    letter = DeadLetter(record=record, reason="why", stage="map", field="n", route="json",
                        destination=Destination("db", "T", "json", "T_json", "server"), batch_id="b" * 64,
                        attempt=3, time=datetime(2024, 1, 2, tzinfo=UTC))
    envelope = to_envelope(letter)
    assert envelope["value"] == "AP9ieXRlcw=="  # base64 of the original bytes
    assert from_envelope(orjson.loads(orjson.dumps(envelope))) == letter
    store = LocalDeadLetterStore(tmp_path)
    set_id = store.write([letter])
    assert store.read(set_id) == [letter]
    assert not list(tmp_path.glob("*.tmp"))


def test_config_used_by_helpers_is_valid() -> None:
    assert make_config().tables["T"].column_types["d"] == "dynamic"
