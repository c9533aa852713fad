"""Local mode: DuckDB gets the rows ADX would ingest, with matching column types."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb

from shared.config import parse_config
from shared.deadletters.local import LocalDeadLetterStore
from shared.pipeline.core import Pipeline
from shared.sinks.duckdb import DuckDbSink
from tests.support.records import rec

ALL_TYPES = [("s", "string"), ("i", "int"), ("l", "long"), ("r", "real"), ("m", "decimal"), ("b", "bool"),
             ("dt", "datetime"), ("span", "timespan"), ("g", "guid"), ("d", "dynamic")]


def config():  # type: ignore[no-untyped-def]
    return parse_config({
        "database": "db",
        "tables": {"T": {"columns": [{"name": n, "type": t} for n, t in ALL_TYPES]}},
        "routes": [{"topic": "j", "table": "T", "format": "json"},
                   {"topic": "c", "table": "T", "format": "csv"},
                   {"topic": "jc", "table": "T", "format": "json", "apply_mapping": "client"}],
    })


VALUE = (b'{"s": "a,\\"b\\"", "i": 1, "l": 9000000000, "r": 1.5, "m": "1.25", "b": true,'
         b' "dt": "2024-02-03T04:05:06.789Z", "span": "01:02:03", "g": "5f1c0e9e-3d2f-4f6a-9c33-1c1c6e9f0a11",'
         b' "d": {"x": [1, "y"]}}')
EXPECTED = ('a,"b"', 1, 9_000_000_000, 1.5, Decimal("1.2500000000"), True, datetime(2024, 2, 3, 4, 5, 6, 789000),
            timedelta(hours=1, minutes=2, seconds=3), uuid.UUID("5f1c0e9e-3d2f-4f6a-9c33-1c1c6e9f0a11"),
            '{"x":[1,"y"]}')


def test_every_type_lands_with_its_duckdb_type(tmp_path: Path) -> None:
    sink = DuckDbSink(config(), tmp_path / "x.duckdb")
    pipeline = Pipeline(config(), sink, LocalDeadLetterStore(tmp_path / "dl"))
    result = pipeline.process([rec(VALUE, "j", 1), rec(VALUE, "jc", 2),
                               rec(b',,,,,,,,,', "c", 3)])
    assert result.ingested == 3
    rows = sink.query('SELECT * FROM "db"."T" ORDER BY "i" NULLS LAST')
    assert rows[0] == EXPECTED
    assert rows[1] == EXPECTED  # server- and client-side mapping agree
    assert rows[2] == ("",) + (None,) * 9  # empty CSV fields: empty string, nulls elsewhere


def test_lenient_like_adx_for_server_mappings(tmp_path: Path) -> None:
    sink = DuckDbSink(config(), tmp_path / "x.duckdb")
    pipeline = Pipeline(config(), sink, LocalDeadLetterStore(tmp_path / "dl"))
    pipeline.process([rec(b'{"s": "x", "i": "not a number", "dt": "garbage"}', "j", 1)])
    assert sink.query('SELECT "s", "i", "dt" FROM "db"."T"') == [("x", None, None)]


def test_table_gains_new_columns(tmp_path: Path) -> None:
    path = tmp_path / "x.duckdb"
    narrow = parse_config({"database": "db", "tables": {"T": {"columns": [{"name": "s", "type": "string"}]}},
                           "routes": [{"topic": "j", "table": "T", "format": "json"}]})
    first = DuckDbSink(narrow, path)
    Pipeline(narrow, first, LocalDeadLetterStore(tmp_path / "dl")).process([rec(b'{"s": "old"}', "j", 1)])
    first.close()
    sink = DuckDbSink(config(), path)
    Pipeline(config(), sink, LocalDeadLetterStore(tmp_path / "dl")).process([rec(b'{"s": "new", "i": 2}', "j", 2)])
    assert sink.query('SELECT "s", "i" FROM "db"."T" ORDER BY "s"') == [("new", 2), ("old", None)]


def test_a_value_holding_a_lone_carriage_return_lands(tmp_path: Path) -> None:
    """ADX ingests it; DuckDB failed the whole batch (so every record was dead-lettered) because
    the local CSV left a lone "\\r" unquoted."""
    sink = DuckDbSink(config(), tmp_path / "x.duckdb")
    pipeline = Pipeline(config(), sink, LocalDeadLetterStore(tmp_path / "dl"))
    result = pipeline.process([rec(b'{"s": "a\\rb", "i": 1}', "j", 1), rec(b'{"s": "c\\r\\nd", "i": 2}', "j", 2)])
    assert (result.ingested, result.dead_lettered) == (2, 0)
    assert sink.query('SELECT "s" FROM "db"."T" ORDER BY "i"') == [("a\rb",), ("c\r\nd",)]


def test_a_file_database_gets_the_memory_settings(tmp_path: Path) -> None:
    """What bounds local mode's memory (docs/performance.md, "Peak RSS of consume"): the buffer
    pool's limit, row groups of ROW_GROUP_ROWS rows (an insert writes each one to the file as it
    fills, instead of keeping a whole batch in memory until its commit), and the spill folder
    beside the file (not `.tmp` in the working directory)."""
    path = tmp_path / "x.duckdb"
    sink = DuckDbSink(config(), path)
    limit, temp = sink.query("SELECT current_setting('memory_limit'), current_setting('temp_directory')")[0]
    with duckdb.connect() as reference:  # DuckDB shows the limit in its own words (64MB: 61.0 MiB)
        reference.execute(f"SET memory_limit = '{DuckDbSink.MEMORY_LIMIT}'")
        assert limit == reference.execute("SELECT current_setting('memory_limit')").fetchone()[0]  # type: ignore[index]
    assert temp == str(path) + ".tmp"
    rows = DuckDbSink.ROW_GROUP_ROWS * 3 + 5
    pipeline = Pipeline(config(), sink, LocalDeadLetterStore(tmp_path / "dl"))
    result = pipeline.process([rec(f'{{"s": "x", "i": {i}}}'.encode(), "jc", i) for i in range(rows)])
    assert result.ingested == rows
    groups = sink.query('SELECT count(DISTINCT row_group_id) FROM pragma_storage_info(\'"db"."T"\')')[0][0]
    assert groups == 4
    sink.close()
    # The file is an ordinary DuckDB database: a plain connection reads it.
    with duckdb.connect(str(path), read_only=True) as con:
        assert con.execute('SELECT count(*) FROM "db"."T"').fetchone() == (rows,)


def test_a_database_named_like_a_duckdb_catalog_lands(tmp_path: Path) -> None:
    """The file is attached to an in-memory connection whose own database is dropped: a database
    (DuckDB schema) called `memory` would otherwise be ambiguous, and one called like the file
    was before (DuckDB named the catalog after the file)."""
    for database in ("memory", "local"):
        cfg = parse_config({"database": database, "tables": {"T": {"columns": [{"name": "s", "type": "string"}]}},
                            "routes": [{"topic": "j", "table": "T", "format": "json"}]})
        sink = DuckDbSink(cfg, tmp_path / "local.duckdb")
        Pipeline(cfg, sink, LocalDeadLetterStore(tmp_path / "dl")).process([rec(b'{"s": "x"}', "j", 1)])
        assert sink.query(f'SELECT "s" FROM "{database}"."T"') == [("x",)]
        sink.close()
