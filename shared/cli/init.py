"""``kafka-adx init``: a table, its mapping and a route inferred from a schema (a registry subject,
an ``.avsc`` file or a JSON Schema file) or from sample records (JSON lines, or CSV with a
header), written into the ingestion file after printing what was inferred.

The new entries are validated with the rest of the file before anything is written; an
existing file is rewritten (YAML has no safe in-place edit) and its previous content kept as
``<file>.bak``, since comments do not survive the rewrite.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path
from typing import Any

import click
import orjson
import yaml

from shared.cli.common import CliError, config_option, echo, exit_codes_help, settings_or_exit
from shared.config import parse_config
from shared.errors import ConfigError, KafkaAdxError
from shared.formats import infer
from shared.formats.infer import Inferred

_JSON_SAMPLES = (".json", ".jsonl", ".ndjson")
_SCHEMA_FILES = (".avsc", ".json")


def _schema_columns(source: str, flatten: bool) -> tuple[list[Inferred], str, str, str]:
    """(columns, route format, default name, where the schema came from) of ``--from-schema``."""
    path = Path(source)
    if path.suffix.lower() in _SCHEMA_FILES and path.is_file():
        try:
            document = orjson.loads(path.read_bytes())
        except orjson.JSONDecodeError as exc:
            raise CliError(f"{path}: not JSON: {exc}") from None
        kind = "JSON" if isinstance(document, dict) and ("$schema" in document or "properties" in document) else "AVRO"
        where = str(path)
        default_name = path.stem
    else:
        from shared.formats.registry import ConfluentSource, UnknownSchema

        settings = settings_or_exit()
        if not settings.schema_registry_url:
            raise CliError(f"{source!r} is not an .avsc/.json file, and no SCHEMA_REGISTRY_URL is set to read it as a subject")
        password = settings.schema_registry_password.get_secret_value() if settings.schema_registry_password else None
        registry = ConfluentSource.connect(settings.schema_registry_url, username=settings.schema_registry_username,
                                           password=password, timeout=settings.schema_registry_timeout)  # fmt: skip
        try:
            found = registry.latest(source)
        except (KafkaAdxError, UnknownSchema) as exc:
            raise CliError(str(exc)) from None
        kind, document = found.kind, orjson.loads(found.text)
        where = f"subject {source} (schema id {found.schema_id}) of {registry.name}"
        default_name = source.removesuffix("-value")
    try:
        if kind == "AVRO":
            return infer.from_avro(document, flatten=flatten), "avro", default_name, where
        if kind == "JSON":
            return infer.from_json_schema(document, flatten=flatten), "jsonschema", default_name, where
    except ValueError as exc:
        raise CliError(f"{where}: {exc}") from None
    raise CliError(f"{where}: a {kind} schema; init reads Avro and JSON Schema")


def _sample_columns(path: Path, flatten: bool) -> tuple[list[Inferred], str, str]:
    """(columns, route format, where) of ``--from-sample``."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"{path}: cannot read the sample: {exc}") from None
    try:
        if path.suffix.lower() in _JSON_SAMPLES or text.lstrip().startswith("{"):
            columns, count = infer.from_json_lines(text.splitlines(), flatten=flatten)
            return columns, "json", f"{path} ({count} JSON record(s))"
        columns, count = infer.from_csv(text)
        return columns, "csv", f"{path} ({count} CSV record(s) after the header)"
    except (ValueError, csv.Error) as exc:
        raise CliError(f"{path}: {exc}") from None


def entries(columns: list[Inferred], fmt: str, table: str, topic: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The table (with its one mapping) and the route the ingestion file gets."""
    kind = "csv" if fmt == "csv" else "json"
    mapping = [
        {"column": c.name, "Properties": {"Ordinal": str(c.ordinal)} if c.ordinal is not None else {"Path": c.path}}
        for c in columns
    ]
    table_entry = {
        "columns": [{"name": c.name, "type": c.type} for c in columns],
        "mappings": {f"{table}_{fmt}": {"kind": kind, "columns": mapping}},
    }
    route = {"topic": topic, "table": table, "format": fmt, "mapping": f"{table}_{fmt}"}
    return table_entry, route


def merged(existing: dict[str, Any] | None, database: str, table: str, table_entry: dict[str, Any],
           route: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    """The ingestion file's data with the new table and route added (CliError if the table exists)."""
    data: dict[str, Any] = dict(existing) if existing else {"database": database, "tables": {}, "routes": []}
    tables = dict(data.get("tables") or {})
    if table in tables:
        raise CliError(f"table {table!r} is already in the ingestion file: pick another name with --table")
    tables[table] = table_entry
    data["tables"] = tables
    data["routes"] = [*(data.get("routes") or []), route]
    return data


def _print_inferred(columns: list[Inferred], where: str, table: str, route: dict[str, Any]) -> None:
    echo(f"inferred from {where}:")
    sources = [c.path if c.path is not None else f"field {c.ordinal}" for c in columns]
    width = max(len(c.name) for c in columns)
    kind_width = max(len(c.type) for c in columns)
    source_width = max(len(s) for s in sources)
    for c, source in zip(columns, sources, strict=True):
        click.echo(f"  {c.name:<{width}}  {c.type:<{kind_width}}  {source:<{source_width}}  ({c.why})")
    click.echo(f"table {table}, mapping {route['mapping']}, route topic {route['topic']!r} format {route['format']}")


@click.command(
    "init",
    epilog=exit_codes_help({0: "the entries were written (or printed with --dry-run)",
                            2: "nothing written: the schema or sample could not be read, or the result is invalid"}),
)  # fmt: skip
@config_option
@click.option("--from-schema", "schema_source", metavar="SUBJECT|FILE",
              help="A registry subject (its latest version, from SCHEMA_REGISTRY_URL) or an .avsc / JSON Schema file.")
@click.option("--from-sample", "sample", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Sample records: JSON lines (.json/.jsonl/.ndjson) or CSV with a header row.")
@click.option("--table", help="Table name (default: the subject without -value, or the file's name).")
@click.option("--topic", help="The route's topic (default: the subject without -value, or the table name).")
@click.option("--database", default="kafka", show_default=True, help="Database of a new ingestion file.")
@click.option("--flatten", is_flag=True, help="One column per nested field (a_b) instead of one dynamic column.")
@click.option("--dry-run", is_flag=True, help="Print what would be written; write nothing.")
def init(config_path: str | None, schema_source: str | None, sample: Path | None, table: str | None, topic: str | None,
         database: str, flatten: bool, dry_run: bool) -> None:  # fmt: skip
    """Infer a table, its mapping and a route from a schema or from sample records, and add them
    to the ingestion file."""
    if (schema_source is None) == (sample is None):
        raise click.UsageError("give exactly one of --from-schema and --from-sample")
    if schema_source is not None:
        columns, fmt, default_name, where = _schema_columns(schema_source, flatten)
    else:
        assert sample is not None
        columns, fmt, where = _sample_columns(sample, flatten)
        default_name = sample.stem
    table = table or infer.column_name(default_name)
    table_entry, route = entries(columns, fmt, table, topic or default_name)
    path = Path(config_path or settings_or_exit().ingestion_config)
    existing = None
    if path.exists():
        try:
            existing = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise CliError(f"{path}: cannot read the ingestion file: {exc}") from None
        if not isinstance(existing, dict):
            raise CliError(f"{path}: the ingestion file is not a mapping")
    data = merged(existing, database, table, table_entry, route)
    try:
        parse_config(data, str(path))
    except ConfigError as exc:
        raise CliError(f"the inferred entries do not make a valid ingestion file:\n{exc}") from None
    _print_inferred(columns, where, table, route)
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=120)
    if dry_run:
        click.echo(f"--dry-run: {path} would become:\n{text}")
        return
    if path.exists():
        shutil.copyfile(path, path.with_name(path.name + ".bak"))
        click.echo(f"{path} rewritten (its previous content, comments included, is in {path.name}.bak)")
    path.write_text(text, encoding="utf-8")
    click.echo(f"wrote {path}: check the types above, then `kafka-adx validate` and `kafka-adx kql`")
