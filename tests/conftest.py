"""Shared fixtures. Service fixtures (Azurite, Kafka) live in tests/fixtures/ and start their
service once per session, on loopback, installing it with the project's own scripts."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.config import IngestionConfig, load_config

REPO = Path(__file__).resolve().parent.parent

pytest_plugins = ["tests.fixtures.kafka", "tests.fixtures.azurite"]


@pytest.fixture(scope="session")
def sample_config() -> IngestionConfig:
    """The sample ingestion file at the repo root."""
    return load_config(REPO / "ingestion.yaml")
