"""The ``kafka-adx`` command line: validate, preview, ingest, kql, demo (and the commands other
modules register: replay, status, consume, produce)."""

from __future__ import annotations

import logging
import shutil
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import click
import orjson

from shared.cli_adx import replay, status
from shared.cli_common import config_option, config_or_exit, parse_headers, print_summary, settings_or_exit
from shared.cli_kafka import consume, produce
from shared.config import IngestionConfig, load_config
from shared.errors import ConfigError, KafkaAdxError
from shared.pipeline import Result
from shared.records import Record
from shared.settings import Settings


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="kafka-adx")
@click.option("--verbose", "-v", count=True, help="More log output (-v: info, -vv: debug).")
def main(verbose: int) -> None:
    """Ingest Kafka and Event Hubs records into Azure Data Explorer, or locally into DuckDB."""
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if verbose < 2:
        logging.getLogger("azure").setLevel(logging.WARNING)


@main.command()
@config_option
def validate(config_path: str | None) -> None:
    """Check the ingestion file; every error names the file and the field path."""
    path = config_path or str(settings_or_exit().ingestion_config)
    try:
        config = load_config(path)
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    click.echo(f"{path}: OK ({len(config.tables)} tables, {len(config.routes)} routes)")


@main.command()
@config_option
@click.option("--no-comments", is_flag=True, help="Commands only (as an ARM database script needs).")
def kql(config_path: str | None, no_comments: bool) -> None:
    """Print the KQL that creates the tables, mappings and ingestion policies."""
    from shared.kql import generate_kql

    click.echo(generate_kql(config_or_exit(config_path), comments=not no_comments), nl=False)


def _read(paths: tuple[str, ...], topic: str, fmt: str | None, skip_header: bool, max_bytes: int) -> Iterator[Record]:
    from shared.sources.files import read_records

    return read_records(list(paths) or ["-"], topic, fmt=fmt, skip_header=skip_header, max_record_bytes=max_bytes)


@main.command()
@config_option
@click.option("--topic", "-t", required=True, help="Topic (or event hub) the records come from.")
@click.option("--format", "fmt", default=None, help="How to split the input: csv/tsv/psv keep quoted line breaks.")
@click.option("--header", "headers", multiple=True, help="Kafka header NAME=VALUE to attach to every record.")
@click.option("--key", default=None, help="Kafka key to attach to every record.")
@click.option("--limit", default=20, show_default=True, help="Records to show.")
@click.option("--skip-header", is_flag=True, help="Skip the first line of each file.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per record.")
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False, allow_dash=True))
def preview(
    config_path: str | None,
    topic: str,
    fmt: str | None,
    headers: tuple[str, ...],
    key: str | None,
    limit: int,
    skip_header: bool,
    as_json: bool,
    files: tuple[str, ...],
) -> None:
    """Show the row(s) each record becomes, per table, or why it would be dead-lettered.

    Reads FILES (or standard input). Writes nothing.
    """
    from dataclasses import replace
    from itertools import islice

    from shared.preview import Previewer

    config = config_or_exit(config_path)
    extra = parse_headers(headers)
    records: Iterable[Record] = _read(files, topic, fmt, skip_header, config.limits.max_record_bytes)
    if extra or key is not None:
        records = (replace(r, headers=extra, key=None if key is None else key.encode()) for r in records)
    ok = bad = 0
    for item in Previewer(config).preview(islice(records, limit)):
        if item.error is None:
            ok += 1
        else:
            bad += 1
        if as_json:
            out: dict[str, Any] = {"record": item.record.where, "table": item.table}
            if item.error is not None:
                out["dead_letter"] = {"stage": item.error.stage, "field": item.error.field, "reason": item.error.reason}
            else:
                out["rows"] = item.rows
            click.echo(orjson.dumps(out, default=str).decode())
            continue
        if item.error is not None:
            field = f" [field {item.error.field}]" if item.error.field else ""
            click.echo(f"{item.record.where}: DEAD-LETTER ({item.error.stage}){field}: {item.error.reason}")
            continue
        for row in item.rows:
            click.echo(f"{item.record.where} -> {item.table}: {orjson.dumps(row, default=str).decode()}")
    click.echo(f"{ok} record(s) would be ingested, {bad} dead-lettered", err=True)


class _Progress:
    """A status line on standard error when it is a terminal; silent otherwise."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.enabled = sys.stderr.isatty()
        self.count = 0
        self.bytes = 0
        self.started = time.perf_counter()
        self._last = 0.0

    def wrap(self, records: Iterable[Record]) -> Iterator[Record]:
        for record in records:
            self.count += 1
            self.bytes += record.size
            if self.enabled and self.count % 1000 == 0:
                now = time.perf_counter()
                if now - self._last > 0.25:
                    self._last = now
                    rate = self.count / max(now - self.started, 1e-9)
                    sys.stderr.write(
                        f"\r{self.label}: {self.count:,} records, {self.bytes / 1e6:,.1f} MB, {rate:,.0f} rec/s"
                    )
                    sys.stderr.flush()
            yield record
        if self.enabled:
            sys.stderr.write("\r" + " " * 79 + "\r")


def run_ingest(
    settings: Settings,
    config: IngestionConfig,
    files: list[str],
    topic: str,
    *,
    fmt: str | None = None,
    skip_header: bool = False,
) -> tuple[Result, int]:
    """Ingest files through the full pipeline; returns the result and the bytes read."""
    from shared.runtime import build_pipeline
    from shared.sources.files import read_records

    pipeline = build_pipeline(settings, config)
    progress = _Progress(f"ingest {topic}")
    try:
        records = read_records(
            files, topic, fmt=fmt, skip_header=skip_header, max_record_bytes=config.limits.max_record_bytes
        )
        result = pipeline.process(progress.wrap(records))
    finally:
        pipeline.close()
    return result, progress.bytes


@main.command()
@config_option
@click.option("--topic", "-t", required=True, help="Topic the records belong to (selects the route).")
@click.option("--format", "fmt", default=None, help="How to split files: csv/tsv/psv keep quoted line breaks.")
@click.option("--skip-header", is_flag=True, help="Skip the first line of each file.")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, allow_dash=True))
def ingest(config_path: str | None, topic: str, fmt: str | None, skip_header: bool, files: tuple[str, ...]) -> None:
    """Run FILES (JSON lines, CSV, raw lines; .gz accepted) through the full pipeline.

    Into the local DuckDB by default, into ADX when ADX_INGEST_URI is set. Exit code 1 when a
    record was dead-lettered, 2 on an error.
    """
    settings = settings_or_exit()
    config = config_or_exit(config_path)
    try:
        result, raw_bytes = run_ingest(settings, config, list(files), topic, fmt=fmt, skip_header=skip_header)
    except KafkaAdxError as exc:
        raise click.ClickException(str(exc)) from None
    print_summary(result, raw_bytes, label=topic)
    target = settings.local_db if settings.local_mode else settings.adx_ingest_uri
    click.echo(f"  sink: {target}")
    if result.dead_lettered:
        where = settings.deadletter_blob_uri or settings.local_deadletter_dir
        click.echo(f"  dead letters: {where}")
        sys.exit(1)


@main.command()
@config_option
@click.option("--records", "count", default=20_000, show_default=True, help="Storm events to generate.")
@click.option("--dir", "directory", default=".local/demo", show_default=True, type=click.Path(file_okay=False))
def demo(config_path: str | None, count: int, directory: str) -> None:
    """Generate storm events (CSV and JSON, with a few poison records), ingest them into a fresh
    local DuckDB, and show what landed."""
    from shared.sample import write_sample
    from shared.sinks.local import DuckDbSink

    config = config_or_exit(config_path)
    root = Path(directory)
    if root.exists():
        shutil.rmtree(root)
    csv_path, json_path = write_sample(root / "data", count, poison_every=500)
    click.echo(f"generated {count:,} storm events (+ poison records) as {csv_path} and {json_path}")
    settings = Settings(local_db=root / "kafka-adx.duckdb", local_deadletter_dir=root / "deadletter")
    for topic, path in (("storm-events", csv_path), ("storm-events-csv", csv_path), ("storm-events-json", json_path)):
        result, raw_bytes = run_ingest(settings, config, [str(path)], topic)
        print_summary(result, raw_bytes, label=f"{topic} <- {path.name}")
    click.echo(f"dead letters: {settings.local_deadletter_dir}")
    sink = DuckDbSink(config, settings.local_db)
    try:
        rows = sink.query(
            'SELECT "State", "EventType", count(*) AS events, sum("DamageProperty") AS damage '
            'FROM "Weather"."StormEvents" WHERE "KafkaTopic" = \'storm-events-json\' '
            "GROUP BY ALL ORDER BY events DESC, \"State\", \"EventType\" LIMIT 10"
        )
        click.echo("\nevents per state and type (StormEvents, from JSON), top 10:")
        click.echo(f"  {'State':<14} {'EventType':<18} {'events':>6} {'damage':>12}")
        for state, event_type, events, damage in rows:
            click.echo(f"  {state:<14} {event_type:<18} {events:>6} {damage or 0:>12,}")
        storms = sink.query('SELECT count(*) FROM "Weather"."Storms"')[0][0]
        click.echo(f"\nStorms (classic tutorial table): {storms:,} rows")
    finally:
        sink.close()
    click.echo(
        "query it yourself: python -c \"import duckdb; print(duckdb.connect('"
        f"{settings.local_db}', read_only=True).sql('FROM Weather.Storms LIMIT 5'))\""
    )


# Commands that live in their own modules.
main.add_command(replay)
main.add_command(status)
main.add_command(consume)
main.add_command(produce)


if __name__ == "__main__":
    main()
