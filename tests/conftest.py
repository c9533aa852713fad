"""Shared fixtures. Service fixtures (Azurite, Kafka) live in tests/fixtures/ and start their
service once per session, on loopback, installing it with the project's own scripts."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.config import IngestionConfig, load_config

REPO = Path(__file__).resolve().parent.parent

pytest_plugins = ["tests.fixtures.kafka", "tests.fixtures.azurite", "tests.fixtures.registry", "tests.fixtures.apicurio"]


@pytest.fixture(scope="session")
def sample_config() -> IngestionConfig:
    """The sample ingestion file at the repo root."""
    return load_config(REPO / "ingestion.yaml")


# Markers follow the fixtures a test really uses (a conftest's ``pytestmark`` would have no
# effect): ``-m "not kafka and not azurite"`` selects exactly the tests that need no service.
_SERVICE_FIXTURES = {
    "kafka": {"kafka_bootstrap", "kafka_oauth_bootstrap", "kafka_admin", "kafka_topic", "apicurio_registry"},
    "azurite": {"azurite", "storage_names"},
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test by the services its fixtures start, and keep tests/unit service-free."""
    misplaced = []
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        for marker, fixtures in _SERVICE_FIXTURES.items():
            if used & fixtures:
                item.add_marker(marker)
        parts = Path(str(item.path)).relative_to(REPO).parts
        if parts[:2] == ("tests", "integration"):
            item.add_marker("integration")
        elif parts[:2] == ("tests", "unit") and any(item.get_closest_marker(name) for name in _SERVICE_FIXTURES):
            misplaced.append(item.nodeid)
    if misplaced:
        raise pytest.UsageError(f"tests/unit must not start services; move these to tests/integration: {misplaced}")
