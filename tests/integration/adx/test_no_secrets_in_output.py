"""No credential in anything a ``kafka-adx`` command prints, at ``-vv``.

Every command (doctor too) runs as a real process against real parts: Azurite, the ADX stand-in (which hands
the SDK SAS URIs of its temp containers and queues, as ``.get ingestion resources`` does), a
dead-letter container whose ``DEADLETTER_BLOB_URI`` carries a SAS signed with Azurite's
development key, and the Kafka broker for ``produce`` and ``consume``. ``-vv`` turns on the
HTTP clients' debug lines (azure-core's logging policy, urllib3's request lines), which is where
the signatures used to show. Then all of standard output and standard error is searched for
every signature the test knows (the dead-letter SAS and each SAS the stand-in handed out) in
every encoding, for the account key, and for any ``sig=`` that is not ``sig=REDACTED``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlsplit

import pytest
import yaml

from shared.config import parse_config
from tests.fixtures.azurite import DEV_ACCOUNT_KEY, Azurite
from tests.support.adx import DATABASE, config_data
from tests.support.adx_standin import AdxStandIn, FaultProxy

pytestmark = [pytest.mark.azurite, pytest.mark.kafka]

REPO = Path(__file__).resolve().parents[3]
CLI = [sys.executable, "-m", "shared.cli.app", "-vv"]
_UNREDACTED_SIG = re.compile(r"sig(?:=|%3D)(?!REDACTED)", re.IGNORECASE)


def _signature(uri: str) -> str:
    return parse_qs(urlsplit(uri).query)["sig"][0]


def _redacted(uri: str) -> str:
    """The URI as the CLI shows it: the signature replaced, the rest kept."""
    return re.sub(r"sig=[^&]+", "sig=REDACTED", uri)


@pytest.fixture
def handed_out(standin: AdxStandIn, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The signature of every SAS URI the stand-in hands the SDK (it signs them per request)."""
    signatures: list[str] = []
    original = standin.resources

    def recording() -> list[list[str]]:
        rows = original()
        signatures.extend(_signature(uri) for _, uri in rows if "sig=" in uri)
        return rows

    monkeypatch.setattr(standin, "resources", recording)
    return signatures


@pytest.fixture
def sas_deadletter(azurite: Azurite, storage_names: str, blob_proxy: FaultProxy) -> Iterator[tuple[str, str]]:
    """(DEADLETTER_BLOB_URI with a container SAS signed with the dev key, its signature)."""
    from azure.storage.blob import ContainerSasPermissions, generate_container_sas

    container = f"{storage_names}-deadletter"
    azurite.create_container(container)
    sas = generate_container_sas(
        azurite.account, container, account_key=DEV_ACCOUNT_KEY,
        permission=ContainerSasPermissions(read=True, add=True, create=True, write=True, delete=True, list=True),
        expiry=datetime.now(UTC) + timedelta(hours=2),
    )  # fmt: skip
    yield f"{blob_proxy.endpoint}/{container}?{sas}", parse_qs(sas)["sig"][0]


class Runs:
    """Runs commands in the workspace and keeps everything they printed."""

    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.root = root
        self.env = env
        self.output: list[tuple[str, str]] = []

    def __call__(self, *args: str, expect: int) -> str:
        done = subprocess.run([*CLI, *args], env=self.env, cwd=self.root, capture_output=True, text=True,
                              timeout=180, stdin=subprocess.DEVNULL)  # fmt: skip
        text = done.stdout + done.stderr
        self.output.append((args[0], text))
        assert done.returncode == expect, f"{args[0]} exited {done.returncode}, not {expect}:\n{text[-4000:]}"
        return text


def _assert_no_secret(command: str, text: str, secrets: list[str]) -> None:
    for secret in secrets:
        for form in {secret, unquote(secret), quote(secret, safe=""), quote(unquote(secret), safe="")}:
            assert form not in text, f"{command} printed a SAS signature ({form[:6]}...)"
    assert DEV_ACCOUNT_KEY not in text, f"{command} printed the account key"
    match = _UNREDACTED_SIG.search(text)
    assert match is None, f"{command} printed a signature: ...{text[max(0, match.start() - 200):match.end() + 40]}"


def test_no_command_prints_a_signature_at_debug_level(
    tmp_path: Path,
    standin: AdxStandIn,
    handed_out: list[str],
    sas_deadletter: tuple[str, str],
    kafka_bootstrap: str,
    kafka_topic: Callable[..., str],
) -> None:
    deadletter_uri, deadletter_sig = sas_deadletter
    topic = kafka_topic(partitions=1, prefix="secrets")
    data = config_data()
    data["routes"].append({"topic": topic, "table": "Events", "format": "json", "mapping": "EventsMap"})
    config = tmp_path / "ingestion.yaml"
    config.write_text(yaml.safe_dump(data))
    standin.apply_config(parse_config(data, str(config)))  # the tables exist: preflight passes
    events = tmp_path / "events.jsonl"
    events.write_text("".join(json.dumps({"id": i, "kind": "k"}) + "\n" for i in range(20)) + "{poison\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ADX_", "DEADLETTER_", "LOCAL_", "INGESTION_", "KAFKA_"))}
    env.update({
        "ADX_INGEST_URI": standin.url, "ADX_AUTH": "none", "DEADLETTER_BLOB_URI": deadletter_uri,
        "INGESTION_CONFIG": str(config), "LOCAL_DB": str(tmp_path / "db.duckdb"),
        "LOCAL_DEADLETTER_DIR": str(tmp_path / "local-dl"), "KAFKA_BROKERS": kafka_bootstrap,
    })  # fmt: skip
    run = Runs(tmp_path, env)

    run("validate", expect=0)
    run("kql", expect=0)
    run("doctor", expect=0)
    run("preview", "-t", "events", str(events), expect=0)
    run("demo", "--records", "200", "--dir", str(tmp_path / "demo"), "--config", str(REPO / "ingestion.yaml"), expect=0)

    ingested = run("ingest", "-t", "events", str(events), expect=1)
    # The summary names the dead-letter container, without its signature.
    assert f"  dead letters: {_redacted(deadletter_uri)}\n" in ingested
    assert "urllib3.connectionpool" in ingested, "-vv shows the HTTP clients' request lines"

    run("produce", "-t", topic, "--file", str(events), expect=0)
    consumed = run("consume", "-t", topic, "-g", f"secrets-{uuid.uuid4().hex[:8]}", "--idle-exit", "2",
                   "--log-level", "DEBUG", expect=0)  # fmt: skip
    assert "21 received, 20 ingested, 1 dead-lettered" in consumed
    assert f"  dead letters: {_redacted(deadletter_uri)}\n" in consumed

    # ADX reports a failed blob by its SAS URI, as the data manager does: status must not echo it.
    temp = next(uri for kind, uri in standin.resources() if kind == "TempStorage")
    standin.post_failure({
        "OperationId": "op-1", "Database": DATABASE, "Table": "Events", "IngestionSourceId": str(uuid.uuid4()),
        "IngestionSourcePath": temp.replace("?", "/batch.json.gz?", 1), "FailedOn": "2024-05-01T12:00:00Z",
        "Details": f"could not read {temp}", "ErrorCode": "BadRequest", "FailureStatus": "Permanent",
        "ShouldRetry": False,
    })  # fmt: skip
    shown = run("status", expect=1)
    assert "ADX ingestion failure reports (1)" in shown and f"could not read {_redacted(temp)}" in shown
    replayed = run("replay", expect=1)  # the poison records fail again
    assert "dead-lettered again" in replayed

    assert handed_out, "the SDK asked the stand-in for its ingestion resources"
    assert {name for name, _ in run.output} == {
        "validate", "kql", "doctor", "preview", "demo", "ingest", "produce", "consume", "status", "replay",
    }
    for command, text in run.output:
        _assert_no_secret(command, text, [deadletter_sig, *handed_out])
