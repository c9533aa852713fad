"""The ``demo`` command (what ``make demo`` runs): Microsoft's Kafka tutorial on this machine.

The tutorial ("Ingest data from Apache Kafka into Azure Data Explorer", lab Azure/azure-kusto-labs
kafka-integration/dockerized-quickstart) has a Go producer send 6-field CSV records to the topic
``storm-events``, which the Kafka Connect sink ingests into the table ``Storms`` with the mapping
``Storms_CSV_Mapping``. The demo plays it with the parts of this repository:

1. the local broker of ``make kafka`` and the tests (``scripts/kafka_broker.py``), started for
   the run and stopped after it;
2. the tutorial producer's records (:func:`shared.ops.sample.to_tutorial_csv`, one per message,
   newline included, no key) to ``storm-events``, plus a few poison records and a few full
   StormEvents rows from a second producer that asks for the table ``StormEvents`` with the
   header ``Table=StormEvents``;
3. ``consume`` (the same :class:`~shared.kafka.consumer.KafkaIngestor`) into a fresh local
   DuckDB with the ingestion file as it is, then the rows and the dead letters;
4. a fix a user would make, written next to the database (the ``storm-events`` route lets a
   record choose ``StormEvents`` by header), and a replay of the dead letters with it: the
   StormEvents rows land, the poison records stay dead-lettered;
5. Avro through a schema registry: Apicurio Registry (``scripts/schema_registry.py``: built
   once from Maven Central, launched with the broker so that it starts while the tutorial runs,
   stopped after the run) and a producer using confluent-kafka's real ``AvroSerializer`` send
   StormEvents records to ``storm-events-avro`` in two schema versions (the second adds the
   narratives); ``consume`` decodes them by schema id into ``StormEvents``, and the rows are
   shown. Where Apicurio cannot be built or run, the tests' Confluent-compatible stand-in serves
   instead, and the demo says plainly that it is not a real registry.

Where no broker can run (Java, or Maven for the first install, is missing) it says so and
ingests generated files instead, as ``kafka-adx ingest`` would.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import sys
import time
from collections import Counter
from pathlib import Path
from types import ModuleType
from typing import Any

import click
import yaml

from shared.cli.common import (
    CliError,
    config_option,
    config_or_exit,
    exit_codes_help,
    print_summary,
    settings_or_exit,
)
from shared.config import IngestionConfig, Route, load_config
from shared.errors import ConfigError
from shared.settings import Settings

TOPIC = "storm-events"
"""The tutorial's topic."""
HEADER_TABLE = "StormEvents"
"""The table the second producer's records ask for with the header ``Table``."""
HEADER_MAPPING = "StormEvents_CSV_Mapping"
MISROUTED_RECORDS = 3
"""Full StormEvents rows the second producer sends."""
POISON_RECORDS = 4
"""Poison records among the tutorial's records."""
GROUP = "kafka-adx-demo"
AVRO_TOPIC = "storm-events-avro"
"""The Avro step's topic (the sample ingestion file routes it to ``StormEvents``)."""
AVRO_RECORDS = 200
"""StormEvents records the Avro step sends: the first half in schema version 1, the rest in 2."""

# The position a pipeline reason starts with ("storm-events[0]@12: has 5 fields ..."): dropped
# when reasons are counted, so that equal reasons of different records count together.
_POSITION = re.compile(r"^\S+\[\d+\]@\d+: ")


@click.command(epilog=exit_codes_help({
    0: "",
    2: "the ingestion file is invalid, or the local broker failed to start",
    130: "Ctrl-C",
}))  # fmt: skip
@config_option
@click.option("--records", "count", default=20_000, show_default=True, type=click.IntRange(min=1),
              help="Storm events to send (or, without Kafka, to generate).")
@click.option("--dir", "directory", default=".local/demo", show_default=True, type=click.Path(file_okay=False))
def demo(config_path: str | None, count: int, directory: str) -> None:
    """Microsoft's Kafka -> ADX tutorial on a local Kafka broker into a fresh local DuckDB:
    produce the tutorial's records (and a few bad ones) to storm-events, consume them, show the
    rows and the dead letters, fix the ingestion file and replay. Without Java, ingests
    generated files instead."""
    path = Path(config_path) if config_path else settings_or_exit().ingestion_config
    config = config_or_exit(str(path))
    root = Path(directory)
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    settings = Settings(local_db=root / "kafka-adx.duckdb", local_deadletter_dir=root / "deadletter")
    broker_code, why = _broker_code()
    libs_dir: Path | None = None
    if broker_code is not None:
        try:
            libs_dir = broker_code.install_kafka()
        except broker_code.KafkaToolsMissing as exc:
            why = str(exc)
        except RuntimeError as exc:  # the download of the broker's jars failed
            raise CliError(f"cannot install the local Kafka broker: {exc}") from None
    if broker_code is None or libs_dir is None:
        click.echo(f"no local Kafka broker ({why}): ingesting generated files instead of the Kafka tutorial")
        _file_demo(config, settings, root, count)
        click.echo(f"avro ({AVRO_TOPIC}): skipped, it needs the local Kafka broker")
        return
    # The registry of the Avro step (a JVM too) starts while the broker starts and the tutorial
    # runs; the Avro step waits for it.
    registry, registry_note = _launch_registry(config)
    started = time.monotonic()
    try:
        try:
            broker = broker_code.start_broker(libs_dir, num_partitions=1)
        except broker_code.KafkaStartError as exc:
            raise CliError(f"the local Kafka broker did not start: {exc}") from None
        try:
            click.echo(f"kafka: Apache Kafka {broker.version} on {broker.bootstrap} (ready in {broker.started_in:.1f} s)")
            fixed = _kafka_demo(config, path, settings, root, broker.bootstrap, count)
            _avro_demo(config, settings, broker.bootstrap, registry, registry_note)
            _closing(settings, fixed, count)
        finally:
            broker.stop()
    finally:
        if registry is not None:
            registry.stop()
            click.echo("schema registry: stopped")
    click.echo(f"kafka: broker stopped; the demo took {time.monotonic() - started:.1f} s")


def _broker_code() -> tuple[Any, str]:
    """``scripts/kafka_broker.py`` loaded as a module (the developer's and the tests' broker),
    or None and why not. It lives beside the package, not in it: an installation without the
    repository has no broker to start."""
    module, why = _script("kafka_broker.py", "kafka_adx_demo_broker")
    if module is None:
        return None, why
    try:
        module.java_binary()
    except module.KafkaToolsMissing as exc:
        return None, str(exc)
    return module, ""


def _script(filename: str, name: str) -> tuple[Any, str]:
    """``scripts/<filename>`` loaded as the module ``name`` (once per process), or None and why not."""
    path = Path(__file__).resolve().parents[2] / "scripts" / filename
    if not path.is_file():
        return None, f"{path} is not part of this installation"
    module: ModuleType | None = sys.modules.get(name)
    if module is None:
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            return None, f"cannot load {path}"
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up while the class is made
        spec.loader.exec_module(module)
    return module, ""


def _kafka_demo(config: IngestionConfig, path: Path, settings: Settings, root: Path, bootstrap: str, count: int) -> Path:
    """Produce, consume, show, fix, replay (the module docstring's steps 2 to 4); returns the
    fixed ingestion file."""
    from shared.kafka.consumer import ConsumerOptions, KafkaIngestor
    from shared.kafka.producer import KafkaSender, produce, sample_messages
    from shared.ops.sample import TUTORIAL_COLUMNS
    from shared.pipeline.retry import RetryPolicy
    from shared.wiring import build_pipeline

    route = next((r for r in config.routes if r.topic == TOPIC), None)
    if route is None:
        raise CliError(f"the demo plays the Kafka tutorial: the ingestion file has no route for the topic {TOPIC}")
    table = route.table
    messages = [
        *sample_messages(count, fmt="tutorial", poison_every=max(count // POISON_RECORDS, 1)),
        *sample_messages(MISROUTED_RECORDS, fmt="csv", seed=11, headers=(("Table", HEADER_TABLE.encode()),)),
    ]
    client = {"bootstrap.servers": bootstrap}
    # Not idempotent, as the Go producer (sarama's defaults) is not.
    stats = produce(messages, KafkaSender(dict(client), TOPIC, idempotent=False))
    poison = len(messages) - count - MISROUTED_RECORDS
    click.echo(
        f"produce to {TOPIC}: {stats.delivered:,} messages delivered: {count:,} records as the tutorial's Go "
        f"producer sends them, {poison} poison records, {MISROUTED_RECORDS} full StormEvents rows with the "
        f"header Table={HEADER_TABLE}"
    )
    click.echo(f"  a tutorial record is one message ({', '.join(TUTORIAL_COLUMNS)}): {messages[0].value!r}")

    pipeline = build_pipeline(settings, config, retry=RetryPolicy())
    # max_records stops it once everything sent was read; idle_exit only guards against a hang.
    options = ConsumerOptions(topics=(TOPIC,), group=GROUP, max_records=len(messages), idle_exit=30.0)
    try:
        consumed = KafkaIngestor(pipeline, dict(client), options).run()
    finally:
        pipeline.close()
    click.echo("")
    print_summary(consumed.result, consumed.raw_bytes, label=f"consume {TOPIC} (ingestion file {path})")
    if consumed.result.received != len(messages):
        raise CliError(f"consume read {consumed.result.received} of {len(messages)} records ({consumed.stopped_by})")
    _show_table(config, settings, route.database or config.database, table)
    letters = _show_dead_letters(settings)

    fixed = root / "ingestion-fixed.yaml"
    fixed_config = _write_fix(path, fixed)
    click.echo(f"\nfix: {fixed} lets a {TOPIC} record choose {HEADER_TABLE} with the header Table={HEADER_TABLE} "
               f"(header_routing on the {TOPIC} route)")  # fmt: skip
    ingested, again, per_table = _replay(fixed_config, settings)
    into = ", ".join(f"{n:,} into {name}" for name, n in sorted(per_table.items()))
    click.echo(
        f"replay --config {fixed}: {letters} dead letters, {ingested} ingested{f' ({into})' if into else ''}, "
        f"{again} dead-lettered again (poison records: only their producer can fix them)"
    )
    return fixed


def _closing(settings: Settings, fixed: Path, count: int) -> None:
    """How to do it by hand, and where the results are."""
    click.echo(
        f"\nby hand: make kafka (then export KAFKA_BROKERS=127.0.0.1:9092); kafka-adx produce -t {TOPIC} -n {count}; "
        f"kafka-adx consume -t {TOPIC} --idle-exit 3; kafka-adx replay --config {fixed}"
    )
    click.echo(
        "  Avro: python scripts/schema_registry.py start (Apicurio Registry; prints its URL: export "
        f"SCHEMA_REGISTRY_URL=<it>); kafka-adx consume -t {AVRO_TOPIC} --idle-exit 3"
    )
    click.echo(f"database: {settings.local_db}   dead letters: {settings.local_deadletter_dir}")


def _avro_schema(version: int) -> dict[str, Any]:
    """The Avro schema of a StormEvents record, version 1 or 2 (2 adds the two narratives, with
    defaults, as a compatible evolution would). StartTime and EndTime are ``timestamp-micros``."""
    timestamp = {"type": "long", "logicalType": "timestamp-micros"}
    fields: list[dict[str, Any]] = [
        {"name": "StartTime", "type": timestamp},
        {"name": "EndTime", "type": timestamp},
        *({"name": n, "type": "int"} for n in ("EpisodeId", "EventId")),
        *({"name": n, "type": "string"} for n in ("State", "EventType")),
        *({"name": n, "type": "int"} for n in ("InjuriesDirect", "InjuriesIndirect", "DeathsDirect", "DeathsIndirect")),
        *({"name": n, "type": "long"} for n in ("DamageProperty", "DamageCrops")),
        *({"name": n, "type": "string"} for n in ("Source", "BeginLocation", "EndLocation")),
        *({"name": n, "type": "double"} for n in ("BeginLat", "BeginLon", "EndLat", "EndLon")),
        {"name": "StormSummary", "type": {"type": "record", "name": "StormSummary", "fields": [
            {"name": "TotalDamages", "type": "long"},
            {"name": "StartTime", "type": "string"},
            {"name": "Details", "type": {"type": "record", "name": "Details", "fields": [
                {"name": "Description", "type": "string"}, {"name": "Location", "type": "string"}]}},
        ]}},
    ]  # fmt: skip
    if version == 2:
        fields += [{"name": n, "type": ["null", "string"], "default": None} for n in ("EpisodeNarrative", "EventNarrative")]
    return {"type": "record", "name": "StormEvent", "namespace": "kafka_adx.demo", "fields": fields}


def avro_events(count: int, seed: int = 23) -> list[tuple[int, dict[str, Any]]]:
    """The Avro step's records: (schema version, value) for ``count`` storm events, the first
    half in version 1 (no narratives), the rest in version 2."""
    from datetime import datetime

    from shared.ops.sample import storm_events

    out: list[tuple[int, dict[str, Any]]] = []
    for index, event in enumerate(storm_events(count, seed)):
        version = 1 if index < count // 2 else 2
        value = {**event, "StartTime": datetime.fromisoformat(event["StartTime"]),
                 "EndTime": datetime.fromisoformat(event["EndTime"])}  # fmt: skip
        if version == 1:
            del value["EpisodeNarrative"], value["EventNarrative"]
        out.append((version, value))
    return out


def _launch_registry(config: IngestionConfig) -> tuple[Any, str]:
    """The Avro step's schema registry, launched without waiting for it: Apicurio Registry
    (``scripts/schema_registry.py``; built once from Maven Central), or the tests' stand-in where
    Apicurio cannot be built or run. Returns it (None: the step is skipped) and a note: why the
    stand-in serves, or why the step is skipped."""
    if not any(r.topic == AVRO_TOPIC for r in config.routes):
        return None, f"the ingestion file has no route for the topic {AVRO_TOPIC}"
    code, why = _script("schema_registry.py", "kafka_adx_demo_registry")
    if code is None:
        return None, f"no local schema registry: {why}"
    try:
        if code.installed_app_dir() is None:
            click.echo("schema registry: building Apicurio Registry from Maven Central (once; a minute or two)")
        return code.start_apicurio(code.install_apicurio(), wait=False), ""
    except (code.RegistryToolsMissing, code.RegistryInstallError, OSError) as exc:
        fallback = f"Apicurio Registry cannot run here: {' '.join(str(exc).split())[:300]}"
    try:
        return code.start_stand_in(), fallback
    except code.RegistryUnavailable as exc:
        return None, f"no local schema registry ({fallback}; {exc})"


def _avro_demo(config: IngestionConfig, settings: Settings, bootstrap: str, registry: Any, note: str) -> None:
    """Step 5 of the module docstring: Avro through the schema registry into StormEvents."""
    route = next((r for r in config.routes if r.topic == AVRO_TOPIC), None)
    if route is None or registry is None:
        click.echo(f"\navro: skipped ({note})")
        return
    started = time.monotonic()
    if hasattr(registry, "wait_ready"):  # Apicurio, launched while the tutorial ran
        try:
            registry.wait_ready()
        except RuntimeError as exc:
            raise CliError(f"the schema registry did not start: {exc}") from None
    click.echo(f"\nschema registry: {registry.kind}, on {registry.url} (answered {registry.started_in:.1f} s after its launch)")
    if note:
        click.echo(f"  not a real registry: {note}")
    # build_pipeline reads the registry from these settings (not from the environment).
    _avro_step(config, settings.model_copy(update={"schema_registry_url": registry.url}), bootstrap, registry.url, route)
    click.echo(f"schema registry: the Avro step took {time.monotonic() - started:.1f} s")


def _avro_step(config: IngestionConfig, settings: Settings, bootstrap: str, registry_url: str, route: Route) -> None:
    """Produce with the real AvroSerializer, consume, show the rows."""
    import json

    from confluent_kafka.schema_registry import SchemaRegistryClient
    from confluent_kafka.schema_registry.avro import AvroSerializer
    from confluent_kafka.serialization import MessageField, SerializationContext

    from shared.kafka.consumer import ConsumerOptions, KafkaIngestor
    from shared.kafka.producer import KafkaSender, OutMessage, produce
    from shared.pipeline.retry import RetryPolicy
    from shared.wiring import build_pipeline

    client = SchemaRegistryClient({"url": registry_url})
    serializers = {v: AvroSerializer(client, json.dumps(_avro_schema(v))) for v in (1, 2)}
    context = SerializationContext(AVRO_TOPIC, MessageField.VALUE)
    events = avro_events(AVRO_RECORDS)
    messages = [OutMessage(value=serializers[v](value, context) or b"", key=str(value["State"]).encode())
                for v, value in events]  # fmt: skip
    stats = produce(messages, KafkaSender({"bootstrap.servers": bootstrap}, AVRO_TOPIC, idempotent=False))
    subject = f"{AVRO_TOPIC}-value"
    ids = [client.get_version(subject, n).schema_id for n in client.get_versions(subject)]
    click.echo(
        f"produce to {AVRO_TOPIC}: {stats.delivered:,} StormEvents records serialized by confluent-kafka's "
        f"AvroSerializer (Confluent wire format), {sum(v == 1 for v, _ in events)} with schema version 1 and "
        f"{sum(v == 2 for v, _ in events)} with version 2 (adds EpisodeNarrative, EventNarrative); subject "
        f"{subject}, schema ids {', '.join(map(str, ids))}"
    )
    pipeline = build_pipeline(settings, config, retry=RetryPolicy())
    options = ConsumerOptions(topics=(AVRO_TOPIC,), group=GROUP, max_records=len(messages), idle_exit=30.0)
    try:
        consumed = KafkaIngestor(pipeline, {"bootstrap.servers": bootstrap}, options).run()
    finally:
        pipeline.close()
    print_summary(consumed.result, consumed.raw_bytes, label=f"consume {AVRO_TOPIC} (SCHEMA_REGISTRY_URL={registry_url})")
    if consumed.result.received != len(messages):
        raise CliError(f"consume read {consumed.result.received} of {len(messages)} records ({consumed.stopped_by})")
    _show_avro_rows(config, settings, route.database or config.database, route.table)


def _show_avro_rows(config: IngestionConfig, settings: Settings, database: str, table: str) -> None:
    """The Avro rows in ``table``: how many, and the first of each schema version."""
    from shared.sinks.duckdb import DuckDbSink

    name = f'"{database}"."{table}"'
    where = f"WHERE \"KafkaTopic\" = '{AVRO_TOPIC}'"
    columns = ["KafkaOffset", "StartTime", "EventId", "State", "EventType", "DamageProperty", "EventNarrative", "StormSummary"]
    selected = ", ".join(f'"{c}"' for c in columns)
    sink = DuckDbSink(config, settings.local_db)
    try:
        (total, narrated) = sink.query(f"SELECT count(*), count(*) FILTER (WHERE \"EventNarrative\" <> '') FROM {name} {where}")[0]
        rows = sink.query(
            f"SELECT {selected} FROM {name} {where} "
            f"AND \"KafkaOffset\" IN (0, {AVRO_RECORDS // 2}) ORDER BY \"KafkaOffset\""
        )
    finally:
        sink.close()
    click.echo(f"\n{table} from {AVRO_TOPIC}: {total:,} rows, {narrated:,} with an EventNarrative (version 1 has "
               "none: a field its schema lacks is an empty string, as ADX has no null string); the first of each version:")  # fmt: skip
    click.echo("  " + " | ".join(columns))
    for row in rows:
        click.echo("  " + " | ".join("" if v is None else str(v) for v in row))


def _show_table(config: IngestionConfig, settings: Settings, database: str, table: str) -> None:
    """A few rows of the tutorial's table and the tutorial's summarize by State."""
    from shared.sinks.duckdb import DuckDbSink

    name = f'"{database}"."{table}"'
    sink = DuckDbSink(config, settings.local_db)
    try:
        (total,) = sink.query(f"SELECT count(*) FROM {name}")[0]
        columns = [c.name for c in config.tables[table].columns]
        rows = sink.query(f"SELECT * FROM {name} ORDER BY ALL LIMIT 3")
        states = sink.query(f'SELECT "State", count(*) AS n FROM {name} GROUP BY ALL ORDER BY n DESC, "State" LIMIT 5')
    finally:
        sink.close()
    click.echo(f"\n{table}: {total:,} rows; the first 3 (ORDER BY ALL):")
    click.echo("  " + " | ".join(columns))
    for row in rows:
        click.echo("  " + " | ".join("" if v is None else str(v) for v in row))
    click.echo(f"{table} | summarize event_count=count() by State | top 5 by event_count:")
    click.echo("  " + ", ".join(f"{state} {n:,}" for state, n in states))


def _show_dead_letters(settings: Settings) -> int:
    """The dead letters, counted by stage and reason; returns how many there are."""
    from shared.deadletters.local import LocalDeadLetterStore

    store = LocalDeadLetterStore(settings.local_deadletter_dir)
    reasons: Counter[str] = Counter()
    for set_id in store.sets():
        for letter in store.read(set_id):
            reasons[f"{letter.stage}: {_POSITION.sub('', letter.reason)}"] += 1
    total = sum(reasons.values())
    click.echo(f"\ndead letters: {total} in {settings.local_deadletter_dir}")
    for reason, n in sorted(reasons.items(), key=lambda item: (-item[1], item[0])):
        click.echo(f"  {n:>3}  {reason}")
    return total


def _write_fix(path: Path, fixed: Path) -> IngestionConfig:
    """The ingestion file with ``HEADER_TABLE`` on the allow-list of the tutorial route, written
    to ``fixed`` (comments are not kept: it is a copy to read and to replay with)."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    for route in data["routes"]:
        if route.get("topic") == TOPIC:
            targets = list(route.get("header_routing") or [])
            targets.append({"table": HEADER_TABLE, "mapping": HEADER_MAPPING})
            route["header_routing"] = targets
    fixed.write_text(
        f"# {path} with one change: {TOPIC} records may choose {HEADER_TABLE} with the header Table.\n"
        + yaml.safe_dump(data, sort_keys=False, allow_unicode=True),
        encoding="utf-8",
    )
    try:
        return load_config(fixed)
    except ConfigError as exc:
        raise CliError(f"the demo's fix does not fit this ingestion file: {exc}") from None


def _replay(config: IngestionConfig, settings: Settings) -> tuple[int, int, dict[str, int]]:
    """``kafka-adx replay`` of every dead letter with ``config``: (ingested, dead-lettered again,
    rows ingested per table)."""
    from collections.abc import Sequence

    from shared.deadletters.local import LocalDeadLetterStore
    from shared.deadletters.replay import pipeline_reingest, replay
    from shared.pipeline.core import Pipeline, Result
    from shared.pipeline.deadletter import DeadLetter
    from shared.wiring import build_registries, build_sink

    store = LocalDeadLetterStore(settings.local_deadletter_dir)
    pipeline = Pipeline(config, build_sink(settings, config), store, registries=build_registries(settings, config))
    reingest = pipeline_reingest(pipeline)
    per_table: Counter[str] = Counter()

    def run(letters: Sequence[DeadLetter]) -> Result:
        result = reingest(letters)
        for name, counts in result.tables.items():
            per_table[name] += counts.ingested
        return result

    try:
        report = replay(store, run)
    finally:
        pipeline.close()
    return report.ingested, report.dead_lettered, {name: n for name, n in per_table.items() if n}


def _file_demo(config: IngestionConfig, settings: Settings, root: Path, count: int) -> None:
    """Without a broker: the tutorial's records, StormEvents CSV rows and JSON records written to
    files and ingested as ``kafka-adx ingest`` does, then a look at what landed."""
    from shared.cli.files import run_ingest
    from shared.ops.sample import write_sample, write_tutorial_sample
    from shared.sinks.duckdb import DuckDbSink

    tutorial_path = write_tutorial_sample(root / "data", count, poison_every=500)
    csv_path, json_path = write_sample(root / "data", count, poison_every=500)
    click.echo(f"generated {count:,} storm events (+ poison records) as {tutorial_path}, {csv_path} and {json_path}")
    inputs = ((TOPIC, tutorial_path), ("storm-events-csv", csv_path), ("storm-events-json", json_path))
    for topic, path in inputs:
        run = run_ingest(settings, config, [str(path)], topic)
        print_summary(run.result, run.raw_bytes, label=f"{topic} <- {path.name}", blank_lines=run.blank_lines)
        if run.stopped is not None:  # the demo writes its own files: this would be a bug
            raise CliError(str(run.stopped))
    click.echo(f"dead letters: {settings.local_deadletter_dir}")
    sink = DuckDbSink(config, settings.local_db)
    try:
        rows = sink.query(
            'SELECT "State", "EventType", count(*) AS events, sum("DamageProperty") AS damage '
            'FROM "Weather"."StormEvents" WHERE "KafkaTopic" = \'storm-events-json\' '
            "GROUP BY ALL ORDER BY events DESC, \"State\", \"EventType\" LIMIT 10"
        )
        click.echo("\nevents per state and type (StormEvents, from JSON), top 10:")
        click.echo(f"  {'State':<14} {'EventType':<18} {'events':>6} {'damage':>12}")
        for state, event_type, events, damage in rows:
            click.echo(f"  {state:<14} {event_type:<18} {events:>6} {damage or 0:>12,}")
        storms = sink.query('SELECT count(*) FROM "Weather"."Storms"')[0][0]
        click.echo(f"\nStorms (the Kafka tutorial's table): {storms:,} rows")
    finally:
        sink.close()
    click.echo(
        "query it yourself: python -c \"import duckdb; print(duckdb.connect('"
        f"{settings.local_db}', read_only=True).sql('FROM Weather.Storms LIMIT 5'))\""
    )
