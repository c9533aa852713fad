"""``kafka-adx status`` (registered by :mod:`shared.cli.app`): the report of
:mod:`shared.ops.status` as text, as JSON (``--json``) or refreshed in place (``--watch``)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import click
import orjson

from shared.cli.common import config_option, echo, exit_codes_help, settings_or_exit
from shared.cli.deadletters import directory_option, open_store, store_where
from shared.cli.kafka import connection_options, connection_or_error
from shared.errors import ConfigError
from shared.ops.status import StatusReport, follow
from shared.settings import Settings


def _ago(when: datetime | None, now: datetime) -> str:
    if when is None:
        return "-"
    seconds = max(0, int((now - when).total_seconds()))
    if seconds < 120:
        return f"{seconds}s ago"
    if seconds < 7200:
        return f"{seconds // 60}m ago"
    if seconds < 172800:
        return f"{seconds // 3600}h ago"
    return f"{seconds // 86400}d ago"


def render(report: StatusReport, where: str) -> list[str]:
    """The report as terminal lines: the state first, then tables, failures, dead letters, lag."""
    now = report.at
    why = report.unreachable[:1] if report.unreachable else report.degraded()
    lines = [f"kafka-adx status  {now.isoformat(timespec='seconds')}  target: {report.target}  "
             f"state: {report.state.upper()}" + (f" ({'; '.join(why)})" if why else "")]  # fmt: skip
    if report.tables:
        width = max(len(t.table) for t in report.tables)
        live = any(t.rate_since is not None for t in report.tables)  # --watch after the first refresh
        lines += ["", f"  {'table':<{width}}  {'rows':>12}  {'last batch':<12}  {'rows/s 5m':>9}  {'rows 1h':>10}"
                      + (f"  {'rows/s now':>10}" if live else "")]  # fmt: skip
        for t in report.tables:
            rate = t.per_second("5m")
            lines.append(
                f"  {t.table:<{width}}  {'-' if t.rows is None else f'{t.rows:,}':>12}  {_ago(t.last_batch, now):<12}  "
                f"{'-' if rate is None else f'{rate:,.1f}':>9}  {'-' if t.rows_1h is None else f'{t.rows_1h:,}':>10}"
                + (f"  {'-' if t.rate_since is None else f'{t.rate_since:,.1f}':>10}" if live else "")
                + (f"  ({t.note})" if t.note else "")
            )
    if report.target == "adx":
        lines += ["", f"ADX ingestion failure reports ({len(report.failures)}{', removed' if report.popped else ''}):"]
        for failure in report.failures:
            linked = "  [dead-lettered]" if report.dead_lettered(failure) else ""
            lines.append(f"  {failure.origin:<6}  {failure.line()}{linked}")
    else:
        lines += ["", "ADX: not configured (local mode: no failure queue)"]
    dl = report.deadletters
    if dl is not None:
        lines += ["", f"dead letters ({where}): {dl.letters} letter(s) in {dl.sets} set(s); "
                      f"{dl.pending} letter(s) in {dl.pending_sets} set(s) not replayed yet"]  # fmt: skip
        if dl.pending:
            lines.append("  by stage: " + ", ".join(f"{stage} {n:,}" for stage, n in sorted(dl.by_stage().items())))
            lines.append("  by table: " + ", ".join(f"{name} {n:,}" for name, n in sorted(dl.by_table().items())))
        for group in dl.groups[:10]:
            lines.append(f"  {group.pending:>7,}  {group.stage:<8}  {group.table}  {group.kind}  (e.g. {group.sample})")
        if len(dl.groups) > 10:
            lines.append(f"  ... {len(dl.groups) - 10} more group(s): kafka-adx deadletters list")
    if report.lag is not None:
        total = sum(p.lag for p in report.lag)
        lines += ["", f"consumer group {report.group}: lag {total:,} record(s) on {len(report.lag)} partition(s)"
                      + (f" (threshold {report.max_lag:,} per partition)" if report.max_lag is not None else "")]
        for p in report.lag:
            over = "  OVER" if p in report.lag_over else ""
            committed = "-" if p.committed is None else f"{p.committed:,}"
            lines.append(f"  {p.topic}[{p.partition}]  committed {committed}  end {p.end:,}  lag {p.lag:,}{over}")
    for line in report.unreachable:
        lines.append(f"cannot read: {line}")
    return lines


def _collect(settings: Settings, config_path: str | None, directory: str | None, lag: Callable[[], Any] | None,
             group: str | None, max_lag: int, count: int, pop: bool) -> StatusReport:
    from shared.config import load_config
    from shared.ops.status import gather

    problem = None
    try:
        config = load_config(config_path or settings.ingestion_config)
    except ConfigError as exc:
        config, problem = None, f"ingestion file: {exc}"
    report = gather(settings, config, lambda: open_store(settings, directory), lag=lag, group=group,
                    max_lag=max_lag if group else None, count=count, pop=pop)  # fmt: skip
    if problem:
        report.unreachable.insert(0, problem)
    return report


@click.command(epilog=exit_codes_help({
    0: "healthy: ADX (or the local database) read, no failure report, no dead letter waiting for a "
       "replay, and with --group no partition lagging more than --max-lag",
    1: "degraded: dead letters not replayed yet, ADX ingestion failure reports, or lag over --max-lag",
    2: "something could not be read (ADX, its failure queue, the dead-letter store, the broker, the "
       "ingestion file); what could be read is shown",
}))  # fmt: skip
@config_option
@directory_option
@click.option("--count", default=20, show_default=True, help="Failure reports to show.")
@click.option("--pop", is_flag=True, help="Remove the reports shown from the failure queue.")
@click.option("--group", "-g", default=None, help="Kafka consumer group: show its lag per partition.")
@click.option("--topic", "-t", "topics", multiple=True,
              help="With --group: also partitions of this topic the group has not committed on (repeatable).")
@click.option("--max-lag", default=10_000, show_default=True, type=click.IntRange(min=0),
              help="With --group: a partition lagging more records than this is degraded.")
@connection_options
@click.option("--json", "as_json", is_flag=True, help="One JSON object for scripts (also with --watch: one per refresh).")
@click.option("--watch", is_flag=True, help="Refresh until Ctrl-C (in place on a terminal).")
@click.option("--interval", default=5.0, show_default=True, type=click.FloatRange(min=0.5),
              help="Seconds between refreshes with --watch.")
def status(
    config_path: str | None,
    directory: str | None,
    count: int,
    pop: bool,
    group: str | None,
    topics: tuple[str, ...],
    max_lag: int,
    as_json: bool,
    watch: bool,
    interval: float,
    **connection: Any,
) -> None:
    """At a glance: per table the rows, the last batch and the recent rate; ADX's ingestion
    failure reports linked to our batches; dead letters waiting for a replay by stage, reason and
    table; and with --group the consumer lag per partition.

    In local mode the tables are read from the local DuckDB file, in ADX from the table's
    extents. With --watch the exit code is that of the last refresh.
    """
    if watch and pop:
        raise click.UsageError("--pop with --watch would empty the failure queue on every refresh")
    settings = settings_or_exit()
    lag = None
    if group:
        from shared.ops.lag import consumer_lag

        conf = connection_or_error(**connection).client_config()
        plain = tuple(t for t in topics if not t.startswith("^"))

        def lag() -> Any:
            return consumer_lag(conf, group, plain)

    where = store_where(settings, directory)

    def snapshot() -> StatusReport:
        return _collect(settings, config_path, directory, lag, group, max_lag, count, pop)

    if not watch:
        once = snapshot()
        _print(once, where, as_json)
        raise SystemExit(once.exit_code)
    in_place = sys.stdout.isatty() and not as_json
    report: StatusReport | None = None
    try:
        while True:
            previous, report = report, snapshot()
            follow(report, previous)
            if in_place:
                click.clear()
            _print(report, where, as_json)
            if in_place:
                click.echo(f"\nrefreshing every {interval:g} s; Ctrl-C to stop")
            time.sleep(interval)
    except KeyboardInterrupt:
        pass
    raise SystemExit(report.exit_code if report is not None else 0)


def _print(report: StatusReport, where: str, as_json: bool) -> None:
    if as_json:
        click.echo(orjson.dumps(report.to_json()).decode())
        return
    for line in render(report, where):
        echo(line)

