"""Local mode honours ``dedup`` as ADX's ingest-by / ingestIfNotExists does: a batch whose tag the
table already has is skipped (and counted as ingested, as ADX silently skips it); the tag is
stored in the DuckDB file in the same transaction as the rows, so a crash leaves both or neither.
Routes without ``dedup`` ingest a repeated batch again, as ADX would."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from shared.config import IngestionConfig, parse_config
from shared.deadletters.local import LocalDeadLetterStore
from shared.pipeline.batching import Batch
from shared.pipeline.core import Pipeline
from shared.pipeline.sink import MemorySink
from shared.sinks.duckdb import INGESTED_BATCHES, DuckDbSink
from tests.support.records import rec

CONFIG_DATA: dict[str, object] = {
    "database": "db",
    "tables": {"T": {"columns": [{"name": "a", "type": "string"}, {"name": "n", "type": "long"}]}},
    "routes": [{"topic": "dedup", "table": "T", "format": "json", "dedup": True},
               {"topic": "plain", "table": "T", "format": "json"},
               # Client-mapped: the sink's direct load, which checks the tag in its transaction only.
               {"topic": "dedup-client", "table": "T", "format": "json", "dedup": True, "apply_mapping": "client"}],
}
CONFIG = parse_config(CONFIG_DATA)


def records(topic: str) -> list:  # type: ignore[type-arg]
    return [rec(b'{"a": "x%d", "n": %d}' % (i, i), topic, offset=i) for i in range(3)]


def one_batch(config: IngestionConfig, topic: str, tmp_path: Path) -> Batch:
    """The batch the pipeline seals for three records of ``topic``."""
    sink = MemorySink()
    Pipeline(config, sink, LocalDeadLetterStore(tmp_path / "dl-build")).process(records(topic))
    (batch,) = sink.batches
    return batch


def count(path: Path, sql: str) -> int:
    con = duckdb.connect(str(path), read_only=True)
    try:
        row = con.execute(sql).fetchone()
        assert row is not None
        return int(row[0])
    finally:
        con.close()


@pytest.mark.parametrize("topic", ["dedup", "dedup-client"])
def test_dedup_batch_written_twice_lands_once(tmp_path: Path, topic: str) -> None:
    batch = one_batch(CONFIG, topic, tmp_path)
    sink = DuckDbSink(CONFIG, tmp_path / "x.duckdb")
    sink.write(batch)
    sink.write(batch)
    assert sink.query('SELECT count(*) FROM "db"."T"') == [(3,)]
    assert (sink.skipped_batches, sink.direct_fallbacks) == (1, 0)
    assert sink.query(f"SELECT database, table_name, tag, batch_id, records FROM {INGESTED_BATCHES}") == [
        ("db", "T", batch.dedup_tag, batch.batch_id, 3)
    ]


def test_without_dedup_a_repeated_batch_lands_twice(tmp_path: Path) -> None:
    batch = one_batch(CONFIG, "plain", tmp_path)
    sink = DuckDbSink(CONFIG, tmp_path / "x.duckdb")
    sink.write(batch)
    sink.write(batch)
    assert sink.query('SELECT count(*) FROM "db"."T"') == [(6,)]
    assert sink.skipped_batches == 0


def test_the_tag_is_durable_across_processes(tmp_path: Path) -> None:
    # Two runs of the same input (two pipelines, the file closed and reopened in between): the
    # second is counted as ingested, and the rows are there once.
    path = tmp_path / "x.duckdb"
    for _ in range(2):
        sink = DuckDbSink(CONFIG, path)
        pipeline = Pipeline(CONFIG, sink, LocalDeadLetterStore(tmp_path / "dl"))
        result = pipeline.process(records("dedup"))
        assert (result.received, result.ingested, result.dead_lettered) == (3, 3, 0)
        sink.close()
    assert count(path, 'SELECT count(*) FROM "db"."T"') == 3


def test_a_tag_is_per_table(tmp_path: Path) -> None:
    # ADX keeps ingest-by tags on the table's extents: the same tag in another table is no match.
    batch = one_batch(CONFIG, "dedup", tmp_path)
    sink = DuckDbSink(CONFIG, tmp_path / "x.duckdb")
    sink.write(batch)
    sink.query(f"UPDATE {INGESTED_BATCHES} SET table_name = 'Other'")
    sink.write(batch)
    assert sink.query('SELECT count(*) FROM "db"."T"') == [(6,)]


class FailsBeforeCommit(DuckDbSink):
    """Fails after the rows and the tag were written, before the commit."""

    def _remember_batch(self, batch: Batch) -> None:
        super()._remember_batch(batch)
        raise RuntimeError("disk gone")


@pytest.mark.parametrize("topic", ["dedup", "dedup-client"])
def test_a_rolled_back_batch_leaves_neither_rows_nor_tag(tmp_path: Path, topic: str) -> None:
    batch = one_batch(CONFIG, topic, tmp_path)
    failing = FailsBeforeCommit(CONFIG, tmp_path / "x.duckdb")
    try:
        failing.write(batch)
    except RuntimeError as exc:
        assert str(exc) == "disk gone"
    else:
        raise AssertionError("the write should have failed")
    assert failing.query('SELECT count(*) FROM "db"."T"') == [(0,)]
    assert failing.query(f"SELECT count(*) FROM {INGESTED_BATCHES}") == [(0,)]
    failing.close()
    sink = DuckDbSink(CONFIG, tmp_path / "x.duckdb")  # the retry
    sink.write(batch)
    assert sink.query('SELECT count(*) FROM "db"."T"') == [(3,)]


CRASH = """
import json, os, sys
from shared.config import parse_config
from shared.deadletters.local import LocalDeadLetterStore
from shared.pipeline.core import Pipeline
from shared.sinks.duckdb import DuckDbSink
from tests.support.records import rec

class CrashBeforeCommit(DuckDbSink):
    def _remember_batch(self, batch):
        super()._remember_batch(batch)
        os._exit(17)  # the process dies: no rollback, no close, no commit

config = parse_config(json.loads(sys.argv[1]))
sink = CrashBeforeCommit(config, sys.argv[2])
records = [rec(b'{"a": "x%d", "n": %d}' % (i, i), "dedup", offset=i) for i in range(3)]
Pipeline(config, sink, LocalDeadLetterStore(sys.argv[3])).process(records)
"""


def test_a_process_that_dies_mid_batch_leaves_neither_rows_nor_tag(tmp_path: Path) -> None:
    path = tmp_path / "x.duckdb"
    proc = subprocess.run([sys.executable, "-c", CRASH, json.dumps(CONFIG_DATA), str(path), str(tmp_path / "dl")],
                          cwd=Path(__file__).parents[3], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 17, proc.stderr
    # DuckDB replays its write-ahead log on open: only committed work survives.
    assert count(path, 'SELECT count(*) FROM "db"."T"') == 0
    assert count(path, f"SELECT count(*) FROM {INGESTED_BATCHES}") == 0
    sink = DuckDbSink(CONFIG, path)  # the redelivery after the crash
    result = Pipeline(CONFIG, sink, LocalDeadLetterStore(tmp_path / "dl")).process(records("dedup"))
    assert result.ingested == 3
    assert sink.query('SELECT count(*) FROM "db"."T"') == [(3,)]
    assert sink.query(f"SELECT count(*) FROM {INGESTED_BATCHES}") == [(1,)]
