"""Settings from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.errors import ConfigError
from shared.settings import Settings


def test_defaults_are_local_mode() -> None:
    settings = Settings.from_env({})
    assert settings.local_mode
    assert settings.ingestion_config == Path("ingestion.yaml")
    assert settings.adx_auth == "default"


def test_in_azure_defaults_to_managed_identity() -> None:
    settings = Settings.from_env({"WEBSITE_INSTANCE_ID": "abc", "ADX_INGEST_URI": "https://ingest-c.westeurope.kusto.windows.net"})
    assert settings.adx_auth == "managed-identity"
    assert not settings.local_mode
    assert settings.engine_uri == "https://c.westeurope.kusto.windows.net"


def test_empty_values_count_as_unset() -> None:
    assert Settings.from_env({"ADX_INGEST_URI": "  "}).local_mode


def test_invalid_setting_is_named() -> None:
    with pytest.raises(ConfigError, match="ADX_AUTH"):
        Settings.from_env({"ADX_AUTH": "password"})
