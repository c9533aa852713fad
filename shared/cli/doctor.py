"""``kafka-adx doctor``: the drift between the ingestion file and the ADX cluster (registered by
:mod:`shared.cli.app` with ``main.add_command(doctor)``)."""

from __future__ import annotations

import click

from shared.cli.common import EXIT_PARTIAL, config_option, echo, exit_codes_help, fail, read_cluster
from shared.errors import ConfigError


@click.command(epilog=exit_codes_help({
    0: "no drift: the cluster has every table, column (same type, same order) and mapping the file declares",
    1: "drift: one line per finding on standard output",
    2: "the cluster cannot be reached or read (network, timeout, identity refused), ADX is not "
       "configured, or the ingestion file is invalid",
}))  # fmt: skip
@config_option
@click.option("--timeout", default=30.0, show_default=True, type=click.FloatRange(min=1),
              help="Seconds each management command may take.")
def doctor(config_path: str | None, timeout: float) -> None:
    """Show the drift between the ingestion file and the ADX cluster.

    Compares what `kafka-adx kql` would create (tables, columns and their types, the mappings
    ADX applies) with what the engine (ADX_ENGINE_URI, derived from ADX_INGEST_URI) has, and
    prints one line per difference: missing database, table, column or mapping, a column of
    another type, a column only in the cluster, columns in another order, a mapping that
    differs. Changes nothing; run the output of `kafka-adx kql` to create what is missing.
    """
    from shared.config import load_config
    from shared.ops.doctor import drift, expected_schema
    from shared.settings import Settings

    try:
        settings = Settings.from_env()
        config = load_config(config_path or settings.ingestion_config)
    except ConfigError as exc:
        fail(f"kafka-adx doctor: {exc}")
    findings, where = read_cluster("kafka-adx doctor", settings, timeout, lambda run: drift(config, run))
    for finding in findings:
        echo(finding.line())
    tables = sum(len(t) for t in expected_schema(config).values())
    if findings:
        echo(f"{len(findings)} difference(s) between the ingestion file and {where}; "
             "`kafka-adx kql` prints the commands that create what is missing", err=True)
        raise SystemExit(EXIT_PARTIAL)
    echo(f"no drift: {tables} table(s) match {where}", err=True)

