"""A route to a table and mapping that live only in the cluster (``external: true``,
``mapping_ref: external``, the Kafka Connect takeover case) is ingested, checked, previewed and
refused by the local mode without a crash."""

from __future__ import annotations

from pathlib import Path

from shared.config import IngestionConfig, parse_config
from shared.deadletters.local import LocalDeadLetterStore
from shared.ops.preflight import routed_targets
from shared.ops.preview import Previewer
from shared.pipeline.core import Pipeline
from shared.pipeline.records import Record
from shared.pipeline.sink import MemorySink
from shared.sinks.duckdb import DuckDbSink

TUTORIAL_ROW = b"2007-01-01 00:00:00.0000000,2007-01-01 05:00:00.0000000,13208,NORTH CAROLINA,Thunderstorm Wind,Public\n"


def _config() -> IngestionConfig:
    return parse_config(
        {
            "database": "db",
            "tables": {"Storms": {"external": True}},
            "routes": [{"topic": "storm-events", "table": "Storms", "format": "csv",
                        "mapping": "Storms_CSV_Mapping", "mapping_ref": "external"}],
        },
        "<external>",
    )


def _record(offset: int, value: bytes = TUTORIAL_ROW) -> Record:
    return Record(value=value, topic="storm-events", offset=offset, source="kafka")


def test_records_go_to_adx_by_mapping_name_without_a_width_check(tmp_path: Path) -> None:
    sink = MemorySink()
    result = Pipeline(_config(), sink, LocalDeadLetterStore(tmp_path)).process(
        [_record(1), _record(2, b"a,b,c,d,e,f,g,h\n")]  # only ADX knows the mapping's ordinals
    )
    assert (result.ingested, result.dead_lettered) == (2, 0)
    (batch,) = sink.batches
    assert (batch.destination.wire_format, batch.destination.wire_mapping) == ("csv", "Storms_CSV_Mapping")


def test_broken_csv_is_still_dead_lettered(tmp_path: Path) -> None:
    result = Pipeline(_config(), MemorySink(), LocalDeadLetterStore(tmp_path)).process([_record(1, b'"open,quote\n')])
    assert result.dead_lettered == 1


def test_preflight_checks_an_external_mapping_by_name() -> None:
    assert routed_targets(_config()) == {"db": {"Storms": {"Storms_CSV_Mapping": ""}}}


def test_preview_says_only_the_cluster_knows_the_rows() -> None:
    (item,) = Previewer(_config()).preview([_record(1)])
    assert item.error is None
    assert "external mapping Storms_CSV_Mapping" in str(item.rows[0]["note"])


def test_local_mode_dead_letters_what_only_the_cluster_can_map(tmp_path: Path) -> None:
    store = LocalDeadLetterStore(tmp_path / "dl")
    sink = DuckDbSink(_config(), tmp_path / "db.duckdb")
    try:
        result = Pipeline(_config(), sink, store).process([_record(1)])
    finally:
        sink.close()
    assert (result.ingested, result.dead_lettered) == (0, 1)
    (letter,) = [x for s in store.sets() for x in store.read(s)]
    assert letter.stage == "sink" and "tables.Storms" in letter.reason
