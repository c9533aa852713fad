"""Local mode: an embedded DuckDB playing ADX's part.

The sink reads each batch's payload exactly as ADX would receive it (gzip, ``wire_format``,
``wire_mapping``) and applies the mapping with the Python engine, with ADX's lenient semantics
(a value that does not convert becomes null). One DuckDB schema per ADX database, one table per
ADX table, with matching column types.

Like ADX with ``ingestIfNotExists``, a batch of a ``dedup`` route whose tag the table already has
is skipped (and counts as ingested, as ADX silently drops it): the tags live in
``_kafka_adx.ingested_batches`` and are written in the same transaction as the rows, so a crash
leaves both or neither. A table with a ``dedup_view`` gets a view that keeps one row per source
position, as the ADX materialized view does.

A client-mapped batch (the pipeline's own CSV rows, in table column order) is loaded by DuckDB
itself: one ``read_csv`` of the gzip payload, each column typed as the reference path would
store it (see :func:`_direct_columns`), instead of parsing, converting and rewriting each row in
Python. A server-mapped CSV or JSON-lines batch (ADX's mapping applied to the producer's
bytes) is loaded by DuckDB too, its mapping computed in SQL for the value forms the reference
converts alike (:mod:`shared.sinks.duckdb_server`). Any batch the direct loads cannot take
exactly (a ``dynamic`` value that is not a JSON object or array as the pipeline writes them, a
timespan of more than 9,999 days, a producer's value in another form, any DuckDB error) is
rolled back and written the reference way, so both paths store the same rows.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
import logging
import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, cast

import duckdb

from shared.config import JSON_FORMATS, IngestionConfig, Table
from shared.errors import TerminalError
from shared.mapping.compiled import CompiledMapping
from shared.mapping.types import TYPES
from shared.pipeline.batching import Batch
from shared.pipeline.encoding import read_payload_stream
from shared.pipeline.records import Record
from shared.sinks.duckdb_server import (
    NEEDS_REFERENCE,
    ServerPlan,
    csv_plan,
    csv_select,
    json_plan,
    json_select,
    scan_csv,
    scan_json_lines,
)

_NULL = "\\N"

log = logging.getLogger(__name__)

BOOKKEEPING_SCHEMA = "$kafka_adx"
"""DuckDB schema of the sink's own tables: ``$`` cannot occur in a configured database name,
so it never clashes with one."""
INGESTED_BATCHES = '"$kafka_adx"."ingested_batches"'
"""The dedup tags written, per database and table (ADX keeps them as extent tags of the table)."""


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class DuckDbSink:
    """Writes batches into a DuckDB file (local mode)."""

    name = "duckdb"
    #: DuckDB memory_limit of a file database. With ROW_GROUP_ROWS an insert needs little of it
    #: (the rows go to the file a row group at a time): 32 MB costs no CPU that could be measured
    #: against 64 MB (a 32 MiB batch's load, either path) and takes ~20 MB off the peak RSS of
    #: ``consume`` and ``ingest``; 16 MB runs out of memory in the commit of a 32 MiB batch.
    MEMORY_LIMIT = "32MB"
    #: read_csv's buffer for a payload (both paths): its default (32 MiB for a gzip file) does
    #: not fit MEMORY_LIMIT beside the table being written, and DuckDB then runs out of memory.
    CSV_BUFFER_BYTES = 4 * 1024 * 1024
    #: Rows per row group of a file database (DuckDB's default: 122,880). An insert keeps its
    #: rows in memory, uncompressed, until a row group is full and written to the file: a batch
    #: of 78,000 rows was wholly in memory until its commit (~30 MB more at the peak of a 32 MiB
    #: batch). Smaller groups are written as the insert goes, and cost less CPU, not more (the
    #: commit has less left to write; docs/performance.md, "Peak RSS of consume").
    ROW_GROUP_ROWS = 16384
    #: The catalog the database file is attached as: ``$`` cannot occur in a configured database
    #: name, so no schema (ADX database) name clashes with it (``duckdb.connect(path)`` named it
    #: after the file, and a database of that name made ``"name"."table"`` ambiguous).
    CATALOG = "$local"
    #: memory_limit, in MB, per DuckDB thread, added to MEMORY_LIMIT while read_json loads a
    #: server-mapped JSON batch: its reader allocates a 32 MiB buffer per thread whatever its
    #: options (maximum_object_size, sample_size), which MEMORY_LIMIT alone cannot hold.
    JSON_MB_PER_THREAD = 64

    def __init__(self, config: IngestionConfig, path: str | Path, *, direct_load: bool = True) -> None:
        self.config = config
        self.path = Path(path)
        in_memory = self.in_memory = str(path) == ":memory:"
        if in_memory:
            self.con = duckdb.connect(":memory:")
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.con = _attach(self.path, self.CATALOG, self.ROW_GROUP_ROWS)
            # DuckDB's default (80% of RAM) lets its buffer pool grow with the database: bound
            # it so that ingesting a large file stays flat. A file database spills to disk
            # when an operation needs more (an in-memory one could not, so it keeps the default).
            self.con.execute(f"SET memory_limit = '{self.MEMORY_LIMIT}'")
        if hasattr(os, "sched_getaffinity"):
            # DuckDB sizes its thread pool by the machine's cores: a process allowed fewer CPUs
            # (taskset, a cpuset) would only switch between its threads (~10 % of a batch's load).
            self.con.execute(f"SET threads = {len(os.sched_getaffinity(0))}")
        threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        self._json_memory_limit = f"{int(self.MEMORY_LIMIT.removesuffix('MB')) + self.JSON_MB_PER_THREAD * threads}MB"
        self._lock = threading.Lock()
        self._mappings: dict[tuple[str, str | None, str], CompiledMapping] = {}
        self._created: set[tuple[str, str]] = set()
        self._server_plans: dict[tuple[str, str | None, str], ServerPlan | None] = {}
        self._bookkeeping = False
        #: Dedup batches skipped because their tag was already written (ADX: ingestIfNotExists).
        self.skipped_batches = 0
        #: Client-mapped batches loaded by DuckDB from their payload (False: every batch takes
        #: the reference path, which tests compare the direct load with).
        self.direct_load = direct_load
        #: Client-mapped batches the direct load handed to the reference path (a value it does
        #: not take, or a DuckDB error): each is logged at DEBUG with DuckDB's message.
        self.direct_fallbacks = 0

    def ensure_table(self, database: str, table_name: str) -> None:
        """Create the schema and table, adding any column the config has and the table lacks."""
        if (database, table_name) in self._created:
            return
        table = self.config.tables[table_name]
        if not table.columns:
            raise TerminalError(
                f"local mode cannot create table {database}.{table_name}: it is external and the ingestion file "
                f"lists no columns for it; add its columns under tables.{table_name}.columns"
            )
        self.con.execute(f"CREATE SCHEMA IF NOT EXISTS {_quote(database)}")
        columns = ", ".join(f"{_quote(c.name)} {TYPES[c.type].duckdb}" for c in table.columns)
        full = f"{_quote(database)}.{_quote(table_name)}"
        self.con.execute(f"CREATE TABLE IF NOT EXISTS {full} ({columns})")
        existing = {
            row[0]
            for row in self.con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ?",
                [database, table_name],
            ).fetchall()
        }
        for column in table.columns:
            if column.name not in existing:
                self.con.execute(f"ALTER TABLE {full} ADD COLUMN {_quote(column.name)} {TYPES[column.type].duckdb}")
        view = table.dedup_view_name(table_name)
        if view is not None:
            # What the ADX view `summarize take_any(*) by <position>` holds: one row per source
            # position, the key columns first. Recreated here so that it lists new columns too.
            key = table.dedup_key
            ordered = [*key, *(c.name for c in table.columns if c.name not in key)]
            self.con.execute(
                f"CREATE OR REPLACE VIEW {_quote(database)}.{_quote(view)} AS "
                f"SELECT {', '.join(_quote(c) for c in ordered)} FROM {full} "
                f"QUALIFY row_number() OVER (PARTITION BY {', '.join(_quote(c) for c in key)}) = 1"
            )
        self._created.add((database, table_name))

    def _ensure_bookkeeping(self) -> None:
        if self._bookkeeping:
            return
        self.con.execute(f"CREATE SCHEMA IF NOT EXISTS {_quote(BOOKKEEPING_SCHEMA)}")
        self.con.execute(
            f"CREATE TABLE IF NOT EXISTS {INGESTED_BATCHES} (database VARCHAR NOT NULL, table_name VARCHAR NOT NULL, "
            "tag VARCHAR NOT NULL, batch_id VARCHAR NOT NULL, records BIGINT NOT NULL, ingested_at TIMESTAMP NOT NULL, "
            "PRIMARY KEY (database, table_name, tag))"
        )
        self._bookkeeping = True

    def _has_tag(self, batch: Batch) -> bool:
        dest = batch.destination
        found = self.con.execute(
            f"SELECT 1 FROM {INGESTED_BATCHES} WHERE database = ? AND table_name = ? AND tag = ?",
            [dest.database, dest.table, batch.dedup_tag],
        ).fetchone()
        return found is not None

    def _remember_batch(self, batch: Batch) -> None:
        """Record a dedup batch's tag; runs inside the transaction that inserted its rows."""
        dest = batch.destination
        self.con.execute(
            f"INSERT INTO {INGESTED_BATCHES} VALUES (?, ?, ?, ?, ?, ?)",
            [dest.database, dest.table, batch.dedup_tag, batch.batch_id, batch.count, datetime.now(UTC).replace(tzinfo=None)],
        )

    def _mapping(self, table_name: str, mapping_name: str | None, wire_format: str) -> CompiledMapping:
        kind = "json" if wire_format in JSON_FORMATS else "csv"
        key = (table_name, mapping_name, kind)
        compiled = self._mappings.get(key)
        if compiled is None:
            if self.config.is_external_mapping(table_name, mapping_name):
                raise TerminalError(
                    f"local mode cannot apply the external mapping {mapping_name} of {table_name}: only the cluster "
                    f"knows it; declare it under tables.{table_name}.mappings to ingest locally"
                )
            table = self.config.tables[table_name]
            mapping = table.mappings[mapping_name] if mapping_name else None
            compiled = self._mappings[key] = CompiledMapping(table, mapping, kind, strict=False)
        return compiled

    def rows(self, batch: Batch) -> list[list[Any]]:
        """The rows ADX would ingest from this batch (also used by tests and previews)."""
        return list(self.iter_rows(batch))

    def iter_rows(self, batch: Batch) -> Iterator[list[Any]]:
        """:meth:`rows`, one at a time: the payload is decompressed and parsed as it is read,
        so a batch never sits in memory uncompressed."""
        dest = batch.destination
        compiled = self._mapping(dest.table, dest.wire_mapping, dest.wire_format)
        location = f"kafka-adx://{dest.database}/{dest.table}/{batch.batch_id}"
        with gzip.GzipFile(fileobj=io.BytesIO(batch.payload), mode="rb") as payload:
            stream = cast(BinaryIO, payload)  # a GzipFile reads like any binary file
            for line_number, doc in enumerate(read_payload_stream(stream, dest.wire_format), start=1):
                yield compiled.row(doc, Record(value=None, offset=line_number), location)

    def write(self, batch: Batch) -> None:
        """Insert the batch's rows (one transaction per batch).

        On a ``dedup`` route a batch whose tag this table already has is skipped, as ADX's
        ingestIfNotExists does; otherwise the rows and the tag are committed together."""
        dest = batch.destination
        if dest.table not in self.config.tables:
            raise TerminalError(f"table {dest.table!r} is not declared in the ingestion file")
        table = self.config.tables[dest.table]
        columns = _direct_columns(table) if self.direct_load and dest.apply == "client" else None
        if columns is not None and self._write_direct(batch, columns):
            return
        if self.direct_load and dest.apply != "client" and self._write_server_direct(batch):
            return
        if dest.dedup:
            # Before converting anything (the direct load needs no such check: its transaction
            # checks the tag before it reads a row).
            with self._lock:
                self._ensure_bookkeeping()
                if self._has_tag(batch):
                    self.skipped_batches += 1
                    return
        self._write_converted(batch)

    def _write_direct(self, batch: Batch, columns: list[tuple[str, str]]) -> bool:
        """Load a client-mapped batch with one ``read_csv`` of its gzip payload; False (nothing
        written) when a value needs the reference path, which then writes the whole batch."""
        reader = ", ".join(f"{_sql_literal(f'c{i}')}: {_sql_literal(kind)}" for i, (kind, _) in enumerate(columns))

        def select(tmp: str) -> str:
            return (
                f"SELECT {', '.join(expr for _, expr in columns)} FROM read_csv({_sql_literal(tmp)}, header = false, "
                f"columns = {{{reader}}}, nullstr = '', quote = '\"', escape = '\"', delim = ',', "
                f"new_line = '\\n', auto_detect = false, compression = 'gzip', buffer_size = {self.CSV_BUFFER_BYTES})"
            )

        return self._load_payload(batch, select)

    def _write_server_direct(self, batch: Batch) -> bool:
        """Load a server-mapped CSV or JSON-lines batch by DuckDB from its payload (see
        :mod:`shared.sinks.duckdb_server`); False (nothing written) when the mapping, the
        payload or a value needs the reference path, which then writes the whole batch."""
        dest = batch.destination
        kind = {"csv": "csv", "json": "json"}.get(dest.wire_format)
        if kind is None or self.config.is_external_mapping(dest.table, dest.wire_mapping):
            return False  # other formats; an external mapping: the reference says why not
        key = (dest.table, dest.wire_mapping, kind)
        if key not in self._server_plans:
            table = self.config.tables[dest.table]
            mapping = table.mappings[dest.wire_mapping] if dest.wire_mapping else None
            self._server_plans[key] = csv_plan(table, mapping) if kind == "csv" else json_plan(table, mapping)
        plan = self._server_plans[key]
        if plan is None:
            return False  # a column the direct load does not compute (decimal, timespan, a transform...)
        if kind == "csv":
            lines = scan_csv(batch.payload)
            if lines is None:
                self._fell_back(batch, "the payload's CSV reads otherwise in DuckDB")
                return False
            return self._load_payload(batch, lambda tmp: csv_select(plan, tmp, self.CSV_BUFFER_BYTES), lines)
        # A validated route's lines are each one orjson accepted (JsonPassthrough); the others
        # are parsed here, as the reference would.
        if not scan_json_lines(batch.payload, parse=not dest.validate):
            self._fell_back(batch, "a line orjson refuses, or a BOM")
            return False
        return self._load_payload(batch, lambda tmp: json_select(plan, tmp), memory_limit=self._json_memory_limit)

    def _fell_back(self, batch: Batch, why: object) -> None:
        self.direct_fallbacks += 1
        log.debug("direct load of %s fell back to the reference path: %s", batch.describe(), why)

    def _load_payload(
        self, batch: Batch, select: Callable[[str], str], rows: int | None = None, *, memory_limit: str | None = None
    ) -> bool:
        """Insert ``select(<the payload as a file>)`` (expecting ``rows`` rows, when given; under
        ``memory_limit`` instead of MEMORY_LIMIT, when given); False (rolled back, nothing
        written) when DuckDB raised."""
        fd, tmp = tempfile.mkstemp(prefix="kafka-adx-", suffix=".gz")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(batch.payload)
            try:
                self._insert(batch, select(tmp), rows, memory_limit=memory_limit)
            except (duckdb.Error, UnicodeDecodeError) as exc:
                # A value the direct load does not take (the marker _NEEDS_REFERENCE raises), or
                # anything else DuckDB refused (its message quoting invalid UTF-8 of the payload
                # fails to decode): the reference path writes the batch or fails with its own
                # error, so the outcome never depends on the path. DuckDB's own messages may
                # quote the payload: only the marker's (which name lengths) are logged.
                message = str(exc) if isinstance(exc, duckdb.Error) else ""
                self._fell_back(batch, message if _NEEDS_REFERENCE in message else type(exc).__name__)
                return False
            return True
        finally:
            os.unlink(tmp)

    def _write_converted(self, batch: Batch) -> None:
        """The reference path: each row parsed and converted in Python (:meth:`iter_rows`),
        written as DuckDB CSV text and loaded with one ``read_csv``."""
        dest = batch.destination
        table = self.config.tables[dest.table]
        fd, tmp = tempfile.mkstemp(prefix="kafka-adx-", suffix=".csv")
        try:
            with os.fdopen(fd, "w", newline="", encoding="utf-8") as fh:
                # "\r\n": the csv module quotes only the line-ending characters of its own
                # terminator, and DuckDB would refuse a field holding a lone "\r" unquoted.
                writer = csv.writer(fh, lineterminator="\r\n")
                texts = [TYPES[c.type].duck_text for c in table.columns]
                # Row by row: memory stays flat whatever the batch size.
                for row in self.iter_rows(batch):
                    writer.writerow([_NULL if v is None else text(v) for v, text in zip(row, texts, strict=True)])
            columns = ", ".join(f"{_quote(c.name)}: {_sql_literal(TYPES[c.type].duckdb)}" for c in table.columns)
            self._insert(
                batch,
                f"SELECT * FROM read_csv({_sql_literal(tmp)}, header = false, "
                f"columns = {{{columns}}}, nullstr = {_sql_literal(_NULL)}, quote = '\"', escape = '\"', "
                f"delim = ',', auto_detect = false, strict_mode = false, buffer_size = {self.CSV_BUFFER_BYTES})",
            )
        finally:
            os.unlink(tmp)

    def _insert(self, batch: Batch, select: str, rows: int | None = None, *, memory_limit: str | None = None) -> None:
        """Insert the rows of ``select`` (in table column order) and, on a dedup route, the
        batch's tag, in one transaction; a batch whose tag is already there is skipped. With
        ``rows``, another number of rows inserted raises (rolled back)."""
        dest = batch.destination
        with self._lock:
            self.ensure_table(dest.database, dest.table)
            if dest.dedup:
                self._ensure_bookkeeping()
            limited = memory_limit is not None and not self.in_memory
            if limited:
                self.con.execute(f"SET memory_limit = {_sql_literal(str(memory_limit))}")
            try:
                self._insert_locked(batch, select, rows)
            finally:
                if limited:
                    self.con.execute(f"SET memory_limit = '{self.MEMORY_LIMIT}'")

    def _insert_locked(self, batch: Batch, select: str, rows: int | None) -> None:
        """:meth:`_insert`'s transaction, under the lock."""
        dest = batch.destination
        table = self.config.tables[dest.table]
        full = f"{_quote(dest.database)}.{_quote(dest.table)}"
        names = ", ".join(_quote(c.name) for c in table.columns)
        self.con.execute("BEGIN TRANSACTION")
        try:
            # Checked again inside the transaction: the tag is authoritative only here.
            if dest.dedup and self._has_tag(batch):
                self.con.execute("ROLLBACK")
                self.skipped_batches += 1
                return
            inserted = self.con.execute(f"INSERT INTO {full} ({names}) {select}").fetchone()
            if rows is not None and (inserted is None or inserted[0] != rows):
                raise duckdb.InvalidInputException(f"{_NEEDS_REFERENCE}: {rows} lines, other rows read")
            if dest.dedup:
                self._remember_batch(batch)
            self.con.execute("COMMIT")
        except BaseException:
            # The original error is the one to report; a ROLLBACK that fails too (the
            # transaction already gone with a failed COMMIT) must not replace it.
            with contextlib.suppress(Exception):
                self.con.execute("ROLLBACK")
            raise

    def query(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        """Run a query against the local database."""
        with self._lock:
            return list(self.con.execute(sql, params or []).fetchall())

    def close(self) -> None:
        """Close the database."""
        self.con.close()


def _sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _attach(path: Path, catalog: str, row_group_rows: int) -> duckdb.DuckDBPyConnection:
    """A connection whose default database is the file at ``path``, with ``row_group_rows``
    rows per row group: the row group size is an option of ``ATTACH`` only, so the file is
    attached to an in-memory connection, made the default, and the in-memory database dropped
    (DuckDB refuses ``"memory"."table"`` as ambiguous while a catalog ``memory`` exists). The spill
    directory is the one ``duckdb.connect(path)`` uses (``<path>.tmp``, not ``.tmp`` in the
    working directory)."""
    con = duckdb.connect(":memory:")
    try:
        con.execute(f"ATTACH {_sql_literal(str(path))} AS {_quote(catalog)} (ROW_GROUP_SIZE {int(row_group_rows)})")
        con.execute(f"USE {_quote(catalog)}")
        con.execute("DETACH memory")
        con.execute(f"SET temp_directory = {_sql_literal(str(path) + '.tmp')}")
    except BaseException:
        con.close()
        raise
    return con


_NEEDS_REFERENCE = NEEDS_REFERENCE
"""The error the direct load raises for a value it cannot store as the reference path would."""

# A JSON string as orjson reads it: no raw control character, no lone surrogate escape.
_JSON_STRING = r'"(?:[^"\\\x00-\x1f]|\\["\\/bfnrt]|\\u(?:[0-9a-cA-CeEfF][0-9a-fA-F]{3}|[dD][0-7][0-9a-fA-F]{2}))*"'
# JSON text made of such strings, JSON whitespace, structure, digits and the three literals:
# no NaN or Infinity, which DuckDB's JSON reader accepts and orjson (the reference) does not.
_JSON_TOKENS = rf"(?:{_JSON_STRING}|[ \t\n\r\[\]{{}}:,0-9.eE+-]|true|false|null)*"
# Outside the strings (whole strings or other characters before it): a trailing comma, or a
# number beyond a double (a 3-digit exponent, 200 digits; refused here even where orjson
# would read it, which only sends the batch to the reference path). DuckDB accepts both.
_JSON_LENIENT = rf'^(?:{_JSON_STRING}|[^"])*?(?:,[ \t\n\r]*[\]}}]|[eE][+-]?[0-9]{{3}}|[0-9]{{200}})'


def _dynamic_expr(column: str) -> str:
    """SQL storing the pipeline's text of a dynamic value exactly as the reference path does.

    The reference parses the text with orjson (``to_dynamic``) and stores ``orjson.dumps`` of
    the result. An object or array in the payload is either orjson's own output (the pipeline
    parsed the value), which that turns back into the same text, or text orjson refused, which
    becomes a JSON string. So an object or array that orjson accepts is stored as it is, a null
    stays null, and any other value raises :data:`_NEEDS_REFERENCE`: the batch then takes the
    reference path. DuckDB's JSON reader is more lenient than orjson: the regular expressions
    refuse what it would accept and orjson would not."""
    return (
        f"CASE WHEN {column} IS NULL THEN NULL "
        f"WHEN left({column}, 1) IN ('{{', '[') "
        # orjson refuses more than 1024 levels of nesting; a text of 2048 characters has fewer.
        f"AND (length({column}) <= 2048 OR length({column}) - length(translate({column}, '[{{', '')) < 1000) "
        f"AND regexp_full_match({column}, {_sql_literal(_JSON_TOKENS)}) "
        f"AND NOT regexp_matches({column}, {_sql_literal(_JSON_LENIENT)}) "
        # Text that is not JSON at all fails the cast, which also sends the batch to the reference.
        f"THEN {column}::JSON "
        # The message names the value by its length only (no record content in logs); it must
        # depend on the row, or DuckDB would raise it while planning, for every batch.
        f"ELSE error({_sql_literal(_NEEDS_REFERENCE + ': a dynamic value of ')} || length({column}) || ' characters') END"
    )


# A timespan as the pipeline writes it (format_timespan: [-][d.]hh:mm:ss.ffffff0), days capped
# at 4 digits (27 years: below that the reference's float arithmetic is exact, see below).
_TIMESPAN = r"^(-?)(?:([0-9]{1,4})\.)?([0-9]{2}):([0-9]{2}):([0-9]{2})\.([0-9]{6})0$"


def _timespan_expr(column: str) -> str:
    """SQL storing the pipeline's text of a timespan as the reference path does: the reference
    parses it into a timedelta and hands DuckDB ``f"{round(td.total_seconds() * 1e6)}
    microseconds"``, the exact microsecond count for spans this short. The same count is
    computed here from the text's fields and cast from the same text; any other shape raises
    :data:`_NEEDS_REFERENCE`."""
    parts = f"regexp_extract({column}, {_sql_literal(_TIMESPAN)}, ['sign', 'd', 'h', 'm', 's', 'f'])"

    def part(name: str) -> str:
        return f"struct_extract({parts}, '{name}')"

    micros = (
        f"(coalesce(nullif({part('d')}, ''), '0')::BIGINT * 86400000000 + {part('h')}::BIGINT * 3600000000 "
        f"+ {part('m')}::BIGINT * 60000000 + {part('s')}::BIGINT * 1000000 + {part('f')}::BIGINT) "
        f"* (CASE WHEN {part('sign')} = '-' THEN -1 ELSE 1 END)"
    )
    return (
        f"CASE WHEN {column} IS NULL THEN NULL "
        f"WHEN regexp_full_match({column}, {_sql_literal(_TIMESPAN)}) "
        f"THEN CAST({micros} || ' microseconds' AS INTERVAL) "
        f"ELSE error({_sql_literal(_NEEDS_REFERENCE + ': a timespan of ')} || length({column}) || ' characters') END"
    )


def _direct_columns(table: Table) -> list[tuple[str, str]] | None:
    """How the direct load reads each column of a client-mapped payload: (``read_csv`` type,
    SQL expression of column ``c<i>``), or None when the table has a column it cannot take.

    The pipeline writes each value as the text of its converted value, so for these types the
    reference path (convert the text again, write ``duck_text``) hands DuckDB the same text:
    DuckDB may as well read the payload's. The payload writes null as an empty field (read as
    NULL here); an empty string is an empty field too, and the reference stores ''."""
    out: list[tuple[str, str]] = []
    for index, column in enumerate(table.columns):
        name = f"c{index}"
        if column.type == "string":
            out.append(("VARCHAR", f"coalesce({name}, '')"))
        elif column.type == "dynamic":
            out.append(("VARCHAR", _dynamic_expr(name)))
        elif column.type == "timespan":
            out.append(("VARCHAR", _timespan_expr(name)))
        elif column.type in _SAME_TEXT:
            out.append((TYPES[column.type].duckdb, name))
        else:  # a type this table does not know: the reference path says what it makes of it
            return None
    return out


_SAME_TEXT = frozenset({"int", "long", "real", "decimal", "bool", "datetime", "guid"})
"""Types whose payload text the reference path hands DuckDB unchanged."""
