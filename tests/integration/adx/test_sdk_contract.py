"""The azure-kusto internals shared/sinks/adx/sdk.py relies on still exist on the installed SDK.

Each name of ``sdk.INTERNALS`` is looked up on a real instance of its class (instance attributes
exist only once ``__init__`` ran; nothing here connects anywhere), so an SDK upgrade that drops
or renames one fails here, naming it and what it is for, instead of deep inside an ingestion.
"""

from __future__ import annotations

import importlib.metadata
import inspect
from typing import Any

import pytest
from azure.kusto.data import KustoClient, KustoConnectionStringBuilder
from azure.kusto.ingest import ManagedStreamingIngestClient, QueuedIngestClient
from azure.kusto.ingest.status import KustoIngestStatusQueues

from shared.sinks.adx import sdk

URI = "http://127.0.0.1:9"  # never contacted: building the clients makes no request

# Used by the tests only (tests/integration/adx/conftest.py shortens the SDK's waits between throttled tries).
TEST_INTERNALS = (("_ResourceManager", "_retryer", "tests/integration/adx/conftest.py: fast throttling retries"),)


def _kcsb() -> KustoConnectionStringBuilder:
    return KustoConnectionStringBuilder.with_no_authentication(URI)


@pytest.fixture(scope="module")
def instances() -> Any:
    queued = QueuedIngestClient(_kcsb())
    managed = ManagedStreamingIngestClient(_kcsb(), _kcsb())
    status = KustoIngestStatusQueues(queued)
    objects = {
        "KustoClient": KustoClient(_kcsb()),
        "QueuedIngestClient": queued,
        "_ResourceManager": queued._resource_manager,
        "ManagedStreamingIngestClient": managed,
        "KustoStreamingIngestClient": managed.streaming_client,
        "StatusQueue": status.failure,
    }
    yield objects
    managed.close()
    queued.close()


def _version() -> str:
    return ", ".join(f"{p} {importlib.metadata.version(p)}" for p in sdk.SDK_PACKAGES)


@pytest.mark.parametrize(("owner", "name", "why"), [*sdk.INTERNALS, *TEST_INTERNALS],
                         ids=[f"{o}.{n}" for o, n, _ in [*sdk.INTERNALS, *TEST_INTERNALS]])
def test_internal_name_exists(instances: dict[str, Any], owner: str, name: str, why: str) -> None:
    obj = instances[owner]
    assert type(obj).__name__ == owner, f"the contract names {owner}, the SDK built {type(obj).__name__}"
    assert hasattr(obj, name), (
        f"{_version()}: {owner}.{name} is gone, and kafka-adx relies on it in shared/sinks/adx/sdk.py "
        f"({why}). Adapt sdk.py to this SDK version, or install azure-kusto-*=={sdk.WRITTEN_FOR}.*"
    )


def test_upload_blob_override_keeps_the_sdk_signature() -> None:
    """The SDK calls ``self.upload_blob(...)`` positionally: our override must take the same
    parameters in the same order, or the queued client would fail (or bypass it)."""
    theirs = list(inspect.signature(QueuedIngestClient.upload_blob).parameters)
    ours = list(inspect.signature(sdk.GuardedQueuedIngestClient.upload_blob).parameters)
    assert ours == theirs, f"{_version()}: QueuedIngestClient.upload_blob{theirs}, sdk.py overrides it as {ours}"


def test_queued_ingestion_still_goes_through_the_replaced_steps() -> None:
    """The overrides only take effect if ``ingest_from_stream`` still calls them."""
    source = inspect.getsource(QueuedIngestClient.ingest_from_stream)
    for step in ("self.upload_blob(", "self.ingest_from_blob(", "self._MAX_RETRIES"):
        assert step in source, f"{_version()}: QueuedIngestClient.ingest_from_stream no longer uses {step}"


def test_set_retry_settings_takes_the_keywords_sdk_py_passes() -> None:
    parameters = inspect.signature(ManagedStreamingIngestClient._set_retry_settings).parameters
    for keyword in ("max_seconds_per_retry", "num_of_attempts"):
        assert keyword in parameters, f"{_version()}: _set_retry_settings has no {keyword!r}"


def test_bound_timeouts_shadow_the_sdk_defaults(instances: dict[str, Any]) -> None:
    """The capped timeouts are what the SDK reads: the class defaults, shadowed per instance."""
    client = KustoClient(_kcsb())
    sdk.bound_timeouts(client, 7)
    assert client._mgmt_default_timeout.total_seconds() == 7
    assert KustoClient._mgmt_default_timeout.total_seconds() == 3600  # the class keeps its default
    client.close()


def test_status_queues_replace_the_queue_factory(instances: dict[str, Any]) -> None:
    queues = sdk.status_queues(instances["QueuedIngestClient"])
    for status_queue in (queues.success, queues.failure):
        assert "_get_queues" in vars(status_queue), "status_queues did not replace StatusQueue._get_queues"


def test_version_check_names_the_version_it_was_written_for(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.metadata.version
    monkeypatch.setattr(importlib.metadata, "version",
                        lambda p: "7.1.0" if p == "azure-kusto-ingest" else real(p))
    with pytest.warns(RuntimeWarning, match=r"written for azure-kusto-ingest 6\.0\.x .* 7\.1\.0 is installed"):
        problems = sdk.check_version()
    assert len(problems) == 1


def test_installed_sdk_is_the_one_it_was_written_for() -> None:
    assert sdk.check_version() == [], sdk.check_version()
