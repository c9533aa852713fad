"""``kafka-adx status`` (registered by :mod:`shared.cli.app`)."""

from __future__ import annotations

import click

from shared.cli.common import EXIT_ERROR, EXIT_PARTIAL, CliError, echo, exit_codes_help, settings_or_exit
from shared.cli.deadletters import directory_option, open_store, store_where
from shared.deadletters.replay import marks_for
from shared.errors import KafkaAdxError


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
        store = open_store(settings, directory)
        summary = deadletter_summary(store, marks_for(store))
    except KafkaAdxError as exc:
        raise CliError(str(exc)) from None
    echo(f"dead letters ({store_where(settings, directory)}): {summary.letters} letter(s) in {summary.sets} set(s); "
         f"{summary.pending_letters} letter(s) in {summary.pending_sets} set(s) not replayed yet")  # fmt: skip
    for stage, n in sorted((summary.by_stage or {}).items()):
        click.echo(f"  stage {stage}: {n}")
    for name, n in sorted((summary.by_table or {}).items()):
        click.echo(f"  table {name}: {n}")
    if unreachable:
        raise SystemExit(EXIT_ERROR)
    if reports or summary.pending_letters:
        raise SystemExit(EXIT_PARTIAL)
