"""Fail fast: ``preflight`` against the ADX stand-in, Azurite and closed loopback ports, and
``kafka-adx ingest`` run as a real process that stops before reading its input.

No durations are asserted: a command that used to stall (145 s for ``ingest`` with storage
down) is given a generous subprocess timeout, and the test asserts that it *returned* with one
clear error and wrote no dead letter.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.ops.preflight import PreflightError, check_kafka, log_preflight, preflight, routed_targets
from shared.settings import Settings
from shared.sinks.adx import AdxClients, close_process_clients, status_queues
from tests.fixtures.azurite import Azurite
from tests.support.adx import DATABASE, config_data, make_config
from tests.support.adx_standin import AdxStandIn, FaultProxy

REPO = Path(__file__).resolve().parents[3]
CLI = [sys.executable, "-c", "from shared.cli.app import main; main()"]
_SCRUBBED = ("KAFKA_", "ADX_", "DEADLETTER_", "LOCAL_", "INGESTION_CONFIG", "AZURE_", "IDENTITY_")


@pytest.fixture(autouse=True)
def _fresh_process_clients() -> Iterator[None]:
    """preflight uses the process-wide clients (the pipeline reuses them): forget them after each test."""
    yield
    close_process_clients()


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def settings(tmp_path: Path, **env: str) -> Settings:
    """Settings of the environment ``env`` (no authentication), local folders under ``tmp_path``."""
    base = {"ADX_AUTH": "none", "LOCAL_DB": str(tmp_path / "local.duckdb"),
            "LOCAL_DEADLETTER_DIR": str(tmp_path / "deadletter")}
    return Settings.from_env(base | env)


def error_of(s: Settings, **kw: Any) -> str:
    with pytest.raises(PreflightError) as info:
        preflight(s, make_config(), **kw)
    return str(info.value)


# --------------------------------------------------------------------------------------------
# preflight(), ADX
# --------------------------------------------------------------------------------------------


def test_passes_when_the_cluster_has_every_routed_table_and_mapping(standin: AdxStandIn, tmp_path: Path) -> None:
    preflight(settings(tmp_path, ADX_INGEST_URI=standin.url), make_config())
    # It asked the ingestion endpoint for its resources and the engine for tables and mappings.
    assert standin.count("/v1/rest/mgmt", 200) >= 4
    details = [s.detail for s in standin.seen]
    assert ".get ingestion resources" in details and ".show tables" in details
    assert ".show table ['Events'] ingestion mappings" in details
    assert (tmp_path / "deadletter").is_dir()  # the local dead-letter folder was checked (made)


def test_routed_targets_list_only_the_mappings_adx_applies() -> None:
    targets = routed_targets(make_config())
    # ClicksMap reads record metadata: kafka-adx applies it, ADX never sees it.
    assert targets == {DATABASE: {"Events": {"EventsMap": "json"}, "Clicks": {}, "Live": {"LiveMap": "json"}}}


def test_unreachable_ingest_uri_names_the_setting_the_host_and_the_remedy(tmp_path: Path) -> None:
    port = closed_port()
    message = error_of(settings(tmp_path, ADX_INGEST_URI=f"http://127.0.0.1:{port}"))
    assert message.startswith(f"ADX_INGEST_URI (127.0.0.1:{port}): cannot reach the ADX ingestion endpoint")
    assert "connection refused" in message and "typo" in message
    assert "\n" not in message


def test_log_preflight_logs_one_error_with_the_remedy_for_the_function_app(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    port = closed_port()
    assert log_preflight(settings(tmp_path, ADX_INGEST_URI=f"http://127.0.0.1:{port}"), make_config()) is False
    [record] = [r for r in caplog.records if r.name == "kafka_adx.preflight"]
    assert record.levelname == "ERROR" and f"ADX_INGEST_URI (127.0.0.1:{port})" in record.getMessage()
    assert "Check ADX_INGEST_URI for a typo" in record.getMessage()
    assert log_preflight(settings(tmp_path), make_config()) is True


def test_no_authentication_over_https_is_a_preflight_error(tmp_path: Path) -> None:
    message = error_of(settings(tmp_path, ADX_INGEST_URI="https://ingest-mycluster.westeurope.kusto.windows.net"))
    assert message.startswith("ADX_INGEST_URI (ingest-mycluster.westeurope.kusto.windows.net): cannot set up the ADX "
                              "clients")
    assert "ADX_AUTH=none is for loopback stand-ins" in message


def test_an_ingest_endpoint_that_does_not_answer_in_time_is_an_error(standin: AdxStandIn, tmp_path: Path) -> None:
    standin.mgmt.hang, standin.mgmt.hang_times = 5.0, 1
    message = error_of(settings(tmp_path, ADX_INGEST_URI=standin.url), timeout=1)
    assert "no answer within 1 s" in message and "ADX_INGEST_URI" in message


def test_a_missing_table_is_named(standin: AdxStandIn, tmp_path: Path) -> None:
    standin.drop_table(DATABASE, "Clicks")
    message = error_of(settings(tmp_path, ADX_INGEST_URI=standin.url))
    assert message.startswith("ADX_ENGINE_URI (derived from ADX_INGEST_URI) (127.0.0.1:")
    assert "table db1.Clicks" in message and "kafka-adx kql" in message
    assert "Events" not in message  # only what is missing


def test_a_missing_mapping_and_a_missing_database_are_named(standin: AdxStandIn, tmp_path: Path) -> None:
    standin.set_mapping(DATABASE, "Live", "LiveMap", "json", None)
    assert "json mapping LiveMap of table db1.Live" in error_of(settings(tmp_path, ADX_INGEST_URI=standin.url))
    del standin.databases[DATABASE]
    assert "database db1" in error_of(settings(tmp_path, ADX_INGEST_URI=standin.url))


def test_an_identity_that_may_ingest_but_not_read_the_schema_is_not_stopped(
    standin: AdxStandIn, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    standin.schema_forbidden = True
    standin.drop_table(DATABASE, "Clicks")  # not visible to this identity, so not reported
    preflight(settings(tmp_path, ADX_INGEST_URI=standin.url), make_config())
    [warning] = [r for r in caplog.records if r.name == "kafka_adx.preflight"]
    assert "cannot verify the routed tables and mappings" in warning.getMessage()
    assert "HTTP 403" in warning.getMessage() and "Viewer role" in warning.getMessage()


def test_an_unreachable_engine_uri_is_named(standin: AdxStandIn, tmp_path: Path) -> None:
    port = closed_port()
    s = settings(tmp_path, ADX_INGEST_URI=standin.url, ADX_ENGINE_URI=f"http://127.0.0.1:{port}")
    message = error_of(s)
    assert message.startswith(f"ADX_ENGINE_URI (127.0.0.1:{port}): cannot check the routed tables")
    assert "connection refused" in message


# --------------------------------------------------------------------------------------------
# preflight(), storage
# --------------------------------------------------------------------------------------------


def test_a_reachable_deadletter_container_passes_and_a_missing_one_is_created_later(
    standin: AdxStandIn, azurite: Azurite, storage_names: str, deadletter_url: str, tmp_path: Path
) -> None:
    preflight(settings(tmp_path, ADX_INGEST_URI=standin.url, DEADLETTER_BLOB_URI=deadletter_url), make_config())
    # No container yet: the store creates it on its first write, so that is no reason to stop.
    missing = azurite.account_sas_container_uri(f"{storage_names}-not-yet")
    preflight(settings(tmp_path, ADX_INGEST_URI=standin.url, DEADLETTER_BLOB_URI=missing), make_config())
    assert not (tmp_path / "deadletter").exists()  # blob dead letters: the local folder is not used


@pytest.fixture
def dl_proxy(azurite: Azurite) -> Iterator[FaultProxy]:
    """A fault proxy of its own for the dead-letter account (the ADX temp storage stays up)."""
    proxy = FaultProxy(azurite.blob_port)
    yield proxy
    proxy.close()


@pytest.mark.parametrize("how", ["dropped", "503"])
def test_deadletter_storage_down_is_one_clear_error_without_the_sas(
    how: str, standin: AdxStandIn, azurite: Azurite, storage_names: str, dl_proxy: FaultProxy, tmp_path: Path
) -> None:
    azurite.create_container(f"{storage_names}-dl")
    url = azurite.container_sas_uri(f"{storage_names}-dl", endpoint=dl_proxy.endpoint)
    # Connections dropped without an answer, or 503: the account is down (the proxy stays bound,
    # so no other process can take its port and answer instead).
    dl_proxy.fail("", 0 if how == "dropped" else 503)
    message = error_of(settings(tmp_path, ADX_INGEST_URI=standin.url, DEADLETTER_BLOB_URI=url))
    host = url.split("/")[2]
    assert message.startswith(f"DEADLETTER_BLOB_URI ({host}, container {storage_names}-dl): the dead-letter store "
                              "cannot be reached")
    assert "storage account is up" in message
    assert "sig=" not in message
    if how == "503":
        # One request, no retries of its own: the caller decides what to do.
        assert len(dl_proxy.requests(failed=True)) == 1


@pytest.mark.parametrize("service", ["blob", "queue"])
def test_the_clusters_ingestion_storage_down_is_named(
    service: str, standin: AdxStandIn, blob_proxy: FaultProxy, queue_proxy: FaultProxy, tmp_path: Path
) -> None:
    """Dead letters in a local folder, so only the temp storage ADX hands out is down."""
    proxy = blob_proxy if service == "blob" else queue_proxy
    proxy.close()
    message = error_of(settings(tmp_path, ADX_INGEST_URI=standin.url))
    host = proxy.endpoint.split("/")[2]
    assert message.startswith(f"ADX_INGEST_URI (127.0.0.1:{standin.url.rsplit(':', 1)[1]}): the cluster's ingestion "
                              f"storage cannot be reached: {host}: ")
    assert "Connection refused" in message and "firewall" in message and "sig=" not in message


def test_a_storage_sas_that_may_not_read_still_counts_as_reachable(
    standin: AdxStandIn, blob_proxy: FaultProxy, queue_proxy: FaultProxy, tmp_path: Path
) -> None:
    blob_proxy.fail("", 403)
    queue_proxy.fail("", 403)
    preflight(settings(tmp_path, ADX_INGEST_URI=standin.url), make_config())


def test_a_deadletter_uri_without_a_container_is_named(tmp_path: Path) -> None:
    message = error_of(settings(tmp_path, DEADLETTER_BLOB_URI="http://127.0.0.1:1"))
    assert message.startswith("DEADLETTER_BLOB_URI (127.0.0.1:1): not a container URL")


def test_status_queues_read_the_failure_queue(adx_clients: AdxClients, standin: AdxStandIn) -> None:
    standin.post_failure({"OperationId": "op-1", "Database": DATABASE, "Table": "Events", "ErrorCode": "X"})
    [message] = status_queues(adx_clients.queued).failure.peek(1, raw=True)
    assert json.loads(message.content)["OperationId"] == "op-1"


def test_status_queues_give_up_instead_of_stalling(adx_clients: AdxClients, queue_proxy: FaultProxy) -> None:
    """The SDK's status queues use the storage SDK's default retry (104 s for `status` with
    storage down); ``status_queues`` bounds them. Bounded by a generous join, not timed."""
    adx_clients.queued._resource_manager.get_failed_ingestions_queues()  # resources fetched while up
    queue_proxy.close()
    outcome: list[BaseException | object] = []

    def peek() -> None:
        try:
            outcome.append(status_queues(adx_clients.queued).failure.peek(5, raw=True))
        except Exception as exc:  # the outcome is asserted below
            outcome.append(exc)

    thread = threading.Thread(target=peek, daemon=True)
    thread.start()
    thread.join(60)
    assert not thread.is_alive(), "status queue peek did not give up"
    assert isinstance(outcome[0], Exception)


# --------------------------------------------------------------------------------------------
# preflight(), local mode
# --------------------------------------------------------------------------------------------


def test_local_mode_checks_the_duckdb_file_and_the_deadletter_folder(tmp_path: Path) -> None:
    preflight(settings(tmp_path), make_config())
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    message = error_of(Settings.from_env({"LOCAL_DB": str(blocker / "x.duckdb"),
                                          "LOCAL_DEADLETTER_DIR": str(tmp_path / "dl")}))
    assert message.startswith(f"LOCAL_DB ({blocker / 'x.duckdb'}): the folder of the DuckDB file cannot be "
                              f"written: {blocker} is a file, not a folder")
    message = error_of(Settings.from_env({"LOCAL_DB": str(tmp_path / "x.duckdb"),
                                          "LOCAL_DEADLETTER_DIR": str(blocker / "dl")}))
    assert message.startswith(f"LOCAL_DEADLETTER_DIR ({blocker / 'dl'}): the dead-letter folder cannot be written: "
                              f"{blocker} is a file")
    message = error_of(Settings.from_env({"LOCAL_DB": str(tmp_path), "LOCAL_DEADLETTER_DIR": str(tmp_path / "dl")}))
    assert "the DuckDB file is a folder" in message


# --------------------------------------------------------------------------------------------
# check_kafka
# --------------------------------------------------------------------------------------------


def test_an_unreachable_broker_is_named_and_the_password_is_not() -> None:
    bootstrap = f"127.0.0.1:{closed_port()}"
    conf = {"bootstrap.servers": bootstrap, "security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "PLAIN",
            "sasl.username": "user", "sasl.password": "s3cret-password", "group.id": "g"}
    with pytest.raises(PreflightError) as info:
        check_kafka(conf, ["events"], timeout=2)
    message = str(info.value)
    assert message.startswith(f"KAFKA_BROKERS / --brokers ({bootstrap}): no metadata from the brokers within 2 s")
    assert "s3cret-password" not in message


def test_a_reachable_broker_passes_and_a_missing_topic_is_only_a_warning(
    kafka_bootstrap: str, kafka_topic: Any, caplog: pytest.LogCaptureFixture
) -> None:
    topic = kafka_topic(partitions=1, prefix="preflight")
    conf = {"bootstrap.servers": kafka_bootstrap, "group.id": "g", "enable.auto.commit": False}
    check_kafka(conf, [topic, "^preflight-.*"], timeout=10)
    assert not [r for r in caplog.records if r.name == "kafka_adx.preflight"]
    check_kafka(conf, [topic, "no-such-topic-yet"], timeout=10)
    assert "no-such-topic-yet" in caplog.text and topic not in caplog.text.split("topic(s)", 1)[1]


# --------------------------------------------------------------------------------------------
# The CLI, as a real process
# --------------------------------------------------------------------------------------------


def cli_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    config = tmp_path / "ingestion.yaml"
    config.write_text(yaml.safe_dump(config_data()))
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUBBED)}
    env.update({"PYTHONPATH": str(REPO), "INGESTION_CONFIG": str(config), "ADX_AUTH": "none",
                "LOCAL_DB": str(tmp_path / "local.duckdb"), "LOCAL_DEADLETTER_DIR": str(tmp_path / "deadletter")})
    env.update(extra)
    return env


def ingest(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    data = tmp_path / "events.jsonl"
    data.write_text("".join(json.dumps({"id": i, "kind": "k"}) + "\n" for i in range(3000)))
    # 60 s is generous: a typo'd URI dead-lettered everything, storage down stalled for 145 s.
    return subprocess.run([*CLI, "ingest", "-t", "events", str(data)], env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL)


def dead_letter_files(tmp_path: Path) -> list[Path]:
    folder = tmp_path / "deadletter"
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


def test_ingest_with_an_unreachable_ingest_uri_exits_2_with_one_error_and_no_dead_letters(tmp_path: Path) -> None:
    port = closed_port()
    proc = ingest(tmp_path, cli_env(tmp_path, ADX_INGEST_URI=f"http://127.0.0.1:{port}"))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    errors = [line for line in proc.stderr.splitlines() if "ADX_INGEST_URI" in line]
    assert len(errors) == 1 and f"127.0.0.1:{port}" in errors[0] and "connection refused" in errors[0]
    assert "received" not in proc.stdout  # stopped before reading the input
    assert dead_letter_files(tmp_path) == []


def test_ingest_with_a_missing_table_exits_2_naming_it(standin: AdxStandIn, tmp_path: Path) -> None:
    standin.drop_table(DATABASE, "Events")
    proc = ingest(tmp_path, cli_env(tmp_path, ADX_INGEST_URI=standin.url))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "table db1.Events" in proc.stderr
    assert dead_letter_files(tmp_path) == [] and standin.queued_messages() == []


def test_ingest_with_storage_down_returns_with_a_clear_error(
    standin: AdxStandIn, blob_proxy: FaultProxy, queue_proxy: FaultProxy, deadletter_url: str, tmp_path: Path
) -> None:
    blob_proxy.close()
    queue_proxy.close()
    proc = ingest(tmp_path, cli_env(tmp_path, ADX_INGEST_URI=standin.url, DEADLETTER_BLOB_URI=deadletter_url))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    [error] = [line for line in proc.stderr.splitlines() if "cannot be reached" in line]
    # The sink is checked first: the cluster's temp storage (the same Azurite) is named.
    assert "ADX_INGEST_URI" in error and "ingestion storage cannot be reached" in error
    assert "sig=" not in proc.stderr + proc.stdout
    assert dead_letter_files(tmp_path) == []
