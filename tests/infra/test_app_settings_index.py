"""Every deployable combination of the function app's parameters produces app settings with which
the unchanged function_app.py indexes and registers the triggers it should.

For each combination the settings are rendered from infra/modules/functionapp.bicep (the
template's own expressions, evaluated by tests/infra/bicep_model.py), Key Vault references are
replaced by a value as the platform resolves them before the worker starts, and function_app.py
is indexed in a fresh interpreter with exactly those settings as its environment. The functions
it registers (``FunctionApp.get_functions()``, the metadata the worker hands the host) must be
the expected ones, and every ``%SETTING%`` a binding names must be one of the rendered settings
(the host fails a function whose binding expression names an unset setting).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from typing import Any

import pytest

from tests.infra.bicep_model import INFRA, REPO, parse, render_app_settings

# What main.bicep hands the module besides the switches below (values of a deployment's shape).
BASE: dict[str, Any] = {
    "identityClientId": "11111111-2222-3333-4444-555555555555",
    "storageBlobServiceUri": "https://stexample.blob.core.windows.net/",
    "storageQueueServiceUri": "https://stexample.queue.core.windows.net/",
    "deadLetterContainerUri": "https://stexample.blob.core.windows.net/deadletter",
    "appInsightsConnectionString": "IngestionEndpoint=https://ingest.example.invalid/",
    "adxIngestUri": "https://ingest-decexample.westeurope.kusto.windows.net",
    "adxEngineUri": "https://decexample.westeurope.kusto.windows.net",
    "eventHubsNamespaceHost": "evhns-example.servicebus.windows.net",
    "eventHubName": "storm-events",
    "eventHubConsumerGroup": "kafka-adx",
    "kafkaUsernameSecretUri": "https://kv-example.vault.azure.net/secrets/kafka-username",
    "kafkaPasswordSecretUri": "https://kv-example.vault.azure.net/secrets/kafka-password",
}
KAFKA = {"kafkaBrokers": "pkc-example.westeurope.azure.confluent.cloud:9092", "kafkaTopic": "orders"}
NO_EVENT_HUB = {"enableEventHubTrigger": False}
# azure-functions writes the Kafka trigger's default mode (BrokerAuthenticationMode.NotSet) when no
# mechanism is given: the extension then uses no SASL.
NO_SASL = "NOTSET"

# name -> (parameter values, {function name: (trigger type, what it reads, authentication mode)})
COMBINATIONS: dict[str, tuple[dict[str, Any], dict[str, tuple[str, str, str | None]]]] = {
    "event hub (the default)": ({}, {"eventhub_ingest": ("eventHubTrigger", "storm-events", None)}),
    "two event hubs": (
        {"eventHubName": "storm-events,orders"},
        {
            "eventhub_ingest_storm_events": ("eventHubTrigger", "storm-events", None),
            "eventhub_ingest_orders": ("eventHubTrigger", "orders", None),
        },
    ),
    "event hub and Kafka with SASL PLAIN": (
        KAFKA,
        {
            "eventhub_ingest": ("eventHubTrigger", "storm-events", None),
            "kafka_ingest": ("kafkaTrigger", "orders", "PLAIN"),
        },
    ),
    "Kafka alone without SASL over TLS": (
        {**NO_EVENT_HUB, **KAFKA, "kafkaSaslMechanism": "none", "kafkaProtocol": "ssl"},
        {"kafka_ingest": ("kafkaTrigger", "orders", NO_SASL)},
    ),
    "Kafka alone in plaintext": (
        {**NO_EVENT_HUB, **KAFKA, "kafkaSaslMechanism": "none", "kafkaProtocol": "plaintext"},
        {"kafka_ingest": ("kafkaTrigger", "orders", NO_SASL)},
    ),
    "Kafka with GSSAPI (no credentials)": (
        {**NO_EVENT_HUB, **KAFKA, "kafkaSaslMechanism": "gssapi", "kafkaProtocol": "sasl_plaintext"},
        {"kafka_ingest": ("kafkaTrigger", "orders", "GSSAPI")},
    ),
    "Kafka SCRAM-SHA-512, string data, two topics": (
        {**KAFKA, "kafkaTopic": "orders,payments", "kafkaSaslMechanism": "scram-sha-512", "kafkaDataType": "string"},
        {
            "eventhub_ingest": ("eventHubTrigger", "storm-events", None),
            "kafka_ingest_orders": ("kafkaTrigger", "orders", "SCRAMSHA512"),
            "kafka_ingest_payments": ("kafkaTrigger", "payments", "SCRAMSHA512"),
        },
    ),
    "event hub with both schema registries": (
        {
            "schemaRegistryUrl": "https://psrc-example.westeurope.azure.confluent.cloud",
            "schemaRegistryUsernameSecretUri": "https://kv-example.vault.azure.net/secrets/schema-registry-username",
            "schemaRegistryPasswordSecretUri": "https://kv-example.vault.azure.net/secrets/schema-registry-password",
            "azureSchemaRegistryNamespace": "evhns-example.servicebus.windows.net",
        },
        {"eventhub_ingest": ("eventHubTrigger", "storm-events", None)},
    ),
    "no trigger switched on": (NO_EVENT_HUB, {}),
}

KEY_VAULT_REFERENCE = re.compile(r"^@Microsoft\.KeyVault\(SecretUri=(?P<uri>[^)]+)\)$")
BINDING_EXPRESSION = re.compile(r"%([A-Za-z0-9_]+)%")

INDEX = textwrap.dedent(
    """
    import json
    import sys

    sys.path.insert(0, sys.argv[1])
    import function_app

    print(json.dumps({f.get_function_name(): json.loads(f.get_function_json())
                      for f in function_app.app.get_functions()}))
    """
)


def _as_the_platform_resolves(settings: dict[str, str]) -> dict[str, str]:
    """Key Vault references replaced by a secret's value, as the platform does before start."""
    resolved = {}
    for name, value in settings.items():
        match = KEY_VAULT_REFERENCE.match(value)
        resolved[name] = f"resolved:{match['uri'].rsplit('/', 1)[-1]}" if match else value
    return resolved


def _index(settings: dict[str, str]) -> dict[str, Any]:
    """function_app.py indexed in a fresh interpreter whose environment is ``settings`` (plus
    what an interpreter needs to start): function name -> its function.json."""
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "SYSTEMROOT", "TMPDIR")}
    result = subprocess.run(
        [sys.executable, "-c", INDEX, str(REPO)],
        env={**env, **settings},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    functions: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return functions


@pytest.mark.parametrize("combination", list(COMBINATIONS), ids=list(COMBINATIONS))
def test_each_combination_registers_the_triggers_it_should(combination: str) -> None:
    values, expected = COMBINATIONS[combination]
    settings = _as_the_platform_resolves(render_app_settings({**BASE, **values}))
    functions = _index(settings)
    assert set(functions) == set(expected), (combination, sorted(functions))
    for name, (trigger_type, source, authentication) in expected.items():
        (trigger,) = [b for b in functions[name]["bindings"] if b["type"].endswith("Trigger")]
        assert trigger["type"] == trigger_type, (name, trigger)
        # What the trigger reads, after the host resolves %SETTING% expressions.
        reads = trigger["eventHubName"] if trigger_type == "eventHubTrigger" else trigger["topic"]
        resolved = BINDING_EXPRESSION.sub(lambda m: settings.get(m.group(1), m.group(0)), reads)
        assert resolved == source, (name, reads, resolved)
        assert trigger.get("authenticationMode") == authentication, (name, trigger)
        with_credentials = authentication not in (None, NO_SASL, "GSSAPI")
        assert ("username" in trigger and "password" in trigger) is with_credentials, (name, trigger)
        if trigger_type == "eventHubTrigger":
            # An identity-based connection: the host reads EventHubConnection__*.
            assert f"{trigger['connection']}__fullyQualifiedNamespace" in settings
        # Every binding expression names a setting the deployment sets.
        named = {n for value in trigger.values() if isinstance(value, str) for n in BINDING_EXPRESSION.findall(value)}
        assert named <= set(settings), (name, sorted(named - set(settings)))


def test_the_combinations_cover_every_protocol_and_mechanism() -> None:
    params = parse(INFRA / "modules" / "functionapp.bicep")["parameters"]

    def allowed(name: str) -> set[Any]:
        return set(next(d["argument"] for d in params[name]["decorators"] if d["type"] == "allowed"))

    used = [values for values, _ in COMBINATIONS.values() if "kafkaBrokers" in values]
    assert {v.get("kafkaProtocol", params["kafkaProtocol"]["default"]) for v in used} == allowed("kafkaProtocol")
    mechanisms = {v.get("kafkaSaslMechanism", params["kafkaSaslMechanism"]["default"]) for v in used}
    # scram-sha-256 differs from scram-sha-512 only in its name.
    assert mechanisms >= allowed("kafkaSaslMechanism") - {"scram-sha-256"}
    assert {v.get("kafkaDataType", "binary") for v in used} == allowed("kafkaDataType")
