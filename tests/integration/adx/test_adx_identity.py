"""The managed-identity path, offline: ``IDENTITY_ENDPOINT``/``IDENTITY_HEADER`` point at the
stand-in's ``/msi/token``, the real ManagedIdentityCredential fetches a token for the cluster and
the real SDK sends it with every management and streaming request."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shared.errors import TerminalError
from shared.settings import Settings
from shared.sinks.adx import AdxClients, AdxSink
from tests.support.adx import FAST, batch_of, landed, records
from tests.support.adx_standin import TOKEN, AdxStandIn

CLIENT_ID = "11111111-2222-3333-4444-555555555555"


@pytest.fixture
def mi_settings(standin: AdxStandIn, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("IDENTITY_ENDPOINT", standin.msi_endpoint)
    monkeypatch.setenv("IDENTITY_HEADER", "standin-identity-header")
    monkeypatch.delenv("MSI_ENDPOINT", raising=False)
    monkeypatch.delenv("MSI_SECRET", raising=False)
    standin.require_token = True
    # No ADX_AUTH: an environment with IDENTITY_ENDPOINT is Azure, so managed identity is chosen.
    import os

    settings = Settings.from_env({"ADX_INGEST_URI": standin.url, "AZURE_CLIENT_ID": CLIENT_ID,
                                  "IDENTITY_ENDPOINT": os.environ["IDENTITY_ENDPOINT"]})
    assert settings.adx_auth == "managed-identity"
    return settings


@pytest.fixture
def mi_clients(mi_settings: Settings) -> Iterator[AdxClients]:
    clients = AdxClients(mi_settings, FAST)
    yield clients
    clients.close()


def test_managed_identity_token_is_fetched_with_the_client_id_and_sent(
    mi_clients: AdxClients, standin: AdxStandIn
) -> None:
    sink = AdxSink(mi_clients)
    sink.write(batch_of("events", records("events", [1, 2])))
    sink.write(batch_of("live", records("live", [3])))

    assert [item.ids for item in landed(standin)] == [[1, 2], [3]]
    assert standin.token_requests, "the managed identity endpoint was never called"
    first = standin.token_requests[0]
    assert first["client_id"] == CLIENT_ID
    assert first["header"] == "standin-identity-header"
    assert first["api-version"] == "2019-08-01"
    assert first["resource"].startswith("https://")  # a Kusto resource, not our loopback URL
    calls = [s for s in standin.seen if s.path.startswith(("/v1/rest/mgmt", "/v1/rest/ingest/"))]
    assert calls and all(s.authorization == f"Bearer {TOKEN}" for s in calls)
    assert standin.count("/v1/rest/auth/metadata", 404) >= 1  # cloud discovery: "public cloud"


def test_identity_endpoint_refusing_is_terminal(mi_clients: AdxClients, standin: AdxStandIn) -> None:
    standin.token.permanent = True
    with pytest.raises(TerminalError):
        AdxSink(mi_clients).write(batch_of("events", records("events", [1])))
    assert landed(standin) == []
    assert not any(s.path.startswith("/v1/rest/mgmt") and s.status == 200 for s in standin.seen)
