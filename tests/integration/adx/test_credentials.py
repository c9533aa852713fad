"""The one credential factory: ADX_AUTH / AZURE_CLIENT_ID / IDENTITY_ENDPOINT give the same
credential to every client (ADX, blob dead letters, Kafka OAUTHBEARER, telemetry)."""

from __future__ import annotations

from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

from shared.credentials import credential_for, host_identity, make_credential
from shared.settings import Settings

CLIENT_ID = "11111111-2222-3333-4444-555555555555"
URI = "https://ingest-c.westeurope.kusto.windows.net"


def test_kinds() -> None:
    assert isinstance(make_credential("managed-identity"), ManagedIdentityCredential)
    assert isinstance(make_credential("managed-identity", CLIENT_ID), ManagedIdentityCredential)
    assert isinstance(make_credential("default"), DefaultAzureCredential)
    assert isinstance(make_credential(), DefaultAzureCredential)  # the Kafka commands' default
    assert make_credential("none") is None


def test_settings_follow_adx_auth_in_and_out_of_azure() -> None:
    in_azure = credential_for(Settings.from_env({"ADX_INGEST_URI": URI, "IDENTITY_ENDPOINT": "http://127.0.0.1:9/msi"}))
    assert isinstance(in_azure, ManagedIdentityCredential)
    assert isinstance(credential_for(Settings.from_env({"ADX_INGEST_URI": URI})), DefaultAzureCredential)
    assert credential_for(Settings.from_env({"ADX_INGEST_URI": URI, "ADX_AUTH": "none"})) is None


def test_host_identity_only_where_the_host_has_one() -> None:
    assert host_identity({}) is None
    assert host_identity({"AZURE_CLIENT_ID": ""}) is None
    assert isinstance(host_identity({"IDENTITY_ENDPOINT": "http://127.0.0.1:9/msi"}), ManagedIdentityCredential)
    assert isinstance(host_identity({"AZURE_CLIENT_ID": CLIENT_ID}), ManagedIdentityCredential)


def test_credential_follows_adx_auth() -> None:
    mi = credential_for(Settings.from_env({"ADX_INGEST_URI": URI, "ADX_AUTH": "managed-identity"}))
    assert isinstance(mi, ManagedIdentityCredential)
    default = credential_for(Settings.from_env({"ADX_INGEST_URI": URI, "ADX_AUTH": "default"}))
    assert isinstance(default, DefaultAzureCredential)
    assert credential_for(Settings.from_env({"ADX_INGEST_URI": URI, "ADX_AUTH": "none"})) is None
