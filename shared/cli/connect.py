"""``kafka-adx import-connect``: a Kafka Connect Kusto sink configuration into an ingestion file
and settings (registered by :mod:`shared.cli.app`). The translation is
:mod:`shared.ops.connect`, the tables :mod:`shared.ops.connect_schema`, the files
:mod:`shared.ops.connect_files`."""

from __future__ import annotations

from typing import Any

import click

from shared.cli.common import EXIT_PARTIAL, echo, exit_codes_help, fail
from shared.errors import ConfigError


@click.command("import-connect", epilog=exit_codes_help({
    0: "the files are written and every setting was translated",
    1: "the files are written; some settings were not translated (each is listed with the reason on "
       "standard error and as comments in the files)",
    2: "the configuration cannot be read or translated (the message names the file and the field), an "
       "output file exists (use --force), or the cluster cannot be read",
}))  # fmt: skip
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=".", show_default=True,
              help="Directory for ingestion.yaml, kafka-adx.env and local.settings.fragment.json.")
@click.option("--force", is_flag=True, help="Overwrite output files that exist.")
@click.option("--database", default=None,
              help="Database of routes whose db is missing or a placeholder such as '<enter database name>'.")
@click.option("--engine-uri", default=None,
              help="Engine URI of the cluster to read tables and mappings from (default: kusto.query.url, "
                   "else the file's ingestion URL without 'ingest-', else ADX_ENGINE_URI / ADX_INGEST_URI).")
@click.option("--no-cluster", is_flag=True,
              help="Do not read the cluster: tables and mappings are written as external references.")
@click.option("--timeout", default=30.0, show_default=True, type=click.FloatRange(min=1),
              help="Seconds each management command may take.")
def import_connect(file: str, out_dir: str, force: bool, database: str | None, engine_uri: str | None,
                   no_cluster: bool, timeout: float) -> None:
    """Translate a Kafka Connect Kusto sink configuration (FILE: the JSON Connect's REST API
    takes, or a .properties file) into an ingestion file and settings.

    Routes come from kusto.tables.topics.mapping; tables and mappings from the cluster (read
    with the identity of ADX_AUTH / AZURE_CLIENT_ID, as `kafka-adx doctor` reads it); the
    consumer group is the connector's (connect-<name>), so `kafka-adx consume` resumes at its
    committed offsets once the connector is stopped. Secrets (aad.auth.appkey, JAAS
    configurations) are never copied: the files say where they must go.
    """
    from shared.ops.connect import SECRET_PROPERTIES, engine_uri_of, load_connect, translate
    from shared.ops.connect_files import consume_command, write_outputs
    from shared.redact import register_secret

    try:
        connect = load_connect(file)
        for prop, value in connect.properties.items():
            if SECRET_PROPERTIES.search(prop):
                register_secret(value)  # redacted from every line printed, should one slip through
        engine = None if no_cluster else (engine_uri or engine_uri_of(connect) or _engine_from_settings())
        runner, close = _runner(engine, timeout) if engine else (None, _nothing)
        try:
            out = translate(connect, database=database, run=runner)
        except ConfigError:
            raise
        except Exception as exc:
            from shared.ops.preflight import explain_adx_error, host_of

            what, kind = explain_adx_error(exc, timeout)
            remedy = {"forbidden": "Grant the identity the Viewer role on the database.",
                      "auth": "Check ADX_AUTH: the credential could not get a token."}.get(
                kind, "Check the URI, or pass --no-cluster to write external references.")  # fmt: skip
            fail(f"kafka-adx import-connect: {host_of(engine or '')}: cannot read the cluster's tables: {what}. {remedy}")
        finally:
            close()
        paths = write_outputs(out, out_dir, force=force)
    except ConfigError as exc:
        fail(f"kafka-adx import-connect: {exc}")
    for note in out.notes:
        echo(f"import-connect: {connect.source}: {note.line()}", err=True)
    for path in paths:
        echo(f"wrote {path}")
    echo(f"consume as the connector did: {consume_command(out)}")
    echo("stop the connector first: both in one consumer group would share the partitions")
    if out.notes:
        echo(f"{len(out.notes)} setting(s) not translated: listed above and in the files", err=True)
        raise SystemExit(EXIT_PARTIAL)


def _nothing() -> None:
    return None


def _engine_from_settings() -> str | None:
    from shared.cli.common import settings_or_exit

    return settings_or_exit().engine_uri


def _runner(engine: str, timeout: float) -> tuple[Any, Any]:
    """A :data:`shared.ops.doctor.Runner` on ``engine`` (the credential of ADX_AUTH /
    AZURE_CLIENT_ID) and the function that closes its clients."""
    from shared.cli.common import settings_or_exit
    from shared.settings import Settings
    from shared.sinks.adx import AdxClients

    env = settings_or_exit()
    try:
        settings = Settings(adx_ingest_uri=engine, adx_engine_uri=engine, adx_auth=env.adx_auth,
                            azure_client_id=env.azure_client_id)  # fmt: skip
    except ValueError:
        raise ConfigError(f"engine URI {engine!r}: not an http(s) URI") from None
    clients = AdxClients(settings)

    def run(database: str, command: str) -> list[dict[str, Any]]:
        return clients.management(command, database=database, timeout=timeout)

    return run, clients.close
