"""Errors are sorted in one place: SDK exceptions built as the SDK builds them, and real failures
from the stand-in (throttling, 5xx, permanent errors, timeouts, 401)."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import pytest
import requests
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.identity import CredentialUnavailableError
from azure.kusto.data.exceptions import (
    KustoApiError,
    KustoAuthenticationError,
    KustoBlobError,
    KustoClosedError,
    KustoMultiApiError,
    KustoNetworkError,
    KustoServiceError,
    KustoThrottlingError,
)
from azure.kusto.ingest.exceptions import KustoMappingError, KustoQueueError

from shared.errors import TerminalError, TransientError, describe
from shared.sinks.adx import AdxSink
from shared.sinks.adx.errors import classify, describe_error
from tests.support.adx import batch_of, landed, records
from tests.support.adx_standin import AdxStandIn, FaultProxy


def _response(status: int) -> Any:
    return SimpleNamespace(status_code=status, reason="x", text="", headers={})


def _api_error(code: str, permanent: bool | None, status: int = 400) -> KustoApiError:
    error: dict[str, Any] = {"code": code, "message": code, "@message": code}
    if permanent is not None:
        error["@permanent"] = permanent
    return KustoApiError({"error": error}, http_response=_response(status))


def _http_error(status: int, cls: type[HttpResponseError] = HttpResponseError) -> HttpResponseError:
    exc = cls(message=f"HTTP {status}")
    exc.status_code = status
    return exc


def _queue_error(cause: BaseException) -> KustoQueueError:
    try:
        raise KustoQueueError() from cause
    except KustoQueueError as exc:
        return exc


CASES: list[tuple[str, BaseException, type]] = [
    ("throttled", KustoThrottlingError("throttled", _response(429)), TransientError),
    ("network", KustoNetworkError("http://x"), TransientError),
    ("service 503", KustoServiceError("busy", _response(503)), TransientError),
    ("service 500 no body", KustoServiceError("Server error response contains no data.", _response(500)), TransientError),
    ("service 401", KustoServiceError("401. Missing adequate access rights.", _response(401)), TerminalError),
    ("service 403", KustoServiceError("forbidden", _response(403)), TerminalError),
    ("service 404 endpoint", KustoServiceError("endpoint does not exist", _response(404)), TerminalError),
    ("api non-permanent", _api_error("Internal_ServiceError", False, 500), TransientError),
    ("api permanent", _api_error("BadRequest_SyntaxError", True), TerminalError),
    ("api missing table, not flagged", _api_error("BadRequest_EntityNotFound", False), TerminalError),
    ("api unknown permanence 503", _api_error("X", None, 503), TransientError),
    ("api unknown permanence 400", _api_error("X", None, 400), TerminalError),
    ("api 403", _api_error("Forbidden", False, 403), TerminalError),
    ("multi api permanent", KustoMultiApiError([{"OneApiErrors": [{"error": {"code": "a", "message": "m", "@message": "m", "@permanent": True}}]}]), TerminalError),
    ("multi api transient", KustoMultiApiError([{"OneApiErrors": [{"error": {"code": "a", "message": "m", "@message": "m", "@permanent": False}}]}]), TransientError),
    ("kusto auth", KustoAuthenticationError("ManagedIdentity", RuntimeError("no token")), TerminalError),
    ("azure auth", ClientAuthenticationError("denied"), TerminalError),
    ("credential unavailable", CredentialUnavailableError("no identity endpoint"), TerminalError),
    ("blob 503", KustoBlobError(_http_error(503)), TransientError),
    ("blob 403", KustoBlobError(_http_error(403)), TerminalError),
    ("blob connection", KustoBlobError(ServiceRequestError("refused")), TransientError),
    ("queue 503", _queue_error(_http_error(503)), TransientError),
    ("queue connection reset", _queue_error(ServiceResponseError("reset")), TransientError),
    ("queue 404", _queue_error(_http_error(404, ResourceNotFoundError)), TerminalError),
    ("storage 500", _http_error(500), TransientError),
    ("storage 408", _http_error(408), TransientError),
    ("requests timeout", requests.Timeout("read timed out"), TransientError),
    ("requests connection", requests.ConnectionError("refused"), TransientError),
    ("bad mapping args", KustoMappingError("wrong kind"), TerminalError),
    ("closed client", KustoClosedError(), TerminalError),
    ("plain timeout", TimeoutError(), TransientError),
]


@pytest.mark.parametrize(("exc", "expected"), [(c[1], c[2]) for c in CASES], ids=[c[0] for c in CASES])
def test_classify(exc: BaseException, expected: type) -> None:
    assert classify(exc) is expected


def test_describe_error_names_status_and_code_without_sas() -> None:
    exc = KustoBlobError(_http_error(503))
    text = describe_error(exc)
    assert "KustoBlobError" in text and "HTTP 503" in text
    api = describe_error(_api_error("BadRequest_EntityNotFound", True))
    assert "BadRequest_EntityNotFound" in api and "permanent=True" in api
    sas = HttpResponseError(message="PUT http://h/c/b?sig=SECRET failed")
    assert "SECRET" not in describe_error(sas)


def test_generic_describe_redacts_the_signature_and_keeps_the_rest_of_the_line() -> None:
    """The blob dead-letter store's error text: redacted, not cut at the first ``?``."""
    exc = HttpResponseError(message="PUT http://h/c/b?sv=2024-05-04&sig=SECRET failed\nsecond line")
    exc.status_code = 403
    text = describe(exc)
    assert text.startswith("HttpResponseError: HTTP 403: ")
    assert "SECRET" not in text and "sv=2024-05-04" in text and "failed" in text
    assert "second line" not in text


# -- over the wire ------------------------------------------------------------------------------


def test_management_throttling_is_retried_by_the_sdk_then_succeeds(sink: AdxSink, standin: AdxStandIn) -> None:
    standin.mgmt.throttle = 2
    sink.write(batch_of("events", records("events", [1])))
    assert standin.count("/v1/rest/mgmt", 429) == 2
    assert [item.ids for item in landed(standin)] == [[1]]


def test_management_throttling_that_persists_is_transient(sink: AdxSink, standin: AdxStandIn) -> None:
    standin.mgmt.throttle = 100
    with pytest.raises(TransientError, match="KustoThrottlingError"):
        sink.write(batch_of("events", records("events", [1])))
    assert standin.count("/v1/rest/mgmt", 429) == 4  # the SDK's own tries, then us
    assert landed(standin) == []


def test_management_5xx_is_transient(sink: AdxSink, standin: AdxStandIn) -> None:
    standin.mgmt.fail = 100
    with pytest.raises(TransientError, match="Internal_ServiceError"):
        sink.write(batch_of("events", records("events", [1])))


def test_permanent_error_is_terminal(sink: AdxSink, standin: AdxStandIn) -> None:
    standin.mgmt.permanent = True
    standin.mgmt.permanent_code = "General_BadRequest"
    with pytest.raises(TerminalError, match="General_BadRequest"):
        sink.write(batch_of("events", records("events", [1])))


def test_hanging_endpoint_times_out_as_transient(sink: AdxSink, standin: AdxStandIn) -> None:
    standin.mgmt.hang, standin.mgmt.hang_times = 6.0, 1
    started = time.monotonic()
    with pytest.raises(TransientError, match="KustoNetworkError"):
        sink.write(batch_of("events", records("events", [1])))
    assert time.monotonic() - started < 5  # request_timeout=2, not the SDK's 1 hour


def test_missing_token_is_terminal(sink: AdxSink, standin: AdxStandIn) -> None:
    standin.require_token = True  # the sink of this test sends no token (ADX_AUTH=none)
    with pytest.raises(TerminalError, match="401"):
        sink.write(batch_of("events", records("events", [1])))


def test_storage_down_for_both_containers_is_transient(
    sink: AdxSink, standin: AdxStandIn, blob_proxy: FaultProxy
) -> None:
    blob_proxy.fail("-tmp-", 503, method="PUT")
    with pytest.raises(TransientError, match="KustoBlobError: HTTP 503"):
        sink.write(batch_of("events", records("events", [1])))
    assert standin.queued_messages() == []


def test_queue_down_is_transient(sink: AdxSink, standin: AdxStandIn, queue_proxy: FaultProxy) -> None:
    queue_proxy.fail(standin.ready_queue, 503, method="POST")
    with pytest.raises(TransientError, match="KustoQueueError: HTTP 503"):
        sink.write(batch_of("events", records("events", [1])))
    assert len(queue_proxy.requests(standin.ready_queue, failed=True)) == 2  # first try + one retry


def test_queue_connection_dropped_is_transient(sink: AdxSink, standin: AdxStandIn, queue_proxy: FaultProxy) -> None:
    queue_proxy.fail(standin.ready_queue, 0, method="POST")
    with pytest.raises(TransientError, match="KustoQueueError"):
        sink.write(batch_of("events", records("events", [1])))
