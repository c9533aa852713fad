"""What the real runtime library reports when it indexes the deployed ``function_app.py`` on
Python 3.13 under given app settings: the worker init response, the function metadata (bindings
and retry options the host registers the triggers with), and what a bad setting does."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.support.functions_app import EVENTHUB_ENV, KAFKA_ENV
from tests.support.runtime_host import RuntimeHost, deployment_package, protos, success


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The deployment package, as .funcignore leaves it."""
    return deployment_package(tmp_path_factory.mktemp("wwwroot"))


@pytest.fixture
def index(package: Path, tmp_path: Path) -> Iterator[Callable[[dict[str, str]], tuple[RuntimeHost, Any, Any]]]:
    """A factory: a worker started with the given app settings; its init and metadata responses."""
    hosts: list[RuntimeHost] = []

    def make(settings: dict[str, str]) -> tuple[RuntimeHost, Any, Any]:
        host = RuntimeHost(package, settings, tmp_path / f"worker-{len(hosts)}.log")
        hosts.append(host)
        return host, host.init(), host.metadata()

    yield make
    for host in hosts:
        host.close()


def bindings(function: Any) -> dict[str, Any]:
    (raw,) = function.raw_bindings
    return json.loads(raw)  # type: ignore[no-any-return]


def test_the_app_indexes_on_python_3_13_with_the_pinned_runtime(package: Path, index: Any) -> None:
    _host, init, metadata = index({**EVENTHUB_ENV, **KAFKA_ENV})

    assert success(init), init.result.exception.message
    assert init.worker_metadata.runtime_version == "3.13"
    # TypedDataCollection: the host sends string/bytes/long arrays as collections. Without
    # IncludeEmptyEntriesInMessagePayload it leaves empty strings out of them (not index-aligned).
    assert init.capabilities["TypedDataCollection"] == "true"
    assert "IncludeEmptyEntriesInMessagePayload" not in init.capabilities
    assert success(metadata) and not metadata.use_default_metadata_indexing
    functions = {f.name: f for f in metadata.function_metadata_results}
    assert sorted(functions) == ["eventhub_ingest", "kafka_ingest"]
    assert bindings(functions["eventhub_ingest"]) == {
        "direction": "IN", "dataType": "BINARY", "type": "eventHubTrigger", "name": "events",
        "connection": "EventHubConnection", "eventHubName": "%EVENTHUB_NAME%", "cardinality": "MANY",
        "consumerGroup": "$Default",
    }  # fmt: skip
    kafka = bindings(functions["kafka_ingest"])
    assert (kafka["type"], kafka["cardinality"], kafka["dataType"], kafka["keyDataType"]) == (
        "kafkaTrigger", "MANY", "BINARY", "BINARY")  # fmt: skip
    assert (kafka["topic"], kafka["brokerList"], kafka["consumerGroup"]) == ("%KAFKA_TOPIC%", "%KAFKA_BROKERS%", "kafka-adx")
    for function in functions.values():
        assert function.script_file == "function_app.py" and function.properties["worker_indexed"] == "True"
        retry = function.retry_options
        assert retry.retry_strategy == protos.RpcRetryOptions.exponential_backoff
        assert retry.max_retry_count == 5
        assert retry.minimum_interval.ToTimedelta() == timedelta(seconds=10)
        assert retry.maximum_interval.ToTimedelta() == timedelta(minutes=5)
        assert function.bindings["events"].direction == protos.BindingInfo.Direction.Value("in")


def test_one_function_per_topic_and_the_retry_settings_reach_the_host(index: Any) -> None:
    _host, init, metadata = index({**KAFKA_ENV, "KAFKA_TOPIC": "a,b", "RETRY_MAX_COUNT": "-1",
                                   "RETRY_MIN_INTERVAL": "00:00:02", "RETRY_MAX_INTERVAL": "00:01:00"})  # fmt: skip
    assert success(init)
    functions = {f.name: f for f in metadata.function_metadata_results}
    assert sorted(functions) == ["kafka_ingest_a", "kafka_ingest_b"]
    assert [bindings(functions[name])["topic"] for name in sorted(functions)] == ["a", "b"]
    retry = functions["kafka_ingest_a"].retry_options
    assert (retry.max_retry_count, retry.minimum_interval.seconds, retry.maximum_interval.seconds) == (-1, 2, 60)


def test_a_broken_kafka_setting_leaves_the_event_hubs_trigger_running(index: Any) -> None:
    """An empty KAFKA_USERNAME with SASL: the Kafka trigger stays unregistered with a clear
    error in the worker's logs; the Event Hubs trigger indexes and loads."""
    host, init, metadata = index({**EVENTHUB_ENV, **KAFKA_ENV, "KAFKA_SASL_MECHANISM": "PLAIN",
                                  "KAFKA_USERNAME": "", "KAFKA_PASSWORD": "secret-value"})  # fmt: skip

    assert success(init), init.result.exception.message
    assert [f.name for f in metadata.function_metadata_results] == ["eventhub_ingest"]
    errors = [log for log in host.logs if log.level == protos.RpcLog.Error]
    assert len(errors) == 1 and errors[0].category == "kafka_adx.functions"
    assert "KAFKA_BROKERS is not registered" in errors[0].message
    assert "KAFKA_USERNAME: required with KAFKA_SASL_MECHANISM" in errors[0].message
    assert "secret-value" not in errors[0].message
    loaded = host.load(metadata.function_metadata_results[0])
    assert success(loaded)


def test_a_broken_event_hubs_setting_leaves_the_kafka_trigger_running(index: Any) -> None:
    host, init, metadata = index({"EVENTHUB_NAME": "hub", **KAFKA_ENV})
    assert success(init)
    assert [f.name for f in metadata.function_metadata_results] == ["kafka_ingest"]
    assert any("EventHubConnection__fullyQualifiedNamespace: required" in log.message for log in host.logs)


def test_a_bad_shared_setting_fails_indexing_and_the_init_response_says_which(index: Any) -> None:
    """RETRY_* apply to every trigger: indexing fails, and the host gets the error in the
    WorkerInitResponse (it then reports the app as having no functions)."""
    _host, init, metadata = index({**EVENTHUB_ENV, "RETRY_MAX_COUNT": "many"})

    assert init.result.status == protos.StatusResult.Failure
    assert "invalid function app settings" in init.result.exception.message
    assert "RETRY_MAX_COUNT: 'many' is not a whole number >= -1" in init.result.exception.message
    assert list(metadata.function_metadata_results) == []


def test_without_trigger_settings_the_app_indexes_no_function(index: Any) -> None:
    _host, init, metadata = index({})
    assert success(init) and list(metadata.function_metadata_results) == []
