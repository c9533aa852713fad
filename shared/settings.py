"""Settings from the environment: one contract for the function app, the CLI, infra and tests.

``SETTING_NAMES`` lists every setting the code reads, so that tests can compare it with
docs/settings.md (generated from it), the Bicep app settings and the local settings sample.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from shared.errors import ConfigError

AuthMode = Literal["managed-identity", "default", "none"]

SETTING_NAMES: dict[str, str] = {
    "INGESTION_CONFIG": "path of the ingestion file (tables, mappings, routes)",
    "ADX_INGEST_URI": "ADX data-ingestion URI; unset means local mode (DuckDB)",
    "ADX_ENGINE_URI": "ADX engine URI, for streaming ingestion; derived from the ingest URI",
    "ADX_AUTH": "managed-identity, default (DefaultAzureCredential) or none (loopback stand-ins only)",
    "AZURE_CLIENT_ID": "client id of the user-assigned managed identity",
    "DEADLETTER_BLOB_URI": "container URI for dead letters; unset means the local folder",
    "LOCAL_DB": "DuckDB file of local mode",
    "LOCAL_DEADLETTER_DIR": "dead-letter folder of local mode",
    "SCHEMA_REGISTRY_URL": "Confluent-compatible schema registry of the avro/jsonschema routes (comma-separated URLs)",
    "SCHEMA_REGISTRY_USERNAME": "schema registry basic-auth user (Confluent Cloud: the API key)",
    "SCHEMA_REGISTRY_PASSWORD": "schema registry basic-auth password (Confluent Cloud: the API secret); a Key Vault reference in Azure",
    "SCHEMA_REGISTRY_TIMEOUT": "seconds one schema registry request may take before it counts as a transient failure",
    "AZURE_SCHEMA_REGISTRY_NAMESPACE": "Event Hubs namespace (host name) whose Azure Schema Registry serves avro/binary+<id> records; signs in as ADX_AUTH",
}
"""Core settings read by :class:`Settings` (trigger settings are listed by the function app)."""


class Settings(BaseModel):
    """Settings of the pipeline, read once per process from the environment."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ingestion_config: Path = Path("ingestion.yaml")
    """INGESTION_CONFIG: path of the ingestion file."""
    adx_ingest_uri: str | None = Field(default=None, pattern=r"^https?://\S+$")
    """ADX_INGEST_URI: unset means local mode."""
    adx_engine_uri: str | None = Field(default=None, pattern=r"^https?://\S+$")
    """ADX_ENGINE_URI: engine URI for streaming ingestion; derived from the ingest URI."""
    adx_auth: AuthMode = "default"
    """ADX_AUTH: how to authenticate to ADX and to dead-letter storage."""
    azure_client_id: str | None = None
    """AZURE_CLIENT_ID: user-assigned managed identity client id (unset: system identity)."""
    deadletter_blob_uri: str | None = Field(default=None, pattern=r"^https?://\S+$")
    """DEADLETTER_BLOB_URI: dead-letter container URI; unset means the local folder."""
    local_db: Path = Path(".local/kafka-adx.duckdb")
    """LOCAL_DB: DuckDB file of local mode."""
    local_deadletter_dir: Path = Path(".local/deadletter")
    """LOCAL_DEADLETTER_DIR: dead-letter folder of local mode."""
    schema_registry_url: str | None = Field(default=None, pattern=r"^https?://\S+$")
    """SCHEMA_REGISTRY_URL: the Confluent-compatible registry (Confluent, Apicurio's
    ``/apis/ccompat/v7``, Redpanda, Karapace); unset means no avro/jsonschema route can decode a
    Confluent wire-format record (each such record is dead-lettered naming this setting)."""
    schema_registry_username: str | None = None
    """SCHEMA_REGISTRY_USERNAME: basic-auth user of the registry."""
    schema_registry_password: SecretStr | None = None
    """SCHEMA_REGISTRY_PASSWORD: basic-auth password of the registry (kept out of reprs and logs)."""
    schema_registry_timeout: float = Field(default=10.0, gt=0)
    """SCHEMA_REGISTRY_TIMEOUT: seconds per registry request; slower counts as unreachable."""
    azure_schema_registry_namespace: str | None = Field(default=None, pattern=r"^\S+$")
    """AZURE_SCHEMA_REGISTRY_NAMESPACE: fully qualified Event Hubs namespace of the Azure Schema
    Registry (``<name>.servicebus.windows.net``); the credential is ADX_AUTH's."""

    @property
    def local_mode(self) -> bool:
        """True when no ADX is configured: the sink is DuckDB."""
        return self.adx_ingest_uri is None

    @property
    def engine_uri(self) -> str | None:
        """The engine URI: explicit, or the ingest URI without its ``ingest-`` prefix."""
        if self.adx_engine_uri:
            return self.adx_engine_uri
        if self.adx_ingest_uri:
            return self.adx_ingest_uri.replace("://ingest-", "://", 1)
        return None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``env`` (default ``os.environ``); empty values count as unset."""
        env = os.environ if env is None else env

        def get(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        running_in_azure = get("WEBSITE_INSTANCE_ID") is not None or get("IDENTITY_ENDPOINT") is not None
        values: dict[str, object] = {
            "adx_auth": get("ADX_AUTH") or ("managed-identity" if running_in_azure else "default"),
        }
        for field, name in _FIELD_TO_SETTING.items():
            if field == "adx_auth":
                continue
            value = get(name)
            if value is not None:
                values[field] = value
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            problems = "; ".join(
                f"{_FIELD_TO_SETTING.get(str(e['loc'][0]), e['loc'][0])}: {e['msg']}" for e in exc.errors()
            )
            raise ConfigError(f"invalid settings in the environment: {problems}") from None


_FIELD_TO_SETTING = {
    "ingestion_config": "INGESTION_CONFIG",
    "adx_ingest_uri": "ADX_INGEST_URI",
    "adx_engine_uri": "ADX_ENGINE_URI",
    "adx_auth": "ADX_AUTH",
    "azure_client_id": "AZURE_CLIENT_ID",
    "deadletter_blob_uri": "DEADLETTER_BLOB_URI",
    "local_db": "LOCAL_DB",
    "local_deadletter_dir": "LOCAL_DEADLETTER_DIR",
    "schema_registry_url": "SCHEMA_REGISTRY_URL",
    "schema_registry_username": "SCHEMA_REGISTRY_USERNAME",
    "schema_registry_password": "SCHEMA_REGISTRY_PASSWORD",
    "schema_registry_timeout": "SCHEMA_REGISTRY_TIMEOUT",
    "azure_schema_registry_namespace": "AZURE_SCHEMA_REGISTRY_NAMESPACE",
}
