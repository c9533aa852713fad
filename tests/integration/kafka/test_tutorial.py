"""Microsoft's Kafka tutorial, verbatim: its producer's records on the real broker, consumed with
the unchanged sample ``ingestion.yaml`` into the local DuckDB, value for value; and ``kafka-adx
demo``, which plays the tutorial on a broker of its own.

The tutorial ("Ingest data from Apache Kafka into Azure Data Explorer"; lab Azure/azure-kusto-labs
kafka-integration/dockerized-quickstart) has a Go producer that sends each record as one message:
six fields of a StormEvents.csv row written by Go's ``encoding/csv`` writer, newline included, no
key, no headers, to the topic ``storm-events``. The expected rows here are read from the
messages the broker holds with Python's own ``csv`` reader, independently of kafka-adx's parser.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import socket
import subprocess
import sys
import uuid
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest
from confluent_kafka import Producer

from shared.cli.demo import AVRO_RECORDS, AVRO_TOPIC, avro_events
from shared.deadletters.local import LocalDeadLetterStore
from shared.deadletters.replay import ReplayFilter, iter_selected, marks_for
from shared.kafka.producer import sample_messages
from shared.ops.sample import (
    POISON_TUTORIAL,
    TUTORIAL_COLUMNS,
    go_csv_record,
    storm_events,
    to_csv,
    to_tutorial_csv,
    tutorial_fields,
)
from tests.fixtures.kafka import in_ci
from tests.support.kafka_e2e import (
    REPO,
    ConsumerProcess,
    Workspace,
    dead_letters,
    end_offsets,
    produce,
    read_topic,
)

TOPIC = "storm-events"  # the tutorial's topic: the sample routes exactly this name to Storms
SAMPLE = REPO / "ingestion.yaml"

# Fields a real producer may carry that need encoding/csv's quoting: the delimiter, a quote, a
# line break, a leading space, the `\.` marker; and fields that need none: empty, a trailing
# space, a tab inside, non-ASCII text. EndTime empty is a null datetime; Source empty is ADX's
# empty string. (A lone \r inside a field is left out: the local DuckDB sink's read_csv fails the
# whole batch on it, a bug of the sink reported separately; the Go bytes test covers \r.)
EDGE_RECORDS = [
    ["2007-01-01 00:00:00.0000000", "2007-01-01 05:00:00.0000000", "23358", "WISCONSIN", "Winter Storm", "COOP Observer"],
    ["2007-02-03 04:05:06.1234560", "", "1", "NEW YORK, NY", 'Hail "large"', "Trained Spotter"],
    ["2007-12-31 23:59:59.9999990", "2008-01-01 00:00:00.0000000", "2147483647", " LEADING", "Line\nbreak", "Tab\tinside"],
    ["2007-06-15 12:00:00.0000000", "2007-06-15 12:30:00.0000000", "-5", "\\.", "trailing ", ""],
    ["2007-07-04 00:00:00.0000000", "2007-07-04 01:00:00.0000000", "42", "PUERTO RICO", "Tormenta \u00e9l\u00e9ctrica", "\u00c9mergency"],
]


def expected_row(fields: list[str]) -> tuple[Any, ...]:
    """The Storms row ADX makes of one record's six fields (StartTime datetime, EndTime
    datetime, EventId int, State, EventType, Source string): empty is null but for strings."""
    return (_datetime(fields[0]), _datetime(fields[1]), int(fields[2]) if fields[2] else None, *fields[3:])


def _datetime(text: str) -> datetime | None:
    # StormEvents.csv's "2007-01-01 00:00:00.0000000": UTC, seven fractional digits (DuckDB keeps
    # microseconds, and so do these records).
    if not text:
        return None
    stamp, fraction = text.split(".")
    return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S").replace(microsecond=int(fraction[:6]))


def parse_message(value: bytes) -> list[str]:
    """One message's fields, read with Python's csv module: exactly one record, ending in \\n."""
    assert value.endswith(b"\n"), value
    (fields,) = list(csv.reader(io.StringIO(value.decode("utf-8"), newline="")))
    return fields


def typed(row: tuple[Any, ...]) -> tuple[tuple[str, Any], ...]:
    """A row with each value's type, so that 1 and 1.0 or '' and None do not compare equal."""
    return tuple((type(value).__name__, value) for value in row)


def storms_rows(db: Path) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        columns = [row[0] for row in con.execute('DESCRIBE "Weather"."Storms"').fetchall()]
        assert columns == TUTORIAL_COLUMNS
        return con.execute('SELECT * FROM "Weather"."Storms"').fetchall()
    finally:
        con.close()


def test_tutorial_records_are_the_go_producers_bytes() -> None:
    # The rules of encoding/csv's Writer (UseCRLF false), one record per message.
    assert go_csv_record(["a", "b"]) == "a,b\n"
    assert go_csv_record(["a,b", 'x"y', " lead", "", "\\.", "l\r\nm", "trail "]) == (
        '"a,b","x""y"," lead",,"\\.","l\r\nm",trail \n'
    )
    assert go_csv_record(["\x1cfile-separator", "\u00a0nbsp", "\u200bzero-width"]) == (
        '\x1cfile-separator,"\u00a0nbsp",\u200bzero-width\n'  # Go's unicode.IsSpace, not str.isspace
    )
    event = next(storm_events(1))
    value = to_tutorial_csv(event)
    assert value == (f"{tutorial_fields(event)[0]},{tutorial_fields(event)[1]},{event['EventId']},{event['State']},"
                     f"{event['EventType']},{event['Source']}\n").encode()  # fmt: skip
    assert re.fullmatch(rb"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{7},\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{7},\d+,[^,]+,[^,]+,[^,]+\n", value)


def test_produce_sends_tutorial_records_bare_and_poison_marked() -> None:
    messages = list(sample_messages(10, fmt="tutorial", poison_every=5, headers=(("run", b"1"),)))
    tutorial = [m for m in messages if m.key is None]
    assert [m.value for m in tutorial] == [to_tutorial_csv(e) for e in storm_events(10)]
    assert all(m.headers == (("run", b"1"),) for m in tutorial), "only the headers asked for"
    poison = [m for m in messages if m.key == b"poison"]
    assert [m.value for m in poison] == [POISON_TUTORIAL[1], POISON_TUTORIAL[2]]
    assert all(dict(m.headers)["poison"] == b"true" for m in poison)


@pytest.mark.skipif(shutil.which("go") is None, reason="no Go toolchain: the Go writer's own bytes are not checked")
def test_go_encoding_csv_writes_the_same_bytes(tmp_path: Path) -> None:
    # The tutorial producer's writer itself: a Go program writes each record with encoding/csv
    # (a strings.Builder, Write, Flush, as the lab's main.go does) and prints the bytes.
    import json

    (tmp_path / "go.mod").write_text("module gocsvcheck\n\ngo 1.21\n")
    (tmp_path / "main.go").write_text(
        "package main\n\nimport (\n\t\"encoding/csv\"\n\t\"encoding/json\"\n\t\"os\"\n\t\"strings\"\n)\n\n"
        "func main() {\n\tvar records [][]string\n\tif err := json.NewDecoder(os.Stdin).Decode(&records); err != nil {\n"
        "\t\tpanic(err)\n\t}\n\tfor _, r := range records {\n\t\tb := &strings.Builder{}\n\t\tw := csv.NewWriter(b)\n"
        "\t\tif err := w.Write(r); err != nil {\n\t\t\tpanic(err)\n\t\t}\n\t\tw.Flush()\n"
        "\t\tos.Stdout.WriteString(b.String())\n\t\tos.Stdout.WriteString(\"\\x00\")\n\t}\n}\n"
    )
    records = [tutorial_fields(event) for event in storm_events(200)] + EDGE_RECORDS
    # Every character class the quoting rule looks at, in every position of short fields.
    alphabet = ["a", ",", '"', "\r", "\n", " ", "\t", "\x1c", "\x85", "\xa0", "\u2000", "\u200b", "\u3000", "\\", "."]
    records += [[a + b, b + a, a] for a in alphabet for b in alphabet]
    proc = subprocess.run(["go", "run", "."], cwd=tmp_path, input=json.dumps(records).encode(),
                          capture_output=True, timeout=240, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    written = proc.stdout.split(b"\x00")[:-1]
    assert len(written) == len(records)
    assert [go_csv_record(r).encode() for r in records] == written


@pytest.mark.kafka
def test_the_tutorial_producers_records_land_in_storms_value_for_value(tmp_path: Path, kafka_bootstrap: str) -> None:
    ws = Workspace(tmp_path, kafka_bootstrap)
    # 1. kafka-adx produce's default generator for storm-events: the tutorial's records.
    generated = 500
    out = produce(ws, TOPIC, "--records", str(generated))
    assert f"delivered {generated} record(s)" in out.stdout
    # 2. The Go producer's messages made here, byte for byte: value only (sarama's
    #    ProducerMessage with a StringEncoder value: no key, no headers).
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    for fields in EDGE_RECORDS:
        producer.produce(TOPIC, value=go_csv_record(fields).encode("utf-8"))
    assert producer.flush(30) == 0
    total = sum(end_offsets(kafka_bootstrap, TOPIC, 1).values())
    # The whole topic is the truth (a broker given by $KAFKA_TEST_BOOTSTRAP may hold older runs).
    truth = read_topic(kafka_bootstrap, TOPIC, total)
    ours = [truth[position] for position in sorted(truth)][-(generated + len(EDGE_RECORDS)):]
    assert all(sent.key is None and sent.headers == {} for sent in ours), "the tutorial's messages are bare"
    assert [parse_message(sent.value) for sent in ours[-len(EDGE_RECORDS):]] == EDGE_RECORDS
    assert [sent.value for sent in ours[:generated]] == [to_tutorial_csv(e) for e in storm_events(generated)]

    consumer = ConsumerProcess(ws, TOPIC, f"tutorial-{uuid.uuid4().hex[:8]}", "--max-records", str(total),
                               env={"INGESTION_CONFIG": str(SAMPLE)})  # fmt: skip
    assert consumer.wait() == 0, consumer.output()
    assert f"{total:,} received, {total:,} ingested, 0 dead-lettered" in consumer.output()
    assert dead_letters(ws.deadletter_dir) == []

    expected = Counter(typed(expected_row(parse_message(sent.value))) for sent in truth.values())
    landed = Counter(typed(row) for row in storms_rows(ws.db))
    assert landed == expected
    # The types the tutorial's table has: datetime, datetime, int, string, string, string.
    first = typed(expected_row(EDGE_RECORDS[0]))
    assert [t for t, _ in first] == ["datetime", "datetime", "int", "str", "str", "str"]


def _broker_can_run() -> None:
    from scripts.kafka_broker import KafkaToolsMissing, install_kafka

    try:
        install_kafka()
    except KafkaToolsMissing as exc:
        if in_ci():
            pytest.fail(f"CI must run the Kafka tests, but: {exc}")
        pytest.skip(f"no local Kafka broker: {exc}")


@pytest.mark.kafka
def test_demo_plays_the_tutorial_on_a_broker_of_its_own(tmp_path: Path) -> None:
    _broker_can_run()
    count = 400  # POISON_RECORDS poison records among them, then 3 StormEvents rows by header
    proc = subprocess.run(
        [sys.executable, "-m", "shared.cli.app", "demo", "--config", str(SAMPLE), "--records", str(count),
         "--dir", str(tmp_path / "demo")],
        capture_output=True, text=True, timeout=300, cwd=REPO, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    out = proc.stdout
    assert proc.returncode == 0, f"{out}\n{proc.stderr}"
    assert "no local Kafka broker" not in out
    poison, misrouted = 4, 3
    received = count + poison + misrouted
    assert f"{received:,} received, {count:,} ingested, {poison + misrouted} dead-lettered" in out
    assert f"  {misrouted}  decode: has 22 fields, expected 6 (the mapping's source_fields)" in out
    assert (f"{poison + misrouted} dead letters, {misrouted} ingested ({misrouted} into Weather.StormEvents), "
            f"{poison} dead-lettered again") in out  # fmt: skip
    assert f"EventType, Source): {to_tutorial_csv(next(storm_events(1)))!r}" in out

    # The rows are the tutorial records the demo sent, value for value.
    events = list(storm_events(count))
    expected = Counter(typed(expected_row(tutorial_fields(e))) for e in events)
    assert Counter(typed(row) for row in storms_rows(tmp_path / "demo" / "kafka-adx.duckdb")) == expected
    con = duckdb.connect(str(tmp_path / "demo" / "kafka-adx.duckdb"), read_only=True)
    try:
        per_topic = con.execute('SELECT "KafkaTopic", count(*) FROM "Weather"."StormEvents" GROUP BY ALL ORDER BY ALL').fetchall()
        cursor = con.execute(f'SELECT * FROM "Weather"."StormEvents" WHERE "KafkaTopic" = \'{AVRO_TOPIC}\' ORDER BY "KafkaOffset"')
        names = [d[0] for d in cursor.description]
        avro_rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    finally:
        con.close()
    # The replay's StormEvents rows, and the Avro step's.
    assert per_topic == [(TOPIC, misrouted), (AVRO_TOPIC, AVRO_RECORDS)]
    assert_avro_rows(avro_rows)
    assert "schema registry: Apicurio Registry " in out and "not a real registry" not in out
    assert f"consume {AVRO_TOPIC} (SCHEMA_REGISTRY_URL=http://127.0.0.1:" in out
    assert f"{AVRO_RECORDS} received, {AVRO_RECORDS} ingested, 0 dead-lettered" in out
    assert "schema ids 1, 2" in out and "schema registry: stopped" in out
    # What waits for a replay now is the poison, with its original bytes (the replayed sets are
    # marked; the poison was dead-lettered anew).
    store = LocalDeadLetterStore(tmp_path / "demo" / "deadletter")
    pending = [letters[i] for _, letters, _, _, todo in iter_selected(store, marks_for(store), ReplayFilter()) for i in todo]
    assert sorted(letter.record.value for letter in pending) == sorted(
        POISON_TUTORIAL[(n // 100) % len(POISON_TUTORIAL)] for n in (100, 200, 300, 400)
    )
    assert not {letter.record.value for letter in pending} & {to_csv(e) for e in storm_events(misrouted, seed=11)}

    # The broker and the registry the demo started are gone: nothing listens on their ports any more.
    match = re.search(r"on 127\.0\.0\.1:(\d+) ", out)
    registry_port = re.search(r"on http://127\.0\.0\.1:(\d+)/apis/ccompat/v7 ", out)
    assert match and registry_port, out
    for port in (match.group(1), registry_port.group(1)):
        with pytest.raises(OSError), socket.create_connection(("127.0.0.1", int(port)), timeout=2):
            pass


def assert_avro_rows(rows: list[dict[str, Any]]) -> None:
    """The demo's Avro rows are the records its AvroSerializer producer sent, value for value:
    version 1 records (no narratives) have empty narratives, version 2 records theirs."""
    sent = avro_events(AVRO_RECORDS)
    assert [row["KafkaOffset"] for row in rows] == list(range(len(sent)))
    for row, (version, value) in zip(rows, sent, strict=True):
        for column in ("StartTime", "EndTime"):
            assert row[column] == value[column].replace(tzinfo=None), column
        for column in ("EpisodeId", "EventId", "State", "EventType", "InjuriesDirect", "InjuriesIndirect",
                       "DeathsDirect", "DeathsIndirect", "DamageProperty", "DamageCrops", "Source",
                       "BeginLocation", "EndLocation", "BeginLat", "BeginLon", "EndLat", "EndLon"):  # fmt: skip
            assert row[column] == value[column], column
        for column in ("EpisodeNarrative", "EventNarrative"):
            assert row[column] == (value[column] if version == 2 else ""), column
        assert json.loads(row["StormSummary"]) == value["StormSummary"]
        assert (row["KafkaPartition"], row["KafkaKey"]) == (0, value["State"])
    assert {version for version, _ in sent} == {1, 2}
