"""The tables of an imported ingestion file (``kafka-adx import-connect``): read from the
cluster the connector wrote to, or declared as placeholders when no cluster can be read.

The cluster is read with :mod:`shared.ops.doctor`'s readers (``.show tables``, ``.show table T
cslschema``, ``.show table T ingestion mappings``), so columns and types come out as the
ingestion file spells them, and mappings in either of ADX's syntaxes: the current
``{"column", "Properties": {...}}`` and the legacy flat one the ADX Kafka tutorial still
creates (``{"Name": "StartTime", "datatype": "datetime", "Ordinal": 0}``). Both become the
ingestion file's syntax, ``{column, Properties: {Ordinal: "0"}}``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, get_args

from shared.config import Transform
from shared.ops.doctor import MappingSpec, Runner, TableSchema, read_cluster

if TYPE_CHECKING:
    from shared.ops.connect import Translation

PLACEHOLDER_COLUMN = "PlaceholderColumn"
"""The one column of a table that could not be read from the cluster."""

_TRANSFORMS = frozenset(get_args(Transform))


def mapping_from_spec(spec: MappingSpec) -> tuple[dict[str, Any] | None, str | None]:
    """An ADX mapping (as :func:`shared.ops.doctor.spec_from_entries` normalised it, from either
    syntax) in the ingestion file's syntax, or (None, why) when the file cannot express it."""
    if spec.kind not in ("csv", "json"):
        return None, f"a {spec.kind or 'kind-less'} mapping (the ingestion file has csv and json mappings)"
    columns: list[dict[str, Any]] = []
    for column, props in spec.entries:
        properties = dict(props)
        transform = properties.get("Transform")
        if transform is not None and transform not in _TRANSFORMS:
            return None, f"column {column}: transform {transform} (supported: {', '.join(sorted(_TRANSFORMS))})"
        if not column or not properties:
            return None, f"an entry without {'a column' if not column else 'a source'}"
        columns.append({"column": column, "Properties": properties})
    if not columns:
        return None, "no column entries"
    return {"kind": spec.kind, "columns": columns}, None


def _placeholder_table(fmt: str, mapping: str | None) -> dict[str, Any]:
    # One column, so the file validates; the mapping (when the route names one) reads it. The
    # route sends records unchanged and ADX applies the cluster's real mapping of that name.
    table: dict[str, Any] = {"columns": [{"name": PLACEHOLDER_COLUMN, "type": "string"}]}
    if mapping is not None:
        source = {"Ordinal": "0"} if fmt not in ("json", "multijson") else {"Path": f"$.{PLACEHOLDER_COLUMN}"}
        kind = "json" if fmt in ("json", "multijson") else "csv"
        table["mappings"] = {mapping: {"kind": kind, "columns": [{"column": PLACEHOLDER_COLUMN, "Properties": source}]}}
    return table


def declare_tables(out: Translation, run: Runner | None) -> None:
    """Fill ``out.ingestion["tables"]`` for the routes: from the cluster through ``run`` when
    given, else placeholders (and their routes are made to leave mapping to ADX unchecked)."""
    data = out.ingestion
    default_db = str(data["database"])
    wanted: dict[str, list[dict[str, Any]]] = {}
    for route in data["routes"]:
        wanted.setdefault(str(route.get("database", default_db)), []).append(route)
    tables: dict[str, dict[str, Any]] = data["tables"]
    placeholders: set[str] = set()
    cluster: dict[str, dict[str, TableSchema] | None] = {}
    if run is not None:
        out.cluster_read = True
        for database, routes in wanted.items():
            cluster[database] = read_cluster(run, database, sorted({str(r["table"]) for r in routes}))
    for database, routes in wanted.items():
        found = cluster.get(database)
        if run is not None and found is None:
            out.note(f"database {database}", "does not exist in the cluster (or is not visible): its tables are placeholders")
        for route in routes:
            name = str(route["table"])
            schema = found.get(name) if found is not None else None
            if schema is None:
                if run is not None and found is not None:
                    out.note(f"table {database}.{name}", "not in the cluster: declared as a placeholder")
                if name not in tables:
                    tables[name] = _placeholder_table(str(route["format"]), route.get("mapping"))
                    placeholders.add(name)
                elif route.get("mapping") and name in placeholders:
                    tables[name].setdefault("mappings", {}).update(
                        _placeholder_table(str(route["format"]), route["mapping"])["mappings"])
                continue
            table = tables.get(name)
            if table is None:
                table = tables[name] = {"columns": [{"name": c, "type": t} for c, t in schema.columns]}
            elif name in placeholders:
                continue
            mapping = route.get("mapping")
            if mapping is None or mapping in table.get("mappings", {}):
                continue
            spec = schema.mappings.get(mapping)
            if spec is None:
                out.note(f"mapping {database}.{name}.{mapping}", "not in the cluster: the route names no mapping "
                         "(CSV maps by position, JSON by column name), as ADX would fail every batch otherwise")
                del route["mapping"]
                route.pop("apply_mapping", None)
                continue
            converted, why = mapping_from_spec(spec)
            if converted is None:
                out.note(f"mapping {database}.{name}.{mapping}", f"not translated: {why}; the route names no mapping")
                del route["mapping"]
                route.pop("apply_mapping", None)
                continue
            table.setdefault("mappings", {})[mapping] = converted
    for route in data["routes"]:
        if route["table"] in placeholders:
            # The placeholder cannot check records: let ADX apply its own mapping, unchecked.
            route["validate"] = False
    for name in sorted(placeholders):
        out.note(f"tables.{name}", "a placeholder (one column " + PLACEHOLDER_COLUMN + "): its columns and mappings "
                 "stay in the cluster. Do not run kafka-adx kql on this file; run import-connect again with the "
                 "cluster's engine URI (--engine-uri or kusto.query.url) to fill them in")
