"""An ADX ingest-endpoint stand-in and a storage fault proxy, on 127.0.0.1, for the ADX tests.

:class:`AdxStandIn` answers what the real azure-kusto SDK asks of a cluster (FACTS.md):

* ``POST /v1/rest/mgmt`` with ``.get ingestion resources`` (v1 JSON, one table: SAS URIs of two
  Azurite containers, the ready-for-aggregation queue, the failure and success queues and a
  status table) and ``.get kusto identity token`` (one ``AuthorizationContext`` column);
* ``POST /v1/rest/ingest/{db}/{table}?streamFormat=..&mappingName=..`` (gzip body): streaming
  ingestion, recorded in :attr:`AdxStandIn.streamed`;
* ``POST /v1/rest/mgmt`` with the schema commands ``kafka-adx kql`` writes and ``doctor`` /
  ``preflight`` read: ``.create-merge table``, ``.create-or-alter table T ingestion K mapping``,
  ``.create table T ingestion K mapping`` (refused when T has a mapping of that name, as ADX does),
  ``.alter table T policy ...``, ``.show tables``, ``.show table T cslschema``,
  ``.show table T ingestion [K] mappings``, against per-database tables a test configures
  (:meth:`AdxStandIn.apply_config` runs the generated KQL; :meth:`AdxStandIn.drop_table`,
  :meth:`~AdxStandIn.drop_column`, :meth:`~AdxStandIn.set_column_type` and
  :meth:`~AdxStandIn.set_mapping` make the cluster drift). An unknown database or table answers
  ADX's ``BadRequest_EntityNotFound``;
* ``POST /v1/rest/mgmt`` with what ``kafka-adx status`` reads: ``.show ingestion failures``
  (optionally ``| where FailedOn > ago(T)``; the rows a test adds with
  :meth:`AdxStandIn.add_ingestion_failure`, every column the command documents),
  ``.show table T details`` (row count and extent times) and ``.show table T extents`` (optionally
  ``| where MaxCreatedOn > ago(T)``): one extent per streaming request and per queued blob (the
  queue message's insertion time), as ADX creates one per ingestion;
* ``GET /v1/rest/auth/metadata``: 404, which the SDK reads as "public cloud";
* ``GET /msi/token``: the App Service managed-identity endpoint (``IDENTITY_ENDPOINT`` /
  ``IDENTITY_HEADER``), so the managed-identity code path runs offline.

Failure switches per endpoint (:class:`Faults`): throttle (429) N times, fail (500 with a
non-permanent error) N times, a permanent error, a hang (timeout), and for streaming a 404
(streaming disabled) or a body-size limit. Errors use ADX's JSON error shape
``{"error": {"code", "message", "@message", "@permanent"}}``.

:class:`FaultProxy` sits between the SDK and Azurite (the stand-in hands out SAS URIs that
point at it) and can answer chosen requests with an error status or drop the connection, so
tests can take storage down mid-batch and bring it back.
"""

from __future__ import annotations

import base64
import gzip
import http.client
import json
import re
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fixtures.azurite import HOST, Azurite

TOKEN = "standin-access-token"
AUTH_CONTEXT = "standin-authorization-context"


# --------------------------------------------------------------------------------------------
# Shared HTTP plumbing
# --------------------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: Any

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out and left is expected in fault tests: no traceback noise.
        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            return
        super().handle_error(request, client_address)


class _Base(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def _json(self, status: int, data: Any) -> None:
        self._send(status, json.dumps(data).encode(), {"Content-Type": "application/json"})


def _serve(handler: type[_Base], owner: Any) -> tuple[_Server, threading.Thread]:
    server = _Server((HOST, 0), handler)
    server.owner = owner
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    return server, thread


# --------------------------------------------------------------------------------------------
# ADX stand-in
# --------------------------------------------------------------------------------------------


@dataclass
class Faults:
    """Failure switches of one endpoint; counters count down as requests consume them."""

    throttle: int = 0
    """Answer the next N requests with 429."""
    fail: int = 0
    """Answer the next N requests with 500 and a non-permanent ADX error."""
    permanent: bool = False
    """Answer every request with 400 and a permanent ADX error until cleared."""
    permanent_code: str = "BadRequest_EntityNotFound"
    hang: float = 0.0
    """Sleep this long before answering (a timeout for a client with a shorter one)..."""
    hang_times: int = 0
    """...for the next N requests."""
    not_found: bool = False
    """Streaming only: answer 404, as a cluster without streaming ingestion does."""
    max_body: int | None = None
    """Streaming only: refuse gzip bodies larger than this (non-permanent error)."""

    def clear(self) -> None:
        """Back to healthy."""
        self.throttle = self.fail = self.hang_times = 0
        self.hang = 0.0
        self.permanent = self.not_found = False
        self.max_body = None


@dataclass
class Streamed:
    """One streaming-ingestion request the stand-in accepted."""

    database: str
    table: str
    stream_format: str
    mapping_name: str | None
    body: bytes
    """The decompressed body."""
    headers: dict[str, str]
    received_on: datetime = field(default_factory=lambda: datetime.now(UTC))
    """When the stand-in accepted it (the extent's creation time)."""

    @property
    def lines(self) -> list[bytes]:
        """The body's lines."""
        return [line for line in self.body.split(b"\n") if line]


@dataclass
class Seen:
    """One request the stand-in received (any endpoint), with how it answered."""

    method: str
    path: str
    status: int
    authorization: str | None
    detail: str = ""


def _adx_error(code: str, message: str, permanent: bool) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "@type": "Kusto.Common.Svc.Exceptions." + code,
                      "@message": message, "@permanent": permanent}}


def _v1(columns: list[tuple[str, str, str]], rows: list[list[Any]]) -> dict[str, Any]:
    return {
        "Tables": [
            {
                "TableName": "Table_0",
                "Columns": [{"ColumnName": n, "DataType": d, "ColumnType": c} for n, d, c in columns],
                "Rows": rows,
            }
        ]
    }


@dataclass
class StandInTable:
    """A table of the stand-in's schema: ordered columns and ingestion mappings."""

    columns: list[tuple[str, str]]
    """(name, type) in table order."""
    mappings: dict[str, tuple[str, str]] = field(default_factory=dict)
    """Mapping name -> (kind as ADX shows it, e.g. ``Json``; the mapping's JSON text)."""

    def cslschema(self) -> str:
        """``name:type,...`` as ``.show table T cslschema`` returns it (odd names quoted)."""
        return ",".join(f"{_csl_name(n)}:{t}" for n, t in self.columns)


_NAME = r"(?:\['(?P<{0}q>[^']+)'\]|(?P<{0}>[A-Za-z0-9_.\-]+))"


def _name_re(group: str) -> str:
    return _NAME.format(group)


def _group(match: re.Match[str], group: str) -> str:
    return match.group(f"{group}q") or match.group(group)


def _csl_name(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) else f"['{name}']"


def _stored_mapping(text: str) -> str:
    """The mapping JSON as the stand-in shows it: each entry with ``column``, ``datatype``
    (empty unless given) and ``Properties`` (ADX adds the empty datatype; unconfirmed beyond
    that, so doctor compares entries by meaning, not by text)."""
    entries = json.loads(text)
    out = []
    for entry in entries:
        out.append({"column": entry.get("column") or entry.get("Column") or entry.get("Name"),
                    "datatype": entry.get("datatype") or entry.get("DataType") or "",
                    "Properties": entry.get("Properties") or entry.get("properties") or {}})
    return json.dumps(out, separators=(",", ":"))


def _ago(match: re.Match[str]) -> datetime | None:
    """The time of a matched ``| where Column > ago(N<unit>)``, or None without one."""
    if not match.group("n"):
        return None
    unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[match.group("unit")]
    return datetime.now(UTC) - timedelta(**{unit: int(match.group("n"))})


class _MgmtError(Exception):
    def __init__(self, status: int, code: str, message: str, permanent: bool = True) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.permanent = status, code, message, permanent


class AdxStandIn:
    """The stand-in server. Use as a context manager or call :meth:`close`."""

    def __init__(
        self,
        azurite: Azurite,
        prefix: str,
        *,
        blob_endpoint: str | None = None,
        queue_endpoint: str | None = None,
        require_token: bool = False,
    ) -> None:
        self.azurite = azurite
        self.prefix = prefix
        self.containers = [f"{prefix}-tmp-a", f"{prefix}-tmp-b"]
        self.ready_queue = f"{prefix}-ready"
        self.failed_queue = f"{prefix}-failed"
        self.success_queue = f"{prefix}-success"
        for name in self.containers:
            azurite.create_container(name)
        for name in (self.ready_queue, self.failed_queue, self.success_queue):
            azurite.create_queue(name)
        self.blob_endpoint = blob_endpoint or azurite.blob_endpoint
        self.queue_endpoint = queue_endpoint or azurite.queue_endpoint
        self.require_token = require_token
        self.mgmt = Faults()
        self.ingest = Faults()
        self.token = Faults()
        self.streamed: list[Streamed] = []
        self.seen: list[Seen] = []
        self.token_requests: list[dict[str, str]] = []
        self.databases: dict[str, dict[str, StandInTable]] = {}
        """The schema: database -> table name -> table (empty until a test configures it)."""
        self.views: dict[str, dict[str, str]] = {}
        """Materialized views: database -> view name -> source table."""
        self.ingestion_failures: list[dict[str, Any]] = []
        """Rows of ``.show ingestion failures`` (:meth:`add_ingestion_failure`)."""
        self.schema_forbidden = False
        """Answer schema commands (``.show``, ``.create``, ``.alter``) with 403, as ADX does for a
        principal with the Ingestor role only."""
        self._lock = threading.Lock()
        self._server, self._thread = _serve(_AdxHandler, self)

    # -- schema ------------------------------------------------------------------------------

    def apply_kql(self, kql: str, database: str) -> None:
        """Run management commands (paragraphs, ``//`` comments skipped) in ``database``,
        creating the database: what running ``kafka-adx kql`` output in it does."""
        with self._lock:
            self.databases.setdefault(database, {})
        for command in kql.split("\n\n"):
            command = command.strip()
            if command and not command.startswith("//"):
                self.run_mgmt(database, command)

    def apply_config(self, config: Any, database: str | None = None) -> None:
        """Create what ``kafka-adx kql --alter-mappings`` creates for an ingestion file (in its
        database): the file's state, also on a stand-in that already has it (tests apply the
        same file more than once; plain ``.create`` of a mapping would fail the second time)."""
        from shared.ops.kql import generate_kql

        self.apply_kql(generate_kql(config, comments=False, alter_mappings=True), database or config.database)

    def table(self, database: str, table: str) -> StandInTable:
        """A configured table (KeyError if none)."""
        return self.databases[database][table]

    def drop_table(self, database: str, table: str) -> None:
        """Remove a table (drift: a missing table)."""
        with self._lock:
            del self.databases[database][table]

    def drop_column(self, database: str, table: str, column: str) -> None:
        """Remove a column (drift: a missing column)."""
        with self._lock:
            t = self.databases[database][table]
            t.columns = [(n, ty) for n, ty in t.columns if n != column]

    def set_column_type(self, database: str, table: str, column: str, adx_type: str) -> None:
        """Change a column's type (drift: a type difference)."""
        with self._lock:
            t = self.databases[database][table]
            t.columns = [(n, adx_type if n == column else ty) for n, ty in t.columns]

    def set_mapping(self, database: str, table: str, name: str, kind: str, entries: list[dict[str, Any]] | None) -> None:
        """Replace (or, with None, remove) a mapping (drift: a mapping that differs or is missing)."""
        with self._lock:
            t = self.databases[database][table]
            if entries is None:
                t.mappings.pop(name, None)
            else:
                t.mappings[name] = (kind.capitalize(), _stored_mapping(json.dumps(entries)))

    def run_mgmt(self, database: str, csl: str) -> dict[str, Any]:
        """Answer one schema command (v1 JSON body), or raise ``_MgmtError``."""
        with self._lock:
            return self._schema_command(database, csl)

    def _tables(self, database: str) -> dict[str, StandInTable]:
        tables = self.databases.get(database)
        if tables is None:
            raise _MgmtError(400, "BadRequest_EntityNotFound", f"Entity ID '{database}' of kind 'Database' was not found.")
        return tables

    def _existing(self, database: str, name: str) -> StandInTable:
        table = self._tables(database).get(name)
        if table is None:
            raise _MgmtError(400, "BadRequest_EntityNotFound", f"Entity ID '{name}' of kind 'Table' was not found.")
        return table

    def _schema_command(self, database: str, csl: str) -> dict[str, Any]:
        # Mapping JSON keeps its spaces (a ConstValue may hold some): only other commands are collapsed.
        verbatim = csl.startswith(".create-or-alter") or re.match(r"\.create table \S+ ingestion ", csl)
        text = csl.strip() if verbatim else " ".join(csl.split())
        monitoring = self._monitoring_command(database, text)
        if monitoring is not None:
            return monitoring
        if text == ".show tables":
            rows = [[name, database, "", ""] for name in sorted(self._tables(database))]
            return _v1([("TableName", "String", "string"), ("DatabaseName", "String", "string"),
                        ("Folder", "String", "string"), ("DocString", "String", "string")], rows)
        m = re.fullmatch(rf"\.show table {_name_re('t')} cslschema", text)
        if m:
            name = _group(m, "t")
            table = self._existing(database, name)
            return _v1([("TableName", "String", "string"), ("Schema", "String", "string"),
                        ("DatabaseName", "String", "string"), ("Folder", "String", "string"),
                        ("DocString", "String", "string")], [[name, table.cslschema(), database, "", ""]])
        m = re.fullmatch(rf"\.show table {_name_re('t')} ingestion(?: (?P<kind>\w+))? mappings", text)
        if m:
            name = _group(m, "t")
            table = self._existing(database, name)
            kind = (m.group("kind") or "").lower()
            rows = [[mname, mkind, mtext, "2024-05-01T12:00:00Z", database, name]
                    for mname, (mkind, mtext) in sorted(table.mappings.items()) if not kind or mkind.lower() == kind]
            return _v1([("Name", "String", "string"), ("Kind", "String", "string"), ("Mapping", "String", "string"),
                        ("LastUpdatedOn", "DateTime", "datetime"), ("Database", "String", "string"),
                        ("Table", "String", "string")], rows)
        m = re.fullmatch(rf"\.create-merge table {_name_re('t')} \((?P<cols>.*)\)", text)
        if m:
            name = _group(m, "t")
            tables = self.databases.setdefault(database, {})
            columns = [(_group(c, "c"), c.group("type").lower())
                       for c in re.finditer(rf"{_name_re('c')}\s*:\s*(?P<type>\w+)", m.group("cols"))]
            table = tables.get(name)
            if table is None:
                table = tables[name] = StandInTable(columns)
            else:  # create-merge adds missing columns at the end and never changes existing ones
                known = {n for n, _ in table.columns}
                table.columns += [(n, t) for n, t in columns if n not in known]
            return _v1([("TableName", "String", "string"), ("Schema", "String", "string"),
                        ("DatabaseName", "String", "string"), ("Folder", "String", "string"),
                        ("DocString", "String", "string")], [[name, table.cslschema(), database, "", ""]])
        m = re.fullmatch(rf"(?P<verb>\.create-or-alter|\.create) table {_name_re('t')} ingestion (?P<kind>\w+) mapping "
                         r"(?P<q>['\"])(?P<m>[^'\"]+)(?P=q) @'(?P<json>.*)'", text, re.DOTALL)
        if m:
            table = self._existing(database, _group(m, "t"))
            if m.group("verb") == ".create" and m.group("m") in table.mappings:
                # ADX: ".create fails when a mapping of that name exists" (its error code here is
                # this stand-in's guess, in ADX's EntityAlreadyExists family).
                raise _MgmtError(400, "BadRequest_EntityAlreadyExists",
                                 f"Entity ID '{m.group('m')}' of kind 'IngestionMapping' already exists.")
            stored = _stored_mapping(m.group("json").replace("''", "'"))
            table.mappings[m.group("m")] = (m.group("kind").capitalize(), stored)
            return _v1([("Name", "String", "string"), ("Kind", "String", "string"), ("Mapping", "String", "string")],
                       [[m.group("m"), m.group("kind").capitalize(), stored]])
        m = re.fullmatch(rf"\.create(?:-or-alter| async| ifnotexists)? materialized-view (?:with \([^)]*\) )?"
                         rf"{_name_re('v')} on table {_name_re('t')} \{{.*\}}", text, re.DOTALL)
        if m:
            self._existing(database, _group(m, "t"))
            self.views.setdefault(database, {})[_group(m, "v")] = _group(m, "t")
            return _v1([("Name", "String", "string"), ("SourceTable", "String", "string")],
                       [[_group(m, "v"), _group(m, "t")]])
        m = re.fullmatch(rf"\.alter materialized-view {_name_re('v')} policy .*", text, re.DOTALL)
        if m:
            if _group(m, "v") not in self.views.get(database, {}):
                raise _MgmtError(400, "BadRequest_EntityNotFound",
                                 f"Entity ID '{_group(m, 'v')}' of kind 'MaterializedView' was not found.")
            return _v1([("PolicyName", "String", "string")], [[text.split(" policy ", 1)[1].split(" ", 1)[0]]])
        m = re.fullmatch(rf"\.alter table {_name_re('t')} policy .*", text, re.DOTALL)
        if m:
            self._existing(database, _group(m, "t"))
            return _v1([("PolicyName", "String", "string")], [[text.split(" policy ", 1)[1].split(" ", 1)[0]]])
        raise _MgmtError(400, "General_BadRequest", f"stand-in does not serve {csl!r}")

    # -- what `kafka-adx status` reads ------------------------------------------------------

    def add_ingestion_failure(self, **columns: Any) -> dict[str, Any]:
        """Record a row of ``.show ingestion failures`` (the documented columns; a test gives
        those it cares about, the others get plausible values)."""
        row = {
            "OperationId": str(uuid.uuid4()), "Database": "", "Table": "",
            "FailedOn": datetime.now(UTC).isoformat(), "IngestionSourcePath": "", "Details": "",
            "FailureKind": "Permanent", "RootActivityId": str(uuid.uuid4()), "OperationKind": "DataIngestPull",
            "OriginatesFromUpdatePolicy": False, "ErrorCode": "", "Principal": "aadapp=standin", "User": "",
            "IngestionProperties": "", "NumberOfSources": 1, "ShouldRetry": False,
        } | columns
        with self._lock:
            self.ingestion_failures.append(row)
        return row

    def extents(self, database: str, table: str) -> list[tuple[datetime, int]]:
        """(creation time, rows) of each ingestion into a table: streaming requests and queued
        blobs (the queue message's insertion time), oldest first."""
        out = [(item.received_on, len(item.lines)) for item in self.streamed
               if (item.database, item.table) == (database, table)]
        from azure.storage.queue import QueueClient

        client = QueueClient.from_connection_string(self.azurite.connection_string, self.ready_queue)
        for message in client.peek_messages(max_messages=32):
            data = json.loads(base64.b64decode(message.content))
            if (data.get("DatabaseName"), data.get("TableName")) == (database, table):
                lines = [line for line in gzip.decompress(self.blob_bytes(data["BlobPath"])).split(b"\n") if line]
                out.append((message.inserted_on, len(lines)))
        return sorted(out)

    def _monitoring_command(self, database: str, text: str) -> dict[str, Any] | None:
        """``.show ingestion failures``, ``.show table T details`` and ``.show table T extents``
        (see the module docstring), or None for another command."""
        ago = r"(?: \| where (?P<col>FailedOn|MaxCreatedOn) > ago\((?P<n>\d+)(?P<unit>[smhd])\))?"
        m = re.fullmatch(rf"\.show ingestion failures{ago}", text)
        if m:
            since = _ago(m)
            columns = [("OperationId", "String", "string"), ("Database", "String", "string"),
                       ("Table", "String", "string"), ("FailedOn", "DateTime", "datetime"),
                       ("IngestionSourcePath", "String", "string"), ("Details", "String", "string"),
                       ("FailureKind", "String", "string"), ("RootActivityId", "String", "string"),
                       ("OperationKind", "String", "string"), ("OriginatesFromUpdatePolicy", "Boolean", "bool"),
                       ("ErrorCode", "String", "string"), ("Principal", "String", "string"),
                       ("User", "String", "string"), ("IngestionProperties", "String", "string"),
                       ("NumberOfSources", "Int32", "int"), ("ShouldRetry", "Boolean", "bool")]
            rows = [[row[name] for name, _, _ in columns] for row in self.ingestion_failures
                    if since is None or datetime.fromisoformat(row["FailedOn"]) > since]
            return _v1(columns, rows)
        m = re.fullmatch(rf"\.show table {_name_re('t')} details", text)
        if m:
            name = _group(m, "t")
            self._existing(database, name)
            extents = self.extents(database, name)
            times = [when.isoformat() for when, _ in extents]
            columns = [("TableName", "String", "string"), ("DatabaseName", "String", "string"),
                       ("Folder", "String", "string"), ("DocString", "String", "string"),
                       ("TotalExtents", "Int64", "long"), ("TotalExtentSize", "Double", "real"),
                       ("TotalOriginalSize", "Double", "real"), ("TotalRowCount", "Int64", "long"),
                       ("HotExtents", "Int64", "long"), ("HotExtentSize", "Double", "real"),
                       ("HotOriginalSize", "Double", "real"), ("HotRowCount", "Int64", "long"),
                       ("MinExtentsCreationTime", "DateTime", "datetime"),
                       ("MaxExtentsCreationTime", "DateTime", "datetime")]
            rows = sum(n for _, n in extents)
            return _v1(columns, [[name, database, "", "", len(extents), 0.0, 0.0, rows, len(extents), 0.0, 0.0,
                                  rows, min(times, default=None), max(times, default=None)]])
        m = re.fullmatch(rf"\.show table {_name_re('t')} extents{ago}", text)
        if m:
            name = _group(m, "t")
            self._existing(database, name)
            since = _ago(m)
            columns = [("ExtentId", "Guid", "guid"), ("DatabaseName", "String", "string"),
                       ("TableName", "String", "string"), ("MaxCreatedOn", "DateTime", "datetime"),
                       ("OriginalSize", "Double", "real"), ("ExtentSize", "Double", "real"),
                       ("RowCount", "Int64", "long"), ("MinCreatedOn", "DateTime", "datetime"),
                       ("Tags", "String", "string")]
            return _v1(columns, [[str(uuid.uuid4()), database, name, when.isoformat(), 0.0, 0.0, n, when.isoformat(), ""]
                                 for when, n in self.extents(database, name) if since is None or when > since])
        return None

    @property
    def url(self) -> str:
        """Base URL (the ingest URI and the engine URI alike)."""
        return f"http://{HOST}:{self._server.server_address[1]}"

    @property
    def msi_endpoint(self) -> str:
        """Value for ``IDENTITY_ENDPOINT``."""
        return f"{self.url}/msi/token"

    def resources(self) -> list[list[str]]:
        """Rows of ``.get ingestion resources``: all five kinds, two temp containers."""
        az = self.azurite
        rows = [["TempStorage", az.container_sas_uri(c, endpoint=self.blob_endpoint)] for c in self.containers]
        rows += [
            ["SecuredReadyForAggregationQueue", az.queue_sas_uri(self.ready_queue, endpoint=self.queue_endpoint)],
            ["FailedIngestionsQueue", az.queue_sas_uri(self.failed_queue, endpoint=self.queue_endpoint)],
            ["SuccessfulIngestionsQueue", az.queue_sas_uri(self.success_queue, endpoint=self.queue_endpoint)],
            ["IngestionsStatusTable", f"http://{HOST}:{az.queue_port}/{az.account}/{self.prefix}status"],
        ]
        return rows

    def count(self, path_part: str, status: int | None = None) -> int:
        """How many requests had ``path_part`` in their path (and that status, if given)."""
        with self._lock:
            return sum(1 for s in self.seen if path_part in s.path and (status is None or s.status == status))

    # -- what landed in Azurite ------------------------------------------------------------

    def queued_messages(self) -> list[dict[str, Any]]:
        """The ingestion messages in the ready queue, decoded (base64 JSON), oldest first."""
        from azure.storage.queue import QueueClient

        client = QueueClient.from_connection_string(self.azurite.connection_string, self.ready_queue)
        out = []
        for message in client.peek_messages(max_messages=32):
            out.append(json.loads(base64.b64decode(message.content)))
        return out

    def blob_bytes(self, blob_url: str) -> bytes:
        """The raw bytes of a blob named in an ingestion message (read with the dev key)."""
        path = urlsplit(blob_url).path.split("/")
        container, name = path[2], "/".join(path[3:])
        return bytes(self.azurite.blob_service().get_blob_client(container, name).download_blob().readall())

    def blobs(self) -> dict[str, bytes]:
        """Every blob in the two temp containers: ``container/name`` -> raw bytes."""
        service = self.azurite.blob_service()
        out: dict[str, bytes] = {}
        for container in self.containers:
            client = service.get_container_client(container)
            for blob in client.list_blobs():
                out[f"{container}/{blob.name}"] = bytes(client.download_blob(blob.name).readall())
        return out

    def ingested_lines(self) -> list[bytes]:
        """All lines ADX would ingest from the queued messages (blobs un-gzipped)."""
        lines: list[bytes] = []
        for message in self.queued_messages():
            data = gzip.decompress(self.blob_bytes(message["BlobPath"]))
            lines += [line for line in data.split(b"\n") if line]
        return lines

    def post_failure(self, report: dict[str, Any]) -> None:
        """Put an ingestion failure report on the failure queue, as ADX's data manager does."""
        from azure.storage.queue import QueueClient, TextBase64EncodePolicy

        client = QueueClient.from_connection_string(
            self.azurite.connection_string, self.failed_queue, message_encode_policy=TextBase64EncodePolicy()
        )
        client.send_message(json.dumps(report))

    def close(self) -> None:
        """Stop the server."""
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> AdxStandIn:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _AdxHandler(_Base):
    @property
    def standin(self) -> AdxStandIn:
        return self.server.owner  # type: ignore[no-any-return]

    def _record(self, status: int, detail: str = "") -> None:
        with self.standin._lock:
            self.standin.seen.append(
                Seen(self.command, self.path, status, self.headers.get("Authorization"), detail)
            )

    def _fault(self, faults: Faults) -> bool:
        """Apply the switches; True when a fault answered the request."""
        with self.standin._lock:
            hang = 0.0
            if faults.hang_times > 0:
                faults.hang_times -= 1
                hang = faults.hang
            throttle = faults.throttle > 0
            if throttle:
                faults.throttle -= 1
            fail = not throttle and faults.fail > 0
            if fail:
                faults.fail -= 1
            permanent = faults.permanent
        if hang:
            time.sleep(hang)
        if throttle:
            self._record(429)
            self._json(429, _adx_error("General_ThrottledRequest", "The request was throttled", False))
            return True
        if fail:
            self._record(500)
            self._json(500, _adx_error("Internal_ServiceError", "injected internal error", False))
            return True
        if permanent:
            self._record(400)
            self._json(400, _adx_error(faults.permanent_code, "injected permanent error", True))
            return True
        return False

    def _authorized(self) -> bool:
        if not self.standin.require_token:
            return True
        if self.headers.get("Authorization") == f"Bearer {TOKEN}":
            return True
        self._record(401)
        self._json(401, _adx_error("Unauthorized", "missing or wrong bearer token", True))
        return False

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path == "/v1/rest/auth/metadata":
            self._record(404)
            self._send(404)
            return
        if url.path == "/msi/token":
            self._msi_token(parse_qs(url.query))
            return
        self._record(404)
        self._send(404)

    def _msi_token(self, query: dict[str, list[str]]) -> None:
        st = self.standin
        with st._lock:
            st.token_requests.append({k: v[0] for k, v in query.items()} | {
                "header": self.headers.get("X-IDENTITY-HEADER") or ""})
        if self._fault(st.token):
            return
        if not self.headers.get("X-IDENTITY-HEADER"):
            self._record(401)
            self._json(401, {"error": "missing X-IDENTITY-HEADER"})
            return
        self._record(200, "token")
        resource = (query.get("resource") or [""])[0]
        self._json(200, {"access_token": TOKEN, "expires_on": str(int(time.time()) + 3600),
                         "resource": resource, "token_type": "Bearer"})

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        body = self._body()
        if url.path == "/v1/rest/mgmt":
            self._mgmt(body)
        elif url.path.startswith("/v1/rest/ingest/"):
            self._stream(url.path, parse_qs(url.query), body)
        else:
            self._record(404)
            self._send(404)

    def _mgmt(self, body: bytes) -> None:
        st = self.standin
        if not self._authorized() or self._fault(st.mgmt):
            return
        request = json.loads(body or b"{}")
        csl = request.get("csl", "").strip()
        if csl.startswith((".show", ".create", ".alter")):
            if st.schema_forbidden:
                self._record(403, csl)
                self._json(403, _adx_error("Forbidden", "Principal 'aadapp=standin' is not authorized to perform "
                                           f"operation {csl.split()[0]!r} on database {request.get('db')!r}.", True))
                return
            try:
                answer = st.run_mgmt(request.get("db") or "NetDefaultDB", csl)
            except _MgmtError as exc:
                self._record(exc.status, csl)
                self._json(exc.status, _adx_error(exc.code, exc.message, exc.permanent))
                return
            self._record(200, csl)
            self._json(200, answer)
            return
        if csl == ".get ingestion resources":
            self._record(200, csl)
            self._json(200, _v1([("ResourceTypeName", "String", "string"), ("StorageRoot", "String", "string")],
                                st.resources()))
        elif csl == ".get kusto identity token":
            self._record(200, csl)
            self._json(200, _v1([("AuthorizationContext", "String", "string")], [[AUTH_CONTEXT]]))
        else:
            self._record(400, csl)
            self._json(400, _adx_error("General_BadRequest", f"stand-in does not serve {csl!r}", True))

    def _stream(self, path: str, query: dict[str, list[str]], body: bytes) -> None:
        st = self.standin
        if not self._authorized():
            return
        if st.ingest.not_found:
            self._record(404)
            self._send(404)
            return
        if self._fault(st.ingest):
            return
        if st.ingest.max_body is not None and len(body) > st.ingest.max_body:
            self._record(413)
            self._json(413, _adx_error("BadRequest_StreamingIngestionRequestTooLarge", "request too large", False))
            return
        _, _, _, _, database, table = path.split("/", 5)
        data = gzip.decompress(body) if self.headers.get("Content-Encoding") == "gzip" else body
        with st._lock:
            st.streamed.append(
                Streamed(database, table, (query.get("streamFormat") or [""])[0],
                         (query.get("mappingName") or [None])[0], data, dict(self.headers.items()))
            )
        self._record(200, f"{database}.{table}")
        rows = [[len([line for line in data.split(b"\n") if line])]]
        self._json(200, _v1([("ConsumedRecordsCount", "Int64", "long")], rows))


# --------------------------------------------------------------------------------------------
# Storage fault proxy
# --------------------------------------------------------------------------------------------


@dataclass
class StorageFault:
    """A rule: requests whose path contains ``path_part`` (and method, if given) fail."""

    path_part: str
    status: int = 503
    """HTTP status to answer with; 0 drops the connection without an answer."""
    times: int | None = None
    """How many requests to fail; None = until removed."""
    method: str | None = None
    code: str = "ServerBusy"
    after: int = 0
    """Let this many matching requests through first (storage going down mid-batch)."""

    def matches(self, method: str, path: str) -> bool:
        return self.path_part in path and (self.method is None or self.method == method)


@dataclass
class Forwarded:
    """One request through the proxy and its answer (``failed`` when a rule answered)."""

    method: str
    path: str
    status: int
    failed: bool
    body_size: int


@dataclass
class _ProxyState:
    upstream_port: int
    rules: list[StorageFault] = field(default_factory=list)
    log: list[Forwarded] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class FaultProxy:
    """HTTP proxy to one Azurite service port that fails requests matching its rules."""

    def __init__(self, upstream_port: int, account: str = "devstoreaccount1") -> None:
        self.state = _ProxyState(upstream_port)
        self.account = account
        self._server, self._thread = _serve(_ProxyHandler, self.state)

    @property
    def endpoint(self) -> str:
        """Service URL through the proxy (path-style account)."""
        return f"http://{HOST}:{self._server.server_address[1]}/{self.account}"

    def fail(
        self, path_part: str, status: int = 503, *, times: int | None = None, method: str | None = None, after: int = 0
    ) -> StorageFault:
        """Add a rule; returns it (pass it to :meth:`heal` to remove just that one)."""
        rule = StorageFault(path_part, status, times, method, after=after)
        with self.state.lock:
            self.state.rules.append(rule)
        return rule

    def heal(self, rule: StorageFault | None = None) -> None:
        """Remove one rule, or all."""
        with self.state.lock:
            if rule is None:
                self.state.rules.clear()
            elif rule in self.state.rules:
                self.state.rules.remove(rule)

    def requests(self, path_part: str = "", *, failed: bool | None = None) -> list[Forwarded]:
        """Requests seen whose path contains ``path_part`` (filtered by whether a rule failed them)."""
        with self.state.lock:
            return [f for f in self.state.log if path_part in f.path and (failed is None or f.failed == failed)]

    def close(self) -> None:
        """Stop the proxy."""
        self._server.shutdown()
        self._server.server_close()


class _ProxyHandler(_Base):
    def _handle(self) -> None:
        state: _ProxyState = self.server.owner
        body = self._body()
        rule = None
        with state.lock:
            for candidate in state.rules:
                if candidate.matches(self.command, self.path):
                    if candidate.after > 0:
                        candidate.after -= 1
                        break
                    rule = candidate
                    if candidate.times is not None:
                        candidate.times -= 1
                        if candidate.times <= 0:
                            state.rules.remove(candidate)
                    break
        if rule is not None:
            with state.lock:
                state.log.append(Forwarded(self.command, self.path, rule.status, True, len(body)))
            if rule.status == 0:
                self.close_connection = True
                self.connection.close()
                return
            xml = (f'<?xml version="1.0" encoding="utf-8"?><Error><Code>{rule.code}</Code>'
                   f"<Message>injected by the fault proxy</Message></Error>").encode()
            self._send(rule.status, xml, {"Content-Type": "application/xml", "x-ms-error-code": rule.code,
                                          "x-ms-request-id": str(uuid.uuid4())})
            return
        conn = http.client.HTTPConnection(HOST, state.upstream_port, timeout=30)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in {"host", "connection"}}
            headers["Host"] = f"{HOST}:{state.upstream_port}"
            conn.request(self.command, self.path, body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
            skip = {"transfer-encoding", "connection", "date", "server"}
            if self.command != "HEAD":
                skip.add("content-length")
            out_headers = {k: v for k, v in response.getheaders() if k.lower() not in skip}
        finally:
            conn.close()
        with state.lock:
            state.log.append(Forwarded(self.command, self.path, response.status, False, len(body)))
        self._send(response.status, data, out_headers)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if self.command != "HEAD":
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)


def iter_gzip_lines(data: bytes) -> Iterator[bytes]:
    """Lines of a gzip blob."""
    yield from (line for line in gzip.decompress(data).split(b"\n") if line)

