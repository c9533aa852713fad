"""The schema registry stand-in (tests/fixtures/registry.py) held to confluent-kafka's real
``SchemaRegistryClient`` and serializers, and kafka-adx's registry client
(:class:`shared.formats.registry.ConfluentSource`) over real HTTP: what it fetches, how often,
and how each failure is sorted (bad record vs. transient)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext

from shared.cli.app import main
from shared.config import load_config
from shared.formats.avro import parse_avro
from shared.formats.registry import ConfluentSource, RegistryUnavailable, SchemaCache, UnknownSchema
from tests.fixtures.registry import RegistryStandIn

V1 = {"type": "record", "name": "Reading", "fields": [{"name": "sensor", "type": "string"}, {"name": "value", "type": "double"}]}
V2 = {**V1, "fields": [*V1["fields"], {"name": "unit", "type": ["null", "string"], "default": None}]}
CTX = SerializationContext("readings", MessageField.VALUE)


def client(registry: RegistryStandIn, **conf: object) -> SchemaRegistryClient:
    return SchemaRegistryClient({"url": registry.url, "max.retries": 0, **conf})


def test_the_stand_in_answers_the_client_as_a_confluent_registry(schema_registry: RegistryStandIn) -> None:
    sr = client(schema_registry)
    first = sr.register_schema("readings-value", Schema(json.dumps(V1), "AVRO"))
    second = sr.register_schema("readings-value", Schema(json.dumps(V2), "AVRO"))
    again = sr.register_schema("other-value", Schema(json.dumps(V1), "AVRO"))
    assert (first, second, again) == (1, 2, 1)  # the same schema keeps its id across subjects
    latest = sr.get_latest_version("readings-value")
    assert (latest.schema_id, latest.version, json.loads(latest.schema.schema_str)) == (2, 2, V2)
    assert sr.get_version("readings-value", 1).schema_id == 1
    assert json.loads(sr.get_schema(2).schema_str) == V2
    assert sr.lookup_schema("readings-value", Schema(json.dumps(V1), "AVRO")).version == 1
    assert sr.get_subjects() == ["other-value", "readings-value"]
    assert sr.get_versions("readings-value") == [1, 2]
    with pytest.raises(SchemaRegistryError) as missing:
        client(schema_registry).get_schema(99)
    assert (missing.value.http_status_code, missing.value.error_code) == (404, 40403)
    with pytest.raises(SchemaRegistryError) as no_subject:
        sr.get_latest_version("nope-value")
    assert no_subject.value.error_code == 40401


def test_the_real_serializers_round_trip_through_the_stand_in(schema_registry: RegistryStandIn) -> None:
    serialize = AvroSerializer(client(schema_registry), json.dumps(V1))
    data = serialize({"sensor": "s1", "value": 21.5}, CTX)
    assert data is not None and data[0] == 0 and int.from_bytes(data[1:5], "big") == 1
    deserialize = AvroDeserializer(client(schema_registry))
    assert deserialize(data, CTX) == {"sensor": "s1", "value": 21.5}


def test_kafka_adx_fetches_each_id_once_and_decodes(schema_registry: RegistryStandIn) -> None:
    data = AvroSerializer(client(schema_registry), json.dumps(V1))({"sensor": "s1", "value": 1.0}, CTX)
    assert data is not None
    cache = SchemaCache(ConfluentSource.connect(schema_registry.url), parse_avro)
    for _ in range(25):
        assert cache.get("1").decode(data[5:]) == {"sensor": "s1", "value": 1.0}
    assert schema_registry.fetches(1) == 1


def test_an_id_the_registry_lacks_is_unknown_not_transient(schema_registry: RegistryStandIn) -> None:
    with pytest.raises(UnknownSchema, match="has no schema id 42"):
        ConfluentSource.connect(schema_registry.url).fetch("42")


@pytest.mark.parametrize("status", [500, 503, 429])
def test_registry_errors_are_transient(schema_registry: RegistryStandIn, status: int) -> None:
    schema_registry.fail_status = status
    with pytest.raises(RegistryUnavailable, match=f"HTTP {status}"):
        ConfluentSource.connect(schema_registry.url).fetch("1")


def test_a_registry_that_is_down_or_slow_is_transient(schema_registry: RegistryStandIn) -> None:
    source = ConfluentSource.connect(schema_registry.url, timeout=0.3)
    schema_registry.delay = 2.0
    with pytest.raises(RegistryUnavailable, match="unreachable"):
        source.fetch("1")
    schema_registry.delay = 0.0
    schema_registry.stop()
    with pytest.raises(RegistryUnavailable, match="unreachable"):
        source.fetch("1")


def test_basic_auth_from_the_settings_and_no_password_in_errors(schema_registry: RegistryStandIn) -> None:
    schema_registry.basic_auth = ("key-id", "s3cr3t-registry-pass")
    client(schema_registry, **{"basic.auth.user.info": "key-id:s3cr3t-registry-pass"}).register_schema(
        "readings-value", Schema(json.dumps(V1), "AVRO"))  # fmt: skip
    good = ConfluentSource.connect(schema_registry.url, username="key-id", password="s3cr3t-registry-pass")
    assert good.fetch("1").kind == "AVRO"
    bad = ConfluentSource.connect(schema_registry.url, username="key-id", password="wrong-password-123")
    with pytest.raises(RegistryUnavailable, match="HTTP 401") as refused:
        bad.fetch("1")
    assert "wrong-password-123" not in str(refused.value) and "s3cr3t" not in str(refused.value)


def test_init_from_a_subject_reads_its_latest_version(
    schema_registry: RegistryStandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sr = client(schema_registry)
    sr.register_schema("readings-value", Schema(json.dumps(V1), "AVRO"))
    sr.register_schema("readings-value", Schema(json.dumps(V2), "AVRO"))
    monkeypatch.setenv("SCHEMA_REGISTRY_URL", schema_registry.url)
    target = tmp_path / "ingestion.yaml"
    result = CliRunner().invoke(main, ["init", "--config", str(target), "--from-schema", "readings-value"])
    assert result.exit_code == 0, result.output
    assert "subject readings-value (schema id 2)" in result.output
    config = load_config(target)
    assert [(c.name, c.type) for c in config.tables["readings"].columns] == [
        ("sensor", "string"), ("value", "real"), ("unit", "string")]  # fmt: skip
    assert (config.routes[0].topic, config.routes[0].format) == ("readings", "avro")
    missing = CliRunner().invoke(main, ["init", "--config", str(target), "--from-schema", "nothing-value"])
    assert missing.exit_code == 2 and "has no subject 'nothing-value'" in missing.output


ADDRESS = {"type": "record", "name": "Address", "namespace": "shop",
           "fields": [{"name": "city", "type": "string"}, {"name": "zip", "type": "string"}]}  # fmt: skip
CUSTOMER = {"type": "record", "name": "Customer", "namespace": "shop",
            "fields": [{"name": "name", "type": "string"}, {"name": "home", "type": "shop.Address"}]}  # fmt: skip


def test_schema_references_are_resolved(schema_registry: RegistryStandIn) -> None:
    from confluent_kafka.schema_registry import SchemaReference

    sr = client(schema_registry)
    sr.register_schema("shop.Address", Schema(json.dumps(ADDRESS), "AVRO"))
    customer = Schema(json.dumps(CUSTOMER), "AVRO", [SchemaReference("shop.Address", "shop.Address", 1)])
    sr.register_schema("customers-value", customer)
    serialize = AvroSerializer(sr, customer, conf={"auto.register.schemas": False, "use.latest.version": True})
    value = {"name": "Ada", "home": {"city": "Oslo", "zip": "0150"}}
    data = serialize(value, SerializationContext("customers", MessageField.VALUE))
    assert data is not None
    schema_id = str(int.from_bytes(data[1:5], "big"))
    cache = SchemaCache(ConfluentSource.connect(schema_registry.url), parse_avro)
    assert cache.get(schema_id).decode(data[5:]) == value
