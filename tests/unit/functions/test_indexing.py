"""What the worker indexes: which functions exist for which settings, and the binding JSON and
retry policy each one hands the host."""

from __future__ import annotations

import inspect
import json
import typing
from typing import Any

import pytest
from azure.functions.eventhub import EventHubTriggerConverter
from azure.functions.kafka import KafkaTriggerConverter
from pydantic import ValidationError

from shared.errors import ConfigError
from shared.functions.settings import TriggerSettings
from tests.support.functions_app import EVENTHUB_ENV, KAFKA_ENV, load_app


def binding(function: Any) -> dict[str, Any]:
    bindings = json.loads(function.get_function_json())["bindings"]
    assert len(bindings) == 1
    return bindings[0]  # type: ignore[no-any-return]


def test_event_hubs_trigger_binding_uses_identity_connection_and_setting_names(monkeypatch: pytest.MonkeyPatch) -> None:
    functions = load_app(monkeypatch, {**EVENTHUB_ENV, "EVENTHUB_CONSUMER_GROUP": "kafka-adx"})
    assert list(functions) == ["eventhub_ingest"]
    assert binding(functions["eventhub_ingest"]) == {
        "direction": "IN",
        "type": "eventHubTrigger",
        "name": "events",
        "dataType": "BINARY",
        "cardinality": "MANY",
        "connection": "EventHubConnection",  # prefix: __fullyQualifiedNamespace, __credential, __clientId
        "eventHubName": "%EVENTHUB_NAME%",
        "consumerGroup": "%EVENTHUB_CONSUMER_GROUP%",
    }


def test_consumer_groups_default_when_their_settings_are_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    functions = load_app(monkeypatch, {**EVENTHUB_ENV, **KAFKA_ENV})
    assert binding(functions["eventhub_ingest"])["consumerGroup"] == "$Default"
    assert binding(functions["kafka_ingest"])["consumerGroup"] == "kafka-adx"


def test_kafka_trigger_binding_names_settings_and_never_holds_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        **KAFKA_ENV,
        "KAFKA_CONSUMER_GROUP": "adx-ingest",
        "KAFKA_PROTOCOL": "SASL_SSL",
        "KAFKA_SASL_MECHANISM": "PLAIN",
        "KAFKA_USERNAME": "api-key-123",
        "KAFKA_PASSWORD": "s3cret-value",
    }
    functions = load_app(monkeypatch, env)
    assert list(functions) == ["kafka_ingest"]
    data = binding(functions["kafka_ingest"])
    assert data == {
        "direction": "IN",
        "type": "kafkaTrigger",
        "name": "events",
        "dataType": "BINARY",
        "cardinality": "MANY",
        "topic": "%KAFKA_TOPIC%",
        "brokerList": "%KAFKA_BROKERS%",
        "consumerGroup": "%KAFKA_CONSUMER_GROUP%",
        "username": "%KAFKA_USERNAME%",
        "password": "%KAFKA_PASSWORD%",
        "protocol": "SASLSSL",
        "authenticationMode": "PLAIN",
        "keyDataType": "BINARY",  # keys as bytes: the default String alters non-UTF-8 keys
        "lagThreshold": 1000,
    }
    text = functions["kafka_ingest"].get_function_json()
    assert "s3cret-value" not in text and "api-key-123" not in text


@pytest.mark.parametrize(
    ("mechanism", "expected"),
    [("scram-sha-512", "SCRAMSHA512"), ("ScramSha256", "SCRAMSHA256"), ("plain", "PLAIN")],
)
def test_sasl_mechanism_spellings_and_sasl_ssl_default(monkeypatch: pytest.MonkeyPatch, mechanism: str, expected: str) -> None:
    env = {**KAFKA_ENV, "KAFKA_SASL_MECHANISM": mechanism, "KAFKA_USERNAME": "u", "KAFKA_PASSWORD": "p"}
    data = binding(load_app(monkeypatch, env)["kafka_ingest"])
    assert data["authenticationMode"] == expected
    assert data["protocol"] == "SASLSSL"  # SASL without a protocol means SASL over TLS


def test_string_data_type_switches_to_the_json_envelope(monkeypatch: pytest.MonkeyPatch) -> None:
    data = binding(load_app(monkeypatch, {**KAFKA_ENV, "KAFKA_DATA_TYPE": "string"})["kafka_ingest"])
    assert data["dataType"] == "STRING"


def test_triggers_are_switched_on_by_their_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_app(monkeypatch, {}) == {}
    assert list(load_app(monkeypatch, EVENTHUB_ENV)) == ["eventhub_ingest"]
    assert list(load_app(monkeypatch, KAFKA_ENV)) == ["kafka_ingest"]
    assert sorted(load_app(monkeypatch, {**EVENTHUB_ENV, **KAFKA_ENV})) == ["eventhub_ingest", "kafka_ingest"]


def test_lists_of_event_hubs_and_topics_register_one_function_each(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        **EVENTHUB_ENV,
        "EVENTHUB_NAME": "storm-events, storm-events-json,storm-events",
        **KAFKA_ENV,
        "KAFKA_TOPIC": "orders.v1,orders-v1",
    }
    functions = load_app(monkeypatch, env)
    names = {name: binding(f).get("eventHubName", binding(f).get("topic")) for name, f in functions.items()}
    assert names == {
        "eventhub_ingest_storm_events": "storm-events",
        "eventhub_ingest_storm_events_json": "storm-events-json",
        "kafka_ingest_orders_v1": "orders.v1",
        "kafka_ingest_orders_v1_2": "orders-v1",
    }


def test_retry_policy_is_exponential_backoff_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    functions = load_app(monkeypatch, {**EVENTHUB_ENV, **KAFKA_ENV})
    for function in functions.values():
        assert function.get_settings_dict("retry_policy") == {
            "setting_name": "retry_policy",
            "strategy": "exponential_backoff",
            "max_retry_count": "5",
            "minimum_interval": "00:00:10",
            "maximum_interval": "00:05:00",
        }
    env = {**KAFKA_ENV, "RETRY_MAX_COUNT": "-1", "RETRY_MIN_INTERVAL": "00:00:02", "RETRY_MAX_INTERVAL": "00:15:00"}
    policy = load_app(monkeypatch, env)["kafka_ingest"].get_settings_dict("retry_policy")
    assert (policy["max_retry_count"], policy["minimum_interval"], policy["maximum_interval"]) == ("-1", "00:00:02", "00:15:00")


def test_parameter_annotations_pass_the_workers_type_check(monkeypatch: pytest.MonkeyPatch) -> None:
    # The worker rejects a function whose trigger parameter annotation its converter does not
    # accept (``list[...]`` fails, ``typing.List[...]`` passes).
    functions = load_app(monkeypatch, {**EVENTHUB_ENV, **KAFKA_ENV})
    converters = {"eventhub_ingest": EventHubTriggerConverter, "kafka_ingest": KafkaTriggerConverter}
    for name, converter in converters.items():
        user_function = functions[name].get_user_function()
        assert list(inspect.signature(user_function).parameters) == ["events", "context"]
        assert converter.check_input_type_annotation(typing.get_type_hints(user_function)["events"])


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"EVENTHUB_NAME": "hub"}, "EventHubConnection__fullyQualifiedNamespace: required"),
        ({"KAFKA_BROKERS": "b:9092"}, "KAFKA_TOPIC: required"),
        ({**KAFKA_ENV, "KAFKA_PROTOCOL": "tls"}, "KAFKA_PROTOCOL: 'tls' is not one of"),
        ({**KAFKA_ENV, "KAFKA_SASL_MECHANISM": "OAUTHBEARER"}, "OAUTHBEARER is not supported"),
        ({**KAFKA_ENV, "KAFKA_SASL_MECHANISM": "PLAIN"}, "KAFKA_USERNAME: required with KAFKA_SASL_MECHANISM"),
        ({**KAFKA_ENV, "KAFKA_DATA_TYPE": "avro"}, "KAFKA_DATA_TYPE"),
        ({**EVENTHUB_ENV, "EVENTHUB_HEADER_ENCODING": "hex"}, "EVENTHUB_HEADER_ENCODING"),
        ({"RETRY_MAX_COUNT": "many"}, "RETRY_MAX_COUNT"),
        ({"RETRY_MIN_INTERVAL": "5s"}, "RETRY_MIN_INTERVAL: '5s' is not hh:mm:ss"),
        ({"RETRY_MIN_INTERVAL": "00:10:00", "RETRY_MAX_INTERVAL": "00:01:00"}, "longer than RETRY_MAX_INTERVAL"),
    ],
)
def test_invalid_settings_fail_indexing_with_the_setting_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match="invalid function app settings") as info:
        TriggerSettings.from_env(env)
    assert message in str(info.value)


def test_every_invalid_setting_is_named_in_one_error() -> None:
    env = {
        **KAFKA_ENV,
        "KAFKA_TOPIC": " , ",
        "KAFKA_PROTOCOL": "tls",
        "KAFKA_SASL_MECHANISM": "kerberos5",
        "RETRY_MAX_COUNT": "-2",
        "EVENTHUB_NAME": "hub",
    }
    with pytest.raises(ConfigError) as info:
        TriggerSettings.from_env(env)
    text = str(info.value)
    for expected in (
        "KAFKA_TOPIC: required when KAFKA_BROKERS is set",
        "KAFKA_PROTOCOL: 'tls' is not one of",
        "KAFKA_SASL_MECHANISM: 'kerberos5' is not one of",
        "KAFKA_USERNAME: required with KAFKA_SASL_MECHANISM",
        "KAFKA_PASSWORD: required with KAFKA_SASL_MECHANISM",
        "RETRY_MAX_COUNT: '-2' is not a whole number >= -1",
        "EventHubConnection__fullyQualifiedNamespace: required",
    ):
        assert expected in text, expected


def test_settings_are_normalised_and_frozen() -> None:
    env = {**KAFKA_ENV, "KAFKA_TOPIC": "a, b,a", "KAFKA_PROTOCOL": "sasl-plaintext",
           "KAFKA_SASL_MECHANISM": "SCRAM_SHA_256", "KAFKA_USERNAME": "u", "KAFKA_PASSWORD": "p",
           "KAFKA_DATA_TYPE": "STRING", "KAFKA_CONSUMER_GROUP": "  "}  # fmt: skip
    triggers = TriggerSettings.from_env(env)
    assert triggers.kafka_topics == ("a", "b")
    assert (triggers.kafka_protocol, triggers.kafka_sasl_mechanism) == ("SaslPlaintext", "ScramSha256")
    assert triggers.kafka_data_type == "string" and triggers.kafka_consumer_group is None  # blank is unset
    with pytest.raises(ValidationError):
        triggers.kafka_topics = ("c",)  # type: ignore[misc]


def test_a_broken_trigger_is_left_out_and_the_others_still_register(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """An empty KAFKA_USERNAME with SASL used to make importing function_app raise, so no
    function registered at all; now only the Kafka trigger is left out, with its error logged."""
    env = {**EVENTHUB_ENV, **KAFKA_ENV, "KAFKA_SASL_MECHANISM": "PLAIN", "KAFKA_USERNAME": " ", "KAFKA_PASSWORD": "p"}
    functions = load_app(monkeypatch, env)
    assert list(functions) == ["eventhub_ingest"]
    (error,) = [r for r in caplog.records if r.name == "kafka_adx.functions" and r.levelname == "ERROR"]
    assert "KAFKA_BROKERS is not registered" in error.getMessage()
    assert "KAFKA_USERNAME: required with KAFKA_SASL_MECHANISM" in error.getMessage()


def test_per_trigger_checks_each_trigger_alone_and_shared_settings_still_raise() -> None:
    settings, broken = TriggerSettings.per_trigger({"EVENTHUB_NAME": "hub", **KAFKA_ENV})
    assert list(broken) == ["EVENTHUB_NAME"] and not settings.eventhub_enabled and settings.kafka_enabled
    assert "EventHubConnection__fullyQualifiedNamespace: required" in str(broken["EVENTHUB_NAME"])
    assert "KAFKA" not in str(broken["EVENTHUB_NAME"])
    settings, broken = TriggerSettings.per_trigger({**EVENTHUB_ENV, **KAFKA_ENV})
    assert broken == {} and settings.eventhub_enabled and settings.kafka_enabled
    with pytest.raises(ConfigError, match="RETRY_MAX_COUNT"):
        TriggerSettings.per_trigger({**EVENTHUB_ENV, **KAFKA_ENV, "RETRY_MAX_COUNT": "x"})
