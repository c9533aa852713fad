"""Fixtures of the function app tests (the app itself is loaded by :mod:`tests.support.functions_app`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from shared.functions import worker as functions_worker
from tests.support.functions_app import REPO, LocalApp, load_app


@pytest.fixture
def local_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[dict[str, str]], LocalApp]]:
    """A factory: the app indexed with the given trigger settings, wired to a local sink."""
    functions_worker.reset()

    def make(env: dict[str, str]) -> LocalApp:
        functions = load_app(
            monkeypatch,
            {
                **env,
                "INGESTION_CONFIG": str(REPO / "ingestion.yaml"),
                "LOCAL_DB": str(tmp_path / "kafka-adx.duckdb"),
                "LOCAL_DEADLETTER_DIR": str(tmp_path / "deadletter"),
            },
        )
        return LocalApp(functions, tmp_path)

    yield make
    functions_worker.reset()
