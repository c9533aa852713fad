"""The health workbook (infra/workbook.json) and the alerts (infra/alerts.json,
modules/alerts.bicep) are deployed by `azd up`, query only what exists, and stay as documented:
every metric a query names is in shared/metrics.py's catalogue, every table is a documented
Application Insights, ADX diagnostic or platform table, the diagnostic settings that fill those
tables are deployed, and docs/workbook.md is the rendering of the JSON."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from shared.metrics import CATALOGUE
from tests.infra import kql_refs
from tests.infra.bicep_model import INFRA, MAIN, REPO, body, evaluate, function_call, parse, property_path

WORKBOOK = INFRA / "workbook.json"
ALERTS = INFRA / "alerts.json"
MODULES = INFRA / "modules"
METRICS = {m.name: m for m in CATALOGUE}
PLACEHOLDERS = {
    "__WORKSPACE_ID__",
    "__APPINSIGHTS_ID__",
    "__DEADLETTER_ACCOUNT_ID__",
    "__DEADLETTER_CONTAINER__",
    "__ADX_DATABASE__",
    "__PORTAL__",
}


def workbook() -> dict[str, Any]:
    return json.loads(WORKBOOK.read_text(encoding="utf-8"))


def workbook_queries() -> dict[str, str]:
    return {item["name"]: item["content"]["query"] for item in workbook()["items"] if item["type"] == 3}


def alert_queries() -> dict[str, str]:
    return json.loads(ALERTS.read_text(encoding="utf-8"))


ALL_QUERIES = {
    **{f"workbook:{k}": v for k, v in workbook_queries().items()},
    **{f"alert:{k}": v for k, v in alert_queries().items()},
}


# --- the workbook's shape -------------------------------------------------------------------------


def test_workbook_is_a_notebook_of_typed_items() -> None:
    data = workbook()
    assert data["version"] == "Notebook/1.0"
    assert data["fallbackResourceIds"] == ["__APPINSIGHTS_ID__"]
    items = data["items"]
    assert len(items) >= 10
    names = [item["name"] for item in items]
    assert len(set(names)) == len(names), "item names must be unique"
    kinds = {1: "text", 3: "query", 9: "parameters"}
    for item in items:
        assert item["type"] in kinds and isinstance(item["content"], dict), item["name"]
        content = item["content"]
        if item["type"] == 1:
            assert content["json"].strip()
        if item["type"] == 9:
            assert content["version"] == "KqlParameterItem/1.0"
            assert [p["name"] for p in content["parameters"]] == ["TimeRange"]
        if item["type"] == 3:
            assert content["version"] == "KqlItem/1.0"
            assert content["title"] and content["query"].strip()
            assert content["visualization"] in {"timechart", "table", "barchart"}
            # Every query runs in the workspace (ADX's and Event Hubs' tables are there, not in
            # Application Insights) over the picked time range.
            assert content["resourceType"] == "microsoft.operationalinsights/workspaces"
            assert content["crossComponentResources"] == ["__WORKSPACE_ID__"]
            assert content["timeContextFromParameter"] == "TimeRange"
            if content["visualization"] == "timechart":
                assert "bin(TimeGenerated, {TimeRange:grain})" in content["query"], item["name"]


def test_workbook_charts_what_the_issue_asks_for() -> None:
    queries = workbook_queries()
    named = {name: kql_refs.metric_names(q) for name, q in queries.items()}
    charted = set().union(*named.values())
    for metric in (
        "kafka_adx.records.ingested",
        "kafka_adx.records.dead_lettered",
        "kafka_adx.lag",
        "messaging.process.duration",
        "kafka_adx.retries",
    ):
        assert metric in charted, metric
    read = set().union(*(kql_refs.tables(q) for q in queries.values()))
    assert {"FailedIngestion", "SucceededIngestion"} <= read
    # Lag per partition; ingested vs dead-lettered per table.
    assert 'Properties["messaging.destination.partition.id"]' in queries["lag-per-partition"]
    assert 'Properties["kafka_adx.table"]' in queries["records-per-table"]


def test_failures_and_sets_link_to_the_dead_letter_blobs() -> None:
    # Dead letters are blobs <set id>.jsonl (shared/deadletters/blob.py), and the pipeline logs
    # "dead-lettered N record(s) as set <id>" (shared/pipeline/core.py): the links are built
    # from that id, into the deployed dead-letter container.
    from shared.deadletters.blob import SUFFIX

    assert SUFFIX == ".jsonl"
    core = (REPO / "shared" / "pipeline" / "core.py").read_text(encoding="utf-8")
    assert 'log.info("dead-lettered %d record(s) as set %s"' in core
    assert 'log.error("dead-lettering %s: %s", batch.describe()' in core
    queries = workbook_queries()
    blob = 'url_encode_component(strcat("__DEADLETTER_CONTAINER__/", SetId, ".jsonl"))'
    for name, column in (("adx-failures", "DeadLetters"), ("dead-letter-sets", "Open")):
        assert blob in queries[name] and '"__PORTAL__/#view/' in queries[name], name
        item = next(i for i in workbook()["items"] if i["name"] == name)
        formatters = item["content"]["gridSettings"]["formatters"]
        assert (
            formatters[0]["columnMatch"] == column and formatters[0]["formatter"] == 7
        )  # 7: a link and formatters[0]["formatOptions"]["linkTarget"] == "Url"
    # The batch id ADX reports is the one in our blob names (kafka-adx-<16 hex>.<format>.gz).
    sink = (REPO / "shared" / "sinks" / "adx" / "sink.py").read_text(encoding="utf-8")
    assert 'f"kafka-adx-{batch.batch_id[:16]}.' in sink
    assert 'extract(@"kafka-adx-([0-9a-f]{16})", 1, IngestionSourcePath)' in queries["adx-failures"]


# --- every name exists ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(ALL_QUERIES))
def test_queries_name_only_catalogued_metrics_and_documented_tables(name: str) -> None:
    query = ALL_QUERIES[name]
    read = kql_refs.tables(query)
    assert read, f"{name}: no table found (write each table at the start of a line, before a pipe)"
    assert read <= kql_refs.KNOWN_TABLES, (
        f"{name} reads unknown tables {sorted(read - kql_refs.KNOWN_TABLES)}"
    )
    metrics = kql_refs.metric_names(query)
    assert metrics <= set(METRICS), (
        f"{name} names metrics not in shared/metrics.py: {sorted(metrics - set(METRICS))}"
    )
    if "AppMetrics" in read:
        assert metrics, f"{name} reads AppMetrics without naming a metric"
    # Each attribute read is one the catalogue lists for a metric the query names.
    listed = {a for m in metrics for a in METRICS[m].attributes}
    assert kql_refs.attributes(query) <= listed, f"{name}: {sorted(kql_refs.attributes(query) - listed)}"
    # Statements end with ';' and the last one is the query's result, never a let.
    assert not query.rstrip().endswith(";") and not query.split(";")[-1].lstrip().startswith("let "), name
    assert query.count("(") == query.count(")") and query.count('"') % 2 == 0, name
    every = kql_refs.dotted_names(query)
    assert every <= metrics | kql_refs.attributes(query), f"{name} uses {sorted(every - metrics)} another way"


def test_the_reference_finder_finds_and_refuses() -> None:
    query = (
        'let x = AppTraces\n| take 1;\nunion (FailedIngestion\n| where Database == "d"), (Bogus\n| take 1)\n'
        '| summarize by Table\n| where Name in ("a.b", "kafka_adx.lag") and Name == "c"\n'
        '| extend T = Properties["kafka_adx.table"]'
    )
    assert kql_refs.tables(query) == {"AppTraces", "FailedIngestion", "Bogus"}
    assert kql_refs.metric_names(query) == {"a.b", "kafka_adx.lag", "c"}
    assert kql_refs.attributes(query) == {"kafka_adx.table"}
    assert kql_refs.tables("toscalar(AzureMetrics\n| summarize sum(Total))") == {"AzureMetrics"}
    assert "IngestionBatching" not in kql_refs.KNOWN_TABLES  # the category's table is ADXIngestionBatching


# --- the workbook resource ---------------------------------------------------------------------------


def test_workbook_resource_loads_the_json_and_replaces_every_placeholder() -> None:
    path = MODULES / "workbook.bicep"
    parsed = parse(path)
    ((_, resource),) = [
        (s, r) for s, r in parsed["resources"].items() if r["type"] == "Microsoft.Insights/workbooks"
    ]
    config = body(resource)
    assert config["kind"] == "shared"
    properties = config["properties"]
    assert properties["category"] == "workbook"
    assert properties["sourceId"] == "appInsightsId"
    # Follow the replace() chain from serializedData back to loadTextContent('../workbook.json').
    expr = parsed["variables"][properties["serializedData"]]["value"]
    replaced: dict[str, Any] = {}
    while True:
        call = function_call(expr)
        assert call is not None, expr
        if call[0] == "load_text_content":
            assert call[1]["file_path"] == "../workbook.json"
            break
        assert call[0] == "replace"
        replaced[call[1]["old_string"]] = call[1]["new_string"]
        inner = call[1]["original_string"]
        expr = parsed["variables"][inner]["value"] if isinstance(inner, str) else inner
    assert set(replaced) == PLACEHOLDERS
    assert property_path(replaced["__PORTAL__"]) is None  # environment().portal, not a literal
    assert json.dumps(replaced["__PORTAL__"]).count('"environment"') == 1
    text = WORKBOOK.read_text(encoding="utf-8")
    assert set(re.findall(r"__[A-Z_]+__", text)) <= PLACEHOLDERS
    # The module's inputs come from the deployment's own resources.
    params = body(parse(MAIN)["modules"]["workbook"])["params"]
    assert property_path(params["appInsightsId"]) == ["monitoring", "outputs", "appInsightsId"]
    assert property_path(params["workspaceId"]) == ["monitoring", "outputs", "workspaceId"]
    assert property_path(params["deadLetterAccountId"]) == ["storage", "outputs", "id"]
    assert params["deadLetterContainerName"] == "deadLetterContainerName"
    assert params["adxDatabaseName"] == "adxDatabase"


# --- the diagnostic settings behind the tables ---------------------------------------------------------


def test_adx_and_event_hubs_send_what_the_queries_read() -> None:
    adx = parse(MODULES / "adx-diagnostics.bicep")
    ((_, setting),) = [
        (s, r) for s, r in adx["resources"].items() if r["type"] == "Microsoft.Insights/diagnosticSettings"
    ]
    properties = body(setting)["properties"]
    assert body(setting)["scope"] == "cluster" and adx["resources"]["cluster"]["existing"]
    assert properties["logAnalyticsDestinationType"] == "Dedicated"  # FailedIngestion, not AzureDiagnostics
    assert properties["workspaceId"] == "workspaceId"
    assert {log["category"] for log in properties["logs"] if log["enabled"]} == {
        "FailedIngestion",
        "SucceededIngestion",
        "IngestionBatching",
    }
    hubs = parse(MODULES / "eventhubs-diagnostics.bicep")
    ((_, metrics),) = [
        (s, r) for s, r in hubs["resources"].items() if r["type"] == "Microsoft.Insights/diagnosticSettings"
    ]
    assert body(metrics)["scope"] == "namespace"
    assert body(metrics)["properties"]["metrics"] == [{"category": "AllMetrics", "enabled": True}]


@pytest.mark.parametrize(
    ("values", "adx", "hubs"),
    [
        ({}, True, True),
        (
            {
                "adxDatabaseResourceId": "/subscriptions/s/resourceGroups/g/providers/Microsoft.Kusto/clusters/c/databases/d"
            },
            False,
            True,
        ),
        (
            {
                "eventHubResourceId": "/subscriptions/s/resourceGroups/g/providers/Microsoft.EventHub/namespaces/n/eventhubs/h"
            },
            True,
            False,
        ),
        (
            {
                "adxDatabaseResourceId": "/subscriptions/s/resourceGroups/g/providers/Microsoft.Kusto/clusters/c/databases/d",
                "eventHubResourceId": "/subscriptions/s/resourceGroups/g/providers/Microsoft.EventHub/namespaces/n/eventhubs/h",
                "monitorExistingResources": True,
            },
            True,
            True,
        ),
    ],
)
def test_diagnostic_settings_on_new_resources_and_on_existing_ones_when_asked(
    values: dict[str, Any], adx: bool, hubs: bool
) -> None:
    main = parse(MAIN)
    modules = main["modules"]
    assert evaluate(modules["adxDiagnostics"]["config"]["condition"], main, values) is adx
    assert evaluate(modules["eventHubsDiagnostics"]["config"]["condition"], main, values) is hubs
    # At the existing resource's own resource group (another one, maybe another subscription).
    assert body(modules["adxDiagnostics"])["scope"] == body(modules["adx"])["scope"]
    assert body(modules["adxDiagnostics"])["params"]["clusterName"] == "adxClusterName"
    namespace = main["variables"]["eventHubsNamespaceName"]["value"]["operator"]["operands"]
    assert (namespace["true_value"], namespace["false_value"]) == (
        "existingEventHubNamespace",
        "eventHubsName",
    )
    if "eventHubResourceId" in values:
        assert evaluate("existingEventHubNamespace", main, values) == "n"


# --- the alerts -------------------------------------------------------------------------------------------


def _rules() -> dict[str, dict[str, Any]]:
    parsed = parse(MODULES / "alerts.bicep")
    return {
        s: body(r)
        for s, r in parsed["resources"].items()
        if r["type"] == "Microsoft.Insights/scheduledQueryRules"
    }


def test_each_alert_runs_its_query_of_alerts_json() -> None:
    parsed = parse(MODULES / "alerts.bicep")
    assert function_call(parsed["variables"]["queries"]["value"]) == (
        "load_json_content",
        {"file_path": "../alerts.json", "json_path": None, "encoding": None},
    )
    rules = _rules()
    assert set(rules) == {"deadLetters", "lag", "noRecords", "adxFailures"} == set(alert_queries())
    for symbol, rule in rules.items():
        (criterion,) = rule["properties"]["criteria"]["allOf"]
        query = criterion["query"]
        if function_call(query):  # replace(queries.x, '__ADX_DATABASE__', adxDatabaseName)
            name, args = function_call(query)  # type: ignore[misc]
            assert name == "replace" and args["old_string"] == "__ADX_DATABASE__", query
            assert args["new_string"] == "adxDatabaseName"
            query = args["original_string"]
        assert property_path(query) == ["queries", symbol], symbol
        properties = rule["properties"]
        assert rule["kind"] == "LogAlert" and properties["scopes"] == ["workspaceId"]
        assert properties["enabled"] is True and properties["autoMitigate"] is True
        assert properties["actions"] == {"actionGroups": "actionGroups"}
        assert properties["evaluationFrequency"] == "PT5M"
        assert criterion["operator"] == "GreaterThan"
        for dimension in criterion.get("dimensions", []):  # each dimension is a column the query projects
            assert re.search(rf"\b{dimension['name']}\b", alert_queries()[symbol]), (symbol, dimension)
        column = criterion.get("metricMeasureColumn")
        if column:
            assert re.search(rf"project .*\b{column}\b", alert_queries()[symbol]), symbol


def test_alert_thresholds_metrics_and_tables() -> None:
    rules = {s: r["properties"]["criteria"]["allOf"][0] for s, r in _rules().items()}
    queries = alert_queries()
    assert kql_refs.metric_names(queries["deadLetters"]) == {"kafka_adx.records.dead_lettered"}
    assert (rules["deadLetters"]["threshold"], rules["deadLetters"]["timeAggregation"]) == (
        "deadLetterThreshold",
        "Total",
    )
    assert kql_refs.metric_names(queries["lag"]) == {"kafka_adx.lag"}
    assert (rules["lag"]["threshold"], rules["lag"]["timeAggregation"]) == ("lagThresholdSeconds", "Maximum")
    # No records ingested or dead-lettered while Event Hubs received messages, over the window.
    assert kql_refs.tables(queries["noRecords"]) == {"AzureMetrics", "AppMetrics"}
    assert kql_refs.metric_names(queries["noRecords"]) == {
        "kafka_adx.records.ingested",
        "kafka_adx.records.dead_lettered",
    }
    assert (
        '"IncomingMessages"' in queries["noRecords"]
        and "Incoming > 0 and Handled == 0" in queries["noRecords"]
    )
    assert (rules["noRecords"]["threshold"], rules["noRecords"]["timeAggregation"]) == (0, "Count")
    assert _rules()["noRecords"]["properties"]["windowSize"] == "noRecordsWindow"
    alerts = parse(MODULES / "alerts.bicep")
    assert evaluate("noRecordsWindow", alerts, {"noRecordsMinutes": 30}) == "PT30M"
    assert evaluate("noRecordsWindow", alerts, {"noRecordsMinutes": 120}) == "PT2H"
    assert evaluate("noRecordsWindow", alerts, {}) == "PT15M"
    allowed = next(
        d["argument"]
        for d in alerts["parameters"]["noRecordsMinutes"]["decorators"]
        if d["type"] == "allowed"
    )
    durations = {m: evaluate("noRecordsWindow", alerts, {"noRecordsMinutes": m}) for m in allowed}
    assert durations == {m: f"PT{m}M" if m < 60 else f"PT{m // 60}H" if m < 1440 else "P1D" for m in allowed}
    assert kql_refs.tables(queries["adxFailures"]) == {"FailedIngestion"}
    assert (rules["adxFailures"]["threshold"], rules["adxFailures"]["timeAggregation"]) == (
        "adxFailureThreshold",
        "Count",
    )


def test_action_group_only_with_an_email() -> None:
    parsed = parse(MODULES / "alerts.bicep")
    group = parsed["resources"]["actionGroup"]
    assert group["config"]["condition"] == "hasEmail"
    assert evaluate("hasEmail", parsed, {"alertEmail": ""}) is False
    assert evaluate("hasEmail", parsed, {"alertEmail": "ops@example.com"}) is True
    assert evaluate("actionGroups", parsed, {"alertEmail": ""}) == []
    receivers = body(group)["properties"]["emailReceivers"]
    assert [r["emailAddress"] for r in receivers] == ["alertEmail"]
    assert len(body(group)["properties"]["groupShortName"]) <= 12


# Parameter of main.bicep -> (azd variable, default, module parameter of alerts.bicep).
ALERT_PARAMETERS = {
    "alertEmail": ("KAFKA_ADX_ALERT_EMAIL", "", "alertEmail"),
    "alertDeadLetterThreshold": ("KAFKA_ADX_ALERT_DEAD_LETTERS", 0, "deadLetterThreshold"),
    "alertLagSeconds": ("KAFKA_ADX_ALERT_LAG_SECONDS", 300, "lagThresholdSeconds"),
    "alertNoRecordsMinutes": ("KAFKA_ADX_ALERT_NO_RECORDS_MINUTES", 15, "noRecordsMinutes"),
    "alertAdxFailureThreshold": ("KAFKA_ADX_ALERT_ADX_FAILURES", 0, "adxFailureThreshold"),
}


def test_alert_parameters_are_pinned_from_azd_to_the_rules() -> None:
    main = parse(MAIN)
    values = json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))["parameters"]
    alerts_module = body(main["modules"]["alerts"])["params"]
    alerts = parse(MODULES / "alerts.bicep")["parameters"]
    for name, (variable, default, module_param) in ALERT_PARAMETERS.items():
        assert main["parameters"][name]["default"] == default, name
        assert values[name]["value"] == f"${{{variable}={default}}}", name
        assert alerts_module[module_param] == name, name
        assert alerts[module_param]["default"] == default, module_param
    assert values["monitorExistingResources"]["value"] == "${KAFKA_ADX_MONITOR_EXISTING=false}"
    assert main["parameters"]["monitorExistingResources"]["default"] is False
    # The window of the no-records alert must be one a log search alert accepts.
    allowed = next(
        d["argument"]
        for d in main["parameters"]["alertNoRecordsMinutes"]["decorators"]
        if d["type"] == "allowed"
    )
    assert allowed == next(
        d["argument"] for d in alerts["noRecordsMinutes"]["decorators"] if d["type"] == "allowed"
    )
    assert 15 in allowed and 1440 in allowed


# --- docs/workbook.md is the rendering of the JSON ----------------------------------------------------


def _renderer() -> ModuleType:
    spec = importlib.util.spec_from_file_location("render_workbook", REPO / "scripts" / "render-workbook.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_workbook_doc_is_current() -> None:
    doc = (REPO / "docs" / "workbook.md").read_text(encoding="utf-8")
    assert _renderer().update(doc, workbook()) == doc, (
        "docs/workbook.md is stale: run python scripts/render-workbook.py"
    )


def test_render_check_fails_on_a_stale_doc(tmp_path: Path) -> None:
    ok = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "render-workbook.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    renderer = _renderer()
    data = workbook()
    data["items"][3]["content"]["title"] = "Something else"
    doc = (REPO / "docs" / "workbook.md").read_text(encoding="utf-8")
    assert renderer.update(doc, data) != doc
    picture = renderer.render(workbook())
    for item in workbook()["items"]:
        if item["type"] == 3:
            assert item["content"]["title"] in picture
            for metric in kql_refs.metric_names(item["content"]["query"]):
                assert metric in picture


# --- Microsoft's Kusto language service binds every query to the documented tables -------------------

# What Bicep and the workbook put in place of the placeholders (any valid values will do).
SAMPLE = {
    "{TimeRange:grain}": "5m",
    "__WORKSPACE_ID__": "/subscriptions/s/resourceGroups/g/providers/Microsoft.OperationalInsights/workspaces/w",
    "__APPINSIGHTS_ID__": "/subscriptions/s/resourceGroups/g/providers/Microsoft.Insights/components/a",
    "__DEADLETTER_ACCOUNT_ID__": "/subscriptions/s/resourceGroups/g/providers/Microsoft.Storage/storageAccounts/st",
    "__DEADLETTER_CONTAINER__": "deadletter",
    "__ADX_DATABASE__": "Weather",
    "__PORTAL__": "https://portal.example",
}


def _filled(query: str) -> str:
    for placeholder, value in SAMPLE.items():
        query = query.replace(placeholder, value)
    return query


@pytest.mark.timeout(900)  # the first run installs the language service
def test_every_query_binds_cleanly_with_the_kusto_language_service() -> None:
    from tests.infra import kql_service

    tables = json.loads(kql_service.TABLES.read_text(encoding="utf-8"))
    assert {t for t in tables if not t.startswith("_")} == kql_refs.KNOWN_TABLES
    # The same service must refuse what a typo or a wrong table would be (so the check can fail);
    # one run for both (loading the service takes seconds).
    controls = {
        "control:column": "AppMetrics | where Nam == 'x'",
        "control:table": "IngestionBatching | take 1",
        "control:function": "AppMetrics | summarize percentile_w(Sum, 95)",
        "control:syntax": "FailedIngestion | where",
    }
    found = kql_service.diagnostics({**{name: _filled(q) for name, q in ALL_QUERIES.items()}, **controls})
    assert set(found) == set(ALL_QUERIES) | set(controls)
    assert {name: d for name, d in found.items() if d and name not in controls} == {}
    assert all(found[name] for name in controls), {name: found[name] for name in controls}


# --- the preprovision hook refuses alert settings the deployment would refuse ---------------------------


def test_hook_knows_the_bicep_ranges_of_the_alert_settings() -> None:
    from tests.infra.azd_hooks import preprovision

    hook = preprovision()
    main = parse(MAIN)["parameters"]

    def decorator(param: str, kind: str) -> Any:
        return next(d["argument"] for d in main[param]["decorators"] if d["type"] == kind)

    assert {
        "KAFKA_ADX_ALERT_DEAD_LETTERS": decorator("alertDeadLetterThreshold", "min_value"),
        "KAFKA_ADX_ALERT_LAG_SECONDS": decorator("alertLagSeconds", "min_value"),
        "KAFKA_ADX_ALERT_ADX_FAILURES": decorator("alertAdxFailureThreshold", "min_value"),
    } == hook.ALERT_MINIMUMS
    assert list(hook.NO_RECORDS_WINDOWS) == decorator("alertNoRecordsMinutes", "allowed")
    assert "KAFKA_ADX_MONITOR_EXISTING" in hook.BOOLEANS
    for name, (variable, default, _) in ALERT_PARAMETERS.items():
        if variable != "KAFKA_ADX_ALERT_EMAIL":
            assert hook.DEFAULTS[variable] == str(default), name
    assert hook.alert_problems({}) == []


@pytest.mark.parametrize(
    ("env", "refusal"),
    [
        (
            {"KAFKA_ADX_ALERT_LAG_SECONDS": "0"},
            "KAFKA_ADX_ALERT_LAG_SECONDS: '0' is not a whole number of at least 1",
        ),
        (
            {"KAFKA_ADX_ALERT_DEAD_LETTERS": "ten"},
            "KAFKA_ADX_ALERT_DEAD_LETTERS: 'ten' is not a whole number",
        ),
        ({"KAFKA_ADX_ALERT_ADX_FAILURES": "-1"}, "KAFKA_ADX_ALERT_ADX_FAILURES: '-1' is not a whole number"),
        (
            {"KAFKA_ADX_ALERT_NO_RECORDS_MINUTES": "20"},
            "KAFKA_ADX_ALERT_NO_RECORDS_MINUTES: '20' is not a window",
        ),
        ({"KAFKA_ADX_ALERT_EMAIL": "ops"}, "KAFKA_ADX_ALERT_EMAIL: 'ops' is not an e-mail address"),
        ({"KAFKA_ADX_MONITOR_EXISTING": "yes"}, "KAFKA_ADX_MONITOR_EXISTING: 'yes' is not true or false"),
    ],
)
def test_hook_refuses_bad_alert_settings(env: dict[str, str], refusal: str) -> None:
    from tests.infra.azd_hooks import run_hook

    refused = run_hook("preprovision", env, "--no-generate")
    assert refused.returncode == 1 and refusal in refused.stderr, refused.stderr


def test_hook_accepts_good_alert_settings() -> None:
    from tests.infra.azd_hooks import run_hook

    env = {"KAFKA_ADX_ALERT_EMAIL": "ops@example.com", "KAFKA_ADX_ALERT_LAG_SECONDS": "60",
           "KAFKA_ADX_ALERT_NO_RECORDS_MINUTES": "30", "KAFKA_ADX_ALERT_DEAD_LETTERS": "100",
           "KAFKA_ADX_MONITOR_EXISTING": "true"}  # fmt: skip
    done = run_hook("preprovision", env, "--no-generate")
    assert done.returncode == 0, done.stderr


# --- the rows the queries read are the rows the exporter writes -------------------------------------------


def test_the_exporter_writes_what_the_queries_read() -> None:
    """The queries read ``Name`` (the metric's name), ``Sum``/``ItemCount``/``Max`` and
    ``Properties["<attribute>"]``: run our instruments through the real Azure Monitor exporter's
    conversion and look at what it would send (a MetricData item: the AppMetrics row)."""
    from azure.monitor.opentelemetry.exporter.export.metrics._exporter import _convert_point_to_envelope
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    from shared import metrics as m

    # One collection: cumulative (the reader's default) and delta (the exporter's) give the same points.
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    instruments = m.Metrics(provider)
    lag = {
        m.SYSTEM: "eventhubs",
        m.DESTINATION: "storm-events",
        m.PARTITION: "3",
        m.TRIGGER: "eventhub_ingest",
    }
    instruments.record(m.LAG, 2.0, lag)
    instruments.record(m.LAG, 7.5, lag)
    instruments.add(
        m.INGESTED, 40, {m.TABLE: "Weather.Storms", m.SYSTEM: "eventhubs", m.TRIGGER: "eventhub_ingest"}
    )
    data = reader.get_metrics_data()
    rows = {}
    for resource_metrics in data.resource_metrics:
        for scope in resource_metrics.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    envelope = _convert_point_to_envelope(
                        point, metric.name, resource_metrics.resource, scope.scope
                    )
                    base = envelope.data.base_data
                    rows[metric.name] = (base.metrics[0], base.properties)
    lag_row, lag_properties = rows["kafka_adx.lag"]
    assert (lag_row.name, lag_row.value, lag_row.count, lag_row.min, lag_row.max) == (
        "kafka_adx.lag",
        9.5,
        2,
        2.0,
        7.5,
    )
    assert lag_properties["messaging.destination.partition.id"] == "3"
    assert lag_properties["messaging.destination.name"] == "storm-events"
    ingested_row, ingested_properties = rows["kafka_adx.records.ingested"]
    assert (ingested_row.name, ingested_row.value) == ("kafka_adx.records.ingested", 40)
    assert ingested_properties["kafka_adx.table"] == "Weather.Storms"
    # The workbook reads exactly these property names and the columns that carry these fields.
    queries = workbook_queries()
    assert 'Properties["messaging.destination.partition.id"]' in queries["lag-per-partition"]
    assert "max(Max)" in queries["lag-per-partition"] and "Sum / ItemCount" in queries["batch-latency"]
