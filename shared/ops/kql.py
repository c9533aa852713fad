"""KQL that creates what the ingestion file needs in ADX: tables, mappings and policies.

Output is deterministic (the infra's database script is generated from it and a test checks it
is current). Names are safe by construction: the config restricts them to ``[A-Za-z0-9_.-]``;
they are still bracket-quoted, and mapping JSON goes into verbatim string literals with quotes
doubled.
"""

from __future__ import annotations

import orjson

from shared.config import IngestionConfig, Mapping, Table

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


def generate_kql(config: IngestionConfig, *, comments: bool = True) -> str:
    """The commands, one per paragraph, to run in the database (in order).

    ``comments=False`` leaves out the comment paragraphs: an ARM database script (infra) may
    hold management commands only.
    """
    streaming_tables: set[str] = set()
    dedup_tables: set[str] = set()
    for route in config.routes:
        for name in [route.table, *(t.table for t in route.header_routing)]:
            if route.ingestion == "streaming":
                streaming_tables.add(name)
            if route.dedup:
                dedup_tables.add(name)

    commands: list[str] = [
        "// Generated by `kafka-adx kql` from the ingestion file. Do not edit: regenerate."
    ]
    for table_name in sorted(config.tables):
        table = config.tables[table_name]
        columns = ", ".join(f"{_name(c.name)}:{c.type}" for c in table.columns)
        commands.append(f".create-merge table {_name(table_name)} ({columns})")
        for mapping_name in sorted(table.mappings):
            mapping = table.mappings[mapping_name]
            if mapping.uses_metadata:
                commands.append(
                    f"// mapping {mapping_name} reads record metadata: applied by kafka-adx (client side), "
                    "not created in ADX"
                )
                continue
            commands.append(
                f".create-or-alter table {_name(table_name)} ingestion {mapping.kind} mapping "
                f"'{mapping_name}' {_verbatim(mapping_json(mapping))}"
            )
        batching = orjson.dumps(
            {
                "MaximumBatchingTimeSpan": table.batching_max_delay,
                "MaximumNumberOfItems": table.batching_max_items,
                "MaximumRawDataSizeMB": table.batching_max_raw_size_mb,
            }
        ).decode()
        commands.append(f".alter table {_name(table_name)} policy ingestionbatching {_verbatim(batching)}")
        if table_name in streaming_tables:
            commands.append(f".alter table {_name(table_name)} policy streamingingestion enable")
        if table_name in dedup_tables:
            retention = orjson.dumps([{"TagPrefix": DEDUP_TAG_PREFIX, "RetentionPeriod": "3.00:00:00"}]).decode()
            commands.append(f".alter table {_name(table_name)} policy extent_tags_retention {_verbatim(retention)}")
        commands.extend(dedup_view_commands(table_name, table))
    if not comments:
        commands = [c for c in commands if not c.startswith("//")]
    return "\n\n".join(commands) + "\n"
