"""Drift between the ingestion file and an ADX cluster: what ``kafka-adx kql`` would create
(tables, columns and their types, server-side mappings) compared with what the cluster has.

The cluster is read with three management commands ADX documents, run on the engine:

* ``.show tables`` (columns ``TableName, DatabaseName, Folder, DocString``);
* ``.show table T cslschema`` (``TableName, Schema, DatabaseName, Folder, DocString``; the
  schema as ``name:type,name:type``, odd names bracket-quoted ``['a-b']:string``);
* ``.show table T ingestion mappings`` (``Name, Kind, Mapping, LastUpdatedOn, Database, Table``;
  ``Mapping`` is the mapping's JSON text).

:func:`expected_schema` is the file's side, :func:`read_cluster` the cluster's, :func:`drift`
compares them into :class:`Finding`\\ s (one line each). The command runner is a plain callable
so that the comparison does not depend on the SDK (``doctor`` and ``preflight`` pass one that
goes through :meth:`shared.sinks.adx.clients.AdxClients.management`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from shared.config import IngestionConfig, Mapping
from shared.ops.kql import mapping_json

Runner = Callable[[str, str], list[dict[str, Any]]]
"""``run(database, command) -> rows`` of the command's primary table, as dicts."""

# ADX spells some types differently in schemas (and in older clusters' CLR names); normalise
# both sides to the names the ingestion file uses.
_TYPE_NAMES = {
    "int32": "int", "system.int32": "int", "int64": "long", "system.int64": "long", "double": "real",
    "system.double": "real", "float": "real", "boolean": "bool", "system.boolean": "bool",
    "system.string": "string", "date": "datetime", "system.datetime": "datetime", "time": "timespan",
    "system.timespan": "timespan", "uniqueid": "guid", "uuid": "guid", "system.guid": "guid",
    "system.object": "dynamic", "system.data.sqltypes.sqldecimal": "decimal",
}  # fmt: skip


def normalise_type(name: str) -> str:
    """An ADX type name as the ingestion file spells it (``int64`` -> ``long``)."""
    lowered = name.strip().lower()
    return _TYPE_NAMES.get(lowered, lowered)


def quote_name(name: str) -> str:
    """A table or mapping name for a management command (bracket-quoted: the config restricts
    names to ``[A-Za-z0-9_.-]``, the quoting keeps ``-`` and ``.`` from being read as KQL)."""
    return "['" + name.replace("'", "\\'") + "']"


# --------------------------------------------------------------------------------------------
# Both sides in one shape
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MappingSpec:
    """A mapping reduced to what decides its behaviour: kind and, per entry, the column and its
    properties (keys as ADX spells them, values as strings)."""

    kind: str
    entries: tuple[tuple[str, tuple[tuple[str, str], ...]], ...]

    def describe(self) -> str:
        """Compact text for a finding: ``json [id<-Path=$.id, ...]``."""
        parts = [f"{col}<-" + ",".join(f"{k}={v}" for k, v in props) for col, props in self.entries]
        return f"{self.kind} [{'; '.join(parts)}]"


@dataclass
class TableSchema:
    """A table: ordered columns (name, type) and mappings by name."""

    columns: list[tuple[str, str]] = field(default_factory=list)
    mappings: dict[str, MappingSpec] = field(default_factory=dict)
    external: bool = False
    """The file's side only: the table is ``external`` (its columns are not compared)."""
    external_mappings: set[str] = field(default_factory=set)
    """The file's side only: mappings routes use by name (``mapping_ref: external``), which
    the cluster must have whatever their content."""


_PROPERTY_KEYS = {"path": "Path", "ordinal": "Ordinal", "constvalue": "ConstValue", "transform": "Transform"}


def spec_from_entries(kind: str, entries: Iterable[Any]) -> MappingSpec:
    """Normalise mapping entries in ADX's JSON syntax: ``{"column", "Properties": {...}}`` (what
    ``kql`` creates; ADX may add an empty ``datatype``) or the legacy flat form
    ``{"Name"/"Column", "Path"/"Ordinal"/"ConstValue", "DataType"}``."""
    out: list[tuple[str, tuple[tuple[str, str], ...]]] = []
    for entry in entries:
        if not isinstance(entry, dict):
            out.append((str(entry), ()))
            continue
        lowered = {str(k).lower(): v for k, v in entry.items()}
        column = str(lowered.get("column") or lowered.get("name") or "")
        props_raw = lowered.get("properties")
        source = props_raw if isinstance(props_raw, dict) else lowered
        props: list[tuple[str, str]] = []
        for key, value in source.items():
            canonical = _PROPERTY_KEYS.get(str(key).lower())
            if canonical is None or value is None or value == "":
                continue
            props.append((canonical, str(value)))
        out.append((column, tuple(sorted(props))))
    return MappingSpec(kind.strip().lower(), tuple(out))


def spec_of(mapping: Mapping) -> MappingSpec:
    """The file's mapping as ``kafka-adx kql`` sends it to ADX."""
    return spec_from_entries(mapping.kind, json.loads(mapping_json(mapping)))


def expected_schema(config: IngestionConfig) -> dict[str, dict[str, TableSchema]]:
    """What ``kafka-adx kql`` creates, per database and table: every table of the file in every
    database a route (or a header-routing target) sends it to, and its server-side mappings
    (mappings that read record metadata are applied by kafka-adx and not created in ADX)."""
    databases: dict[str, set[str]] = {}
    for route in config.routes:
        base = route.database or config.database
        databases.setdefault(base, set()).add(route.table)
        for target in route.header_routing:
            databases.setdefault(target.database or base, set()).add(target.table)
    # Tables no route names still belong to the file's default database (kql creates them).
    databases.setdefault(config.database, set()).update(config.tables)
    external = config.external_mappings()
    out: dict[str, dict[str, TableSchema]] = {}
    for database, names in sorted(databases.items()):
        for name in sorted(names):
            table = config.tables[name]
            out.setdefault(database, {})[name] = TableSchema(
                columns=[(c.name, c.type) for c in table.columns],
                mappings={m: spec_of(mp) for m, mp in sorted(table.mappings.items()) if not mp.uses_metadata},
                external=table.external,
                external_mappings=external.get(name, set()),
            )
    return out


# --------------------------------------------------------------------------------------------
# The cluster's side
# --------------------------------------------------------------------------------------------


def parse_cslschema(schema: str) -> list[tuple[str, str]]:
    """``a:long,['b-c']:string`` -> ``[("a", "long"), ("b-c", "string")]``."""
    columns: list[tuple[str, str]] = []
    for match in re.finditer(r"\s*(?:\[\s*(['\"])(.*?)\1\s*\]|([^:,\s]+))\s*:\s*([^,]+?)\s*(?:,|$)", schema):
        name = match.group(2) if match.group(2) is not None else match.group(3)
        columns.append((name, normalise_type(match.group(4))))
    return columns


def show_tables(run: Runner, database: str) -> set[str]:
    """Names of the database's tables (``.show tables``)."""
    return {str(row["TableName"]) for row in run(database, ".show tables")}


def show_columns(run: Runner, database: str, table: str) -> list[tuple[str, str]]:
    """The table's columns in order (``.show table T cslschema``)."""
    rows = run(database, f".show table {quote_name(table)} cslschema")
    return parse_cslschema(str(rows[0]["Schema"])) if rows else []


def show_mappings(run: Runner, database: str, table: str) -> dict[str, MappingSpec]:
    """The table's ingestion mappings by name (``.show table T ingestion mappings``)."""
    out: dict[str, MappingSpec] = {}
    for row in run(database, f".show table {quote_name(table)} ingestion mappings"):
        text = row.get("Mapping") or "[]"
        try:
            entries = json.loads(text) if isinstance(text, str) else text
        except ValueError:
            entries = [text]
        out[str(row["Name"])] = spec_from_entries(str(row.get("Kind") or ""), entries if isinstance(entries, list) else [])
    return out


def read_cluster(run: Runner, database: str, tables: Iterable[str]) -> dict[str, TableSchema] | None:
    """The cluster's side of ``tables`` (only those that exist), or None when the database does
    not exist (ADX answers ``.show tables`` with an EntityNotFound error)."""
    try:
        existing = show_tables(run, database)
    except Exception as exc:
        if _is_missing_entity(exc):
            return None
        raise
    out: dict[str, TableSchema] = {}
    for name in tables:
        if name in existing:
            out[name] = TableSchema(show_columns(run, database, name), show_mappings(run, database, name))
    return out


def _is_missing_entity(exc: BaseException) -> bool:
    """Whether an SDK error says "database/table not found" (ADX's EntityNotFound codes)."""
    from azure.kusto.data.exceptions import KustoApiError

    if isinstance(exc, KustoApiError):
        return "NotFound" in (exc.get_api_error().code or "")
    return False


# --------------------------------------------------------------------------------------------
# The comparison
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """One difference between the file and the cluster."""

    kind: str
    """missing-database, missing-table, missing-column, column-type, extra-column, column-order,
    missing-mapping or mapping-differs."""
    database: str
    table: str | None
    text: str
    subject: str | None = None
    """The column or mapping the finding is about (None for a database or table)."""

    def line(self) -> str:
        """The finding as one line: ``db.Table: text``."""
        where = f"{self.database}.{self.table}" if self.table else self.database
        return f"{where}: {self.text}"


def compare_table(database: str, name: str, want: TableSchema, have: TableSchema) -> list[Finding]:
    """Findings of one table that exists on both sides."""
    findings: list[Finding] = []

    def add(kind: str, text: str, subject: str | None = None) -> None:
        findings.append(Finding(kind, database, name, text, subject))

    for mapping_name in sorted(want.external_mappings):
        if mapping_name not in have.mappings:
            add("missing-mapping", f"missing external mapping {mapping_name} (mapping_ref: external: the cluster "
                                   "must have it)", mapping_name)
    if want.external:  # the cluster owns an external table's columns: nothing else to compare
        return findings
    have_types = dict(have.columns)
    want_types = dict(want.columns)
    for column, adx_type in want.columns:
        if column not in have_types:
            add("missing-column", f"missing column {column} ({adx_type}) [kql: .create-merge table adds it]", column)
        elif normalise_type(have_types[column]) != adx_type:
            add("column-type", f"column {column} is {have_types[column]} in the cluster, {adx_type} in the file", column)
    for column, adx_type in have.columns:
        if column not in want_types:
            add("extra-column", f"column {column} ({adx_type}) is in the cluster, not in the file", column)
    # CSV rows of client-applied mappings fill columns by position: the shared columns must be
    # in the same order on both sides.
    shared_want = [c for c, _ in want.columns if c in have_types]
    shared_have = [c for c, _ in have.columns if c in want_types]
    if shared_want != shared_have:
        add("column-order", f"column order differs: cluster {', '.join(shared_have)}; file {', '.join(shared_want)}")
    for mapping_name, spec in want.mappings.items():
        found = have.mappings.get(mapping_name)
        if found is None:
            add("missing-mapping", f"missing {spec.kind} mapping {mapping_name}", mapping_name)
        elif found != spec:
            add("mapping-differs", f"{spec.kind} mapping {mapping_name} differs: cluster {found.describe()}; "
                                   f"file {spec.describe()}", mapping_name)
    return findings


def drift(config: IngestionConfig, run: Runner) -> list[Finding]:
    """Every difference between what ``kafka-adx kql`` would create and the cluster, in a stable
    order (database, table, then columns before mappings). Raises the runner's errors when
    the cluster cannot be read (unreachable, refused)."""
    findings: list[Finding] = []
    for database, tables in expected_schema(config).items():
        cluster = read_cluster(run, database, tables)
        if cluster is None:
            findings.append(Finding("missing-database", database, None, "database does not exist (or is not visible)"))
            continue
        for name, want in tables.items():
            have = cluster.get(name)
            if have is None:
                text = ("missing external table (the file does not create it: the cluster must have it)"
                        if want.external else f"missing table ({len(want.columns)} columns) [kql: .create-merge table]")
                findings.append(Finding("missing-table", database, name, text))
                continue
            findings.extend(compare_table(database, name, want, have))
    return findings
