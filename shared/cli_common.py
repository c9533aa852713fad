"""Pieces shared by the command-line modules (cli, cli_adx, cli_kafka)."""

from __future__ import annotations

import click

from shared.config import IngestionConfig, load_config
from shared.errors import ConfigError
from shared.pipeline import Result
from shared.settings import Settings


def settings_or_exit() -> Settings:
    """Settings from the environment, or a clean CLI error naming the bad setting."""
    try:
        return Settings.from_env()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def config_or_exit(path: str | None) -> IngestionConfig:
    """The ingestion file, or a clean CLI error naming the file and field."""
    try:
        return load_config(path or settings_or_exit().ingestion_config)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Ingestion file (default: $INGESTION_CONFIG or ingestion.yaml).",
)


def parse_headers(values: tuple[str, ...]) -> tuple[tuple[str, bytes | None], ...]:
    """``NAME=VALUE`` options as Kafka headers."""
    headers: list[tuple[str, bytes | None]] = []
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"{item!r}: expected NAME=VALUE", param_hint="--header")
        headers.append((name, value.encode()))
    return tuple(headers)


def print_summary(result: Result, raw_bytes: int, label: str = "") -> None:
    """Per table: rows ingested, records dead-lettered, batches; then totals and throughput."""
    width = max([len(name) for name in result.tables] + [5])
    title = f"{label}: " if label else ""
    click.echo(f"{title}{result.received:,} received, {result.ingested:,} ingested, {result.dead_lettered:,} dead-lettered")
    click.echo(f"  {'table':<{width}}  {'ingested':>10}  {'dead-lettered':>13}  {'batches':>7}  {'gzip MB':>8}")
    for name in sorted(result.tables):
        c = result.tables[name]
        click.echo(
            f"  {name:<{width}}  {c.ingested:>10,}  {c.dead_lettered:>13,}  {c.batches:>7,}  {c.gzip_bytes / 1e6:>8.2f}"
        )
    seconds = max(result.seconds, 1e-9)
    click.echo(
        f"  throughput: {result.received / seconds:,.0f} records/s, {raw_bytes / 1e6 / seconds:,.1f} MB/s "
        f"({result.seconds:.2f} s)"
    )
    if result.reasons:
        reasons = ", ".join(f"{stage}: {count}" for stage, count in sorted(result.reasons.items()))
        click.echo(f"  dead letters by stage: {reasons}")
