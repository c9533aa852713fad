"""The ``kql`` command: the KQL that creates the tables, mappings and policies of the ingestion
file (what the deployment runs, and what a user runs on a cluster of their own)."""

from __future__ import annotations

import click

from shared.cli.common import config_option, config_or_exit, exit_codes_help


@click.command(epilog=exit_codes_help({0: "", 2: "the ingestion file or a setting is invalid"}))
@config_option
@click.option("--no-comments", is_flag=True, help="Commands only (as an ARM database script needs).")
def kql(config_path: str | None, no_comments: bool) -> None:
    """Print the KQL that creates the tables, mappings and ingestion policies."""
    from shared.ops.kql import generate_kql

    click.echo(generate_kql(config_or_exit(config_path), comments=not no_comments), nl=False)
