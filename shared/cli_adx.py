"""``kafka-adx replay`` and ``kafka-adx status`` (registered by :mod:`shared.cli`)."""

from __future__ import annotations

from datetime import datetime

import click

from shared.cli_common import settings_or_exit
from shared.config import load_config
from shared.deadletter import DeadLetterStore, LocalDeadLetterStore
from shared.errors import ConfigError, KafkaAdxError, TransientError
from shared.replay import Reingest, ReplayFilter, SetReplay, marks_for, parse_when
from shared.settings import Settings


def _store(settings: Settings, directory: str | None) -> DeadLetterStore:
    if directory:
        return LocalDeadLetterStore(directory)
    from shared.runtime import build_deadletters

    return build_deadletters(settings)


def _where(settings: Settings, directory: str | None) -> str:
    if directory:
        return directory
    if settings.deadletter_blob_uri:
        return settings.deadletter_blob_uri.split("?", 1)[0]  # never echo a SAS
    return str(settings.local_deadletter_dir)


def _when(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_when(value)
    except ConfigError as exc:
        raise click.BadParameter(str(exc), param_hint=name) from None


directory_option = click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False),
    default=None,
    help="A local dead-letter folder (default: $DEADLETTER_BLOB_URI, else $LOCAL_DEADLETTER_DIR).",
)


@click.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
              help="Ingestion file (default: $INGESTION_CONFIG or ingestion.yaml).")
@directory_option
@click.option("--table", default=None, help="Only letters for this table (Table or Database.Table).")
@click.option("--route", default=None, help="Only letters of this route (topic pattern) or topic.")
@click.option("--since", default=None, help="Dead-lettered at or after (ISO 8601, or 30m / 2h / 7d ago).")
@click.option("--until", default=None, help="Dead-lettered before (ISO 8601, or 30m / 2h / 7d ago).")
@click.option("--dry-run", is_flag=True, help="Show what would be replayed; ingest and mark nothing.")
def replay(
    config_path: str | None,
    directory: str | None,
    table: str | None,
    route: str | None,
    since: str | None,
    until: str | None,
    dry_run: bool,
) -> None:
    """Re-ingest dead letters through the pipeline, once.

    Replayed sets are marked, so running it again does nothing new. Records that fail again are
    dead-lettered again with the new reason. Exit code 1 when a transient failure stopped the
    replay (run it again later), 2 on a usage error.
    """
    from shared.pipeline import Pipeline
    from shared.replay import pipeline_reingest
    from shared.replay import replay as run_replay

    settings = settings_or_exit()
    flt = ReplayFilter(table=table, route=route, since=_when(since, "--since"), until=_when(until, "--until"))
    try:
        store = _store(settings, directory)
        marks = marks_for(store)
        pipeline: Pipeline | None = None
        reingest: Reingest | None = None
        if not dry_run:
            from shared.runtime import build_sink

            config = load_config(config_path or settings.ingestion_config)
            pipeline = Pipeline(config, build_sink(settings, config), store)
            reingest = pipeline_reingest(pipeline)
    except KafkaAdxError as exc:
        raise click.ClickException(str(exc)) from None

    def show(entry: SetReplay) -> None:
        if dry_run:
            click.echo(f"would replay set {entry.set_id}: {entry.selected} of {entry.letters} letter(s)")
        else:
            click.echo(f"replayed set {entry.set_id}: {entry.selected} letter(s), {entry.ingested} ingested, "
                       f"{entry.dead_lettered} dead-lettered again")

    click.echo(f"dead letters: {_where(settings, directory)}")
    try:
        report = run_replay(store, reingest, flt, marks=marks, dry_run=dry_run, on_set=show)
    except TransientError as exc:
        click.echo(f"replay stopped by a transient failure (nothing of that set was marked; run it again): {exc}",
                   err=True)
        raise SystemExit(1) from None
    except KafkaAdxError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        if pipeline is not None:
            pipeline.close()
    verb = "would replay" if dry_run else "replayed"
    click.echo(
        f"{report.sets_seen} set(s) seen, {verb} {report.letters_selected} letter(s) from "
        f"{len(report.sets)} set(s); {report.letters_already_replayed} letter(s) replayed before"
    )
    if not dry_run:
        click.echo(f"  {report.ingested} ingested, {report.dead_lettered} dead-lettered again")


@click.command()
@directory_option
@click.option("--count", default=20, show_default=True, help="Failure reports to show.")
@click.option("--pop", is_flag=True, help="Remove the reports shown from the failure queue.")
def status(directory: str | None, count: int, pop: bool) -> None:
    """Recent ingestion failure reports from ADX's failure queue, and pending dead letters."""
    from shared.status import deadletter_summary, failure_reports

    settings = settings_or_exit()
    if settings.local_mode:
        click.echo("ADX: not configured (local mode: no failure queue)")
    else:
        from shared.sinks.adx import clients_for

        try:
            reports = failure_reports(clients_for(settings).queued, count, pop=pop)
        except Exception as exc:  # any SDK error: report it, then still show the dead letters
            click.echo(f"ADX failure queue: cannot read it: {type(exc).__name__}: {str(exc)[:200]}", err=True)
            reports = None
        if reports is not None:
            click.echo(f"ADX ingestion failure reports ({len(reports)}{', removed' if pop else ''}):")
            for report in reports:
                click.echo(f"  {report.line()}")
    try:
        store = _store(settings, directory)
        summary = deadletter_summary(store, marks_for(store))
    except KafkaAdxError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"dead letters ({_where(settings, directory)}): {summary.letters} letter(s) in {summary.sets} set(s); "
               f"{summary.pending_letters} letter(s) in {summary.pending_sets} set(s) not replayed yet")
    for stage, n in sorted((summary.by_stage or {}).items()):
        click.echo(f"  stage {stage}: {n}")
    for name, n in sorted((summary.by_table or {}).items()):
        click.echo(f"  table {name}: {n}")
