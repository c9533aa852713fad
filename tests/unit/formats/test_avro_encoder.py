"""shared/formats: Avro and JSON Schema records, written by confluent-kafka's real serializers
(over the library's in-memory registry client: no service in a unit test), decoded and
client-mapped by the pipeline, and the records that must be dead-lettered."""

from __future__ import annotations

import base64
import io
import json
import uuid
from datetime import UTC, date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any

import fastavro
import pytest
from confluent_kafka.schema_registry._sync.mock_schema_registry_client import MockSchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.schema_registry.json_schema import JSONSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from shared.config import parse_config
from shared.deadletters.local import LocalDeadLetterStore
from shared.errors import ConfigError, TransientError
from shared.formats import encoder as encoder_module
from shared.formats.encoder import SchemaMapped
from shared.formats.registry import (
    ConfluentSource,
    RegisteredSchema,
    Registries,
    RegistryUnavailable,
    UnknownSchema,
)
from shared.pipeline.core import Pipeline, RetryPolicy
from shared.pipeline.deadletter import DeadLetter
from shared.pipeline.encoding import read_payload
from shared.pipeline.records import Record
from shared.pipeline.sink import MemorySink

TOPIC = "orders"

ORDER_V1: dict[str, Any] = {
    "type": "record", "name": "Order", "namespace": "shop",
    "fields": [
        {"name": "id", "type": "long"},
        {"name": "customer", "type": "string"},
        {"name": "amount", "type": {"type": "bytes", "logicalType": "decimal", "precision": 12, "scale": 2}},
        {"name": "placed", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "ref", "type": {"type": "string", "logicalType": "uuid"}},
        {"name": "day", "type": {"type": "int", "logicalType": "date"}},
        {"name": "at", "type": {"type": "int", "logicalType": "time-millis"}},
        {"name": "blob", "type": "bytes"},
        {"name": "express", "type": "boolean"},
        {"name": "weight", "type": "double"},
        {"name": "tags", "type": {"type": "array", "items": "string"}},
        {"name": "address", "type": {"type": "record", "name": "Address", "fields": [
            {"name": "city", "type": "string"}, {"name": "zip", "type": ["null", "string"], "default": None}]}},
    ],
}  # fmt: skip
ORDER_V2 = {**ORDER_V1, "fields": [*ORDER_V1["fields"], {"name": "coupon", "type": ["null", "string"], "default": None}]}

COLUMNS = [
    ("Id", "long", "$.id"), ("Customer", "string", "$.customer"), ("Amount", "decimal", "$.amount"),
    ("Placed", "datetime", "$.placed"), ("Ref", "guid", "$.ref"), ("Day", "datetime", "$.day"),
    ("At", "timespan", "$.at"), ("Blob", "string", "$.blob"), ("Express", "bool", "$.express"),
    ("Weight", "real", "$.weight"), ("Tags", "dynamic", "$.tags"), ("City", "string", "$.address.city"),
    ("Coupon", "string", "$.coupon"), ("Whole", "dynamic", "$.address"),
]  # fmt: skip


def config(fmt: str = "avro", **route: Any) -> Any:
    return parse_config({
        "database": "db",
        "tables": {"Orders": {
            "columns": [{"name": n, "type": t} for n, t, _ in COLUMNS],
            "mappings": {"Orders_avro": {"kind": "json", "columns": [
                {"column": n, "Properties": {"Path": p}} for n, _, p in COLUMNS]}},
        }},
        "routes": [{"topic": TOPIC, "table": "Orders", "format": fmt, "mapping": "Orders_avro", **route}],
    })  # fmt: skip


def order(**changes: Any) -> dict[str, Any]:
    value: dict[str, Any] = {
        "id": 7, "customer": "Ada", "amount": Decimal("1234.50"),
        "placed": datetime(2024, 5, 6, 7, 8, 9, 123000, tzinfo=UTC),
        "ref": uuid.UUID("12345678-1234-5678-1234-567812345678"), "day": date(2024, 5, 6),
        "at": time(13, 14, 15, 500000), "blob": b"\x00\xffhi", "express": True, "weight": 2.5,
        "tags": ["a", "b"], "address": {"city": "Oslo", "zip": None},
    }  # fmt: skip
    value.update(changes)
    return value


class Setup:
    """A pipeline over the in-memory registry client, with what it wrote."""

    def __init__(self, tmp_path: Path, fmt: str = "avro", registries: Registries | None = None, **route: Any) -> None:
        self.client = MockSchemaRegistryClient({"url": "mock://registry"})
        self.source = ConfluentSource(self.client)
        self.registries = registries or Registries(confluent=self.source)
        self.config = config(fmt, **route)
        self.sink = MemorySink()
        self.store = LocalDeadLetterStore(tmp_path / "dl")
        self.pipeline = Pipeline(self.config, self.sink, self.store, retry=RetryPolicy(attempts=1, base_delay=0.0),
                                 sleep=lambda _: None)  # fmt: skip
        # The encoder the pipeline would build from the environment, built over this registry.
        self.pipeline.encoder = self._encoder  # type: ignore[method-assign]
        self._encoders: dict[Any, SchemaMapped] = {}

    def _encoder(self, dest: Any) -> SchemaMapped:
        found = self._encoders.get(dest)
        if found is None:
            found = self._encoders[dest] = SchemaMapped(self.config, dest, self.registries)
        return found

    def avro(self, value: dict[str, Any], schema: dict[str, Any] = ORDER_V1) -> bytes:
        serialize = AvroSerializer(self.client, json.dumps(schema))
        data = serialize(value, SerializationContext(TOPIC, MessageField.VALUE))
        assert data is not None
        return data

    def rows(self) -> list[dict[str, Any]]:
        out = []
        for batch in self.sink.batches:
            for fields in read_payload(batch.decompressed(), "csv"):
                out.append(dict(zip([n for n, _, _ in COLUMNS], fields, strict=True)))
        return out

    def letters(self) -> list[DeadLetter]:
        return [letter for set_id in self.store.sets() for letter in self.store.read(set_id)]


def record(value: bytes, offset: int = 0, headers: tuple[tuple[str, bytes | None], ...] = ()) -> Record:
    return Record(value=value, topic=TOPIC, offset=offset, headers=headers, source="kafka",
                  timestamp=datetime(2024, 1, 1, tzinfo=UTC))  # fmt: skip


@pytest.fixture(autouse=True)
def fresh_caches() -> None:
    encoder_module._CACHES.clear()


def test_every_avro_type_lands_in_its_adx_column(tmp_path: Path) -> None:
    s = Setup(tmp_path)
    result = s.pipeline.process([record(s.avro(order()))])
    assert (result.ingested, result.dead_lettered) == (1, 0)
    assert s.rows() == [{
        "Id": "7", "Customer": "Ada", "Amount": "1234.50", "Placed": "2024-05-06T07:08:09.1230000Z",
        "Ref": "12345678-1234-5678-1234-567812345678", "Day": "2024-05-06T00:00:00.0000000Z",
        "At": "13:14:15.5000000", "Blob": base64.b64encode(b"\x00\xffhi").decode(), "Express": "true",
        "Weight": "2.5", "Tags": '["a","b"]', "City": "Oslo", "Coupon": "", "Whole": '{"city":"Oslo","zip":null}',
    }]  # fmt: skip


def test_evolution_new_version_by_its_id_and_old_records_give_null(tmp_path: Path) -> None:
    s = Setup(tmp_path)
    old = s.avro(order(id=1))
    new = s.avro({**order(id=2), "coupon": "SPRING"}, ORDER_V2)
    assert old[1:5] != new[1:5]  # two schema ids
    s.pipeline.process([record(old, 0), record(new, 1), record(old, 2)])
    assert [(r["Id"], r["Coupon"]) for r in s.rows()] == [("1", ""), ("2", "SPRING"), ("1", "")]


def test_schemas_are_fetched_once_per_id_and_process(tmp_path: Path) -> None:
    s = Setup(tmp_path)
    data = s.avro(order())
    s.pipeline.process([record(data, n) for n in range(50)])
    other = Setup(tmp_path / "second", registries=s.registries)  # a second pipeline of the same process
    other.pipeline.process([record(data, n) for n in range(50, 60)])
    caches = list(encoder_module._CACHES.values())
    assert len(caches) == 1 and caches[0].fetches == 1
    assert len(s.rows()) == 50 and len(other.rows()) == 10


def test_bad_records_are_dead_lettered_with_the_schema_id_and_the_decoder_error(tmp_path: Path) -> None:
    s = Setup(tmp_path)
    good = s.avro(order())
    truncated = good[:-3]
    wrong_id = b"\x00" + (999).to_bytes(4, "big") + good[5:]
    no_magic = b"\x07" + good[1:]
    trailing = good + b"\x02"
    result = s.pipeline.process(
        [record(good, 0), record(truncated, 1), record(wrong_id, 2), record(no_magic, 3), record(b"\x00\x01", 4),
         record(trailing, 5)]
    )  # fmt: skip
    assert (result.ingested, result.dead_lettered) == (1, 5)
    reasons = {letter.record.offset: letter.reason for letter in s.letters()}
    assert "schema id 1: bytes do not decode as Avro" in reasons[1]
    assert "schema id 999:" in reasons[2] and "no schema id 999" in reasons[2]
    assert "missing magic byte" in reasons[3] and "0x07" in reasons[3]
    assert "too short for the Confluent wire format" in reasons[4]
    assert "schema id 1: 1 byte(s) left after the Avro value" in reasons[5]
    assert all(letter.stage == "decode" for letter in s.letters())


def test_a_value_that_does_not_convert_dead_letters_naming_the_column(tmp_path: Path) -> None:
    s = Setup(tmp_path)
    schema = {**ORDER_V1, "fields": [f if f["name"] != "customer" else {"name": "customer", "type": "string"}
                                     for f in ORDER_V1["fields"]]}  # fmt: skip
    schema["fields"][0] = {"name": "id", "type": "string"}  # a producer changed id's type: "x" is no long
    s.pipeline.process([record(s.avro(order(id="x"), schema))])
    [letter] = s.letters()
    assert letter.field == "Id" and letter.stage == "map"
    assert "schema id 1: column Id (long)" in letter.reason


def test_registry_outage_is_transient_not_a_bad_record(tmp_path: Path) -> None:
    class Down:
        name = "schema registry (down)"

        def fetch(self, schema_id: str) -> RegisteredSchema:
            raise RegistryUnavailable("schema registry unreachable: ConnectError: refused")

    s = Setup(tmp_path, registries=Registries(confluent=Down()))
    data = Setup(tmp_path / "producer").avro(order())
    with pytest.raises(TransientError, match="unreachable"):
        s.pipeline.process([record(data)], attempt=1, final_attempt=False)
    assert s.letters() == [] and s.sink.batches == []


def test_unknown_ids_are_remembered_not_asked_per_record(tmp_path: Path) -> None:
    asked: list[str] = []

    class Empty:
        name = "empty registry"

        def fetch(self, schema_id: str) -> RegisteredSchema:
            asked.append(schema_id)
            raise UnknownSchema(f"empty registry has no schema id {schema_id}")

    s = Setup(tmp_path, registries=Registries(confluent=Empty()))
    value = b"\x00\x00\x00\x00\x05\x02"
    result = s.pipeline.process([record(value, n) for n in range(20)])
    assert result.dead_lettered == 20 and asked == ["5"]


def test_no_registry_configured_dead_letters_naming_the_setting(tmp_path: Path) -> None:
    s = Setup(tmp_path, registries=Registries())
    s.pipeline.process([record(Setup(tmp_path / "p").avro(order()))])
    [letter] = s.letters()
    assert "SCHEMA_REGISTRY_URL" in letter.reason


def test_azure_schema_registry_records_by_content_type(tmp_path: Path) -> None:
    parsed = fastavro.parse_schema(ORDER_V1)
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, parsed, order(id=11))
    fetched: list[str] = []

    class Azure:
        name = "Azure Schema Registry test"

        def fetch(self, schema_id: str) -> RegisteredSchema:
            fetched.append(schema_id)
            if schema_id != "0af1c2d3e4":
                raise UnknownSchema(f"no schema id {schema_id}")
            return RegisteredSchema(schema_id, "AVRO", json.dumps(ORDER_V1))

    s = Setup(tmp_path, registries=Registries(azure=Azure()))
    body = buffer.getvalue()
    s.pipeline.process([
        record(body, 0, (("content-type", b"avro/binary+0af1c2d3e4"),)),
        record(body, 1, (("content-type", b"avro/binary+0af1c2d3e4"),)),
        record(body, 2, (("content-type", b"avro/binary+ffff"),)),
    ])  # fmt: skip
    assert [r["Id"] for r in s.rows()] == ["11", "11"] and fetched == ["0af1c2d3e4", "ffff"]
    [letter] = s.letters()
    assert letter.record.offset == 2 and "schema id ffff" in letter.reason


JSON_SCHEMA = {
    "$schema": "http://json-schema.org/draft-07/schema#", "title": "Order", "type": "object",
    "properties": {"id": {"type": "integer"}, "customer": {"type": "string"}, "tags": {"type": "array"}},
    "required": ["id", "customer"],
}  # fmt: skip


def test_json_schema_records_are_validated_then_mapped(tmp_path: Path) -> None:
    s = Setup(tmp_path, fmt="jsonschema")
    serialize = JSONSerializer(json.dumps(JSON_SCHEMA), s.client)
    good = serialize({"id": 3, "customer": "Lin", "tags": ["x"]}, SerializationContext(TOPIC, MessageField.VALUE))
    assert good is not None
    schema_id = good[:5]
    bad_type = schema_id + b'{"id": "three", "customer": "Lin"}'
    not_json = schema_id + b"{oops"
    result = s.pipeline.process([record(good, 0), record(bad_type, 1), record(not_json, 2)])
    assert result.ingested == 1
    assert [(r["Id"], r["Customer"], r["Tags"]) for r in s.rows()] == [("3", "Lin", '["x"]')]
    reasons = {letter.record.offset: letter.reason for letter in s.letters()}
    assert "does not match its JSON Schema at $.id" in reasons[1]
    assert "invalid JSON" in reasons[2]


def test_a_route_with_the_wrong_kind_of_schema_dead_letters(tmp_path: Path) -> None:
    s = Setup(tmp_path, fmt="jsonschema")
    s.pipeline.process([record(s.avro(order()))])
    [letter] = s.letters()
    assert "is a AVRO schema, the route's format is jsonschema" in letter.reason


def test_schema_formats_are_client_mapped_with_a_json_mapping() -> None:
    route = config().routes[0]
    assert route.apply_mapping == "client"
    with pytest.raises(ConfigError, match="decoded by kafka-adx"):
        config(apply_mapping="server")
    with pytest.raises(ConfigError, match="needs a json mapping"):
        parse_config({
            "database": "db",
            "tables": {"T": {"columns": [{"name": "a", "type": "string"}],
                             "mappings": {"m": {"kind": "csv", "columns": [{"column": "a", "Properties": {"Ordinal": 0}}]}}}},
            "routes": [{"topic": "t", "table": "T", "format": "avro", "mapping": "m"}],
        })  # fmt: skip


def test_without_the_confluent_client_installed_records_dead_letter_saying_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The function app's package leaves confluent-kafka to the command line: a Confluent
    # wire-format record must then be dead-lettered with the remedy, not crash the batch.
    import sys

    from shared.formats.registry import _registries, registries_from
    from shared.settings import Settings

    monkeypatch.setitem(sys.modules, "confluent_kafka.schema_registry", None)
    _registries.cache_clear()
    try:
        registries = registries_from(Settings.from_env({"SCHEMA_REGISTRY_URL": "http://127.0.0.1:9"}))
    finally:
        _registries.cache_clear()
    assert registries.confluent is None
    data = Setup(tmp_path / "producer").avro(order())
    s = Setup(tmp_path, registries=registries)
    s.pipeline.process([record(data)])
    [letter] = s.letters()
    assert "SCHEMA_REGISTRY_URL is set but its client is not installed here" in letter.reason
    assert "confluent-kafka[schemaregistry]" in letter.reason
