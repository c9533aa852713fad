"""Sovereign clouds, private networking and the function app's Python version (issue "Deploy
into what users already have", items 5 and 6, and the Flex Python version), pinned over the
pycep-parsed templates, the parameters file and the preprovision hook:

* no public-cloud host name is written in the Bicep: endpoints come from ``environment()``, the
  namespace's ``serviceBusEndpoint`` and the storage account's service URIs;
* private networking registers ``Microsoft.App`` (the hook) and offers a NAT gateway;
* the Python version is a parameter whose default is the newest version Flex Consumption offers.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.infra.azd_hooks import preprovision, run_hook
from tests.infra.bicep_model import (
    INFRA,
    MAIN,
    REPO,
    bicep_files,
    body,
    evaluate,
    parse,
    property_path,
    rel,
)

MODULES = INFRA / "modules"
PARAMETERS = json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))["parameters"]

# Host names and suffixes that exist in one cloud only (public, Azure China, Azure Government):
# none may be written in a template; environment() and the resources' own endpoints give them.
CLOUD_NAMES = re.compile(
    r"\.windows\.net|\.azure\.net|\.azure\.com|core\.windows|servicebus\.windows|vaultcore\.azure|vault\.azure"
    r"|kusto\.windows|microsoftonline|chinacloudapi|usgovcloudapi|\.azure\.cn|\.azure\.us\b|azurewebsites"
    r"|applicationinsights\.azure|monitor\.azure",
    re.IGNORECASE,
)

# Each cloud's suffixes as environment() gives them, and the private DNS zones its docs name
# (learn.microsoft.com/azure/private-link/private-endpoint-dns).
CLOUDS = {
    "AzureCloud": {
        "keyvaultDns": ".vault.azure.net",
        "serviceBusEndpoint": "https://ns.servicebus.windows.net:443/",
        "zones": {"vault": "privatelink.vaultcore.azure.net", "namespace": "privatelink.servicebus.windows.net"},
    },
    "AzureChinaCloud": {
        "keyvaultDns": ".vault.azure.cn",
        "serviceBusEndpoint": "https://ns.servicebus.chinacloudapi.cn:443/",
        "zones": {"vault": "privatelink.vaultcore.azure.cn", "namespace": "privatelink.servicebus.chinacloudapi.cn"},
    },
    "AzureUSGovernment": {
        "keyvaultDns": ".vault.usgovcloudapi.net",
        "serviceBusEndpoint": "https://ns.servicebus.usgovcloudapi.net:443/",
        "zones": {
            "vault": "privatelink.vaultcore.usgovcloudapi.net",
            "namespace": "privatelink.servicebus.usgovcloudapi.net",
        },
    },
}


# --- 6. no public-cloud names ----------------------------------------------------------------------


@pytest.mark.parametrize("path", bicep_files(), ids=[rel(p) for p in bicep_files()])
def test_no_cloud_specific_host_name_in_the_bicep(path: Path) -> None:
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        match = CLOUD_NAMES.search(line)
        assert match is None, f"{rel(path)}:{number} hard-codes {match.group(0)!r}: {line.strip()}"


def test_the_cloud_name_check_catches_each_kind_of_name() -> None:
    for text in (
        "'${name}.servicebus.windows.net'",
        "'privatelink.vaultcore.azure.net'",
        "'https://${account}.blob.core.windows.net'",
        "'https://${cluster}.westeurope.kusto.windows.net'",
        "'https://login.microsoftonline.com/'",
        "'privatelink.servicebus.chinacloudapi.cn'",
        "'kv.vault.usgovcloudapi.net'",
        "'${app}.azurewebsites.net'",
    ):
        assert CLOUD_NAMES.search(text), text
    assert not CLOUD_NAMES.search("'privatelink.blob.${environment().suffixes.storage}'")
    assert not CLOUD_NAMES.search("replace(environment().suffixes.keyvaultDns, '.vault.', '.vaultcore.')")


def _module_params(symbol: str) -> dict[str, Any]:
    params: dict[str, Any] = body(parse(MAIN)["modules"][symbol])["params"]
    return params


def test_private_dns_zones_come_from_the_cloud() -> None:
    assert _module_params("blobEndpoint")["dnsZoneName"] == "privatelink.blob.${environment().suffixes.storage}"
    assert _module_params("queueEndpoint")["dnsZoneName"] == "privatelink.queue.${environment().suffixes.storage}"
    assert property_path(_module_params("eventHubsEndpoint")["dnsZoneName"]) == [
        "eventHubsNamespace",
        "outputs",
        "privateDnsZoneName",
    ]
    assert property_path(_module_params("keyVaultEndpoint")["dnsZoneName"]) == [
        "keyVault",
        "outputs",
        "privateDnsZoneName",
    ]
    vault_zone = parse(MODULES / "keyvault.bicep")["outputs"]["privateDnsZoneName"]["value"]
    assert vault_zone == "privatelink${replace(environment().suffixes.keyvaultDns, '.vault.', '.vaultcore.')}"
    namespace = parse(MODULES / "eventhubs.bicep")
    host = namespace["variables"]["namespaceHost"]["value"]
    assert "serviceBusEndpoint" in json.dumps(host)
    assert (
        namespace["outputs"]["privateDnsZoneName"]["value"]
        == "privatelink.${substring(namespaceHost, length(namespace.name) + 1)}"
    )
    # The same formulas give each cloud's documented zone.
    for cloud, facts in CLOUDS.items():
        assert "privatelink" + facts["keyvaultDns"].replace(".vault.", ".vaultcore.") == facts["zones"]["vault"], cloud
        endpoint_host = facts["serviceBusEndpoint"].split("//")[1].split(":")[0]
        assert "privatelink." + endpoint_host[len("ns") + 1 :] == facts["zones"]["namespace"], cloud


def test_event_hubs_host_comes_from_the_namespace_endpoint() -> None:
    for module in ("eventhubs.bicep", "eventhub-existing.bicep"):
        parsed = parse(MODULES / module)
        assert parsed["outputs"]["fullyQualifiedNamespace"]["value"] == "namespaceHost", module
        assert parsed["outputs"]["kafkaBootstrapServers"]["value"] == "${namespaceHost}:9093", module
        assert "serviceBusEndpoint" in json.dumps(parsed["variables"]["namespaceHost"]["value"]), module


def test_host_storage_is_named_by_its_service_uris() -> None:
    app = _module_params("functionApp")
    assert property_path(app["storageBlobServiceUri"]) == ["storage", "outputs", "blobEndpoint"]
    assert property_path(app["storageQueueServiceUri"]) == ["storage", "outputs", "queueEndpoint"]
    outputs = parse(MODULES / "storage.bicep")["outputs"]
    assert property_path(outputs["blobEndpoint"]["value"]) == ["storage", "properties", "primaryEndpoints", "blob"]
    assert property_path(outputs["queueEndpoint"]["value"]) == ["storage", "properties", "primaryEndpoints", "queue"]


# --- 5. private networking ---------------------------------------------------------------------------


def test_the_nat_gateway_is_an_option_of_private_networking() -> None:
    network = parse(MODULES / "network.bicep")
    assert network["parameters"]["enableNatGateway"]["default"] is False
    for symbol, type_ in (("nat", "Microsoft.Network/natGateways"), ("natIp", "Microsoft.Network/publicIPAddresses")):
        resource = network["resources"][symbol]
        assert resource["type"] == type_
        assert resource["config"]["condition"] == "enableNatGateway", symbol
    ip = body(network["resources"]["natIp"])
    assert ip["sku"]["name"] == "Standard" and ip["properties"]["publicIPAllocationMethod"] == "Static"
    (app_subnet,) = [s for s in body(network["resources"]["vnet"])["properties"]["subnets"] if s["name"] == "app"]
    assert app_subnet["properties"]["natGateway"] == "appSubnetNat"
    assert evaluate("appSubnetNat", network, {"enableNatGateway": False}) is None
    assert property_path(evaluate("appSubnetNat", network, {"enableNatGateway": True})["id"]) == ["nat", "id"]
    assert app_subnet["properties"]["delegations"][0]["properties"]["serviceName"] == "Microsoft.App/environments"
    assert _module_params("network")["enableNatGateway"] == "enableNatGateway"
    assert parse(MAIN)["parameters"]["enableNatGateway"]["default"] is False
    assert PARAMETERS["enableNatGateway"]["value"] == "${KAFKA_ADX_NAT_GATEWAY=false}"
    assert PARAMETERS["enablePrivateNetworking"]["value"] == "${KAFKA_ADX_PRIVATE_NETWORKING=false}"


def _hook(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run_hook("preprovision", env, "--no-generate")


def test_the_hook_refuses_a_nat_gateway_without_private_networking_and_bad_booleans() -> None:
    refused = _hook({"KAFKA_ADX_NAT_GATEWAY": "true"})
    assert refused.returncode == 1 and "KAFKA_ADX_NAT_GATEWAY" in refused.stderr
    ok = _hook({"KAFKA_ADX_NAT_GATEWAY": "true", "KAFKA_ADX_PRIVATE_NETWORKING": "true"})
    assert ok.returncode == 0, ok.stderr
    bad = _hook({"KAFKA_ADX_PRIVATE_NETWORKING": "yes"})
    assert bad.returncode == 1 and "KAFKA_ADX_PRIVATE_NETWORKING: 'yes' is not true or false" in bad.stderr


def test_the_hook_registers_microsoft_app_only_with_private_networking() -> None:
    hook = preprovision()
    # Without private networking nothing is asked of the CLI, not even whether it exists.
    assert hook.register_app_provider({}, az="/nonexistent/az") == (True, "")
    env = {"KAFKA_ADX_PRIVATE_NETWORKING": "true", "AZURE_SUBSCRIPTION_ID": "0000-sub"}
    assert hook.az_provider_command("show", env) == [
        "provider", "show", "--namespace", "Microsoft.App",
        "--query", "registrationState", "-o", "tsv", "--subscription", "0000-sub",
    ]  # fmt: skip
    assert hook.az_provider_command("register", env) == [
        "provider", "register", "--namespace", "Microsoft.App", "--wait", "--subscription", "0000-sub",
    ]  # fmt: skip
    # No CLI: the deployment goes on, and the message says what to run once.
    ok, message = hook.register_app_provider(env, az=None)
    assert ok and "az provider register --namespace Microsoft.App --wait --subscription 0000-sub" in message
    # A CLI that cannot answer (here a program that always fails): the same, with the reason.
    false = shutil.which("false")
    assert false is not None
    ok, message = hook.register_app_provider(env, az=false)
    assert ok and "could not read the Microsoft.App registration" in message and "az login" in message


def test_the_hook_documents_microsoft_app_next_to_the_option() -> None:
    deploy = (REPO / "docs" / "deploy.md").read_text(encoding="utf-8")
    row = next(line for line in deploy.splitlines() if line.startswith("| `KAFKA_ADX_PRIVATE_NETWORKING`"))
    assert "Microsoft.App" in row
    assert "KAFKA_ADX_NAT_GATEWAY" in deploy and "### Outbound access" in deploy


# --- the function app's Python version ---------------------------------------------------------------


def test_python_version_is_a_parameter_defaulting_to_the_newest_flex_offers() -> None:
    # Flex Consumption offers Python 3.10-3.13 (Get-AzFunctionAppFlexConsumptionRuntime, docs/deploy.md);
    # the project supports 3.11 and later.
    for path in (MAIN, MODULES / "functionapp.bicep"):
        param = parse(path)["parameters"]["pythonVersion"]
        assert param["default"] == "3.13", rel(path)
        allowed = next(d["argument"] for d in param["decorators"] if d["type"] == "allowed")
        assert allowed == ["3.11", "3.12", "3.13"], rel(path)
    assert _module_params("functionApp")["pythonVersion"] == "pythonVersion"
    assert PARAMETERS["pythonVersion"]["value"] == "${KAFKA_ADX_PYTHON_VERSION=3.13}"


# --- 7. API versions ---------------------------------------------------------------------------------

RESOURCE_TYPE = re.compile(r"^\s*resource\s+\w+\s+'(?P<type>[A-Za-z.]+/[A-Za-z/]+)@(?P<version>[0-9-]+(?:-preview)?)'")


# Types whose newest version is a preview: diagnostic settings' last stable version (2016-09-01)
# lacks logAnalyticsDestinationType, which puts ADX's reports in their own tables
# (Microsoft.insights/diagnosticSettings change log: added in 2017-05-01-preview, kept in
# 2021-05-01-preview, the version of the REST reference).
PREVIEW_ONLY = {"Microsoft.Insights/diagnosticSettings"}


def test_every_api_version_is_the_one_the_deploy_guide_records() -> None:
    used: dict[str, set[str]] = {}
    for path in bicep_files():
        for line in path.read_text(encoding="utf-8").splitlines():
            match = RESOURCE_TYPE.match(line)
            if match:
                used.setdefault(match["type"], set()).add(match["version"])
    assert len(used) >= 20, sorted(used)
    # One version per type across the files (an existing resource included).
    assert all(len(versions) == 1 for versions in used.values()), used
    previews = {t for t, versions in used.items() for v in versions if v.endswith("-preview")}
    assert previews <= PREVIEW_ONLY, sorted(previews - PREVIEW_ONLY)
    deploy = (REPO / "docs" / "deploy.md").read_text(encoding="utf-8")
    section = deploy.split("## API versions", 1)[1].split("\n## ", 1)[0]
    recorded = dict(re.findall(r"^\| `([A-Za-z.]+/[A-Za-z/]+)` \| ([0-9a-z-]+) \| .+ \|$", section, re.MULTILINE))
    assert recorded == {type_: next(iter(versions)) for type_, versions in used.items()}


def test_every_allowed_python_version_is_one_the_app_installs_on() -> None:
    """Flex's remote build installs requirements.txt with the app's Python: every version the
    Bicep allows must be inside requires-python, and from 3.13 the requirements must select
    azure-functions 2.x and the app-pinned runtime library (1.x stops below 3.13; FACTS.md)."""
    import tomllib

    from packaging.requirements import Requirement
    from packaging.specifiers import SpecifierSet

    requires = SpecifierSet(tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["requires-python"])
    lines = [line.split("#")[0].strip() for line in (REPO / "requirements.txt").read_text(encoding="utf-8").splitlines()]
    requirements = [Requirement(line) for line in lines if line]
    param = parse(MODULES / "functionapp.bicep")["parameters"]["pythonVersion"]
    for version in next(d["argument"] for d in param["decorators"] if d["type"] == "allowed"):
        assert version in requires, (version, str(requires))
        selected = {
            r.name: r.specifier
            for r in requirements
            if r.marker is None or r.marker.evaluate({"python_version": version, "python_full_version": f"{version}.0"})
        }
        functions = selected["azure-functions"]
        major = 2 if tuple(map(int, version.split("."))) >= (3, 13) else 1
        assert all(s.version.startswith(f"{major}.") for s in functions), (version, str(functions))
        assert ("azure-functions-runtime" in selected) is (major == 2), (version, sorted(selected))



# --- the schema registries -----------------------------------------------------------------------------


def test_schema_registry_settings_follow_the_parameters() -> None:
    from tests.infra.bicep_model import render_app_settings

    registry = {"schemaRegistryUrl": "https://registry.example:8081"}
    with_user = {
        **registry,
        "schemaRegistryUsernameSecretUri": "https://kv/secrets/schema-registry-username",
        "schemaRegistryPasswordSecretUri": "https://kv/secrets/schema-registry-password",
    }
    names = {"SCHEMA_REGISTRY_URL", "SCHEMA_REGISTRY_USERNAME", "SCHEMA_REGISTRY_PASSWORD", "SCHEMA_REGISTRY_TIMEOUT"}
    assert not (names | {"AZURE_SCHEMA_REGISTRY_NAMESPACE"}) & set(render_app_settings({}))
    assert names - {"SCHEMA_REGISTRY_USERNAME", "SCHEMA_REGISTRY_PASSWORD"} == names & set(render_app_settings(registry))
    settings = render_app_settings(with_user)
    assert names <= set(settings)
    assert settings["SCHEMA_REGISTRY_PASSWORD"] == "@Microsoft.KeyVault(SecretUri=https://kv/secrets/schema-registry-password)"
    azure = render_app_settings({"azureSchemaRegistryNamespace": "ns.example"})
    assert azure["AZURE_SCHEMA_REGISTRY_NAMESPACE"] == "ns.example" and "SCHEMA_REGISTRY_TIMEOUT" in azure
    assert "SCHEMA_REGISTRY_URL" not in azure


def test_registry_credentials_go_to_the_vault_and_the_reader_role_only_when_asked() -> None:
    main = parse(MAIN)
    vault = main["modules"]["keyVault"]["config"]["condition"]
    assert not evaluate(vault, main, {})
    assert evaluate(vault, main, {"schemaRegistryUrl": "https://r", "schemaRegistryUsername": "u"})
    assert not evaluate(vault, main, {"schemaRegistryUrl": "https://r"})  # a registry without authentication
    assert not evaluate(vault, main, {"schemaRegistryUsername": "u"})  # no registry: the hook refuses this
    secrets = body(main["modules"]["keyVault"])["params"]["secrets"]
    assert secrets["function"]["type"] == "union"
    given = {"schemaRegistryUrl": "https://r", "schemaRegistryUsername": "u"}
    # pycep keeps the quotes of a quoted object key.
    keys = {key.strip("'") for key in evaluate("schemaRegistrySecrets", main, given)}
    assert keys == {"schema-registry-username", "schema-registry-password"}
    assert {key.strip("'") for key in evaluate("kafkaSecrets", main, {"kafkaBrokers": "b:9092"})} == {
        "kafka-username",
        "kafka-password",
    }
    # The app settings name the secrets the vault gets.
    uris = body(main["modules"]["functionApp"])["params"]
    for secret in keys | {"kafka-username", "kafka-password"}:
        assert any(f'secrets/{secret}"' in json.dumps(v) for v in uris.values()), secret
    assert evaluate("schemaRegistrySecrets", main, {}) == {}
    assert evaluate("schemaReaderPrincipalId", main, {}) == ""
    assert property_path(evaluate("schemaReaderPrincipalId", main, {"enableAzureSchemaRegistry": True})) == [
        "identity",
        "outputs",
        "principalId",
    ]
    for module in ("eventHubsNamespace", "existingEventHub"):
        assert body(main["modules"][module])["params"]["schemaReaderPrincipalId"] == "schemaReaderPrincipalId"
    for path in (MODULES / "eventhubs.bicep", MODULES / "eventhub-existing.bicep"):
        parsed = parse(path)
        reader = parsed["resources"]["schemaReader"]
        assert body(reader)["scope"] == "namespace", rel(path)
        assert evaluate(reader["config"]["condition"], parsed, {}) is False, rel(path)
        assert evaluate(reader["config"]["condition"], parsed, {"schemaReaderPrincipalId": "p"}) is True, rel(path)
    assert PARAMETERS["enableAzureSchemaRegistry"]["value"] == "${KAFKA_ADX_AZURE_SCHEMA_REGISTRY=false}"
    assert PARAMETERS["schemaRegistryPassword"]["value"] == "${KAFKA_ADX_SCHEMA_REGISTRY_PASSWORD=}"


def test_the_hook_refuses_half_a_registry_credential() -> None:
    url = {"KAFKA_ADX_SCHEMA_REGISTRY_URL": "https://registry.example"}
    refused = _hook({**url, "KAFKA_ADX_SCHEMA_REGISTRY_USERNAME": "key"})
    assert refused.returncode == 1 and "KAFKA_ADX_SCHEMA_REGISTRY_PASSWORD: the schema registry's" in refused.stderr
    refused = _hook({"KAFKA_ADX_SCHEMA_REGISTRY_USERNAME": "key", "KAFKA_ADX_SCHEMA_REGISTRY_PASSWORD": "s"})
    assert refused.returncode == 1 and "KAFKA_ADX_SCHEMA_REGISTRY_URL: required" in refused.stderr
    ok = _hook({**url, "KAFKA_ADX_SCHEMA_REGISTRY_USERNAME": "key", "KAFKA_ADX_SCHEMA_REGISTRY_PASSWORD": "s"})
    assert ok.returncode == 0, ok.stderr
    assert _hook(url).returncode == 0
