"""``kafka-adx import-connect`` without a cluster: reading Connect's JSON and ``.properties``
files, the translation of every setting (or the note saying why not), the files written, and
``validate`` pointing a Connect file at ``import-connect``. Reading a cluster (the stand-in) is
in tests/integration/adx/test_import_connect.py."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from shared.cli.app import main
from shared.config import load_config, parse_config
from shared.errors import ConfigError
from shared.ops.connect import SINK_PROPERTIES, load_connect, parse_properties, translate
from shared.ops.connect_files import OUTPUT_FILES, render_env, render_ingestion, render_local_settings
from shared.ops.connect_schema import mapping_from_spec
from shared.ops.doctor import spec_from_entries

REPO = Path(__file__).resolve().parents[3]

# The `adx-sink-config.json` block of the ADX Kafka tutorial, verbatim
# (learn.microsoft.com: "Ingest data from Apache Kafka into Azure Data Explorer").
TUTORIAL = """{
    "name": "storm",
    "config": {
        "connector.class": "com.microsoft.azure.kusto.kafka.connect.sink.KustoSinkConnector",
        "flush.size.bytes": 10000,
        "flush.interval.ms": 10000,
        "tasks.max": 1,
        "topics": "storm-events",
        "kusto.tables.topics.mapping": "[{'topic': 'storm-events','db': '<enter database name>', 'table': 'Storms','format': 'csv', 'mapping':'Storms_CSV_Mapping'}]",
        "aad.auth.authority": "<enter tenant ID>",
        "aad.auth.appid": "<enter application ID>",
        "aad.auth.appkey": "<enter client secret>",
        "kusto.ingestion.url": "https://ingest-<name of cluster>.<region>.kusto.windows.net",
        "kusto.query.url": "https://<name of cluster>.<region>.kusto.windows.net",
        "key.converter": "org.apache.kafka.connect.storage.StringConverter",
        "value.converter": "org.apache.kafka.connect.storage.StringConverter"
    }
}
"""
TUTORIAL_SECRET = "<enter client secret>"

APP_KEY = "s3cr3t-app-key-Zq8~value"
JAAS_PASSWORD = "kafka-pa55word-value"
MI_CLIENT = "11111111-2222-3333-4444-555555555555"

SEVERAL = {
    "name": "telemetry",
    "config": {
        "connector.class": "com.microsoft.azure.kusto.kafka.connect.sink.KustoSinkConnector",
        "topics": "orders,clicks,metrics,audit",
        "kusto.tables.topics.mapping": json.dumps([
            {"topic": "orders", "db": "Sales", "table": "Orders", "format": "csv", "mapping": "OrdersCsv"},
            {"topic": "clicks", "db": "Web", "table": "Clicks", "format": "json", "mapping": "ClicksJson",
             "streaming": "true"},
            {"topic": "metrics", "db": "Web", "table": "Metrics", "format": "json", "streaming": True},
            {"topic": "audit", "db": "Web", "table": "Audit", "format": "avro", "mapping": "AuditAvro"},
        ]),
        "kusto.ingestion.url": "https://ingest-mycluster.westeurope.kusto.windows.net/",
        "kusto.query.url": "https://mycluster.westeurope.kusto.windows.net",
        "aad.auth.strategy": "managed_identity",
        "aad.auth.appid": MI_CLIENT,
        "aad.auth.appkey": APP_KEY,
        "behavior.on.error": "log",
        "errors.tolerance": "all",
        "errors.deadletterqueue.topic.name": "connect-dlq",
        "errors.deadletterqueue.context.headers.enable": "true",
        "misc.deadletterqueue.bootstrap.servers": "broker:9092",
        "misc.deadletterqueue.topic.name": "kusto-misc-dlq",
        "misc.deadletterqueue.sasl.jaas.config": f'PlainLoginModule required username="u" password="{JAAS_PASSWORD}";',
        "errors.retry.max.time.ms": 60000,
        "errors.retry.backoff.time.ms": 5000,
        "consumer.override.bootstrap.servers": "pkc-1.westeurope.azure.confluent.cloud:9092",
        "consumer.override.security.protocol": "SASL_SSL",
        "consumer.override.sasl.mechanism": "PLAIN",
        "consumer.override.sasl.jaas.config": f'PlainLoginModule required username="key" password="{JAAS_PASSWORD}";',
        "consumer.override.auto.offset.reset": "earliest",
        "tasks.max": 6,
        "transforms": "unwrap",
        "transforms.unwrap.type": "org.apache.kafka.connect.transforms.ExtractField$Value",
        "value.converter": "org.apache.kafka.connect.json.JsonConverter",
        "value.converter.schemas.enable": "false",
    },
}

PROPERTIES = r"""# The sink's sample, in .properties form
name=storm-props
connector.class=com.microsoft.azure.kusto.kafka.connect.sink.KustoSinkConnector
tasks.max=1
topics=storm-events
kusto.ingestion.url=https://ingest-mycluster.westeurope.kusto.windows.net
kusto.tables.topics.mapping=[{'topic': 'storm-events','db': 'Weather', \
    'table': 'Storms','format': 'csv', 'mapping':'Storms_CSV_Mapping'}]
aad.auth.appid : 99999999-8888-7777-6666-555555555555
aad.auth.authority   contoso.onmicrosoft.com
aad.auth.appkey=props-secret\=value
flush.interval.ms=500
proxy.host=proxy.corp
proxy.port=3128
! a comment of the other kind
"""


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _outputs(out: object) -> str:
    return render_ingestion(out) + render_env(out) + render_local_settings(out)  # type: ignore[arg-type]


def test_the_tutorials_config_becomes_a_valid_ingestion_file_and_settings(tmp_path: Path) -> None:
    connect = load_connect(_write(tmp_path, "adx-sink-config.json", TUTORIAL))
    out = translate(connect, database="Weather")
    config = parse_config(out.ingestion, "imported")
    route = config.routes[0]
    assert (route.topic, route.table, route.format, route.mapping, route.apply_mapping) == \
        ("storm-events", "Storms", "csv", "Storms_CSV_Mapping", "server")
    assert config.database == "Weather"
    # No cluster: references to the table and the mapping that stay in the cluster.
    assert config.tables["Storms"].external and route.mapping_ref == "external"
    assert out.ingestion["tables"] == {"Storms": {"external": True}}
    assert out.settings["KAFKA_CONSUMER_GROUP"] == "connect-storm"
    assert out.settings["KAFKA_TOPIC"] == "storm-events"
    assert out.settings["ADX_AUTH"] == "default"
    assert "ADX_INGEST_URI" not in out.settings and "ADX_INGEST_URI" in out.pending  # a placeholder
    assert "AZURE_CLIENT_SECRET" in out.pending
    assert out.consume_args == ["--topic", "storm-events", "--group", "connect-storm",
                                "--batch-bytes", "10000", "--batch-wait", "10"]  # fmt: skip
    assert out.host_json == {"extensions.eventHubs.maxWaitTime": "00:00:10"}
    noted = {n.property for n in out.notes}
    assert {"aad.auth.appkey", "behavior.on.error", "kusto.ingestion.url", "tables.Storms"} <= noted
    assert TUTORIAL_SECRET not in _outputs(out)


def test_a_placeholder_database_needs_the_database_option(tmp_path: Path) -> None:
    connect = load_connect(_write(tmp_path, "adx-sink-config.json", TUTORIAL))
    with pytest.raises(ConfigError) as err:
        translate(connect)
    assert str(err.value) == (f"{tmp_path / 'adx-sink-config.json'}: config.kusto.tables.topics.mapping[0].db: "
                              "a placeholder ('<enter database name>'): pass --database NAME")


def test_several_topics_streaming_and_dead_letter_queues(tmp_path: Path) -> None:
    connect = load_connect(_write(tmp_path, "telemetry.json", json.dumps(SEVERAL)))
    out = translate(connect)
    data = out.ingestion
    assert data["database"] == "Web"  # the database most routes name
    assert data["routes"] == [
        {"topic": "orders", "database": "Sales", "table": "Orders", "format": "csv", "mapping": "OrdersCsv",
         "apply_mapping": "server", "mapping_ref": "external"},
        {"topic": "clicks", "table": "Clicks", "format": "multijson", "mapping": "ClicksJson",
         "apply_mapping": "server", "ingestion": "streaming", "mapping_ref": "external"},
        {"topic": "metrics", "table": "Metrics", "format": "multijson", "ingestion": "streaming"},
    ]  # fmt: skip
    assert data["tables"] == {name: {"external": True} for name in ("Orders", "Clicks", "Metrics")}
    parse_config(data, "imported")
    notes = {n.property: n.reason for n in out.notes}
    assert "format 'avro' has no kafka-adx equivalent" in notes["kusto.tables.topics.mapping[3]"]
    assert "topic 'audit' has no route" in notes["topics"]
    assert "not something kafka-adx writes" in notes["errors.deadletterqueue.topic.name"]
    assert "not something kafka-adx writes" in notes["misc.deadletterqueue.topic.name"]
    assert notes["misc.deadletterqueue.bootstrap.servers"] == "not translated: no dead-letter topic"
    assert "behavior.on.error" not in notes  # log: what kafka-adx does anyway
    assert "tasks.max" in notes and "transforms" in notes and "transforms.unwrap.type" in notes
    assert "DEADLETTER_BLOB_URI" in out.pending and out.settings["LOCAL_DEADLETTER_DIR"] == ".local/deadletter"
    assert out.settings["ADX_AUTH"] == "managed-identity" and out.settings["AZURE_CLIENT_ID"] == MI_CLIENT
    assert out.settings["ADX_INGEST_URI"] == "https://ingest-mycluster.westeurope.kusto.windows.net"
    assert out.settings["ADX_ENGINE_URI"] == "https://mycluster.westeurope.kusto.windows.net"
    assert out.settings["KAFKA_BROKERS"] == "pkc-1.westeurope.azure.confluent.cloud:9092"
    assert (out.settings["KAFKA_PROTOCOL"], out.settings["KAFKA_SASL_MECHANISM"]) == ("SASL_SSL", "PLAIN")
    assert {"KAFKA_USERNAME", "KAFKA_PASSWORD"} <= set(out.pending) and "KAFKA_BROKERS" not in out.pending
    assert out.settings["RETRY_MAX_COUNT"] == "12"
    assert out.settings["RETRY_MIN_INTERVAL"] == out.settings["RETRY_MAX_INTERVAL"] == "00:00:05"
    assert out.settings["KAFKA_CONSUMER_GROUP"] == "connect-telemetry"
    assert "--from" in out.consume_args and out.host_json["extensions.kafka.autoOffsetReset"] == "Earliest"
    # The sink's flush defaults when the file sets none: 1 MB, 30 s.
    assert out.consume_args[4:8] == ["--batch-bytes", "1048576", "--batch-wait", "30"]
    text = _outputs(out)
    assert APP_KEY not in text and JAAS_PASSWORD not in text


def test_a_properties_file(tmp_path: Path) -> None:
    connect = load_connect(_write(tmp_path, "storm.properties", PROPERTIES))
    assert connect.name == "storm-props" and connect.prefix == ""
    assert connect.properties["aad.auth.appkey"] == "props-secret=value"
    assert connect.properties["aad.auth.authority"] == "contoso.onmicrosoft.com"
    out = translate(connect)
    assert out.ingestion["routes"][0]["table"] == "Storms" and out.ingestion["database"] == "Weather"
    assert out.settings["AZURE_CLIENT_ID"] == "99999999-8888-7777-6666-555555555555"
    assert out.settings["AZURE_TENANT_ID"] == "contoso.onmicrosoft.com"
    assert out.settings["HTTPS_PROXY"] == "http://proxy.corp:3128"
    assert "ADX_ENGINE_URI" not in out.settings  # derived from the ingest URI, as Settings does
    assert out.consume_args[out.consume_args.index("--batch-wait") + 1] == "0.5"
    assert out.host_json["extensions.eventHubs.maxWaitTime"] == "00:00:01"  # rounded up, never 0
    assert "props-secret" not in _outputs(out)


def test_properties_syntax() -> None:
    assert parse_properties("a=1\nb : two\nc three\n  # no\nd=x\\\n   y\ne=\\u0041\\tB\nf\n") == {
        "a": "1", "b": "two", "c": "three", "d": "xy", "e": "A\tB", "f": ""}  # fmt: skip


@pytest.mark.parametrize(("config", "error"), [
    ({"connector.class": "io.confluent.connect.s3.S3SinkConnector"}, "config.connector.class: "
     "io.confluent.connect.s3.S3SinkConnector is not the Kusto sink"),
    ({}, "config.kusto.tables.topics.mapping: required"),
    ({"kusto.tables.topics.mapping": "[{'topic': 't'"}, "config.kusto.tables.topics.mapping: not a JSON list"),
    ({"kusto.tables.topics.mapping": "[{'topic': 't', 'db': 'd'}]"}, "config.kusto.tables.topics.mapping[0].table: required"),
    ({"kusto.tables.topics.mapping": "[{'topic': 't', 'db': 'd', 'table': 'T', 'streaming': 'yes'}]"},
     "config.kusto.tables.topics.mapping[0].streaming: must be true or false"),
    ({"kusto.tables.topics.mapping": "[{'topic': 't', 'db': 'd', 'table': 'T'}]", "flush.size.bytes": "1MB"},
     "config.flush.size.bytes: must be a whole number"),
    ({"kusto.tables.topics.mapping": "[{'topic': 't', 'db': 'd', 'table': 'T'}]", "aad.auth.strategy": "kerberos"},
     "config.aad.auth.strategy: 'kerberos' is not a strategy of the sink"),
])  # fmt: skip
def test_errors_name_the_file_and_the_field(tmp_path: Path, config: dict[str, str], error: str) -> None:
    path = _write(tmp_path, "c.json", json.dumps({"name": "n", "config": config}))
    with pytest.raises(ConfigError) as err:
        translate(load_connect(path))
    assert str(err.value).startswith(f"{path}: {error}"), str(err.value)


def test_a_mapping_in_the_legacy_syntax_becomes_the_ingestion_files() -> None:
    # What the tutorial's `.create table Storms ingestion csv mapping` stores.
    legacy = [{"Name": "StartTime", "datatype": "datetime", "Ordinal": 0},
              {"Name": "EventId", "datatype": "int", "Ordinal": 2}]  # fmt: skip
    mapping, why = mapping_from_spec(spec_from_entries("Csv", legacy))
    assert why is None
    assert mapping == {"kind": "csv", "columns": [{"column": "StartTime", "Properties": {"Ordinal": "0"}},
                                                  {"column": "EventId", "Properties": {"Ordinal": "2"}}]}  # fmt: skip
    json_legacy = [{"column": "a", "path": "$.a", "datatype": "string"}, {"Column": "b", "Path": "$.b",
                                                                         "transform": "DateTimeFromUnixSeconds"}]
    mapping, _ = mapping_from_spec(spec_from_entries("Json", json_legacy))
    assert mapping is not None and mapping["columns"][1] == {
        "column": "b", "Properties": {"Path": "$.b", "Transform": "DateTimeFromUnixSeconds"}}
    assert mapping_from_spec(spec_from_entries("Avro", legacy))[1] == \
        "a avro mapping (the ingestion file has csv and json mappings)"


def test_the_command_writes_three_files_refuses_to_overwrite_and_prints_no_secret(tmp_path: Path) -> None:
    source = _write(tmp_path, "telemetry.json", json.dumps(SEVERAL))
    out_dir = tmp_path / "out"
    runner = CliRunner()
    first = runner.invoke(main, ["import-connect", str(source), "--out", str(out_dir), "--no-cluster"])
    assert first.exit_code == 1, first.output  # written, with notes
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(OUTPUT_FILES)
    assert "kafka-adx consume --topic orders,clicks,metrics,audit --group connect-telemetry" in first.stdout
    assert "import-connect: " + str(source) + ": kusto.tables.topics.mapping[3]: " in first.stderr
    load_config(out_dir / "ingestion.yaml")
    env = (out_dir / "kafka-adx.env").read_text()
    assert "KAFKA_CONSUMER_GROUP=connect-telemetry\n" in env and "\n# AZURE_CLIENT_SECRET" not in env
    assert re.search(r"^# - tasks\.max: not translated", env, re.MULTILINE)
    fragment = json.loads((out_dir / "local.settings.fragment.json").read_text())
    assert fragment["Values"]["ADX_AUTH"] == "managed-identity"
    written = "".join(p.read_text() for p in out_dir.iterdir())
    for secret in (APP_KEY, JAAS_PASSWORD):
        assert secret not in written and secret not in first.stdout and secret not in first.stderr

    again = runner.invoke(main, ["import-connect", str(source), "--out", str(out_dir), "--no-cluster"])
    assert again.exit_code == 2
    assert "already exist(s); pass --force to overwrite" in again.stderr
    forced = runner.invoke(main, ["import-connect", str(source), "--out", str(out_dir), "--no-cluster", "--force"])
    assert forced.exit_code == 1, forced.output


def test_the_ingestion_file_comments_list_every_note(tmp_path: Path) -> None:
    out = translate(load_connect(_write(tmp_path, "t.json", TUTORIAL)), database="Weather")
    text = render_ingestion(out)
    comments = " ".join(line[2:].strip() for line in text.splitlines() if line.startswith("#"))
    for note in out.notes:
        assert " ".join(note.line().split()) in comments
    assert yaml.safe_load(text) == out.ingestion


def test_validate_on_a_connect_file_says_what_it_is(tmp_path: Path) -> None:
    source = _write(tmp_path, "adx-sink-config.json", TUTORIAL)
    result = CliRunner().invoke(main, ["validate", "--config", str(source)])
    assert result.exit_code == 1
    assert result.stderr.strip() == (f"{source}: a Kafka Connect Kusto sink configuration 'storm', not an ingestion "
                                     f"file: `kafka-adx import-connect {source}` translates it into one (and into settings)")
    props = _write(tmp_path, "storm.properties", PROPERTIES)
    assert "kafka-adx import-connect" in CliRunner().invoke(main, ["validate", "--config", str(props)]).stderr


# The sink's README ("5. Sink properties") lists these; KustoSinkConfig adds aad.auth.accesstoken
# and tempdir.path.
_README_LIST = """connector.class topics kusto.ingestion.url kusto.query.url aad.auth.strategy aad.auth.authority
aad.auth.appid aad.auth.appkey kusto.tables.topics.mapping key.converter value.converter
value.converter.schema.registry.url value.converter.schemas.enable tasks.max flush.size.bytes flush.interval.ms
behavior.on.error errors.retry.max.time.ms errors.retry.backoff.time.ms errors.deadletterqueue.bootstrap.servers
errors.deadletterqueue.topic.name errors.deadletterqueue.security.protocol errors.deadletterqueue.sasl.mechanism
errors.deadletterqueue.sasl.jaas.config misc.deadletterqueue.bootstrap.servers misc.deadletterqueue.topic.name
misc.deadletterqueue.security.protocol misc.deadletterqueue.sasl.mechanism misc.deadletterqueue.sasl.jaas.config
consumer.override.bootstrap.servers consumer.override.security.protocol consumer.override.sasl.mechanism
consumer.override.sasl.jaas.config consumer.override.sasl.kerberos.service.name consumer.override.auto.offset.reset
consumer.override.max.poll.interval.ms kusto.validation.table.enable proxy.host proxy.port aad.auth.accesstoken
tempdir.path"""
README_PROPERTIES = frozenset(_README_LIST.split())


def test_every_sink_property_is_translated_or_explained_and_documented() -> None:
    assert set(README_PROPERTIES) <= set(SINK_PROPERTIES)
    doc = (REPO / "docs" / "migrate-from-kafka-connect.md").read_text()
    for prop in SINK_PROPERTIES:
        assert f"| `{prop}` |" in doc, f"docs/migrate-from-kafka-connect.md does not list {prop}"
    assert "migrate-from-kafka-connect.md" in (REPO / "docs" / "kafka.md").read_text()
