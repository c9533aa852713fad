"""KQL that creates what the ingestion file needs in ADX: tables, mappings and policies.

Output is deterministic (the infra's database script is generated from it and a test checks it
is current). Names are safe by construction: the config restricts them to ``[A-Za-z0-9_.-]``;
they are still bracket-quoted, and mapping JSON goes into verbatim string literals with quotes
doubled.

Ownership: the script creates and alters only what the file owns. A table marked
``external: true`` and a mapping a route names with ``mapping_ref: external`` live in the
cluster; the script only says so in a comment. Mappings the file owns are *created*, never
replaced: ``.create table T ingestion K mapping`` fails when T already has a mapping of that name
(ADX has no "if not exists" for mappings), so a deploy cannot silently replace a mapping someone
else uses (a Kafka Connect sink's). ``alter_mappings=True`` writes ``.create-or-alter`` instead.
:func:`plan_kql` reads the cluster first (with :mod:`shared.ops.doctor`'s reading and comparison)
and marks every command create / alter / no change, leaving out mappings that already match and
refusing to replace one that differs unless ``alter_mappings``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

import orjson

from shared.config import IngestionConfig, Mapping, Table

if TYPE_CHECKING:
    from shared.ops.doctor import TableSchema

#: Extent tags of dedup batches start with this (``ingest-by:kafka-adx-<batch id>``).
DEDUP_TAG_PREFIX = "ingest-by:kafka-adx-"


def _name(name: str) -> str:
    return f"['{name}']"


def _verbatim(text: str) -> str:
    return "@'" + text.replace("'", "''") + "'"


def mapping_json(mapping: Mapping) -> str:
    """A mapping in ADX's JSON syntax (``[{"column":..,"Properties":{..}}]``)."""
    entries = []
    for entry in mapping.columns:
        props = entry.properties
        out: dict[str, str] = {}
        if props.path is not None:
            out["Path"] = props.path
        if props.ordinal is not None:
            out["Ordinal"] = str(props.ordinal)
        if props.const_value is not None:
            out["ConstValue"] = props.const_value
        if props.transform is not None:
            out["Transform"] = props.transform
        entries.append({"column": entry.column, "Properties": out})
    return orjson.dumps(entries).decode()


def _timespan_literal(text: str) -> str:
    """``d.hh:mm:ss`` as the short KQL timespan literal (``3d``, ``6h``, ``90m``) that ADX's
    command properties take (``with (lookback=6h)``)."""
    days, _, clock = text.rpartition(".")
    hours, minutes, seconds = (int(part) for part in clock.split(":"))
    total = ((int(days or 0) * 24 + hours) * 60 + minutes) * 60 + seconds
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if total and total % size == 0:
            return f"{total // size}{unit}"
    return f"{total}s"


def dedup_view_commands(table_name: str, table: Table) -> list[str]:
    """The comment and commands of a table's dedup materialized view (none without one).

    ``take_any(*)``, not ``arg_max(ingestion_time(), *)``: copies of one record are identical,
    so any copy will do, and take_any is the aggregation ADX recommends for deduplication (the
    cheapest to materialize). The script runs on every deploy, so it uses ``.create-or-alter``
    with only properties ADX accepts on an existing view: ``backfill`` is refused once the view
    exists (and needs ``.create async``), so a table that already holds data is backfilled once
    by hand (the comment says how). ``autoUpdateSchema``: without it, a column added to the
    table by ``.create-merge`` would disable the view."""
    view = table.dedup_view_name(table_name)
    if view is None or table.dedup_view is None:
        return []
    spec = table.dedup_view
    key = ", ".join(_name(column) for column in table.dedup_key)
    query = f"{_name(table_name)} | summarize take_any(*) by {key}"
    props = ["autoUpdateSchema=true"]
    if spec.lookback is not None:
        props.insert(0, f"lookback={_timespan_literal(spec.lookback)}")
    lookback = (
        f"only against records ingested within the last {spec.lookback} (lookback)"
        if spec.lookback is not None
        else "against every record already in the view (no lookback: the costliest choice)"
    )
    retention = orjson.dumps({"SoftDeletePeriod": spec.retention, "Recoverability": "Enabled"}).decode()
    return [
        f"// {view}: exactly-once results for {table_name}, one row per source position ({', '.join(table.dedup_key)}).\n"
        f"// Query {view} instead of {table_name} to see each Kafka record once, however often transport delivered it.\n"
        f"// Cost: ADX materializes the view in the background (cluster CPU) and stores a second copy of the\n"
        f"// table's data (bounded by the view's retention below); each new record is compared {lookback}.\n"
        f"// A table that already holds data: create the view once with\n"
        f"//   .create async materialized-view with (backfill=true, {', '.join(props)}) {_name(view)} "
        f"on table {_name(table_name)} {{ {query} }}\n"
        f"// before this script runs (backfill is refused on an existing view).",
        f".create-or-alter materialized-view with ({', '.join(props)}) {_name(view)} on table {_name(table_name)} "
        f"{{ {query} }}",
        f".alter materialized-view {_name(view)} policy retention {_verbatim(retention)}",
    ]


MappingVerb = Literal[".create", ".create-or-alter"]


@dataclass(frozen=True)
class Paragraph:
    """One paragraph of the script: a comment, or a command and what it touches."""

    text: str
    """The KQL (or the ``//`` comment)."""
    kind: Literal["comment", "table", "mapping", "policy", "view"]
    """What the paragraph is: a comment or the object the command creates or sets."""
    table: str | None = None
    """The table the command is about."""
    name: str | None = None
    """The mapping's name (``mapping`` commands)."""
    status: str | None = None
    """Set by :func:`plan_kql`: ``create``, ``alter: <difference>``, ``no change``, ``set``, or
    ``refused: <why>`` (the command is then left out)."""

    @property
    def is_comment(self) -> bool:
        """Whether the paragraph is a comment (left out of an ARM database script)."""
        return self.kind == "comment"


def mapping_command(table_name: str, mapping_name: str, mapping: Mapping, verb: MappingVerb = ".create") -> str:
    """The command that creates (``.create``: fails when the mapping exists) or creates or
    replaces (``.create-or-alter``) one mapping."""
    return (
        f"{verb} table {_name(table_name)} ingestion {mapping.kind} mapping "
        f"'{mapping_name}' {_verbatim(mapping_json(mapping))}"
    )


def paragraphs(config: IngestionConfig, *, alter_mappings: bool = False) -> list[Paragraph]:
    """The script as paragraphs, in order (see the module docstring for what it owns)."""
    streaming_tables: set[str] = set()
    dedup_tables: set[str] = set()
    for route in config.routes:
        for name in [route.table, *(t.table for t in route.header_routing)]:
            if route.ingestion == "streaming":
                streaming_tables.add(name)
            if route.dedup:
                dedup_tables.add(name)
    external_mappings = config.external_mappings()
    verb: MappingVerb = ".create-or-alter" if alter_mappings else ".create"

    out: list[Paragraph] = [Paragraph(
        "// Generated by `kafka-adx kql` from the ingestion file. Do not edit: regenerate.\n"
        + ("// Mappings are created or replaced (--alter-mappings)."
           if alter_mappings else
           "// Mappings are created, never replaced: `.create ... mapping` fails when the table already has a\n"
           "// mapping of that name. `kafka-adx kql --diff` shows what the cluster has; --alter-mappings replaces."),
        "comment")]
    for table_name in sorted(config.tables):
        table = config.tables[table_name]
        if table.external:
            out.append(Paragraph(
                f"// table {table_name} is external (it lives in the cluster): not created or altered here", "comment",
                table_name))
        else:
            columns = ", ".join(f"{_name(c.name)}:{c.type}" for c in table.columns)
            out.append(Paragraph(f".create-merge table {_name(table_name)} ({columns})", "table", table_name))
        for mapping_name in sorted(table.mappings):
            mapping = table.mappings[mapping_name]
            if mapping.uses_metadata:
                out.append(Paragraph(
                    f"// mapping {mapping_name} reads record metadata: applied by kafka-adx (client side), "
                    "not created in ADX", "comment", table_name, mapping_name))
                continue
            out.append(Paragraph(mapping_command(table_name, mapping_name, mapping, verb), "mapping", table_name,
                                 mapping_name))
        for mapping_name in sorted(external_mappings.get(table_name, ())):
            out.append(Paragraph(
                f"// mapping {mapping_name} is external (mapping_ref: external): the cluster's, used by name, "
                "not created or altered here", "comment", table_name, mapping_name))
        if table.external:
            continue
        batching = orjson.dumps(
            {
                "MaximumBatchingTimeSpan": table.batching_max_delay,
                "MaximumNumberOfItems": table.batching_max_items,
                "MaximumRawDataSizeMB": table.batching_max_raw_size_mb,
            }
        ).decode()
        out.append(Paragraph(f".alter table {_name(table_name)} policy ingestionbatching {_verbatim(batching)}",
                             "policy", table_name))
        if table_name in streaming_tables:
            out.append(Paragraph(f".alter table {_name(table_name)} policy streamingingestion enable", "policy",
                                 table_name))
        if table_name in dedup_tables:
            retention = orjson.dumps([{"TagPrefix": DEDUP_TAG_PREFIX, "RetentionPeriod": "3.00:00:00"}]).decode()
            out.append(Paragraph(
                f".alter table {_name(table_name)} policy extent_tags_retention {_verbatim(retention)}", "policy",
                table_name))
        for text in dedup_view_commands(table_name, table):
            out.append(Paragraph(text, "comment" if text.startswith("//") else "view", table_name))
    return out


def render(items: list[Paragraph], *, comments: bool = True) -> str:
    """The paragraphs as a script: blank-line separated; a planned command is preceded by its
    status as a comment paragraph, and a refused or unchanged mapping becomes that comment alone."""
    texts: list[str] = []
    for item in items:
        if item.is_comment:
            if comments:
                texts.append(item.text)
            continue
        if item.status is None:
            texts.append(item.text)
            continue
        left_out = item.status.startswith(("refused", "no change")) and item.kind == "mapping"
        note = f"// {item.status}" + (" (left out)" if left_out else "")
        if left_out:
            if comments:
                texts.append(note)
            continue
        # The status is a paragraph of its own: a paragraph is one command (as Kusto's tools run
        # them, and as the stand-in and an ARM script split them).
        texts.extend([note, item.text] if comments else [item.text])
    return "\n\n".join(texts) + "\n"


Part = Literal["all", "schema", "mappings"]


def generate_kql(
    config: IngestionConfig, *, comments: bool = True, alter_mappings: bool = False, only: Part = "all"
) -> str:
    """The commands, one per paragraph, to run in the database (in order), without reading the
    cluster: mappings as ``.create`` (``.create-or-alter`` with ``alter_mappings``).

    ``comments=False`` leaves out the comment paragraphs: an ARM database script (infra) may
    hold management commands only. ``only="schema"`` is every command but the mappings,
    ``only="mappings"`` the mappings alone (run after the schema): a deployment can run the
    mappings as a script of their own that goes on past a mapping that already exists (ARM's
    ``continueOnErrors``), which gives "create when missing, never replace" without also
    ignoring the failures of the table commands.
    """
    items = paragraphs(config, alter_mappings=alter_mappings)
    if only != "all":
        keep_mappings = only == "mappings"
        # The generated-by header stays; the other comments go with the part they describe.
        items = [items[0], *(i for i in items[1:] if (i.kind == "mapping" or (i.is_comment and i.name is not None))
                             == keep_mappings)]
    return render(items, comments=comments)


Runner = Callable[[str, str], list[dict[str, Any]]]
"""``run(database, command) -> rows`` (as :data:`shared.ops.doctor.Runner`)."""


@dataclass
class KqlPlan:
    """What applying the file would change in the cluster, per database: the annotated
    paragraphs, and the mappings refused because they differ in the cluster."""

    databases: dict[str, list[Paragraph]] = field(default_factory=dict)
    """Database -> its script's paragraphs, each command with its status."""
    refused: list[str] = field(default_factory=list)
    """One line per mapping left out because the cluster's differs (``db.T: ...``)."""
    missing_external: list[str] = field(default_factory=list)
    """One line per external table or mapping the cluster does not have (ingestion would fail)."""

    def render(self, *, comments: bool = True) -> str:
        """The script of every database; with more than one, each under a ``// database`` line."""
        if len(self.databases) == 1:
            return render(next(iter(self.databases.values())), comments=comments)
        parts = [f"// database {db}\n\n" + render(items, comments=comments) for db, items in self.databases.items()]
        return "\n".join(parts)


def plan_kql(config: IngestionConfig, run: Runner, *, alter_mappings: bool = False) -> KqlPlan:
    """Read the cluster (``.show tables``, ``cslschema``, ``ingestion mappings``, as ``doctor``
    does) and mark each command of each database's script: ``create`` (absent), ``alter: ...``
    (the difference doctor finds), ``no change``, ``set`` (a policy or view: not read back). A
    mapping that matches is left out (``.create`` would fail on it); one that differs is
    ``refused`` (left out) unless ``alter_mappings``, then written as ``.create-or-alter``.
    Raises the runner's errors when the cluster cannot be read."""
    from shared.ops.doctor import compare_table, expected_schema, read_cluster

    plan = KqlPlan()
    base = paragraphs(config, alter_mappings=False)
    for database, tables in expected_schema(config).items():
        cluster = read_cluster(run, database, tables)
        have_tables: dict[str, TableSchema] = cluster or {}
        findings = {name: compare_table(database, name, want, have_tables[name])
                    for name, want in tables.items() if name in have_tables}
        items: list[Paragraph] = []
        for item in base:
            if item.table is not None and item.table not in tables:
                continue
            if item.is_comment:
                items.append(item)
                if item.name is None and item.table is not None and config.tables[item.table].external \
                        and item.table not in have_tables:
                    plan.missing_external.append(f"{database}.{item.table}: external table missing in the cluster")
                elif item.name is not None and item.table is not None and item.table in have_tables \
                        and config.is_external_mapping(item.table, item.name) \
                        and item.name not in have_tables[item.table].mappings:
                    plan.missing_external.append(
                        f"{database}.{item.table}: external mapping {item.name} missing in the cluster")
                continue
            assert item.table is not None  # every command names its table
            exists = item.table in have_tables
            table_findings = findings.get(item.table, [])
            status: str
            if not exists:
                status = "create" if item.kind in ("table", "mapping") else "set (on the new table)"
            elif item.kind == "table":
                columns = [f.text for f in table_findings
                           if f.kind in ("missing-column", "column-type", "extra-column", "column-order")]
                status = "alter: " + "; ".join(columns) if columns else "no change"
            elif item.kind == "mapping":
                status = _mapping_status(database, item, table_findings, alter_mappings, plan)
                if status.startswith("alter") and item.name is not None:
                    mapping = config.tables[item.table].mappings[item.name]
                    item = replace(item, text=mapping_command(item.table, item.name, mapping, ".create-or-alter"))
            else:
                status = "set (policies and views are not compared with the cluster)"
            items.append(replace(item, status=status))
        plan.databases[database] = items
    return plan


def _mapping_status(database: str, item: Paragraph, findings: list[Any], alter_mappings: bool, plan: KqlPlan) -> str:
    """The status of one owned mapping's command, from the table's findings (doctor's)."""
    for finding in findings:
        if finding.subject != item.name:
            continue
        if finding.kind == "missing-mapping":
            return "create"
        if finding.kind == "mapping-differs":
            if alter_mappings:
                return f"alter: {finding.text}"
            plan.refused.append(finding.line())
            return (f"refused: {finding.text}; kafka-adx kql --alter-mappings replaces it (first make sure nothing "
                    "else, e.g. a Kafka Connect sink, uses it)")
    return "no change"
