"""Deploying into what users already have (issue "Deploy into what users already have"), pinned
over the pycep-parsed templates, with a small evaluator of the conditions main.bicep computes
from its parameters:

1. an existing ADX database / event hub by resource id: no cluster / namespace is created, the
   identity gets only Ingestor / Data Receiver there, at that resource's resource group;
2. the deploying principal's type comes from azd (AZURE_PRINCIPAL_TYPE), no literal 'User';
3. Kafka without SASL: no credential settings, no Key Vault; the preprovision hook refuses
   empty credentials with SASL and an empty topic;
4. the preprovision hook has a posix and a windows variant.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.infra.azd_hooks import run_hook
from tests.infra.bicep_model import (
    INFRA,
    MAIN,
    REPO,
    all_resources,
    bicep_files,
    body,
    evaluate,
    parse,
    property_path,
    rel,
    render_app_settings,
    resources,
)

MODULES = INFRA / "modules"
HOOK = REPO / "scripts" / "preprovision.py"
ADX_DB_ID = (
    "/subscriptions/1111/resourceGroups/rg-data/providers/Microsoft.Kusto/clusters/corp/databases/Weather"
)
HUB_ID = "/subscriptions/2222/resourceGroups/rg-stream/providers/Microsoft.EventHub/namespaces/corpns/eventhubs/events"
EVENT_HUBS_DATA_RECEIVER = "a638d3c7-ab3a-418d-83e6-5f17a39d4fde"


def main_var(name: str, **values: Any) -> Any:
    main = parse(MAIN)
    return evaluate(main["variables"][name]["value"], main, values)


def condition(parsed: dict[str, Any], kind: str, symbol: str) -> Any:
    """The ``if (...)`` expression of a module or resource (None: unconditional)."""
    config = parsed[kind][symbol]["config"]
    return config.get("condition")


def deployed(parsed: dict[str, Any], kind: str, symbol: str, **values: Any) -> bool:
    expr = condition(parsed, kind, symbol)
    return True if expr is None else bool(evaluate(expr, parsed, values))


# --- 1. an existing ADX database ---------------------------------------------------------------


def test_an_existing_adx_database_creates_no_cluster() -> None:
    main = parse(MAIN)
    assert body(main["modules"]["adxCluster"])["params"]["clusterName"] == "adxClusterName"
    assert main["modules"]["adxCluster"]["detail"]["path"] == "modules/adx.bicep"
    assert deployed(main, "modules", "adxCluster")  # a new cluster stays the default
    assert not deployed(main, "modules", "adxCluster", adxDatabaseResourceId=ADX_DB_ID)
    # adx.bicep is the only file declaring a cluster; the database module only references it.
    clusters = all_resources("Microsoft.Kusto/clusters")
    assert [rel(p) for p, _, _ in clusters] == ["infra/modules/adx.bicep"]
    database_module = parse(MODULES / "adx-database.bicep")
    declared = {r["type"] for _, r in resources(database_module)}
    assert declared == {
        "Microsoft.Kusto/clusters/databases/scripts",
        "Microsoft.Kusto/clusters/databases/principalAssignments",
    }
    existing = {s: r for s, r in database_module["resources"].items() if r.get("existing")}
    assert {r["type"] for r in existing.values()} == {
        "Microsoft.Kusto/clusters",
        "Microsoft.Kusto/clusters/databases",
    }


def test_the_existing_database_module_runs_at_that_database_and_grants_only_ingestor() -> None:
    main = parse(MAIN)
    adx = main["modules"]["adx"]
    assert adx["detail"]["path"] == "modules/adx-database.bicep"
    assert condition(main, "modules", "adx") is None  # a new or an existing database: always
    config = body(adx)
    assert config["scope"] == {
        "function": {
            "type": "resource_group",
            "parameters": {
                "resource_group_name": "adxResourceGroupName",
                "subscription_id": "adxSubscriptionId",
            },
        }
    }
    params = config["params"]
    assert (params["clusterName"], params["databaseName"]) == ("adxClusterName", "adxDatabase")
    assert "adxCluster" in config["dependsOn"]
    # Evaluated with an existing database in another subscription and resource group:
    assert main_var("adxSubscriptionId", adxDatabaseResourceId=ADX_DB_ID) == "1111"
    assert main_var("adxResourceGroupName", adxDatabaseResourceId=ADX_DB_ID) == "rg-data"
    assert main_var("adxClusterName", adxDatabaseResourceId=ADX_DB_ID) == "corp"
    assert main_var("adxDatabase", adxDatabaseResourceId=ADX_DB_ID) == "Weather"
    # ...and without: the new cluster in the environment's resource group.
    assert main_var("adxResourceGroupName") == main["variables"]["resourceGroupName"]["value"]
    assert body(main["resources"]["rg"])["name"] == "resourceGroupName"
    assert main_var("adxDatabase") == "Weather"
    # On an existing database the deploying principal gets nothing: only the identity's Ingestor.
    user = params["userPrincipalId"]
    assert evaluate(user, main, {"adxDatabaseResourceId": ADX_DB_ID, "principalId": "me"}) == ""
    assert evaluate(user, main, {"principalId": "me"}) == "me"
    database_module = parse(MODULES / "adx-database.bicep")
    assignments = dict(resources(database_module, "Microsoft.Kusto/clusters/databases/principalAssignments"))
    ingestor = body(assignments.pop("ingestor"))
    assert ingestor["parent"] == "database"
    assert ingestor["properties"]["role"] == "Ingestor" and ingestor["properties"]["principalType"] == "App"
    for symbol, assignment in assignments.items():  # the deployer's: off when userPrincipalId is empty
        assert not deployed(database_module, "resources", symbol), symbol
        assert deployed(database_module, "resources", symbol, userPrincipalId="me"), symbol
        assert body(assignment)["properties"]["role"] in ("Viewer", "Ingestor")


def test_the_existing_database_gets_only_the_ingestion_files_kql() -> None:
    database_module = parse(MODULES / "adx-database.bicep")
    scripts = {
        s: body(r) for s, r in resources(database_module, "Microsoft.Kusto/clusters/databases/scripts")
    }
    assert set(scripts) == {"schema", "mappings"}
    assert all(s["parent"] == "database" for s in scripts.values())
    assert scripts["schema"]["properties"]["continueOnErrors"] is False
    assert scripts["mappings"]["properties"]["continueOnErrors"] is True  # existing mappings stay


def test_the_app_settings_come_from_the_clusters_own_properties() -> None:
    main = parse(MAIN)
    app = body(main["modules"]["functionApp"])["params"]
    assert property_path(app["adxIngestUri"]) == ["adx", "outputs", "ingestUri"]
    assert property_path(app["adxEngineUri"]) == ["adx", "outputs", "engineUri"]
    outputs = parse(MODULES / "adx-database.bicep")["outputs"]
    assert property_path(outputs["ingestUri"]["value"]) == ["cluster", "properties", "dataIngestionUri"]
    assert property_path(outputs["engineUri"]["value"]) == ["cluster", "properties", "uri"]


# --- 1. an existing event hub ------------------------------------------------------------------


def test_an_existing_event_hub_creates_no_namespace_and_grants_receiver_on_that_hub() -> None:
    main = parse(MAIN)
    assert deployed(main, "modules", "eventHubsNamespace")
    assert not deployed(main, "modules", "existingEventHub")
    assert not deployed(main, "modules", "eventHubsNamespace", eventHubResourceId=HUB_ID)
    assert deployed(main, "modules", "existingEventHub", eventHubResourceId=HUB_ID)
    # No private endpoint for a namespace this deployment does not own.
    assert not deployed(
        main, "modules", "eventHubsEndpoint", enablePrivateNetworking=True, eventHubResourceId=HUB_ID
    )
    assert deployed(main, "modules", "eventHubsEndpoint", enablePrivateNetworking=True)
    config = body(main["modules"]["existingEventHub"])
    assert config["scope"]["function"]["parameters"] == {
        "resource_group_name": "existingEventHubResourceGroupName",
        "subscription_id": "existingEventHubSubscriptionId",
    }
    assert main_var("existingEventHubSubscriptionId", eventHubResourceId=HUB_ID) == "2222"
    assert main_var("existingEventHubResourceGroupName", eventHubResourceId=HUB_ID) == "rg-stream"
    assert main_var("existingEventHubNamespace", eventHubResourceId=HUB_ID) == "corpns"
    assert main_var("triggerEventHubs", eventHubResourceId=HUB_ID) == "events"
    assert main_var("triggerEventHubs") == "storm-events"
    assert config["params"]["consumerGroup"] == "triggerConsumerGroup"
    hub_module = parse(MODULES / "eventhub-existing.bicep")
    declared = {s: r for s, r in resources(hub_module)}
    assert {r["type"] for r in declared.values()} == {
        "Microsoft.EventHub/namespaces/eventhubs/consumergroups",
        "Microsoft.Authorization/roleAssignments",
    }
    role = body(declared["receiver"])
    assert role["scope"] == "hub"
    assert hub_module["resources"]["hub"]["existing"] is True
    assert (
        hub_module["variables"][
            role["properties"]["roleDefinitionId"]["function"]["parameters"]["resource_name_1"]
        ]["value"]
        == EVENT_HUBS_DATA_RECEIVER
    )
    assert not deployed(hub_module, "resources", "group", consumerGroup="$Default")
    assert deployed(hub_module, "resources", "group", consumerGroup="kafka-adx")
    # The app connects to the namespace the existing hub reports.
    assert body(main["modules"]["functionApp"])["params"]["eventHubsNamespaceHost"] == "triggerNamespaceHost"
    host = main["variables"]["triggerNamespaceHost"]["value"]
    assert property_path(host["operator"]["operands"]["true_value"]) == [
        "existingEventHub",
        "outputs",
        "fullyQualifiedNamespace",
    ]
    assert "namespace.properties.serviceBusEndpoint" in (MODULES / "eventhub-existing.bicep").read_text()


def test_the_existing_resource_parameters_are_azd_variables() -> None:
    values = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert values["adxDatabaseResourceId"]["value"] == "${KAFKA_ADX_ADX_DATABASE_ID=}"
    assert values["eventHubResourceId"]["value"] == "${KAFKA_ADX_EVENTHUB_ID=}"
    declared = parse(MAIN)["parameters"]
    assert (
        declared["adxDatabaseResourceId"]["default"] == "" and declared["eventHubResourceId"]["default"] == ""
    )


# --- 2. the deploying principal's type -----------------------------------------------------------


@pytest.mark.parametrize("path", bicep_files(), ids=[rel(p) for p in bicep_files()])
def test_no_principal_type_user_literal(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert not re.search(r"principalType:\s*'User'", text), f"{rel(path)} hard-codes principalType 'User'"


def test_principal_type_comes_from_azd_everywhere() -> None:
    values = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert values["principalType"]["value"] == "${AZURE_PRINCIPAL_TYPE=User}"
    main = parse(MAIN)
    param = main["parameters"]["principalType"]
    assert param["default"] == "User"
    assert next(d["argument"] for d in param["decorators"] if d["type"] == "allowed") == [
        "User",
        "ServicePrincipal",
    ]
    for module in ("storage", "eventHubsNamespace"):
        assert body(main["modules"][module])["params"]["userPrincipalType"] == "principalType", module
    # Every deployer role assignment uses the module's parameter.
    for path, symbol, assignment in all_resources("Microsoft.Authorization/roleAssignments"):
        principal = body(assignment)["properties"]["principalId"]
        if principal == "userPrincipalId":
            assert body(assignment)["properties"]["principalType"] == "userPrincipalType", (
                f"{rel(path)}: {symbol}"
            )
    # ADX: a user is 'User', a service principal 'App' named by its application id.
    assert body(main["modules"]["adx"])["params"]["userPrincipalType"] == "adxDeployerType"
    assert main_var("adxDeployerType") == "User"
    assert main_var("adxDeployerType", principalType="ServicePrincipal") == "App"
    assert main_var("adxDeployerId", principalId="oid") == "oid"
    assert main_var("adxDeployerId", principalId="oid", adxPrincipalId="me@contoso.com") == "me@contoso.com"
    assert main_var("adxDeployerId", principalId="sp-oid", principalType="ServicePrincipal") == ""
    assert main_var("adxDeployerId", principalType="ServicePrincipal", adxPrincipalId="app-id") == "app-id"
    allowed = next(
        d["argument"]
        for d in parse(MODULES / "adx-database.bicep")["parameters"]["userPrincipalType"]["decorators"]
        if d["type"] == "allowed"
    )
    assert allowed == ["User", "App"]
    assert values["adxPrincipalId"]["value"] == "${KAFKA_ADX_ADX_PRINCIPAL=}"


# --- 3. Kafka without SASL ------------------------------------------------------------------------


def _app_settings_for(**values: Any) -> set[str]:
    """Names of the app settings functionapp.bicep emits for those parameter values."""
    return set(render_app_settings(values))


def test_kafka_without_sasl_emits_no_credential_settings_and_no_key_vault() -> None:
    kafka = {"kafkaBrokers": "broker:9092", "kafkaTopic": "t"}
    plain = _app_settings_for(**kafka, kafkaSaslMechanism="plain")
    assert {
        "KAFKA_BROKERS",
        "KAFKA_PROTOCOL",
        "KAFKA_SASL_MECHANISM",
        "KAFKA_USERNAME",
        "KAFKA_PASSWORD",
    } <= plain
    none = _app_settings_for(**kafka, kafkaSaslMechanism="none", kafkaProtocol="ssl")
    assert {"KAFKA_BROKERS", "KAFKA_TOPIC", "KAFKA_PROTOCOL"} <= none
    assert not {"KAFKA_SASL_MECHANISM", "KAFKA_USERNAME", "KAFKA_PASSWORD"} & none
    gssapi = _app_settings_for(**kafka, kafkaSaslMechanism="gssapi")
    assert "KAFKA_SASL_MECHANISM" in gssapi and not {"KAFKA_USERNAME", "KAFKA_PASSWORD"} & gssapi
    assert not {s for s in _app_settings_for() if s.startswith("KAFKA_")}
    main = parse(MAIN)
    for mechanism, vault in (("plain", True), ("scram-sha-512", True), ("none", False), ("gssapi", False)):
        got = deployed(main, "modules", "keyVault", kafkaBrokers="b:9092", kafkaSaslMechanism=mechanism)
        assert got is vault, mechanism
    assert not deployed(main, "modules", "keyVault")
    assert main_var("kafkaUsesCredentials", kafkaBrokers="b:9092") is True  # the default mechanism: plain


def test_kafka_protocol_and_mechanism_match_the_apps_settings() -> None:
    from shared.kafka.connection import MECHANISMS, PROTOCOLS, spelling_key

    values = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert values["kafkaProtocol"]["value"] == "${KAFKA_PROTOCOL=sasl_ssl}"
    assert values["kafkaSaslMechanism"]["value"] == "${KAFKA_SASL_MECHANISM=plain}"
    for path in (MAIN, MODULES / "functionapp.bicep"):
        params = parse(path)["parameters"]
        protocols = next(
            d["argument"] for d in params["kafkaProtocol"]["decorators"] if d["type"] == "allowed"
        )
        mechanisms = next(
            d["argument"] for d in params["kafkaSaslMechanism"]["decorators"] if d["type"] == "allowed"
        )
        assert all(PROTOCOLS[spelling_key(p)].functions for p in protocols), protocols
        # 'none' is emitted as no KAFKA_SASL_MECHANISM at all; every other one the trigger supports.
        assert mechanisms[0] == "none"
        assert all(MECHANISMS[spelling_key(m)].functions for m in mechanisms[1:]), mechanisms
    sys.path.insert(0, str(HOOK.parent))
    import preprovision

    assert tuple(protocols) == preprovision.PROTOCOLS
    assert tuple(mechanisms) == preprovision.MECHANISMS
    for name, default in preprovision.DEFAULTS.items():
        assert f"${{{name}={default}}}" in {v["value"] for v in values.values()}, name


def _hook(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The hook as azd runs it: the azd environment's values as environment variables."""
    return run_hook("preprovision", env, "--no-generate")


def test_the_hook_refuses_empty_credentials_with_sasl() -> None:
    result = _hook({"KAFKA_BROKERS": "pkc.confluent.cloud:9092", "KAFKA_TOPIC": "orders"})  # plain by default
    assert result.returncode == 1
    assert "KAFKA_USERNAME: required with KAFKA_SASL_MECHANISM=plain" in result.stderr
    assert "KAFKA_PASSWORD: required" in result.stderr
    result = _hook({"KAFKA_BROKERS": "b:9092", "KAFKA_TOPIC": "t", "KAFKA_SASL_MECHANISM": "scram-sha-256",
                    "KAFKA_USERNAME": "u", "KAFKA_PASSWORD": ""})  # fmt: skip
    assert (
        result.returncode == 1 and "KAFKA_PASSWORD" in result.stderr and "KAFKA_USERNAME" not in result.stderr
    )
    ok = _hook({"KAFKA_BROKERS": "b:9092", "KAFKA_TOPIC": "t", "KAFKA_USERNAME": "u", "KAFKA_PASSWORD": "p"})
    assert ok.returncode == 0, ok.stderr


def test_the_hook_refuses_an_empty_topic_and_mismatched_protocols() -> None:
    result = _hook({"KAFKA_BROKERS": "b:9092", "KAFKA_TOPIC": " , ", "KAFKA_SASL_MECHANISM": "none",
                    "KAFKA_PROTOCOL": "ssl"})  # fmt: skip
    assert result.returncode == 1 and "KAFKA_TOPIC: required when KAFKA_BROKERS is set" in result.stderr
    result = _hook({"KAFKA_BROKERS": "b:9092", "KAFKA_TOPIC": "t", "KAFKA_SASL_MECHANISM": "none"})
    assert result.returncode == 1 and "sasl_ssl needs a SASL mechanism" in result.stderr
    result = _hook({"KAFKA_BROKERS": "b:9092", "KAFKA_TOPIC": "t", "KAFKA_PROTOCOL": "ssl",
                    "KAFKA_USERNAME": "u", "KAFKA_PASSWORD": "p"})  # fmt: skip
    assert result.returncode == 1 and "ssl carries no SASL" in result.stderr
    result = _hook({"KAFKA_BROKERS": "b:9092", "KAFKA_TOPIC": "t", "KAFKA_SASL_MECHANISM": "oauthbearer"})
    assert result.returncode == 1 and "KAFKA_SASL_MECHANISM: 'oauthbearer' is not one of" in result.stderr


def test_the_hook_accepts_kafka_without_sasl_and_no_kafka_at_all() -> None:
    ok = _hook(
        {
            "KAFKA_BROKERS": "b:9092",
            "KAFKA_TOPIC": "t",
            "KAFKA_SASL_MECHANISM": "none",
            "KAFKA_PROTOCOL": "ssl",
        }
    )
    assert ok.returncode == 0, ok.stderr
    assert _hook({}).returncode == 0
    assert _hook({"KAFKA_BROKERS": ""}).returncode == 0


def test_the_hook_checks_existing_resource_ids() -> None:
    ok = _hook({"KAFKA_ADX_ADX_DATABASE_ID": ADX_DB_ID, "KAFKA_ADX_EVENTHUB_ID": HUB_ID})
    assert ok.returncode == 0, ok.stderr
    bad = _hook(
        {"KAFKA_ADX_ADX_DATABASE_ID": ADX_DB_ID.rsplit("/databases", 1)[0], "KAFKA_ADX_EVENTHUB_ID": "events"}
    )
    assert bad.returncode == 1
    assert "KAFKA_ADX_ADX_DATABASE_ID: not a database resource id" in bad.stderr
    assert "KAFKA_ADX_EVENTHUB_ID: not an event hub resource id" in bad.stderr
    other = _hook({"KAFKA_ADX_ADX_DATABASE_ID": ADX_DB_ID.replace("/Weather", "/Sales")})
    assert (
        other.returncode == 1
        and "names database 'Sales' but ingestion.yaml ingests into 'Weather'" in other.stderr
    )


def test_the_hook_names_the_missing_virtual_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sys.path.insert(0, str(HOOK.parent))
    import preprovision

    monkeypatch.setattr(preprovision, "venv_python", lambda repo=tmp_path: tmp_path / "nope" / "python")
    assert preprovision.main([], env={}) == 1


# --- 4. the hook on every platform ---------------------------------------------------------------


@pytest.mark.parametrize("hook", ["preprovision", "predown"])
def test_every_hook_has_posix_and_windows_variants(hook: str) -> None:
    hooks = yaml.safe_load((REPO / "azure.yaml").read_text(encoding="utf-8"))["hooks"]
    assert set(hooks) == {"preprovision", "predown"}
    variants = hooks[hook]
    assert set(variants) == {"posix", "windows"}  # azd needs `run` for each platform it runs on
    assert variants["posix"]["shell"] == "sh" and variants["windows"]["shell"] == "pwsh"
    assert variants["posix"]["run"] == f"python3 scripts/{hook}.py"
    assert variants["windows"]["run"] == f"python scripts/{hook}.py"
    for variant in variants.values():
        assert variant["continueOnError"] is False
    assert (REPO / "scripts" / f"{hook}.py").is_file()


def test_azd_down_is_refused_when_the_deployment_reaches_into_existing_resources() -> None:
    def run(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        return run_hook("predown", env)

    assert run({}).returncode == 0
    assert run({"KAFKA_ADX_ADX_DATABASE_ID": ""}).returncode == 0
    for name, value in (("KAFKA_ADX_ADX_DATABASE_ID", ADX_DB_ID), ("KAFKA_ADX_EVENTHUB_ID", HUB_ID)):
        refused = run({name: value})
        assert refused.returncode == 1
        assert name in refused.stderr and "az group delete -n rg-dev" in refused.stderr
