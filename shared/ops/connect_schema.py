"""The tables of an imported ingestion file (``kafka-adx import-connect``): read from the
cluster the connector wrote to, or references to what stays in the cluster (``external: true``
tables, routes with ``mapping_ref: external``) when no cluster can be read.

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


def _external(route: dict[str, Any]) -> None:
    # ADX applies the cluster's mapping by name, as it did for the sink; kafka-adx neither
    # creates nor alters it.
    if route.get("mapping"):
        route["mapping_ref"] = "external"
        route["apply_mapping"] = "server"


def declare_tables(out: Translation, run: Runner | None) -> None:
    """Fill ``out.ingestion["tables"]`` for the routes: from the cluster through ``run`` when
    given (columns, and the mappings the routes name in the ingestion file's syntax), else as
    references to what stays in the cluster (``external: true`` tables, ``mapping_ref:
    external`` routes)."""
    data = out.ingestion
    default_db = str(data["database"])
    wanted: dict[str, list[dict[str, Any]]] = {}
    for route in data["routes"]:
        wanted.setdefault(str(route.get("database", default_db)), []).append(route)
    tables: dict[str, dict[str, Any]] = data["tables"]
    cluster: dict[str, dict[str, TableSchema] | None] = {}
    if run is not None:
        out.cluster_read = True
        for database, routes in wanted.items():
            cluster[database] = read_cluster(run, database, sorted({str(r["table"]) for r in routes}))
    for database, routes in wanted.items():
        found = cluster.get(database)
        if run is not None and found is None:
            out.note(f"database {database}", "does not exist in the cluster (or is not visible): its tables are "
                                             "written as external references")  # fmt: skip
        for route in routes:
            name = str(route["table"])
            schema = found.get(name) if found is not None else None
            table = tables.get(name)
            if schema is None or (table is not None and table.get("external")):
                if run is not None and found is not None and schema is None:
                    out.note(f"table {database}.{name}", "not in the cluster: written as an external reference")
                # A table of the same name read from another database keeps its declaration.
                if table is None:
                    tables[name] = {"external": True}
                if tables[name].get("external") or route.get("mapping") not in tables[name].get("mappings", {}):
                    _external(route)
                continue
            if table is None:
                table = tables[name] = {"columns": [{"name": c, "type": t} for c, t in schema.columns]}
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
                out.note(f"mapping {database}.{name}.{mapping}", f"{why}: kept in the cluster (mapping_ref: external)")
                _external(route)
                continue
            table.setdefault("mappings", {})[mapping] = converted
    external = sorted(name for name, table in tables.items() if table.get("external"))
    for name in external:
        out.note(f"tables.{name}", "external (it stays in the cluster, with its mappings): kafka-adx kql leaves it "
                 "alone, preview cannot show its rows; run import-connect with the cluster's engine URI "
                 "(--engine-uri or kusto.query.url) to declare its columns and mappings in the file")
