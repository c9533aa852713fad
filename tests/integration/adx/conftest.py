"""Fixtures of the ADX tests: Azurite (session), and per test fault proxies in front of it, the
ADX stand-in, fast-retrying clients, the sink and a blob dead-letter store."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shared.deadletters.blob import BlobDeadLetterStore
from shared.settings import Settings
from shared.sinks.adx import AdxClients, AdxSink
from tests.fixtures.azurite import Azurite
from tests.support.adx import FAST, fast_throttle_retries, make_config
from tests.support.adx_standin import AdxStandIn, FaultProxy


@pytest.fixture
def blob_proxy(azurite: Azurite) -> Iterator[FaultProxy]:
    """Fault proxy in front of Azurite's blob service."""
    proxy = FaultProxy(azurite.blob_port)
    yield proxy
    proxy.close()


@pytest.fixture
def queue_proxy(azurite: Azurite) -> Iterator[FaultProxy]:
    """Fault proxy in front of Azurite's queue service."""
    proxy = FaultProxy(azurite.queue_port)
    yield proxy
    proxy.close()


@pytest.fixture
def standin(azurite: Azurite, storage_names: str, blob_proxy: FaultProxy, queue_proxy: FaultProxy) -> Iterator[AdxStandIn]:
    """The ADX stand-in, handing out SAS URIs through the fault proxies, with the tables and
    mappings of the tests' ingestion file created as `kafka-adx kql` creates them (preflight
    checks them before ingest, consume and replay)."""
    with AdxStandIn(azurite, storage_names, blob_endpoint=blob_proxy.endpoint, queue_endpoint=queue_proxy.endpoint) as st:
        st.apply_config(make_config())
        yield st


@pytest.fixture
def adx_settings(standin: AdxStandIn) -> Settings:
    """Settings pointing at the stand-in, no authentication (loopback)."""
    return Settings.from_env({"ADX_INGEST_URI": standin.url, "ADX_AUTH": "none"})


@pytest.fixture
def adx_clients(adx_settings: Settings) -> Iterator[AdxClients]:
    """Fresh clients for this test (the process-wide cache is for the app, not for tests)."""
    clients = AdxClients(adx_settings, FAST)
    fast_throttle_retries(clients)
    yield clients
    clients.close()


@pytest.fixture
def sink(adx_clients: AdxClients) -> AdxSink:
    """The ADX sink over the test's clients."""
    return AdxSink(adx_clients)


@pytest.fixture
def deadletter_url(azurite: Azurite, storage_names: str, blob_proxy: FaultProxy) -> str:
    """SAS URI (through the blob proxy) of this test's dead-letter container (created, as the
    infrastructure does)."""
    azurite.create_container(f"{storage_names}-deadletter")
    return azurite.container_sas_uri(f"{storage_names}-deadletter", endpoint=blob_proxy.endpoint)


@pytest.fixture
def dl_store(deadletter_url: str) -> Iterator[BlobDeadLetterStore]:
    """The blob dead-letter store, fast retries."""
    store = BlobDeadLetterStore.from_url(deadletter_url, retries=1, backoff=0.05, timeout=5)
    yield store
    store.close()
