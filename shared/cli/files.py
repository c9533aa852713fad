"""The commands over input files: ``validate`` (the ingestion file), ``preview`` (what records
would become, nothing written) and ``ingest`` (records through the full pipeline into DuckDB or
ADX), and :func:`run_ingest`, which ``demo`` uses too."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import click
import orjson

from shared.cli.common import (
    EXIT_INTERRUPTED,
    EXIT_PARTIAL,
    CliError,
    Progress,
    StopOnSignal,
    config_option,
    config_or_exit,
    echo,
    exit_codes_help,
    fail,
    input_size,
    parse_headers,
    preflight_or_exit,
    print_summary,
    settings_or_exit,
)
from shared.config import IngestionConfig, load_config
from shared.errors import ConfigError, InputError, InputStopped, Interrupted, KafkaAdxError
from shared.pipeline.core import Result
from shared.pipeline.records import Record
from shared.settings import Settings


@click.command(epilog=exit_codes_help({0: "the file is valid", 1: "the file has errors (listed)",
                                      2: "a setting in the environment is invalid"}))
@config_option
def validate(config_path: str | None) -> None:
    """Check the ingestion file; every error names the file and the field path."""
    path = config_path or str(settings_or_exit().ingestion_config)
    try:
        config = load_config(path)
    except ConfigError as exc:
        from shared.ops.connect import describe_connect_file

        # A Connect sink configuration is a common thing to hand this command while migrating:
        # say what it is and which command reads it, rather than listing missing fields.
        what = describe_connect_file(path)
        if what is not None:
            fail(f"{path}: {what}, not an ingestion file: `kafka-adx import-connect {path}` translates it "
                 "into one (and into settings)", EXIT_PARTIAL)
        # The file is what this command checks: its errors are findings (1), not a failure to run.
        fail(str(exc), EXIT_PARTIAL)
    click.echo(f"{path}: OK ({len(config.tables)} tables, {len(config.routes)} routes)")


def _read(paths: tuple[str, ...], topic: str, fmt: str | None, skip_header: bool, max_bytes: int) -> Iterator[Record]:
    from shared.sources.files import read_records

    return read_records(list(paths) or ["-"], topic, fmt=fmt, skip_header=skip_header, max_record_bytes=max_bytes)


@click.command(epilog=exit_codes_help({
    0: "every record shown (dead-letter reasons are part of the output, not a failure)",
    2: "the ingestion file or a setting is invalid, or an input file is truncated or unreadable",
    130: "Ctrl-C (nothing is written)",
}))  # fmt: skip
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

    from shared.ops.preview import Previewer

    config = config_or_exit(config_path)
    extra = parse_headers(headers)
    records: Iterable[Record] = _read(files, topic, fmt, skip_header, config.limits.max_record_bytes)
    if extra or key is not None:
        records = (replace(r, headers=extra, key=None if key is None else key.encode()) for r in records)
    ok = bad = 0
    try:
        for item in Previewer(config).preview(islice(records, limit)):
            if item.error is None:
                ok += 1
            else:
                bad += 1
            if as_json:
                out: dict[str, Any] = {"record": item.record.where, "table": item.table}
                if item.error is not None:
                    out["dead_letter"] = {"stage": item.error.stage, "field": item.error.field,
                                          "reason": item.error.reason}  # fmt: skip
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
    except InputError as exc:
        click.echo(f"{ok} record(s) would be ingested, {bad} dead-lettered (before the error)", err=True)
        fail(f"kafka-adx preview: {exc}")
    click.echo(f"{ok} record(s) would be ingested, {bad} dead-lettered", err=True)


class _Progress:
    """Progress on standard error when it is a terminal, silent otherwise: a bar with percent
    and ETA when the input's size is known (files, ``.gz`` by their trailer), else a status line
    of records, megabytes and records per second (standard input)."""

    def __init__(self, label: str, total: int | None = None) -> None:
        self.label = label
        self.enabled = sys.stderr.isatty()
        self.count = 0
        self.bytes = 0
        self.started = time.perf_counter()
        self._last = 0.0
        self.bar = Progress(label, total, show=self._counts)

    def _counts(self) -> str:
        rate = self.count / max(time.perf_counter() - self.started, 1e-9)
        return f"{self.count:,} records, {rate:,.0f}/s"

    def wrap(self, records: Iterable[Record]) -> Iterator[Record]:
        """Count the records (and show the progress) as the pipeline takes them."""
        complete = False
        try:
            for record in records:
                self.count += 1
                size = record.size
                self.bytes += size
                if self.bar.enabled:
                    self.bar.advance(size + 1)  # the line break the file holds too
                elif self.enabled and self.count % 1000 == 0:
                    self._status()
                yield record
            complete = True
        finally:
            # Also when reading stopped early: the summary must not start after a half line.
            if self.bar.enabled:
                self.bar.finish(complete=complete)
            elif self.enabled:
                sys.stderr.write("\r" + " " * 79 + "\r")

    def _status(self) -> None:
        now = time.perf_counter()
        if now - self._last > 0.25:
            self._last = now
            rate = self.count / max(now - self.started, 1e-9)
            sys.stderr.write(f"\r{self.label}: {self.count:,} records, {self.bytes / 1e6:,.1f} MB, {rate:,.0f} rec/s")
            sys.stderr.flush()


@dataclass
class IngestRun:
    """What :func:`run_ingest` did."""

    result: Result
    """The pipeline's counts: complete, also when reading stopped early."""
    raw_bytes: int
    """Bytes of record values read."""
    blank_lines: int
    """Blank lines skipped (not records)."""
    stopped: InputStopped | None = None
    """Why reading stopped before the end of the input (truncated file, signal), if it did."""


def run_ingest(
    settings: Settings,
    config: IngestionConfig,
    files: list[str],
    topic: str,
    *,
    fmt: str | None = None,
    skip_header: bool = False,
    guard: StopOnSignal | None = None,
) -> IngestRun:
    """Ingest files through the full pipeline.

    When reading stops early (:class:`InputError` for a truncated or unreadable file,
    :class:`Interrupted` when ``guard`` saw a signal) the pipeline has delivered what was read;
    the run says why it stopped instead of raising, so the caller can print the summary first.
    Other errors (the sink, the dead-letter store) raise.
    """
    from shared.sources.files import FileSource
    from shared.wiring import build_pipeline

    pipeline = build_pipeline(settings, config)
    progress = _Progress(f"ingest {topic}", input_size(files))
    source = FileSource(files, topic, fmt=fmt, skip_header=skip_header, max_record_bytes=config.limits.max_record_bytes)
    result = Result()
    stopped: InputStopped | None = None
    try:
        records: Iterable[Record] = source if guard is None else guard.wrap(source)
        pipeline.process(progress.wrap(records), result=result)
    except InputStopped as exc:
        stopped = exc
    finally:
        pipeline.close()
    return IngestRun(result, progress.bytes, source.blank_lines, stopped)


@click.command(epilog=exit_codes_help({
    0: "every record was ingested",
    1: "a record was dead-lettered (the summary says how many and why)",
    2: "misconfiguration, unreachable ADX or storage (checked before reading), a truncated or "
       "unreadable input file (the message names the file, record and byte)",
    130: "by SIGINT or SIGTERM; the records read so far were ingested or dead-lettered and counted; "
         "a second signal aborts at once",
}))  # fmt: skip
@config_option
@click.option("--topic", "-t", required=True, help="Topic the records belong to (selects the route).")
@click.option("--format", "fmt", default=None, help="How to split files: csv/tsv/psv keep quoted line breaks.")
@click.option("--skip-header", is_flag=True, help="Skip the first line of each file.")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, allow_dash=True))
def ingest(config_path: str | None, topic: str, fmt: str | None, skip_header: bool, files: tuple[str, ...]) -> None:
    """Run FILES (JSON lines, CSV, raw lines; .gz accepted; - for standard input) through the
    full pipeline.

    Into the local DuckDB by default, into ADX when ADX_INGEST_URI is set. The summary is
    printed also when reading stopped early (a truncated file, Ctrl-C).
    """
    settings = settings_or_exit()
    config = config_or_exit(config_path)
    preflight_or_exit(settings, config)
    try:
        with StopOnSignal() as guard:
            run = run_ingest(settings, config, list(files), topic, fmt=fmt, skip_header=skip_header, guard=guard)
    except KafkaAdxError as exc:
        raise CliError(str(exc)) from None
    result = run.result
    print_summary(result, run.raw_bytes, label=topic, blank_lines=run.blank_lines)
    target = settings.local_db if settings.local_mode else settings.adx_ingest_uri
    echo(f"  sink: {target}")
    if result.dead_lettered:
        echo(f"  dead letters: {settings.deadletter_blob_uri or settings.local_deadletter_dir}")
    if isinstance(run.stopped, Interrupted):
        fail(f"kafka-adx ingest: interrupted ({run.stopped}): the {result.received:,} record(s) read were "
             "delivered (counted above); the rest of the input was not read", EXIT_INTERRUPTED)  # fmt: skip
    if run.stopped is not None:
        fail(f"kafka-adx ingest: {run.stopped}; the {result.received:,} record(s) before it were delivered "
             "(counted above)")  # fmt: skip
    if result.dead_lettered:
        sys.exit(EXIT_PARTIAL)
