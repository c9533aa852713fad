"""``kafka-adx consume`` and ``kafka-adx produce`` (registered by :mod:`shared.cli.app`).

Connection options default to the function app's settings (``KAFKA_BROKERS``, ``KAFKA_TOPIC``,
``KAFKA_CONSUMER_GROUP``, ``KAFKA_PROTOCOL``, ``KAFKA_SASL_MECHANISM``, ``KAFKA_USERNAME``,
``KAFKA_PASSWORD``), so one environment serves both. Helpers of :mod:`shared.cli.app` are imported
inside the commands: that module imports this one while it loads.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar, cast

import click

from shared.cli.common import (
    EXIT_ERROR,
    EXIT_PARTIAL,
    CliError,
    config_or_exit,
    echo,
    exit_codes_help,
    fail,
    parse_headers,
    preflight_or_exit,
    print_summary,
    settings_or_exit,
    setup_logging,
)
from shared.errors import ConfigError, InputError, KafkaAdxError
from shared.redact import install_log_redaction, register_secret

F = TypeVar("F", bound=Callable[..., Any])


def _setup_logging(level: str) -> None:
    """Log at ``level``, or more when the group's ``-v``/``-vv`` asked for more: the group's
    set-up (:func:`shared.cli.common.setup_logging`), done here when the command runs without
    the group."""
    root = logging.getLogger()
    if not root.handlers:
        setup_logging({"DEBUG": 2, "INFO": 1}.get(level.upper(), 0))
    install_log_redaction()  # idempotent; also covers a handler added after the group's set-up
    root.setLevel(min(root.level, logging.getLevelName(level.upper())))
    # The Azure SDKs log every HTTP request at INFO: only debug output wants them.
    if root.level > logging.DEBUG:
        logging.getLogger("azure").setLevel(logging.WARNING)


def connection_options(fn: F) -> F:
    """The options that say where the broker is and how to authenticate."""
    options = [
        click.option("--brokers", "-b", envvar="KAFKA_BROKERS", show_envvar=True,
                     help="Bootstrap servers, host:port[,host:port]."),
        click.option("--protocol", envvar="KAFKA_PROTOCOL", show_envvar=True,
                     help="PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL (also SaslSsl etc.); "
                          "default PLAINTEXT, or SASL_SSL with credentials or Event Hubs."),
        click.option("--sasl-mechanism", "mechanism", envvar="KAFKA_SASL_MECHANISM", show_envvar=True,
                     help="PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER (Entra ID token)."),
        click.option("--username", envvar="KAFKA_USERNAME", show_envvar=True,
                     help="SASL username; $ConnectionString for an Event Hubs connection string."),
        click.option("--password", envvar="KAFKA_PASSWORD", show_envvar=True,
                     help="SASL password or Event Hubs connection string (prefer the variable: "
                          "arguments are visible to other users of the machine)."),
        click.option("--eventhubs-namespace", default=None,
                     help="Event Hubs namespace (name or FQDN): its Kafka endpoint, SASL_SSL, and an "
                          "Entra ID token unless the username is $ConnectionString."),
        click.option("--oauth-scope", default=None,
                     help="Entra ID scope for OAUTHBEARER (default: https://<namespace>/.default)."),
        click.option("--credential", type=click.Choice(["default", "managed-identity"]), default="default",
                     show_default=True, help="azure-identity credential for Entra ID tokens."),
        click.option("--client-id", envvar="AZURE_CLIENT_ID", show_envvar=True,
                     help="Client id of a user-assigned managed identity."),
        click.option("-X", "properties", multiple=True, metavar="NAME=VALUE",
                     help="Any librdkafka property, e.g. -X session.timeout.ms=10000 (repeatable)."),
    ]  # fmt: skip
    for option in reversed(options):
        fn = option(fn)
    return fn


def connection_or_error(**kw: Any) -> Any:
    """The Kafka connection the :func:`connection_options` describe, or a CLI error (exit 2)."""
    from shared.kafka.connection import KafkaConnection, parse_properties

    # A password given as an option is as secret as KAFKA_PASSWORD: never echo it.
    register_secret(kw["password"])
    try:
        return KafkaConnection.resolve(
            brokers=kw["brokers"],
            protocol=kw["protocol"],
            mechanism=kw["mechanism"],
            username=kw["username"],
            password=kw["password"],
            eventhubs_namespace=kw["eventhubs_namespace"],
            oauth_scope=kw["oauth_scope"],
            credential=kw["credential"],
            client_id=kw["client_id"],
            extra=parse_properties(kw["properties"]),
        )
    except ConfigError as exc:
        raise CliError(str(exc)) from None


def _topics(values: tuple[str, ...]) -> tuple[str, ...]:
    topics = tuple(t.strip() for value in values for t in value.split(",") if t.strip())
    if not topics:
        raise click.UsageError("no topic: give --topic or set KAFKA_TOPIC")
    return topics


@click.command(epilog=exit_codes_help({
    0: "a clean stop (SIGTERM/SIGINT, --idle-exit, --max-records): everything consumed was ingested "
       "or dead-lettered, then committed (a signal is how a service is stopped, so it is not 130 here)",
    2: "invalid options or settings, ADX/storage/the broker unreachable or a topic missing (checked "
       "before consuming), or it stopped without committing (dead-letter store down, fatal Kafka "
       "error, authentication refused for --auth-timeout): restart it and the uncommitted records "
       "are delivered again",
}))  # fmt: skip
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
              help="Ingestion file (default: $INGESTION_CONFIG or ingestion.yaml).")
@click.option("--topic", "-t", "topic_values", multiple=True, envvar="KAFKA_TOPIC", show_envvar=True,
              help="Topic(s) to consume: repeat or separate with commas; ^regex patterns allowed.")
@click.option("--group", "-g", envvar="KAFKA_CONSUMER_GROUP", show_envvar=True, default="kafka-adx",
              show_default=True, help="Consumer group; offsets are committed for it.")
@connection_options
@click.option("--from", "start", type=click.Choice(["earliest", "latest"]), default="earliest", show_default=True,
              help="Where a group without committed offsets starts.")
@click.option("--batch-records", default=5000, show_default=True, type=click.IntRange(min=1),
              help="Flush (ingest, then commit) after this many records.")
@click.option("--batch-bytes", default=16 * 1024 * 1024, show_default=True, type=click.IntRange(min=1),
              help="Flush after this many bytes of record values.")
@click.option("--batch-wait", default=5.0, show_default=True, type=click.FloatRange(min=0),
              help="Flush when the oldest pending record has waited this many seconds.")
@click.option("--max-records", default=None, type=click.IntRange(min=1),
              help="Stop after this many records (flush and commit first).")
@click.option("--idle-exit", default=None, type=click.FloatRange(min=0), metavar="SECONDS",
              help="Stop when no record arrived for SECONDS (flush and commit first).")
@click.option("--auth-timeout", default=60.0, show_default=True, type=click.FloatRange(min=0), metavar="SECONDS",
              help="Exit 2 once the broker has refused authentication (bad credentials, expired or "
                   "wrongly scoped token) for this long; librdkafka alone would retry for ever.")
@click.option("--deadletter-retry-timeout", default=120.0, show_default=True, type=click.FloatRange(min=0),
              help="While the dead-letter store fails, retry this long, then exit 2 without committing.")
@click.option("--log-level", default="INFO", show_default=True,
              type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False))
def consume(
    config_path: str | None,
    topic_values: tuple[str, ...],
    group: str,
    start: str,
    batch_records: int,
    batch_bytes: int,
    batch_wait: float,
    max_records: int | None,
    idle_exit: float | None,
    auth_timeout: float,
    deadletter_retry_timeout: float,
    log_level: str,
    **connection: Any,
) -> None:
    """Consume Kafka topics and ingest them through the pipeline.

    Into the local DuckDB ($LOCAL_DB) by default, into ADX when ADX_INGEST_URI is set. Offsets
    are committed only after the records before them were ingested or dead-lettered; a
    rebalance or SIGTERM flushes and commits first. Dead letters do not change the exit code
    (a long-running consumer reports them in its summary and `kafka-adx status`).
    """
    from shared.kafka.connection import AuthFailureGuard
    from shared.kafka.consumer import ConsumerAborted, ConsumerOptions, KafkaIngestor, stop_on_signals
    from shared.ops.preflight import PreflightError, check_kafka
    from shared.pipeline.retry import RetryPolicy
    from shared.wiring import build_pipeline

    _setup_logging(log_level)
    topics = _topics(topic_values)
    conn = connection_or_error(**connection)
    settings = settings_or_exit()
    config = config_or_exit(config_path)
    options = ConsumerOptions(
        topics=topics,
        group=group,
        batch_records=batch_records,
        batch_bytes=batch_bytes,
        batch_wait=batch_wait,
        start="latest" if start == "latest" else "earliest",
        max_records=max_records,
        idle_exit=idle_exit,
        deadletter_retry_timeout=deadletter_retry_timeout,
    )
    meter = _consume_metrics()
    # Fail fast, before anything is consumed (and so before any offset could be committed).
    try:
        preflight_or_exit(settings, config)
    except CliError:
        meter.preflight_failed("target")
        raise
    client_config = conn.client_config()
    try:
        check_kafka(client_config, topics, timeout=10.0)
    except PreflightError as exc:
        meter.preflight_failed("kafka")
        raise CliError(str(exc)) from None
    try:
        pipeline = build_pipeline(settings, config, retry=RetryPolicy())
    except KafkaAdxError as exc:
        raise CliError(str(exc)) from None
    meter.instrument(pipeline, group)
    target = settings.local_db if settings.local_mode else settings.adx_ingest_uri
    echo(f"consuming {', '.join(topics)} from {conn.describe()} as group {group} into {target}", err=True)
    try:
        client_config["error_cb"] = AuthFailureGuard(auth_timeout)
        ingestor = KafkaIngestor(pipeline, client_config, options)
        with stop_on_signals(ingestor):
            stats = ingestor.run()
    except ConsumerAborted as exc:
        echo(f"kafka-adx consume: {exc}", err=True)
        fail("stopped without committing: the uncommitted records are delivered again on restart", EXIT_ERROR)
    finally:
        pipeline.close()
        meter.flush()
    print_summary(stats.result, stats.raw_bytes, label="consume")
    click.echo(f"  {stats.flushes} flush(es), {stats.commits} commit(s); stopped: {stats.stopped_by}")
    if stats.result.dead_lettered:
        echo(f"  dead letters: {settings.deadletter_blob_uri or settings.local_deadletter_dir}")


class _ConsumeMetrics:
    """The metrics of ``consume`` (:mod:`shared.metrics`), when the environment names an
    exporter (Application Insights, or OTLP); otherwise every method does nothing."""

    def __init__(self, export: Any) -> None:
        from shared.metrics import Metrics

        self.export = export
        self.metrics = None if export is None else Metrics(export.meter_provider)

    def preflight_failed(self, check: str) -> None:
        """Count a failed start-up check and export it before the command exits."""
        if self.metrics is not None:
            from shared.metrics import CHECK, PREFLIGHT_FAILURES

            self.metrics.add(PREFLIGHT_FAILURES, 1, {CHECK: check})
            self.flush()

    def instrument(self, pipeline: Any, group: str) -> None:
        """Measure the pipeline's batches, dead letters and sink writes."""
        if self.metrics is not None:
            from shared.metering import instrument

            instrument(pipeline, self.metrics, group=group)

    def flush(self) -> None:
        """Export what is pending."""
        if self.export is not None:
            self.export.flush()


def _consume_metrics() -> _ConsumeMetrics:
    from shared.metrics import configure_export

    try:
        return _ConsumeMetrics(configure_export())
    except ConfigError as exc:
        raise CliError(str(exc)) from None


@click.command(epilog=exit_codes_help({
    0: "every record was delivered",
    1: "a record was not delivered (broker unreachable, authentication refused for --auth-timeout)",
    2: "invalid options or settings, or a --file is truncated or unreadable (the records before it "
       "were sent)",
    130: "Ctrl-C: the records sent before it stay sent",
}))  # fmt: skip
@click.option("--topic", "-t", envvar="KAFKA_TOPIC", show_envvar=True, required=True,
              help="Topic (or, with --transport amqp, event hub) to send to.")
@connection_options
@click.option("--transport", type=click.Choice(["kafka", "amqp"]), default="kafka", show_default=True,
              help="kafka: confluent-kafka (any broker, Event Hubs Kafka endpoint); amqp: azure-eventhub.")
@click.option("--records", "-n", "count", default=1000, show_default=True, type=click.IntRange(min=0),
              help="Sample storm events to send (ignored with --file).")
@click.option("--format", "fmt", type=click.Choice(["json", "csv", "tutorial"]), default=None,
              help="Format of the sample storm events: json, csv (22-field StormEvents rows) or tutorial "
                   "(the Kafka tutorial producer's 6-field CSV records). Default: tutorial for the topic "
                   "storm-events (the tutorial's), json for any other.")
@click.option("--file", "files", multiple=True, type=click.Path(exists=True, dir_okay=False, allow_dash=True),
              help="Send this file's records instead (JSON lines, CSV rows, lines; .gz; - for stdin).")
@click.option("--file-format", default=None, help="How to split --file: csv/tsv/psv keep quoted line breaks.")
@click.option("--skip-header", is_flag=True, help="Skip the first line of each --file.")
@click.option("--key", default=None, help="Key of every --file record (sample events are keyed by state).")
@click.option("--header", "header_values", multiple=True, metavar="NAME=VALUE",
              help="Header added to every record (repeatable), e.g. --header Table=Storms.")
@click.option("--rate", default=0.0, show_default=True, type=click.FloatRange(min=0),
              help="Records per second (0: as fast as possible).")
@click.option("--poison-every", default=0, show_default=True, type=click.IntRange(min=0),
              help="Add a poison record after every N-th sample event (0: none).")
@click.option("--seed", default=7, show_default=True, help="Seed of the sample generator.")
@click.option("--partition", default=None, type=click.IntRange(min=0),
              help="Send every record to this partition (default: by key).")
@click.option("--auth-timeout", default=60.0, show_default=True, type=click.FloatRange(min=0), metavar="SECONDS",
              help="Give up (exit 1) once the broker has refused authentication for this long.")
def produce(
    topic: str,
    transport: str,
    count: int,
    fmt: str | None,
    files: tuple[str, ...],
    file_format: str | None,
    skip_header: bool,
    key: str | None,
    header_values: tuple[str, ...],
    rate: float,
    poison_every: int,
    seed: int,
    partition: int | None,
    auth_timeout: float,
    **connection: Any,
) -> None:
    """Send sample storm events (keyed by state, with headers) or a file's records to a topic.

    To Kafka (a local broker from `make kafka`, any Kafka, the Event Hubs Kafka endpoint with an
    Entra ID token or a connection string), or with --transport amqp to an event hub (headers
    become application properties).
    """
    from collections.abc import Iterable

    from shared.kafka.producer import (
        OutMessage,
        ProduceError,
        SampleFormat,
        Sender,
        file_messages,
        produce,
        sample_messages,
    )

    headers = parse_headers(header_values)
    messages: Iterable[OutMessage]
    if files:
        messages = file_messages(
            list(files), fmt=file_format, skip_header=skip_header,
            key=None if key is None else key.encode(), headers=headers,
        )  # fmt: skip
        what = ", ".join(files)
    else:
        # The tutorial's topic gets the tutorial's records, so that the sample route reads them.
        # (click's Choice has checked fmt.)
        sample_format = cast(SampleFormat, fmt or ("tutorial" if topic == "storm-events" else "json"))
        messages = sample_messages(count, fmt=sample_format, seed=seed,
                                   poison_every=poison_every, headers=headers)  # fmt: skip
        what = f"{count:,} storm events ({sample_format})" + (f" + poison every {poison_every}" if poison_every else "")
    sender: Sender
    try:
        if transport == "amqp":
            sender, where = _amqp_sender(topic, connection)
        else:
            from shared.kafka.connection import AuthFailureGuard
            from shared.kafka.producer import KafkaSender

            conn = connection_or_error(**connection)
            client_config = conn.client_config()
            client_config["error_cb"] = AuthFailureGuard(auth_timeout)
            # Idempotence needs broker support the Event Hubs Kafka endpoint does not promise.
            sender = KafkaSender(client_config, topic, partition=partition, idempotent=not conn.eventhubs)
            where = conn.describe()
    except KafkaAdxError as exc:
        raise CliError(str(exc)) from None
    echo(f"sending {what} to {topic} on {where}" + (f" at {rate:g}/s" if rate else ""), err=True)
    try:
        stats = produce(messages, sender, rate=rate or None)
    except InputError as exc:
        fail(f"kafka-adx produce: {exc}", EXIT_ERROR)
    except (ProduceError, KafkaAdxError) as exc:
        fail(f"kafka-adx produce: {exc}", EXIT_PARTIAL)
    per_second = stats.delivered / max(stats.seconds, 1e-9)
    click.echo(
        f"delivered {stats.delivered:,} record(s), {stats.bytes / 1e6:,.2f} MB, in {stats.seconds:.2f} s "
        f"({per_second:,.0f} records/s)"
    )
    if stats.partitions:
        click.echo("  per partition: " + ", ".join(f"{p}: {n:,}" for p, n in sorted(stats.partitions.items())))


def _amqp_sender(topic: str, connection: dict[str, Any]) -> tuple[Any, str]:
    from shared.credentials import make_credential
    from shared.kafka.connection import CONNECTION_STRING_USER, eventhubs_fqdn
    from shared.kafka.producer import EventHubSender

    if connection["username"] == CONNECTION_STRING_USER and connection["password"]:
        return EventHubSender(topic, connection_string=connection["password"]), "AMQP (connection string)"
    namespace = connection["eventhubs_namespace"]
    if not namespace:
        raise ConfigError("--transport amqp needs --eventhubs-namespace (Entra ID) or "
                          "KAFKA_USERNAME=$ConnectionString with the connection string in KAFKA_PASSWORD")  # fmt: skip
    fqdn = eventhubs_fqdn(namespace)
    credential = make_credential(connection["credential"], connection["client_id"])
    return EventHubSender(topic, namespace=fqdn, credential=credential), f"AMQP {fqdn} (Entra ID)"
