"""Reading a Kafka Connect Kusto sink configuration and translating it into kafka-adx's terms:
the routes of an ingestion file, the settings of the function app and of ``kafka-adx consume``,
and a note for every property that has no equivalent (``kafka-adx import-connect``).

The input is what Connect's REST API takes (``{"name": ..., "config": {...}}``, or the bare
``config`` object) or a ``.properties`` file. The meaning of every sink property and its default
is the sink's own (Azure/kafka-sink-azure-kusto: README "Sink properties" and
``KustoSinkConfig``); :data:`SINK_PROPERTIES` says what each one becomes here, and
docs/migrate-from-kafka-connect.md is the same table for readers.

Secrets are never copied: ``aad.auth.appkey``, ``aad.auth.accesstoken``, JAAS configurations and
passwords become a pointer to the setting that must hold them (:attr:`Translation.pending`).
The ingestion file's tables come from :mod:`shared.ops.connect_schema`, the output files from
:mod:`shared.ops.connect_files`.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.errors import ConfigError

KUSTO_SINK_CLASS = "com.microsoft.azure.kusto.kafka.connect.sink.KustoSinkConnector"

SINK_FORMATS: dict[str, str | None] = {
    "csv": "csv", "tsv": "tsv", "psv": "psv", "scsv": "scsv", "sohsv": "sohsv", "txt": "txt", "raw": "raw",
    # The sink ingests every JSON flavour as multijson (KustoSinkTask.getTopicsToIngestionProps):
    # a record holding an array of objects gives one row per object there, and here.
    "json": "multijson", "singlejson": "multijson", "multijson": "multijson",
    "avro": None, "apacheavro": None, "parquet": None, "orc": None, "tsve": None, "w3clogfile": None,
}  # fmt: skip
"""The sink's ``format`` values (any data format of the ADX Java SDK) and the format of a route
here; None: kafka-adx has no such format (the route is left out, with a note)."""

SECRET_PROPERTIES = re.compile(r"(^aad\.auth\.appkey$|^aad\.auth\.accesstoken$|jaas\.config$|password$|"
                               r"user\.info$|secret$|\.key$)", re.IGNORECASE)  # fmt: skip
"""Properties whose value is a credential: never copied, never printed."""

SINK_PROPERTIES: dict[str, str] = {
    "name": "the consumer group connect-<name> (KAFKA_CONSUMER_GROUP, consume --group): consume resumes at the connector's committed offsets",
    "connector.class": "checked: must be the Kusto sink",
    "topics": "KAFKA_TOPIC (the topics consumed); each needs a route",
    "topics.regex": "consume --topic ^regex (the function app's Kafka trigger takes names only)",
    "kusto.ingestion.url": "ADX_INGEST_URI",
    "kusto.query.url": "ADX_ENGINE_URI, and the cluster whose tables and mappings fill the ingestion file",
    "aad.auth.strategy": "ADX_AUTH: application and workload_identity -> default (DefaultAzureCredential), managed_identity -> managed-identity, az_dev_token -> default (az login)",
    "aad.auth.authority": "AZURE_TENANT_ID (read by azure-identity's environment credential)",
    "aad.auth.appid": "AZURE_CLIENT_ID",
    "aad.auth.appkey": "not copied: AZURE_CLIENT_SECRET, set in your shell or as a Key Vault reference",
    "aad.auth.accesstoken": "not copied: a token expires; sign in with az login (ADX_AUTH=default)",
    "kusto.tables.topics.mapping": "routes: topic, database (db), table, format, mapping, ingestion: streaming",
    "kusto.validation.table.enable": "not needed: consume and the function app check tables and mappings at start (preflight); kafka-adx doctor shows drift",
    "key.converter": "not needed: kafka-adx reads keys as bytes (ingested only by a mapping with Metadata: key)",
    "value.converter": "StringConverter, ByteArrayConverter, JsonConverter without schemas: the bytes as they are; schema-registry converters: not decoded",
    "value.converter.schemas.enable": "JsonConverter with schemas: the {schema, payload} envelope is not unwrapped",
    "value.converter.schema.registry.url": "not translated: kafka-adx does not read a schema registry",
    "tasks.max": "not translated: run one consume per partition at most, or let the function app scale",
    "flush.size.bytes": "consume --batch-bytes (the function app: the batch the host hands over, host.json extensions.kafka.maxBatchSize / eventHubs.maxEventBatchSize count records)",
    "flush.interval.ms": "consume --batch-wait (seconds); host.json extensions.eventHubs.maxWaitTime for the Event Hubs trigger",
    "tempdir.path": "not needed: batches are built in memory",
    "behavior.on.error": "log and ignore: what kafka-adx does (dead-letter and go on); fail: not translated (kafka-adx never stops on a record)",
    "errors.tolerance": "all: what kafka-adx does; none: not translated (kafka-adx never stops on a record)",
    "errors.log.enable": "not needed: kafka-adx logs counts and dead-letter reasons, never record contents",
    "errors.log.include.messages": "not translated: kafka-adx never logs record contents",
    "errors.retry.max.time.ms": "RETRY_MAX_COUNT = max time / backoff (the function app)",
    "errors.retry.backoff.time.ms": "RETRY_MIN_INTERVAL = RETRY_MAX_INTERVAL (the sink's backoff is constant)",
    "errors.deadletterqueue.topic.name": "DEADLETTER_BLOB_URI / LOCAL_DEADLETTER_DIR: a Kafka dead-letter topic is not something kafka-adx writes",
    "errors.deadletterqueue.topic.replication.factor": "not needed: no dead-letter topic",
    "errors.deadletterqueue.context.headers.enable": "not needed: every dead letter carries its topic, partition, offset and reason",
    "errors.deadletterqueue.bootstrap.servers": "not translated: no dead-letter topic",
    "errors.deadletterqueue.security.protocol": "not translated: no dead-letter topic",
    "errors.deadletterqueue.sasl.mechanism": "not translated: no dead-letter topic",
    "errors.deadletterqueue.sasl.jaas.config": "not copied (a credential): no dead-letter topic",
    "misc.deadletterqueue.bootstrap.servers": "not translated: no dead-letter topic (dead letters go to DEADLETTER_BLOB_URI / LOCAL_DEADLETTER_DIR)",
    "misc.deadletterqueue.topic.name": "DEADLETTER_BLOB_URI / LOCAL_DEADLETTER_DIR instead of a topic",
    "misc.deadletterqueue.security.protocol": "not translated: no dead-letter topic",
    "misc.deadletterqueue.sasl.mechanism": "not translated: no dead-letter topic",
    "misc.deadletterqueue.sasl.jaas.config": "not copied (a credential): no dead-letter topic",
    "consumer.override.bootstrap.servers": "KAFKA_BROKERS",
    "consumer.override.security.protocol": "KAFKA_PROTOCOL",
    "consumer.override.sasl.mechanism": "KAFKA_SASL_MECHANISM",
    "consumer.override.sasl.jaas.config": "not copied (a credential): KAFKA_USERNAME and KAFKA_PASSWORD",
    "consumer.override.sasl.kerberos.service.name": "consume -X sasl.kerberos.service.name=...",
    "consumer.override.auto.offset.reset": "consume --from; host.json extensions.kafka.autoOffsetReset",
    "consumer.override.max.poll.interval.ms": "consume -X max.poll.interval.ms=...",
    "consumer.override.group.id": "KAFKA_CONSUMER_GROUP, consume --group (instead of connect-<name>)",
    "proxy.host": "HTTPS_PROXY (with proxy.port), honoured by the Azure SDKs",
    "proxy.port": "HTTPS_PROXY (with proxy.host)",
    "header.converter": "not needed: headers are read as bytes",
    "transforms": "not translated: the sink does not support transforms either; an ADX update policy can",
    "predicates": "not translated (goes with transforms)",
    "config.action.reload": "not needed: a restart reads new settings",
}  # fmt: skip
"""Every sink property (and the Connect properties a sink configuration carries) and what it
becomes; ``transforms.*``, ``predicates.*``, ``key.converter.*`` and ``value.converter.*`` count
as their prefix."""

_PREFIXED = ("transforms", "predicates", "key.converter", "value.converter", "header.converter")
_SCHEMA_REGISTRY_CONVERTERS = ("AvroConverter", "ProtobufConverter", "JsonSchemaConverter")


def _placeholder(value: str | None) -> bool:
    """Whether a value is unset or a tutorial's ``<enter ...>`` placeholder."""
    return value is None or not value.strip() or bool(re.search(r"<[^>]*>", value))


# --------------------------------------------------------------------------------------------
# Reading the file
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConnectConfig:
    """A connector configuration as read from its file."""

    source: str
    """The file it was read from (errors name it)."""
    name: str | None
    """The connector's name (None when the file has only the ``config`` object)."""
    properties: dict[str, str]
    """Every property, values as strings."""
    prefix: str = ""
    """``config.`` when the properties sit under ``config`` (so errors name the JSON path)."""

    def where(self, prop: str) -> str:
        """``file: config.prop``: where a property is, for errors and notes."""
        return f"{self.source}: {self.prefix}{prop}"

    def get(self, prop: str) -> str | None:
        """A property's value, stripped; None when unset or empty."""
        value = self.properties.get(prop)
        return value.strip() or None if value is not None else None


def parse_properties(text: str) -> dict[str, str]:
    """A Java ``.properties`` text: ``key=value``, ``key: value`` or ``key value``; ``#`` and
    ``!`` comments; a trailing backslash continues the line; ``\\t \\n \\uXXXX`` escapes."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        # Leading white space is dropped on every line, continuation lines included (Java's rule).
        line = raw.lstrip()
        if not pending and (not line or line[0] in "#!"):
            continue
        # An odd number of trailing backslashes continues the line on the next one.
        trailing = len(line) - len(line.rstrip("\\"))
        if trailing % 2 == 1:
            pending += line[:-1]
            continue
        logical.append(pending + line)
        pending = ""
    if pending:
        logical.append(pending)
    out: dict[str, str] = {}
    for line in logical:
        match = re.match(r"((?:\\.|[^=:\s\\])*)\s*[=:\s]?\s*(.*)$", line, re.DOTALL)
        if match is None or not match.group(1):
            continue
        out[_unescape(match.group(1))] = _unescape(match.group(2))
    return out


def _unescape(text: str) -> str:
    def one(match: re.Match[str]) -> str:
        char = match.group(1)
        if char.startswith("u"):
            return chr(int(char[1:], 16))
        return {"t": "\t", "n": "\n", "r": "\r", "f": "\f"}.get(char, char)

    return re.sub(r"\\(u[0-9a-fA-F]{4}|.)", one, text)


def _as_text(value: Any) -> str:
    # Connect's JSON allows numbers and booleans for any property; they mean their text.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return "" if value is None else str(value)


def load_connect(path: str | Path) -> ConnectConfig:
    """Read a connector configuration: Connect's REST JSON (``{"name", "config"}`` or the bare
    ``config`` object) or a ``.properties`` file. ConfigError names the file (and the field)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the file: {exc}") from None
    stripped = text.lstrip()
    if stripped.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ConfigError(f"{path}: not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: a connector configuration is a JSON object")
        if isinstance(data.get("config"), dict):
            props = {str(k): _as_text(v) for k, v in data["config"].items()}
            name = _as_text(data.get("name")) or props.get("name") or None
            return ConnectConfig(str(path), name, props, "config.")
        props = {str(k): _as_text(v) for k, v in data.items()}
        return ConnectConfig(str(path), props.get("name") or None, props)
    props = parse_properties(text)
    return ConnectConfig(str(path), props.get("name") or None, props)


def describe_connect_file(path: str | Path) -> str | None:
    """What a file is when it is a Kafka Connect Kusto sink configuration (for ``kafka-adx
    validate``), or None when it does not look like one."""
    try:
        connect = load_connect(path)
    except ConfigError:
        return None
    cls = connect.get("connector.class") or ""
    if cls == KUSTO_SINK_CLASS or cls.endswith("KustoSinkConnector") or "kusto.tables.topics.mapping" in connect.properties:
        name = f" '{connect.name}'" if connect.name else ""
        return f"a Kafka Connect Kusto sink configuration{name}"
    # Another connector's configuration: import-connect would refuse it, so validate's own
    # errors are the better answer.
    return None


# --------------------------------------------------------------------------------------------
# kusto.tables.topics.mapping
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SinkRoute:
    """One entry of ``kusto.tables.topics.mapping``."""

    index: int
    topic: str
    database: str | None
    table: str
    format: str | None
    """As written (lower case), None when absent."""
    mapping: str | None
    streaming: bool


def _single_quotes_to_json(text: str) -> str:
    """Jackson's ALLOW_SINGLE_QUOTES dialect (what the sink parses, and what its docs and the
    tutorial write: ``[{'topic': 't', ...}]``) as plain JSON: single-quoted strings become
    double-quoted ones; double-quoted strings stay."""
    out: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char in "'\"":
            quote, j, buf = char, i + 1, []
            while j < len(text) and text[j] != quote:
                if text[j] == "\\" and j + 1 < len(text):
                    buf.append(text[j : j + 2] if text[j + 1] != "'" else "'")
                    j += 2
                    continue
                buf.append('\\"' if text[j] == '"' else text[j])
                j += 1
            out.append('"' + "".join(buf) + '"')
            i = j + 1
            continue
        out.append(char)
        i += 1
    return "".join(out)


def parse_topics_mapping(connect: ConnectConfig) -> list[SinkRoute]:
    """The routes of ``kusto.tables.topics.mapping``; ConfigError names the file and the entry."""
    prop = "kusto.tables.topics.mapping"
    where = connect.where(prop)
    text = connect.get(prop)
    if text is None:
        raise ConfigError(f"{where}: required (the sink's topic-to-table mapping): nothing to translate")
    try:
        data = json.loads(_single_quotes_to_json(text))
    except ValueError as exc:
        raise ConfigError(f"{where}: not a JSON list (single quotes allowed): {exc}") from None
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list) or not data:
        raise ConfigError(f"{where}: must be a non-empty list of {{topic, db, table, format, mapping, streaming}}")
    routes: list[SinkRoute] = []
    for index, entry in enumerate(data):
        at = f"{where}[{index}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{at}: must be an object with topic, db and table")
        values = {str(k).lower(): v for k, v in entry.items()}
        for required in ("topic", "table"):
            if not _as_text(values.get(required)).strip():
                raise ConfigError(f"{at}.{required}: required")
        streaming = _as_text(values.get("streaming")).strip().lower()
        if streaming not in ("", "true", "false"):
            raise ConfigError(f"{at}.streaming: must be true or false")
        fmt = _as_text(values.get("format")).strip().lower() or None
        routes.append(SinkRoute(
            index=index,
            topic=_as_text(values["topic"]).strip(),
            database=_as_text(values.get("db")).strip() or None,
            table=_as_text(values["table"]).strip(),
            format=fmt,
            mapping=_as_text(values.get("mapping")).strip() or None,
            streaming=streaming == "true",
        ))  # fmt: skip
    return routes


# --------------------------------------------------------------------------------------------
# The translation
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Note:
    """A property that was not (or not fully) translated, and why. Never holds a secret value."""

    property: str
    reason: str

    def line(self) -> str:
        """``property: reason``."""
        return f"{self.property}: {self.reason}"


@dataclass
class Translation:
    """What a connector configuration becomes."""

    connect: ConnectConfig
    routes: list[SinkRoute]
    """The sink's routes, as read."""
    ingestion: dict[str, Any] = field(default_factory=dict)
    """The ingestion file's data (database, tables, routes)."""
    settings: dict[str, str] = field(default_factory=dict)
    """Settings with their values (for the ``.env`` file and ``local.settings.json``)."""
    pending: dict[str, str] = field(default_factory=dict)
    """Settings that need a value kafka-adx cannot (or must not) copy: name -> where it comes from."""
    consume_args: list[str] = field(default_factory=list)
    """The ``kafka-adx consume`` options that reproduce the consumer's behaviour."""
    host_json: dict[str, str] = field(default_factory=dict)
    """host.json settings of the function app (``extensions.eventHubs.maxWaitTime`` ...) to set by hand."""
    notes: list[Note] = field(default_factory=list)
    """What was not translated, and why."""
    secrets: list[str] = field(default_factory=list)
    """Values of secret properties: for redaction only, never written."""
    cluster_read: bool = False
    """Whether the tables and mappings were read from a cluster."""

    def note(self, prop: str, reason: str) -> None:
        """Record a property that was not translated."""
        self.notes.append(Note(prop, reason))


def engine_uri_of(connect: ConnectConfig) -> str | None:
    """The cluster's engine URI the file names: ``kusto.query.url``, else the ingestion URL
    without ``ingest-``; None when neither is set (or both are placeholders)."""
    engine = connect.get("kusto.query.url")
    if not _placeholder(engine):
        return (engine or "").rstrip("/")
    ingest = connect.get("kusto.ingestion.url")
    if not _placeholder(ingest) and "://ingest-" in (ingest or ""):
        return (ingest or "").rstrip("/").replace("://ingest-", "://", 1)
    return None


def _seconds_text(ms: int) -> str:
    # hh:mm:ss, rounded up: the settings and host.json take whole seconds, and rounding down
    # could give 00:00:00 (no wait at all).
    seconds = max(1, math.ceil(ms / 1000))
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _int(connect: ConnectConfig, prop: str, default: int) -> int:
    value = connect.get(prop)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(f"{connect.where(prop)}: must be a whole number, got {value!r}") from None
    if number < 1:
        raise ConfigError(f"{connect.where(prop)}: must be at least 1")
    return number


def translate(connect: ConnectConfig, *, database: str | None = None, run: Any = None) -> Translation:
    """Translate a connector configuration. ``database`` fills routes whose ``db`` is missing or
    a placeholder; ``run`` (a :data:`shared.ops.doctor.Runner` on the cluster's engine) reads
    the tables and mappings, without it they are external references. ConfigError names
    the file and the field of anything that cannot be translated at all."""
    from shared.ops.connect_schema import declare_tables

    cls = connect.get("connector.class")
    if cls is not None and not cls.endswith("KustoSinkConnector"):
        raise ConfigError(f"{connect.where('connector.class')}: {cls} is not the Kusto sink ({KUSTO_SINK_CLASS})")
    out = Translation(connect, parse_topics_mapping(connect))
    out.secrets = [v for k, v in connect.properties.items() if SECRET_PROPERTIES.search(k) and v.strip()]
    _routes(out, database)
    _topics_and_group(out)
    _adx(out)
    _batching(out)
    _errors(out)
    _consumer_overrides(out)
    _rest(out)
    declare_tables(out, run)
    return out


def _routes(out: Translation, database: str | None) -> None:
    connect = out.connect
    prop = "kusto.tables.topics.mapping"
    routes: list[dict[str, Any]] = []
    databases: list[str] = []
    for route in out.routes:
        at = f"{prop}[{route.index}]"
        db = route.database
        if _placeholder(db):
            if database is None:
                state = "missing" if db is None else f"a placeholder ({db!r})"
                raise ConfigError(f"{connect.where(at)}.db: {state}: pass --database NAME")
            db = database
        fmt = route.format or "csv"
        if route.format is None:
            out.note(f"{at}.format", "not set: the ADX SDK's default, csv, is used")
        ours = SINK_FORMATS.get(fmt)
        if ours is None:
            known = "" if fmt in SINK_FORMATS else " (not a format the sink knows)"
            out.note(at, f"topic {route.topic!r}: format {fmt!r}{known} has no kafka-adx equivalent "
                         "(csv, tsv, psv, scsv, sohsv, json, multijson, txt, raw): route left out")  # fmt: skip
            continue
        entry: dict[str, Any] = {"topic": route.topic, "database": db, "table": route.table, "format": ours}
        if route.mapping:
            entry["mapping"] = route.mapping
            # The sink names the mapping and ADX applies it: the same division of labour.
            entry["apply_mapping"] = "server"
        if route.streaming:
            entry["ingestion"] = "streaming"
        routes.append(entry)
        databases.append(str(db))
    if not routes:
        raise ConfigError(f"{connect.where(prop)}: no route can be translated (see the formats above)")
    default = max(set(databases), key=databases.count)
    for entry in routes:
        if entry["database"] == default:
            del entry["database"]
    out.ingestion = {"database": default, "tables": {}, "routes": routes}


def _topics_and_group(out: Translation) -> None:
    connect = out.connect
    topics = [t.strip() for t in (connect.get("topics") or "").split(",") if t.strip()]
    regex = connect.get("topics.regex")
    if topics:
        out.settings["KAFKA_TOPIC"] = ",".join(topics)
        routed = {r["topic"] for r in out.ingestion["routes"]}
        if "*" not in routed:
            for topic in topics:
                if topic not in routed:
                    out.note("topics", f"topic {topic!r} has no route: its records would be dead-lettered (no route)")
    if regex:
        out.consume_args += ["--topic", "^" + regex.removeprefix("^")]
        out.note("topics.regex", "consume takes it as --topic ^regex; the function app's Kafka trigger needs "
                                 "topic names in KAFKA_TOPIC")  # fmt: skip
    elif topics:
        out.consume_args += ["--topic", ",".join(topics)]
    else:
        out.pending["KAFKA_TOPIC"] = "the topics to consume (the file sets neither topics nor topics.regex)"
    group = connect.get("consumer.override.group.id") or (f"connect-{connect.name}" if connect.name else None)
    if group:
        out.settings["KAFKA_CONSUMER_GROUP"] = group
        out.consume_args += ["--group", group]
    else:
        out.note("name", "the file has no connector name, so the Connect consumer group (connect-<name>) is "
                         "unknown: set KAFKA_CONSUMER_GROUP to it to resume at the connector's offsets")  # fmt: skip
    out.pending.setdefault("KAFKA_BROKERS", "the Connect worker's bootstrap.servers (a worker property, not "
                                             "part of the connector's configuration)")  # fmt: skip


def _adx(out: Translation) -> None:
    connect = out.connect
    ingest = connect.get("kusto.ingestion.url")
    engine = connect.get("kusto.query.url")
    if not _placeholder(ingest):
        out.settings["ADX_INGEST_URI"] = (ingest or "").rstrip("/")
    else:
        out.pending["ADX_INGEST_URI"] = "the cluster's data-ingestion URI (https://ingest-<cluster>.<region>.kusto.windows.net)"
        if ingest is not None:
            out.note("kusto.ingestion.url", "a placeholder: set ADX_INGEST_URI")
    if not _placeholder(engine):
        out.settings["ADX_ENGINE_URI"] = (engine or "").rstrip("/")
    elif engine is not None:
        out.note("kusto.query.url", "a placeholder: ADX_ENGINE_URI is derived from ADX_INGEST_URI (set it when it is not "
                                    "the ingest URI without 'ingest-')")  # fmt: skip
    strategy = (connect.get("aad.auth.strategy") or "application").lower()
    appid = connect.get("aad.auth.appid")
    authority = connect.get("aad.auth.authority")
    appid = None if _placeholder(appid) else appid
    authority = None if _placeholder(authority) else authority
    for prop, value in (("aad.auth.appid", connect.get("aad.auth.appid")),
                        ("aad.auth.authority", connect.get("aad.auth.authority"))):  # fmt: skip
        if value is not None and _placeholder(value):
            out.note(prop, "a placeholder: not copied")
    if strategy == "managed_identity":
        out.settings["ADX_AUTH"] = "managed-identity"
        if appid:
            out.settings["AZURE_CLIENT_ID"] = appid
    elif strategy in ("application", "workload_identity", "az_dev_token"):
        # DefaultAzureCredential covers all three: its environment leg signs in as the
        # application (AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET), its workload
        # identity leg reads what AKS injects, its Azure CLI leg is the developer's az login.
        out.settings["ADX_AUTH"] = "default"
        if appid:
            out.settings["AZURE_CLIENT_ID"] = appid
        if authority:
            out.settings["AZURE_TENANT_ID"] = authority
    else:
        raise ConfigError(f"{connect.where('aad.auth.strategy')}: {strategy!r} is not a strategy of the sink "
                          "(application, managed_identity, workload_identity, az_dev_token)")
    if strategy == "application":
        out.pending["AZURE_CLIENT_SECRET"] = (
            "the application's client secret (aad.auth.appkey, not copied): in your shell for kafka-adx consume, "
            "a Key Vault reference (@Microsoft.KeyVault(SecretUri=...)) in the function app's settings")
        out.note("aad.auth.appkey", "not copied. shared/credentials.py has no client-secret kind of its own: "
                 "ADX_AUTH=default (DefaultAzureCredential) signs in as the application when AZURE_TENANT_ID, "
                 "AZURE_CLIENT_ID and AZURE_CLIENT_SECRET are in the environment. Better: a managed identity "
                 "(ADX_AUTH=managed-identity) with the Ingestor role on the database, and no secret at all")
    elif strategy == "workload_identity":
        out.note("aad.auth.strategy", "workload_identity: ADX_AUTH=default; DefaultAzureCredential reads the "
                 "AZURE_CLIENT_ID, AZURE_TENANT_ID and AZURE_FEDERATED_TOKEN_FILE that AKS injects")
    elif strategy == "az_dev_token":
        out.note("aad.auth.accesstoken", "not copied (a token expires): ADX_AUTH=default signs in with az login")
    if connect.get("aad.auth.appkey") and strategy != "application":
        out.note("aad.auth.appkey", f"not copied: the {strategy} strategy does not use it")
    if connect.get("aad.auth.accesstoken") and strategy != "az_dev_token":
        out.note("aad.auth.accesstoken", "not copied: only the az_dev_token strategy reads it")


def _batching(out: Translation) -> None:
    connect = out.connect
    # The sink's defaults (KustoSinkConfig): 1 MB and 30 s, per topic+partition.
    size = _int(connect, "flush.size.bytes", 1024 * 1024)
    interval = _int(connect, "flush.interval.ms", 30_000)
    wait = f"{interval / 1000:g}"
    out.consume_args += ["--batch-bytes", str(size), "--batch-wait", wait]
    out.host_json["extensions.eventHubs.maxWaitTime"] = _seconds_text(interval)
    out.note("flush.size.bytes", "consume --batch-bytes (per consumer, the sink's was per topic+partition); the "
             "function app has no byte limit: its batches are what the host hands over "
             "(host.json extensions.kafka.maxBatchSize, extensions.eventHubs.maxEventBatchSize, in records)")
    out.note("flush.interval.ms", f"consume --batch-wait {wait}; for the Event Hubs trigger set host.json "
             f"extensions.eventHubs.maxWaitTime to {_seconds_text(interval)}; the Kafka trigger has no wait setting")


def _errors(out: Translation) -> None:
    connect = out.connect
    behavior = (connect.get("behavior.on.error") or "fail").lower()
    if behavior == "fail":
        out.note("behavior.on.error", "fail (the sink's default): not translated. kafka-adx never stops on a record "
                 "it cannot ingest: it dead-letters it with the reason and goes on (kafka-adx replay sends letters "
                 "again), so nothing is lost but the stream does not stop")
    elif behavior not in ("log", "ignore"):
        raise ConfigError(f"{connect.where('behavior.on.error')}: {behavior!r} is not fail, log or ignore")
    if (connect.get("errors.tolerance") or "none").lower() == "none" and "errors.tolerance" in connect.properties:
        out.note("errors.tolerance", "none: not translated; a record that cannot be decoded is dead-lettered, not fatal")
    dlq_topics = [p for p in ("errors.deadletterqueue.topic.name", "misc.deadletterqueue.topic.name") if connect.get(p)]
    # Dead letters always go somewhere here: the blob container in Azure, else a local folder.
    out.pending["DEADLETTER_BLOB_URI"] = "the URI of a blob container for dead letters "\
        "(https://<account>.blob.core.windows.net/<container>); the identity needs Storage Blob Data Contributor"
    out.settings["LOCAL_DEADLETTER_DIR"] = ".local/deadletter"
    for prop in dlq_topics:
        out.note(prop, "a Kafka dead-letter topic is not something kafka-adx writes: dead letters (with topic, "
                 "partition, offset, the original bytes and the reason) go to DEADLETTER_BLOB_URI, or "
                 "LOCAL_DEADLETTER_DIR without it; kafka-adx replay sends them again")
    for prop in connect.properties:
        if prop.startswith(("errors.deadletterqueue.", "misc.deadletterqueue.")) and not prop.endswith(".topic.name"):
            out.note(prop, "not translated: no dead-letter topic")
    max_ms = connect.get("errors.retry.max.time.ms")
    backoff_ms = connect.get("errors.retry.backoff.time.ms")
    if max_ms is not None or backoff_ms is not None:
        # The sink's defaults (KustoSinkConfig; its README says ms, the code says seconds): 300 s and 10 s.
        max_time = _int(connect, "errors.retry.max.time.ms", 300_000)
        backoff = _int(connect, "errors.retry.backoff.time.ms", 10_000)
        out.settings["RETRY_MAX_COUNT"] = str(max(0, max_time // backoff))
        out.settings["RETRY_MIN_INTERVAL"] = out.settings["RETRY_MAX_INTERVAL"] = _seconds_text(backoff)
        out.note("errors.retry.max.time.ms", "the function app's RETRY_* settings (constant backoff, as the sink's); "
                 "kafka-adx consume retries with its own bounded policy")


def _consumer_overrides(out: Translation) -> None:
    connect = out.connect
    mapping = {"consumer.override.bootstrap.servers": "KAFKA_BROKERS",
               "consumer.override.security.protocol": "KAFKA_PROTOCOL",
               "consumer.override.sasl.mechanism": "KAFKA_SASL_MECHANISM"}  # fmt: skip
    for prop, setting in mapping.items():
        value = connect.get(prop)
        if value:
            out.settings[setting] = value
            out.pending.pop(setting, None)
    if connect.get("consumer.override.sasl.jaas.config"):
        out.pending["KAFKA_USERNAME"] = "the username of consumer.override.sasl.jaas.config (not copied)"
        out.pending["KAFKA_PASSWORD"] = ("the password of consumer.override.sasl.jaas.config (not copied): in your "
                                         "shell, a Key Vault reference in the function app")  # fmt: skip
        out.note("consumer.override.sasl.jaas.config", "not copied (it holds the password): set KAFKA_USERNAME and "
                 "KAFKA_PASSWORD; for Event Hubs prefer Entra ID (consume --eventhubs-namespace)")
    reset = (connect.get("consumer.override.auto.offset.reset") or "").lower()
    if reset in ("earliest", "latest"):
        out.consume_args += ["--from", reset]
        out.host_json["extensions.kafka.autoOffsetReset"] = reset.capitalize()
    for prop, librdkafka in (("consumer.override.sasl.kerberos.service.name", "sasl.kerberos.service.name"),
                             ("consumer.override.max.poll.interval.ms", "max.poll.interval.ms")):  # fmt: skip
        value = connect.get(prop)
        if value:
            out.consume_args += ["-X", f"{librdkafka}={value}"]
    handled = {*mapping, "consumer.override.sasl.jaas.config", "consumer.override.auto.offset.reset",
               "consumer.override.sasl.kerberos.service.name", "consumer.override.max.poll.interval.ms",
               "consumer.override.group.id"}  # fmt: skip
    for prop in connect.properties:
        if prop.startswith("consumer.override.") and prop not in handled:
            secret = " (a credential: not copied)" if SECRET_PROPERTIES.search(prop) else ""
            out.note(prop, f"a Java consumer property{secret}: give consume the librdkafka equivalent with -X name=value")


def _rest(out: Translation) -> None:
    connect = out.connect
    converter = connect.get("value.converter") or ""
    if any(converter.endswith(c) for c in _SCHEMA_REGISTRY_CONVERTERS):
        out.note("value.converter", f"{converter.rsplit('.', 1)[-1]}: records in the schema-registry wire format are "
                 "not decoded by kafka-adx; they would be dead-lettered. Produce JSON or CSV values")
    elif converter.endswith("JsonConverter") and (connect.get("value.converter.schemas.enable") or "true").lower() == "true":
        out.note("value.converter.schemas.enable", "JsonConverter with schemas (its default): records carry a "
                 "{schema, payload} envelope that kafka-adx does not unwrap (map $.payload.<field>, or produce without schemas)")
    host, port = connect.get("proxy.host"), connect.get("proxy.port")
    if host:
        scheme = "" if "://" in host else "http://"
        out.settings["HTTPS_PROXY"] = f"{scheme}{host}" + (f":{port}" if port and port != "-1" else "")
    if connect.get("tasks.max") not in (None, "1"):
        out.note("tasks.max", "not translated: run one kafka-adx consume per partition at most in the same group, "
                              "or let the function app scale out")  # fmt: skip
    quiet = {"name", "connector.class", "topics", "topics.regex", "kusto.ingestion.url", "kusto.query.url",
             "aad.auth.strategy", "aad.auth.appid", "aad.auth.authority", "aad.auth.appkey", "aad.auth.accesstoken",
             "kusto.tables.topics.mapping", "flush.size.bytes", "flush.interval.ms", "behavior.on.error",
             "errors.tolerance", "errors.retry.max.time.ms", "errors.retry.backoff.time.ms", "tasks.max",
             "proxy.host", "proxy.port", "key.converter", "value.converter", "value.converter.schemas.enable",
             "tempdir.path", "kusto.validation.table.enable", "errors.log.enable",
             "errors.deadletterqueue.topic.replication.factor", "errors.deadletterqueue.context.headers.enable",
             "header.converter", "config.action.reload"}  # fmt: skip
    for prop in connect.properties:
        if prop in quiet or prop.startswith(("consumer.override.", "errors.deadletterqueue.", "misc.deadletterqueue.")):
            continue
        base = next((p for p in _PREFIXED if prop == p or prop.startswith(p + ".")), prop)
        if base in ("key.converter", "header.converter"):
            continue
        known = SINK_PROPERTIES.get(base)
        if known is None:
            out.note(prop, "not a property of the Kusto sink that kafka-adx knows: not translated")
        elif known.startswith("not "):
            out.note(prop, known)
        elif base == "value.converter":
            out.note(prop, "not translated (a converter option)")
