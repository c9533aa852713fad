"""The ``kql`` command: the KQL that creates the tables, mappings and policies of the ingestion
file (what the deployment runs, and what a user runs on a cluster of their own); with
``--diff``, read the cluster first and mark what each command would change."""

from __future__ import annotations

from typing import Any

import click

from shared.cli.common import (
    EXIT_PARTIAL,
    config_option,
    config_or_exit,
    echo,
    exit_codes_help,
    fail,
    read_cluster,
)


@click.command(epilog=exit_codes_help({
    0: "",
    1: "--diff: a mapping differs in the cluster and was left out (--alter-mappings replaces it), or an "
       "external table or mapping is missing in the cluster",
    2: "the ingestion file or a setting is invalid; --diff without ADX_ENGINE_URI/ADX_INGEST_URI, or the "
       "cluster cannot be read",
}))  # fmt: skip
@config_option
@click.option("--no-comments", is_flag=True, help="Commands only (as an ARM database script needs).")
@click.option("--diff", "diff", is_flag=True,
              help="Read the cluster first (ADX_ENGINE_URI, or derived from ADX_INGEST_URI) and mark each command "
                   "create / alter (with the difference) / no change; changes nothing.")
@click.option("--alter-mappings", is_flag=True,
              help="Replace mappings that exist (.create-or-alter) instead of only creating missing ones.")
@click.option("--only", type=click.Choice(["all", "schema", "mappings"]), default="all", show_default=True,
              help="Without --diff: every command, all but the mappings, or the mappings alone (a deployment may "
                   "run the mappings as a script that goes on past one that exists).")
@click.option("--timeout", default=30.0, show_default=True, type=click.FloatRange(min=1),
              help="--diff: seconds each management command may take.")
def kql(config_path: str | None, no_comments: bool, diff: bool, alter_mappings: bool, only: str, timeout: float) -> None:
    """Print the KQL that creates the tables, mappings and ingestion policies.

    It creates and alters only what the file owns: a table marked `external: true` and a
    mapping a route names with `mapping_ref: external` are left to the cluster. Mappings are
    created, never replaced (`.create ... mapping` fails when one of that name exists) unless
    --alter-mappings is given. With --diff the cluster is read first: matching mappings are
    left out, and one that differs is left out with a warning (exit 1) unless --alter-mappings.
    """
    from shared.ops.kql import Part, generate_kql

    config = config_or_exit(config_path)
    if not diff:
        part: Part = "schema" if only == "schema" else "mappings" if only == "mappings" else "all"
        click.echo(generate_kql(config, comments=not no_comments, alter_mappings=alter_mappings, only=part), nl=False)
        return
    if only != "all":
        fail("kafka-adx kql: --only is for the script without --diff (--diff plans every command)")
    _diff(config, comments=not no_comments, alter_mappings=alter_mappings, timeout=timeout)


def _diff(config: Any, *, comments: bool, alter_mappings: bool, timeout: float) -> None:
    from shared.ops.kql import plan_kql
    from shared.settings import Settings

    plan, _ = read_cluster("kafka-adx kql --diff", Settings.from_env(), timeout,
                           lambda run: plan_kql(config, run, alter_mappings=alter_mappings))
    click.echo(plan.render(comments=comments), nl=False)
    for line in plan.refused:
        echo(f"kafka-adx kql --diff: left out, differs in the cluster: {line} (--alter-mappings replaces it)", err=True)
    for line in plan.missing_external:
        echo(f"kafka-adx kql --diff: {line}: ingestion into it will fail until it exists", err=True)
    if plan.refused or plan.missing_external:
        raise SystemExit(EXIT_PARTIAL)
