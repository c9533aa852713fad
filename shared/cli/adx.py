"""``kafka-adx replay`` and ``kafka-adx status`` (registered by :mod:`shared.cli.app`)."""

from __future__ import annotations

from datetime import datetime

import click

from shared.cli.common import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_PARTIAL,
    CliError,
    StopOnSignal,
    config_option,
    config_or_exit,
    echo,
    exit_codes_help,
    fail,
    preflight_or_exit,
    settings_or_exit,
)
from shared.deadletters.local import LocalDeadLetterStore
from shared.deadletters.replay import Reingest, ReplayFilter, SetReplay, marks_for, parse_when
from shared.errors import ConfigError, KafkaAdxError, TransientError
from shared.pipeline.deadletter import DeadLetterStore
from shared.redact import redact
from shared.settings import Settings


def _store(settings: Settings, directory: str | None) -> DeadLetterStore:
    if directory:
        return LocalDeadLetterStore(directory)
    from shared.wiring import build_deadletters

    return build_deadletters(settings)


def _where(settings: Settings, directory: str | None) -> str:
    if directory:
        return directory
    if settings.deadletter_blob_uri:
        return redact(settings.deadletter_blob_uri)  # never echo a SAS signature
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


@click.command(epilog=exit_codes_help({
    0: "every selected letter was ingested (or there was nothing to replay, or --dry-run)",
    1: "letters failed again: they were dead-lettered anew, with the new reason",
    2: "misconfiguration, the dead-letter store or ADX unreachable, or a transient failure stopped "
       "the replay (nothing of that set was marked: run it again later)",
    130: "stopped after the set in progress (it is marked); run it again for the rest",
}))  # fmt: skip
@config_option
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
    dead-lettered again with the new reason.
    """
    from shared.deadletters.replay import pipeline_reingest
    from shared.deadletters.replay import replay as run_replay
    from shared.pipeline.core import Pipeline

    settings = settings_or_exit()
    flt = ReplayFilter(table=table, route=route, since=_when(since, "--since"), until=_when(until, "--until"))
    pipeline: Pipeline | None = None
    reingest: Reingest | None = None
    if not dry_run:
        # Fail fast, before a letter is read: a dry run writes nothing, so it needs no sink.
        config = config_or_exit(config_path)
        preflight_or_exit(settings, config)
    try:
        store = _store(settings, directory)
        marks = marks_for(store)
        if not dry_run:
            from shared.wiring import build_sink

            pipeline = Pipeline(config, build_sink(settings, config), store)
            reingest = pipeline_reingest(pipeline)
    except KafkaAdxError as exc:
        raise CliError(str(exc)) from None

    def show(entry: SetReplay) -> None:
        if dry_run:
            click.echo(f"would replay set {entry.set_id}: {entry.selected} of {entry.letters} letter(s)")
        else:
            click.echo(f"replayed set {entry.set_id}: {entry.selected} letter(s), {entry.ingested} ingested, "
                       f"{entry.dead_lettered} dead-lettered again")

    echo(f"dead letters: {_where(settings, directory)}")
    try:
        with StopOnSignal() as guard:
            report = run_replay(store, reingest, flt, marks=marks, dry_run=dry_run, on_set=show,
                                should_stop=lambda: guard.received is not None)  # fmt: skip
    except TransientError as exc:
        fail(f"replay stopped by a transient failure (nothing of that set was marked; run it again): {exc}")
    except KafkaAdxError as exc:
        raise CliError(str(exc)) from None
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
    if report.interrupted:
        fail(f"kafka-adx replay: interrupted ({guard.received}): stopped after {len(report.sets)} set(s); "
             "the sets replayed are marked, run it again for the rest", EXIT_INTERRUPTED)  # fmt: skip
    if report.dead_lettered:
        fail(f"kafka-adx replay: {report.dead_lettered} letter(s) failed again (dead-lettered anew with the "
             "new reason: see `kafka-adx status`)", EXIT_PARTIAL)  # fmt: skip


@click.command(epilog=exit_codes_help({
    0: "ADX reachable (or local mode), no failure report, no dead letter waiting for a replay",
    1: "ADX reported ingestion failures, or dead letters are not replayed yet",
    2: "ADX's failure queue or the dead-letter store cannot be read (what could be read is shown)",
}))  # fmt: skip
@directory_option
@click.option("--count", default=20, show_default=True, help="Failure reports to show.")
@click.option("--pop", is_flag=True, help="Remove the reports shown from the failure queue.")
def status(directory: str | None, count: int, pop: bool) -> None:
    """Recent ingestion failure reports from ADX's failure queue, and pending dead letters."""
    from shared.ops.status import deadletter_summary, failure_reports

    settings = settings_or_exit()
    unreachable = False
    reports = None
    if settings.local_mode:
        click.echo("ADX: not configured (local mode: no failure queue)")
    else:
        from shared.sinks.adx import clients_for

        try:
            reports = failure_reports(clients_for(settings).queued, count, pop=pop)
        except Exception as exc:  # any SDK error: report it, then still show the dead letters
            echo(f"ADX failure queue: cannot read it: {type(exc).__name__}: {str(exc)[:200]}", err=True)
            unreachable = True
        if reports is not None:
            click.echo(f"ADX ingestion failure reports ({len(reports)}{', removed' if pop else ''}):")
            for report in reports:
                echo(f"  {report.line()}")
    try:
        store = _store(settings, directory)
        summary = deadletter_summary(store, marks_for(store))
    except KafkaAdxError as exc:
        raise CliError(str(exc)) from None
    echo(f"dead letters ({_where(settings, directory)}): {summary.letters} letter(s) in {summary.sets} set(s); "
         f"{summary.pending_letters} letter(s) in {summary.pending_sets} set(s) not replayed yet")  # fmt: skip
    for stage, n in sorted((summary.by_stage or {}).items()):
        click.echo(f"  stage {stage}: {n}")
    for name, n in sorted((summary.by_table or {}).items()):
        click.echo(f"  table {name}: {n}")
    if unreachable:
        raise SystemExit(EXIT_ERROR)
    if reports or summary.pending_letters:
        raise SystemExit(EXIT_PARTIAL)
