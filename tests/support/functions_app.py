"""The function app under test: load ``function_app.py`` under given app settings (as the
worker indexes it) and run it against the local sink in a temporary folder."""

from __future__ import annotations

import importlib.util
import itertools
from pathlib import Path
from typing import Any

import pytest

from shared.deadletters.local import LocalDeadLetterStore
from shared.functions import worker as functions_worker
from shared.functions.settings import FUNCTION_SETTINGS
from shared.pipeline.deadletter import DeadLetter

REPO = Path(__file__).resolve().parents[2]

#: Every setting the app or the pipeline reads; cleared before each test so that the machine's
#: environment cannot leak in.
ALL_SETTINGS = [
    *FUNCTION_SETTINGS,
    "EventHubConnection",
    "INGESTION_CONFIG", "ADX_INGEST_URI", "ADX_ENGINE_URI", "ADX_AUTH", "AZURE_CLIENT_ID",
    "DEADLETTER_BLOB_URI", "LOCAL_DB", "LOCAL_DEADLETTER_DIR",
]  # fmt: skip

EVENTHUB_ENV = {
    "EVENTHUB_NAME": "storm-events-json",
    "EventHubConnection__fullyQualifiedNamespace": "kafka-adx-test.servicebus.windows.net",
    "EventHubConnection__credential": "managedidentity",
}
KAFKA_ENV = {"KAFKA_BROKERS": "127.0.0.1:9092", "KAFKA_TOPIC": "storm-events-json"}

_counter = itertools.count()


def load_app(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> dict[str, Any]:
    """Import a fresh copy of function_app.py with ``env`` as app settings; return its
    functions by name (``app.get_functions()`` may run once per app object)."""
    for name in ALL_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    spec = importlib.util.spec_from_file_location(f"function_app_under_test_{next(_counter)}", REPO / "function_app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return {f.get_function_name(): f for f in module.app.get_functions()}


class LocalApp:
    """The function app in local mode: DuckDB and a dead-letter folder under ``tmp``."""

    def __init__(self, functions: dict[str, Any], tmp: Path) -> None:
        self.functions = functions
        self.db = tmp / "kafka-adx.duckdb"
        self.deadletter_dir = tmp / "deadletter"

    def call(self, name: str, events: list[Any], context: Any) -> Any:
        """Call a registered function the way the worker does."""
        return self.functions[name].get_user_function()(events=events, context=context)

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        """Query the local database (through the worker's own sink connection)."""
        sink = functions_worker.worker().pipeline.sink
        return sink.query(sql)  # type: ignore[attr-defined,no-any-return]

    def dead_letters(self) -> list[DeadLetter]:
        """Every dead letter written so far."""
        store = LocalDeadLetterStore(self.deadletter_dir)
        return [letter for set_id in store.sets() for letter in store.read(set_id)]


def blob_dead_letters(container_uri: str) -> list[DeadLetter]:
    """Every dead letter in a blob container (SAS URI), read back with a fresh store."""
    from shared.deadletters.blob import BlobDeadLetterStore

    store = BlobDeadLetterStore.from_url(container_uri, retries=1, backoff=0.05, timeout=5)
    try:
        return [letter for set_id in store.sets() for letter in store.read(set_id)]
    finally:
        store.close()
