"""Operability of the function app: one structured log line per batch (never payloads), OpenTelemetry
metrics and spans, process-wide clients reused across invocations, and deployment files that name
exactly the settings the code reads."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.errors import TransientError
from shared.functions import worker as functions_worker
from shared.functions.settings import FUNCTION_SETTINGS, HOST_SETTINGS, TriggerSettings, required_settings
from shared.functions.telemetry import Telemetry
from shared.settings import SETTING_NAMES, Settings
from tests.support.functions_app import KAFKA_ENV, REPO, LocalApp
from tests.support.functions_host import Context, KafkaMessage, kafka_events

MARKER = "PAYLOAD-MUST-NOT-BE-LOGGED"


def batch() -> list[KafkaMessage]:
    good = json.dumps({"EventId": 1, "State": MARKER}).encode()
    return [
        KafkaMessage("storm-events-json", 7, good, partition=1, key=MARKER.encode(), headers=[("x", MARKER.encode())]),
        KafkaMessage("storm-events-json", 9, good, partition=1),
        KafkaMessage("storm-events-json", 3, f"{{broken {MARKER}".encode(), partition=2),
        KafkaMessage("audit", 4, MARKER.encode()),
    ]


def test_one_structured_line_per_batch_without_payloads(
    local_app: Callable[[dict[str, str]], LocalApp], caplog: pytest.LogCaptureFixture
) -> None:
    app = local_app(KAFKA_ENV)
    caplog.set_level(logging.DEBUG)
    app.call("kafka_ingest", kafka_events(batch()), Context("kafka_ingest", retry_count=1, max_retry_count=5))

    lines = [r for r in caplog.records if r.name == "kafka_adx.functions"]
    assert len(lines) == 1
    line = lines[0]
    text = line.getMessage()
    assert text.startswith("kafka-adx batch trigger=kafka_ingest source=kafka attempt=2/6 outcome=partial")
    assert "received=4 ingested=3 dead_lettered=1 " in text
    assert "partitions=storm-events-json[1]@7-9,storm-events-json[2]@3-3,audit[0]@4-4" in text
    assert re.search(r" bytes=\d+ duration_ms=[\d.]+ lag_s=[\d.]+ ", text)
    fields: dict[str, Any] = {k: v for k, v in vars(line).items() if k.startswith("kafka_adx_")}
    assert (fields["kafka_adx_received"], fields["kafka_adx_ingested"], fields["kafka_adx_dead_lettered"]) == (4, 3, 1)
    assert fields["kafka_adx_lag_s"] > 0 and fields["kafka_adx_bytes"] == sum(len(m.value or b"") for m in batch())
    assert fields["kafka_adx_reasons"] == "decode:1"  # the broken JSON record
    # Nothing any logger wrote contains a payload, key or header value.
    assert all(MARKER not in record.getMessage() for record in caplog.records)


def test_azure_monitor_is_configured_only_with_a_connection_string() -> None:
    calls: list[str] = []
    assert not Telemetry.from_env({}, configure=calls.append).enabled
    assert calls == []
    connection = "InstrumentationKey=00000000-0000-0000-0000-000000000000"
    assert Telemetry.from_env({"APPLICATIONINSIGHTS_CONNECTION_STRING": connection}, configure=calls.append).enabled
    assert calls == [connection]


def test_without_a_connection_string_the_exporter_is_never_imported(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import os, sys
        os.environ.update(KAFKA_BROKERS="127.0.0.1:9", KAFKA_TOPIC="t", INGESTION_CONFIG={str(REPO / 'ingestion.yaml')!r},
                          LOCAL_DB={str(tmp_path / 'db.duckdb')!r}, LOCAL_DEADLETTER_DIR={str(tmp_path / 'dl')!r})
        sys.path.insert(0, {str(REPO)!r})
        import function_app
        from tests.support.functions_host import Context, KafkaMessage, kafka_events
        fn = {{f.get_function_name(): f for f in function_app.app.get_functions()}}["kafka_ingest"]
        fn.get_user_function()(events=kafka_events([KafkaMessage("t", 1, b"line")]), context=Context("kafka_ingest"))
        print(sorted(m for m in sys.modules if m.startswith("azure.monitor")))
        """
    )
    env = {k: v for k, v in __import__("os").environ.items() if k != "APPLICATIONINSIGHTS_CONNECTION_STRING"}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_two_invocations_reuse_the_process_wide_clients(local_app: Callable[[dict[str, str]], LocalApp]) -> None:
    app = local_app(KAFKA_ENV)
    before = functions_worker.builds
    app.call("kafka_ingest", kafka_events([KafkaMessage("audit", 1, b"one")]), Context("kafka_ingest"))
    first = functions_worker.worker()
    sink, connection, store = first.pipeline.sink, first.pipeline.sink.con, first.pipeline.deadletters  # type: ignore[attr-defined]
    app.call("kafka_ingest", kafka_events([KafkaMessage("audit", 2, b"two")]), Context("kafka_ingest"))
    second = functions_worker.worker()
    assert functions_worker.builds == before + 1
    assert second is first and second.pipeline.sink is sink and second.pipeline.deadletters is store
    assert second.pipeline.sink.con is connection  # type: ignore[attr-defined]
    assert app.rows('SELECT Line FROM "Weather"."RawEvents" ORDER BY Line') == [("one",), ("two",)]


# --------------------------------------------------------------------------- deployment files

KNOWN = set(SETTING_NAMES) | set(FUNCTION_SETTINGS) | set(HOST_SETTINGS)


def local_settings() -> dict[str, str]:
    return json.loads((REPO / "local.settings.sample.json").read_text())["Values"]  # type: ignore[no-any-return]


def compose_settings() -> dict[str, str]:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    return {k: str(v) for k, v in compose["services"]["functions"]["environment"].items()}


@pytest.mark.parametrize("source", [local_settings, compose_settings], ids=["local.settings.sample.json", "docker-compose.yml"])
def test_deployment_files_name_only_settings_the_code_reads_and_all_it_requires(source: Callable[[], dict[str, str]]) -> None:
    values = source()
    assert set(values) - KNOWN == set()
    present = {name for name, value in values.items() if value.strip()}
    assert required_settings(values) <= present
    assert {"FUNCTIONS_WORKER_RUNTIME", "AzureWebJobsStorage"} <= present  # the host needs both
    triggers = TriggerSettings.from_env(values)  # valid as written
    assert triggers.kafka_bindings() and not triggers.eventhub_bindings()
    Settings.from_env(values)


def test_local_settings_sample_lists_every_setting_of_the_app() -> None:
    assert set(SETTING_NAMES) | set(FUNCTION_SETTINGS) <= set(local_settings())


def test_make_local_settings_creates_local_settings_json_from_the_sample_and_keeps_an_edited_one(tmp_path: Path) -> None:
    (tmp_path / "local.settings.sample.json").write_bytes((REPO / "local.settings.sample.json").read_bytes())
    make = ["make", "--no-print-directory", "-f", str(REPO / "Makefile"), "-C", str(tmp_path), "local-settings"]
    subprocess.run(make, check=True, capture_output=True, timeout=60)
    created = tmp_path / "local.settings.json"
    assert created.read_bytes() == (REPO / "local.settings.sample.json").read_bytes()
    created.write_text('{"IsEncrypted": false, "Values": {"KAFKA_BROKERS": "mine:9092"}}')
    subprocess.run(make, check=True, capture_output=True, timeout=60)
    assert "mine:9092" in created.read_text()  # a developer's settings are never overwritten


def test_vscode_attaches_to_the_python_worker_after_installing_and_starting_the_host() -> None:
    """.vscode/ as the Azure Functions extension's Python template writes it (launch: debugpy
    attach on 9091, the port the extension passes the worker; tasks: func host start after pip
    install of requirements.txt into azureFunctions.pythonVenv), plus local.settings.json."""
    vscode = REPO / ".vscode"
    launch, tasks, settings, extensions = (json.loads((vscode / f"{name}.json").read_text())
                                           for name in ("launch", "tasks", "settings", "extensions"))  # fmt: skip
    (attach,) = launch["configurations"]
    assert (attach["type"], attach["request"], attach["connect"]["port"]) == ("debugpy", "attach", 9091)
    by_label = {task["label"]: task for task in tasks["tasks"]}
    host = by_label[attach["preLaunchTask"]]
    assert (host["type"], host["command"], host["isBackground"]) == ("func", "host start", True)
    install, local = (by_label[name] for name in host["dependsOn"])
    for platform in ("linux", "osx", "windows"):
        command = install[platform]["command"]
        assert command.startswith("${config:azureFunctions.pythonVenv}") and command.endswith("-m pip install -r requirements.txt")
    assert local["linux"]["command"] == local["osx"]["command"] == "make local-settings"
    assert "local.settings.sample.json" in local["windows"]["command"]
    venv = re.search(r"^VENV \?= (\S+)$", (REPO / "Makefile").read_text(), re.MULTILINE)
    assert venv and settings["azureFunctions.pythonVenv"] == venv.group(1)  # the venv make builds
    assert settings["azureFunctions.projectLanguageModel"] == 2 and settings["azureFunctions.projectRuntime"] == "~4"
    assert {"ms-azuretools.vscode-azurefunctions", "ms-python.python"} <= set(extensions["recommendations"])
    assert ".vscode/" in (REPO / ".funcignore").read_text().splitlines()


def test_host_json_pins_the_bundle_and_the_delivery_options() -> None:
    host = json.loads((REPO / "host.json").read_text())
    assert host["extensionBundle"] == {"id": "Microsoft.Azure.Functions.ExtensionBundle", "version": "[4.36.0, 5.0.0)"}
    kafka = host["extensions"]["kafka"]
    assert kafka["commitOnFailure"] is False and kafka["maxRetries"] == -1
    hubs = host["extensions"]["eventHubs"]
    assert hubs["maxEventBatchSize"] >= 100 and hubs["prefetchCount"] >= 2 * hubs["maxEventBatchSize"]
    assert hubs["minEventBatchSize"] <= hubs["maxEventBatchSize"]


def test_host_json_never_samples_the_dead_letter_log_lines() -> None:
    """The workbook's dead-letter grid reads the ``dead-lettered N record(s) as set <id>`` lines
    from AppTraces: adaptive sampling must not drop one (the set id is how an operator finds
    the records)."""
    host = json.loads((REPO / "host.json").read_text())
    sampling = host["logging"]["applicationInsights"]["samplingSettings"]
    excluded = {kind.strip() for kind in sampling.get("excludedTypes", "").split(";")}
    assert not sampling.get("isEnabled", True) or {"Trace", "Exception"} <= excluded


def test_a_misconfigured_adx_is_logged_once_per_worker_start_with_the_remedy(
    local_app: Callable[[dict[str, str]], LocalApp], caplog: pytest.LogCaptureFixture
) -> None:
    """ADX_INGEST_URI pointing nowhere: one error at worker start naming the setting, not one per
    batch; the worker still starts and the delivery contract still holds (the batch is retried)."""
    import socket

    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app = local_app({**KAFKA_ENV, "ADX_INGEST_URI": f"http://127.0.0.1:{port}", "ADX_AUTH": "none"})
    caplog.set_level(logging.INFO)
    for _ in range(2):
        with pytest.raises(TransientError):  # the host redelivers
            app.call("kafka_ingest", kafka_events(batch()[:2]), Context("kafka_ingest", retry_count=0, max_retry_count=5))
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR and "preflight" in r.getMessage()]
    assert len(errors) == 1, errors
    assert "ADX_INGEST_URI" in errors[0] and f"127.0.0.1:{port}" in errors[0]
