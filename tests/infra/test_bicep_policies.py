"""Security and wiring rules of infra/ that checkov has no rule for (or cannot evaluate), asserted
over the parsed templates; plus the checkov run itself (scripts/check-infra.sh)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.infra.bicep_model import (
    INFRA,
    MAIN,
    REPO,
    SKIP_COMMENT,
    all_resources,
    app_settings,
    bicep_files,
    body,
    function_call,
    one_resource,
    parse,
    property_path,
    rel,
    resources,
)

# Role definition ids (FACTS.md; Key Vault Secrets User and Event Hubs Data Sender from Azure's
# built-in roles list).
STORAGE_BLOB_DATA_OWNER = "b7e6dc6d-f1e8-4753-8033-0f276bb0955b"
STORAGE_BLOB_DATA_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
STORAGE_QUEUE_DATA_CONTRIBUTOR = "974c5e8b-45b9-4653-ba55-5f855dd0fb88"
EVENT_HUBS_DATA_RECEIVER = "a638d3c7-ab3a-418d-83e6-5f17a39d4fde"
EVENT_HUBS_DATA_SENDER = "2b629674-e913-4c01-ae53-ef4638d8f975"
MONITORING_METRICS_PUBLISHER = "3913510d-42f4-4e42-8a64-420c390055eb"
KEY_VAULT_SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"
# Built-in roles, analytics: Schema Registry Reader (schema groups and schemas, not events).
SCHEMA_REGISTRY_READER = "2c56ea50-c6b3-40a6-83c0-9d98858bc7d2"

FILES = bicep_files()
INFRA_TEXT_FILES = sorted(
    p for p in INFRA.rglob("*") if p.is_file() and p.suffix in {".bicep", ".json", ".kql"}
)


def props(type_: str) -> dict[str, Any]:
    """Properties of the single resource of ``type_``."""
    _, _, resource = one_resource(type_)
    return body(resource)["properties"]


# --- no keys anywhere ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", INFRA_TEXT_FILES, ids=[rel(p) for p in INFRA_TEXT_FILES])
def test_no_keys_anywhere(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    # listKeys()/listConnectionStrings() and friends read shared keys; instrumentation keys are
    # the legacy App Insights secret. Neither may appear, not even in an output.
    for pattern in (
        r"\blist[A-Za-z]*\(",
        r"instrumentation_?key",
        r"AccountKey=",
        r"SharedAccessKey",
        r"primaryKey",
    ):
        match = re.search(pattern, text, re.IGNORECASE)
        assert match is None, f"{rel(path)} contains {match.group(0)!r}"


def test_no_secret_outputs() -> None:
    for path in FILES:
        for name, output in parse(path).get("outputs", {}).items():
            if name.endswith("SecretUri"):  # a Key Vault secret's address, not its value
                assert (property_path(output["value"]) or [])[-1:] == ["secretUri"], f"{rel(path)}: {name}"
                continue
            assert not re.search(r"key|password|secret", name, re.IGNORECASE), f"{rel(path)} outputs {name}"
            assert "secure" not in str(output.get("decorators")), f"{rel(path)} outputs a secure value {name}"


# --- local auth off, TLS 1.2 ---------------------------------------------------------------------


def test_event_hubs_is_standard_with_kafka_and_no_local_auth() -> None:
    _, _, namespace = one_resource("Microsoft.EventHub/namespaces")
    config = body(namespace)
    assert config["sku"]["name"] == "Standard"
    properties = config["properties"]
    assert properties["disableLocalAuth"] is True
    assert properties["kafkaEnabled"] is True
    assert properties["minimumTlsVersion"] == "1.2"


def test_no_event_hubs_authorization_rules() -> None:
    # SAS policies would be useless with local auth off, and a key to leak.
    for path in FILES:
        for _, resource in resources(parse(path)):
            assert "authorizationrules" not in resource["type"].lower(), f"{rel(path)} creates a SAS policy"


def test_app_insights_and_workspace_have_no_local_auth() -> None:
    assert props("Microsoft.Insights/components")["DisableLocalAuth"] is True
    assert props("Microsoft.OperationalInsights/workspaces")["features"]["disableLocalAuth"] is True
    settings = app_settings()
    # Telemetry authenticates with the identity (Entra ID), which local-auth-off requires.
    assert (
        settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"]
        == "ClientId=${identityClientId};Authorization=AAD"
    )
    assert "APPINSIGHTS_INSTRUMENTATIONKEY" not in settings


def test_storage_has_no_shared_keys_and_no_public_blobs() -> None:
    path, _, account = one_resource("Microsoft.Storage/storageAccounts")
    properties = body(account)["properties"]
    assert properties["allowSharedKeyAccess"] is False
    assert properties["allowBlobPublicAccess"] is False
    assert properties["minimumTlsVersion"] == "TLS1_2"
    assert properties["supportsHttpsTrafficOnly"] is True
    assert properties["defaultToOAuthAuthentication"] is True
    # checkov cannot resolve the SKU parameter (CKV_AZURE_206 is skipped for that reason):
    # every allowed SKU, and the default, must be geo-redundant.
    sku = parse(path)["parameters"][body(account)["sku"]["name"]]
    allowed = next(d["argument"] for d in sku["decorators"] if d["type"] == "allowed")
    assert sku["default"] in allowed
    assert allowed and all(re.fullmatch(r"Standard_(RA)?G(Z)?RS", name) for name in allowed), allowed


def test_containers_are_private_and_cover_deployments_and_dead_letters() -> None:
    containers = all_resources("Microsoft.Storage/storageAccounts/blobServices/containers")
    assert len(containers) == 2
    for _, _, container in containers:
        assert body(container)["properties"]["publicAccess"] == "None"
    main = parse(MAIN)
    assert main["variables"]["deadLetterContainerName"]["value"] == "deadletter"
    assert main["variables"]["deploymentContainerName"]["value"]


def test_key_vault_uses_rbac_and_purge_protection() -> None:
    properties = props("Microsoft.KeyVault/vaults")
    assert properties["enableRbacAuthorization"] is True
    assert properties["enablePurgeProtection"] is True
    assert "accessPolicies" not in properties


# --- ADX ------------------------------------------------------------------------------------------


def test_adx_cluster_is_encrypted_and_trusts_no_other_tenant() -> None:
    properties = props("Microsoft.Kusto/clusters")
    assert properties["enableDiskEncryption"] is True
    assert properties["trustedExternalTenants"] == []


def test_identity_is_database_ingestor_and_script_is_generated() -> None:
    # adx-database.bicep serves a new cluster's database and an existing one alike.
    path = INFRA / "modules" / "adx-database.bicep"
    assignments = {
        s: body(r)["properties"]
        for s, r in resources(parse(path), "Microsoft.Kusto/clusters/databases/principalAssignments")
    }
    app = [p for s, p in assignments.items() if s == "ingestor"]
    assert len(app) == 1 and app[0]["role"] == "Ingestor" and app[0]["principalId"] == "ingestorClientId"
    assert app[0]["principalType"] == "App"
    assert all(p["role"] in ("Viewer", "Ingestor") for p in assignments.values()), assignments
    scripts = {body(r)["properties"]["scriptContent"]: body(r)["properties"]
               for _, r in resources(parse(path), "Microsoft.Kusto/clusters/databases/scripts")}
    assert set(scripts) == {"databaseScript", "mappingsScript"}
    # A failing table command fails the deployment; an existing mapping must not (it is never
    # replaced: its .create fails and the mappings script goes on).
    assert scripts["databaseScript"]["continueOnErrors"] is False
    assert scripts["mappingsScript"]["continueOnErrors"] is True
    adx = parse(MAIN)["modules"]["adx"]
    for param, file in (("databaseScript", "kql/database.kql"), ("mappingsScript", "kql/mappings.kql")):
        call = function_call(body(adx)["params"][param])
        assert call == ("load_text_content", {"file_path": file, "encoding": None}), call


# --- function app ---------------------------------------------------------------------------------


def test_function_app_runs_python_on_flex_consumption() -> None:
    _, _, plan = one_resource("Microsoft.Web/serverfarms")
    assert body(plan)["sku"] == {"name": "FC1", "tier": "FlexConsumption"}
    _, _, site = one_resource("Microsoft.Web/sites")
    config = body(site)
    assert config["kind"] == "functionapp,linux"
    assert config["identity"]["type"] == "UserAssigned"
    properties = config["properties"]
    # The version is a parameter (tests/infra/test_clouds_and_versions.py pins its default).
    assert properties["functionAppConfig"]["runtime"] == {"name": "python", "version": "pythonVersion"}
    deployment = properties["functionAppConfig"]["deployment"]["storage"]
    assert deployment["authentication"]["type"] == "UserAssignedIdentity"
    assert properties["httpsOnly"] is True
    assert properties["keyVaultReferenceIdentity"] == "identityId"
    site_config = properties["siteConfig"]
    assert site_config["ftpsState"] == "Disabled"
    assert site_config["minTlsVersion"] == "1.2"


def test_basic_publishing_credentials_are_disabled() -> None:
    policies = all_resources("Microsoft.Web/sites/basicPublishingCredentialsPolicies")
    names = sorted(body(r)["name"] for _, _, r in policies)
    assert names == ["ftp", "scm"]
    assert all(body(r)["properties"]["allow"] is False for _, _, r in policies)


def test_connections_are_identity_based() -> None:
    settings = app_settings()
    assert "AzureWebJobsStorage" not in settings  # a connection string would need a key
    # Service URIs, which work in every cloud; __accountName infers public-cloud endpoints.
    assert settings["AzureWebJobsStorage__blobServiceUri"] == "storageBlobServiceUri"
    assert settings["AzureWebJobsStorage__queueServiceUri"] == "storageQueueServiceUri"
    assert "AzureWebJobsStorage__accountName" not in settings
    assert settings["AzureWebJobsStorage__credential"] == "managedidentity"
    assert settings["AzureWebJobsStorage__clientId"] == "identityClientId"
    assert settings["EventHubConnection__credential"] == "managedidentity"
    assert settings["EventHubConnection__clientId"] == "identityClientId"
    assert settings["EventHubConnection__fullyQualifiedNamespace"] == "eventHubsNamespaceHost"
    assert settings["ADX_AUTH"] == "managed-identity"
    assert settings["AZURE_CLIENT_ID"] == "identityClientId"
    assert settings["ADX_INGEST_URI"] == "adxIngestUri"
    # Flex Consumption rejects these; the runtime is in functionAppConfig.
    assert not {"FUNCTIONS_WORKER_RUNTIME", "FUNCTIONS_EXTENSION_VERSION", "WEBSITE_RUN_FROM_PACKAGE"} & set(
        settings
    )


def test_kafka_credentials_are_key_vault_references() -> None:
    settings = app_settings()
    for name in ("KAFKA_USERNAME", "KAFKA_PASSWORD", "SCHEMA_REGISTRY_USERNAME", "SCHEMA_REGISTRY_PASSWORD"):
        assert re.fullmatch(r"@Microsoft\.KeyVault\(SecretUri=\$\{\w+\}\)", settings[name]), settings[name]
    # The vault's secrets are the items of its one @secure() object parameter.
    vault = parse(INFRA / "modules" / "keyvault.bicep")
    ((_, _, secret),) = all_resources("Microsoft.KeyVault/vaults/secrets")
    loop = secret["config"]["loop_type"]["detail"]
    assert loop["array_name"] == {"function": {"type": "items", "parameters": {"arg_1": "secrets"}}}
    assert property_path(body(secret)["properties"]["value"]) == [loop["item_name"], "value"]
    assert any(d["type"] == "secure" for d in vault["parameters"]["secrets"]["decorators"])
    for name in ("kafkaUsername", "kafkaPassword", "schemaRegistryUsername", "schemaRegistryPassword"):
        decorators = parse(MAIN)["parameters"][name]["decorators"]
        assert any(d["type"] == "secure" for d in decorators), f"{name} is not @secure()"


# --- role assignments -----------------------------------------------------------------------------


def _role_assignments() -> list[tuple[Path, str, dict[str, Any]]]:
    return all_resources("Microsoft.Authorization/roleAssignments")


def _role_id(path: Path, expr: Any) -> str:
    call = function_call(expr)
    assert call is not None and call[0] == "subscription_resource_id", expr
    assert call[1]["resource_type"] == "Microsoft.Authorization/roleDefinitions"
    return str(parse(path)["variables"][call[1]["resource_name_1"]]["value"])


def test_role_assignments_are_scoped_to_a_resource_and_named_by_guid() -> None:
    assignments = _role_assignments()
    assert len(assignments) >= 6
    for path, symbol, assignment in assignments:
        where = f"{rel(path)}: {symbol}"
        config = body(assignment)
        scope = config.get("scope")
        declared = parse(path)["resources"]
        # Scoped to a resource of this file, never to the resource group or subscription.
        assert isinstance(scope, str) and scope in declared, f"{where}: scope {scope!r} is not a resource"
        name = function_call(config["name"])
        assert name is not None and name[0] == "guid", f"{where}: name is not guid(...)"
        args = list(name[1].values())
        properties = config["properties"]
        role = properties["roleDefinitionId"]["function"]["parameters"]["resource_name_1"]
        assert property_path(args[0]) == [scope, "id"], f"{where}: guid does not start with the scope's id"
        assert args[1] == properties["principalId"], f"{where}: guid does not include the principal"
        assert args[2] == role, f"{where}: guid does not include the role"
        # The app's identity is a ServicePrincipal; the deploying principal's kind is a parameter.
        assert properties["principalType"] in ("ServicePrincipal", "userPrincipalType"), where


def test_each_role_sits_on_the_resource_that_needs_it() -> None:
    granted: dict[tuple[str, str, str], str] = {}
    for path, symbol, assignment in _role_assignments():
        config = body(assignment)
        scope_type = parse(path)["resources"][config["scope"]]["type"]
        principal_type = config["properties"]["principalType"]
        key = (
            _role_id(path, config["properties"]["roleDefinitionId"]),
            scope_type,
            "User" if principal_type == "userPrincipalType" else principal_type,
        )
        # eventhub.bicep (a new namespace) and eventhub-existing.bicep are alternatives.
        where = f"{rel(path)}: {symbol}"
        assert key not in granted or granted[key].split(":")[0] != rel(path), f"{where} duplicates {granted[key]}"
        granted.setdefault(key, where)
    app = "ServicePrincipal"
    assert (EVENT_HUBS_DATA_RECEIVER, "Microsoft.EventHub/namespaces/eventhubs", app) in granted
    assert (STORAGE_BLOB_DATA_OWNER, "Microsoft.Storage/storageAccounts", app) in granted
    assert (STORAGE_QUEUE_DATA_CONTRIBUTOR, "Microsoft.Storage/storageAccounts", app) in granted
    assert (MONITORING_METRICS_PUBLISHER, "Microsoft.Insights/components", app) in granted
    assert (KEY_VAULT_SECRETS_USER, "Microsoft.KeyVault/vaults", app) in granted
    # The app never gets a namespace-wide Event Hubs role, nor any Owner/Contributor role.
    known = {
        STORAGE_BLOB_DATA_OWNER,
        STORAGE_BLOB_DATA_CONTRIBUTOR,
        STORAGE_QUEUE_DATA_CONTRIBUTOR,
        EVENT_HUBS_DATA_RECEIVER,
        EVENT_HUBS_DATA_SENDER,
        MONITORING_METRICS_PUBLISHER,
        KEY_VAULT_SECRETS_USER,
        SCHEMA_REGISTRY_READER,
    }
    assert {role for role, _, _ in granted} <= known, granted
    # On a namespace the app may only read schemas (its Azure Schema Registry), never events.
    namespace_roles = {r for r, t, p in granted if t == "Microsoft.EventHub/namespaces" and p == app}
    assert namespace_roles == {SCHEMA_REGISTRY_READER}, namespace_roles


def test_data_receiver_only_on_the_trigger_event_hubs() -> None:
    hub = parse(INFRA / "modules" / "eventhub.bicep")
    # isTriggerHub = contains(split(triggerEventHubNames, ','), name)
    assert hub["variables"]["isTriggerHub"]["value"] == {
        "function": {
            "type": "contains",
            "parameters": {
                "container": {
                    "function": {
                        "type": "split",
                        "parameters": {"input_string": "triggerEventHubNames", "delimiter": ","},
                    }
                },
                "item_to_find": "name",
            },
        }
    }
    condition = hub["resources"]["receiver"]["config"]["condition"]["operator"]
    assert condition["type"] == "and" and "isTriggerHub" in condition["operands"].values(), condition
    namespace = parse(INFRA / "modules" / "eventhubs.bicep")
    assert body(namespace["modules"]["hubs"])["params"]["triggerEventHubNames"] == "triggerEventHubNames"
    # The app reads exactly those event hubs (or the one existing event hub it was given).
    main = parse(MAIN)
    assert body(main["modules"]["functionApp"])["params"]["eventHubName"] == "triggerEventHubs"
    operands = main["variables"]["triggerEventHubs"]["value"]["operator"]["operands"]
    assert (operands["true_value"], operands["false_value"]) == ("existingEventHubName", "triggerEventHubNames")


# --- checkov ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", FILES, ids=[rel(p) for p in FILES])
def test_checkov_skips_sit_inside_a_resource_with_a_reason(path: Path) -> None:
    depth = 0
    in_resource = False
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        stripped = line.strip()
        if depth == 0 and stripped.startswith("resource "):
            in_resource = True
        match = SKIP_COMMENT.search(stripped)
        if "checkov:skip" in stripped:
            assert match, f"{rel(path)}:{number}: malformed skip {stripped!r}"
            assert in_resource and depth >= 1, f"{rel(path)}:{number}: skip outside a resource body"
            reason = (match.group(2) or "").strip()
            assert len(reason) >= 30, f"{rel(path)}:{number}: skip {match.group(1)} needs a real reason"
        code = re.sub(r"'(?:[^'\\]|\\.)*'", "''", line).split("//")[0]
        depth += code.count("{") + code.count("[") - code.count("}") - code.count("]")
        if depth == 0:
            in_resource = False


def _check_infra(directory: Path | str) -> subprocess.CompletedProcess[str]:
    if shutil.which("bash") is None:
        pytest.fail("bash is needed to run scripts/check-infra.sh")
    env = dict(os.environ, PY=sys.executable)
    return subprocess.run(
        ["bash", str(REPO / "scripts" / "check-infra.sh"), str(directory)],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,  # the first run installs checkov into .venv-checkov
        check=False,
    )


@pytest.mark.timeout(900)  # the first run installs checkov into .venv-checkov
def test_checkov_passes_over_infra() -> None:
    result = _check_infra("infra")
    assert result.returncode == 0, result.stderr[-4000:]
    assert "checkov summary" in result.stderr and "'failed': 0" in result.stderr, result.stderr[-2000:]


@pytest.mark.timeout(900)
def test_check_infra_fails_on_a_failed_check_and_on_an_unparsable_file(tmp_path: Path) -> None:
    # A weak storage account: checkov must report it and the script must fail.
    (tmp_path / "weak.bicep").write_text(
        "resource weak 'Microsoft.Storage/storageAccounts@2023-05-01' = {\n"
        "  name: 'weak'\n  location: 'westeurope'\n  kind: 'StorageV2'\n"
        "  sku: {\n    name: 'Standard_LRS'\n  }\n"
        "  properties: {\n    minimumTlsVersion: 'TLS1_0'\n    supportsHttpsTrafficOnly: false\n  }\n}\n",
        encoding="utf-8",
    )
    # A file only checkov's older parser rejects (a nullable parameter): checkov would silently
    # give it zero checks, so the script must name it and fail.
    (tmp_path / "nullable.bicep").write_text(
        "param x string?\nresource id 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {\n"
        "  name: 'id'\n  location: 'westeurope'\n}\n",
        encoding="utf-8",
    )
    result = _check_infra(tmp_path)
    assert result.returncode == 1, result.stderr[-2000:]
    assert "CKV_AZURE_44" in result.stderr  # minimum TLS version of the weak account
    assert "cannot parse" in result.stderr and "nullable.bicep" in result.stderr, result.stderr[-2000:]
    assert "checkov could not parse 1 file(s)" in result.stderr
