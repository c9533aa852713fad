"""ADX errors: azure-kusto / azure-storage / azure-identity exceptions sorted into transient or
terminal (:func:`classify`, the one table, pinned by tests/integration/adx/test_adx_errors.py) and described
in one line (:func:`describe_error`, no SAS).

The sink calls :func:`classify` directly and raises :class:`TransientError` /
:class:`TerminalError` with the SDK error chained, so the pipeline only ever sees this package's
two classes from it. Only the SDK's public exception classes are used here.
"""

from __future__ import annotations

import requests
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.kusto.data.exceptions import (
    KustoApiError,
    KustoAuthenticationError,
    KustoBlobError,
    KustoClientError,
    KustoMultiApiError,
    KustoNetworkError,
    KustoServiceError,
    KustoThrottlingError,
)
from azure.kusto.ingest.exceptions import KustoQueueError

from shared import errors
from shared.errors import SinkError, TerminalError, TransientError

# ADX error codes meaning "the database/table/mapping does not exist": retrying cannot help.
_MISSING_ENTITY_CODES = ("EntityNotFound", "TableNotFound", "DatabaseNotFound", "MappingNotFound")


def status_of(exc: BaseException) -> int | None:
    """The HTTP status of an SDK error: azure-core's ``status_code``, or the status of the
    ``http_response`` a Kusto error carries; None when there was no answer."""
    if isinstance(exc, HttpResponseError):
        return exc.status_code
    response = getattr(exc, "http_response", None)
    status = getattr(response, "status_code", None) or getattr(response, "status", None)
    return status if isinstance(status, int) else None


def _by_status(status: int | None) -> type[SinkError]:
    if status is None or status in (408, 429) or status >= 500:
        return TransientError
    return TerminalError


def classify(exc: BaseException) -> type[SinkError]:
    """Sort an exception from the ADX clients into transient or terminal.

    Transient: throttling, network errors, timeouts, 408/429/5xx, non-permanent ADX errors.
    Terminal: permanent ADX errors, authentication and authorization failures (401/403),
    missing databases, tables or mappings, client-side errors (bad mapping arguments).
    Anything else (this package's own errors included) follows :func:`shared.errors.classify`.
    """
    if isinstance(exc, KustoThrottlingError):
        return TransientError
    if isinstance(exc, (KustoAuthenticationError, ClientAuthenticationError)):
        return TerminalError
    if isinstance(exc, KustoApiError):
        error = exc.get_api_error()
        status = status_of(exc)
        if any(code in (error.code or "") for code in _MISSING_ENTITY_CODES) or status in (401, 403):
            return TerminalError
        if error.permanent is None:
            return _by_status(status)
        return TerminalError if error.permanent else TransientError
    if isinstance(exc, KustoMultiApiError):
        api_errors = exc.get_api_errors()
        return TerminalError if api_errors and all(e.permanent for e in api_errors) else TransientError
    if isinstance(exc, KustoNetworkError):
        return TransientError
    if isinstance(exc, KustoServiceError):
        return _by_status(status_of(exc))
    if isinstance(exc, KustoBlobError):
        return classify(exc.inner)
    if isinstance(exc, KustoQueueError):
        return classify(exc.__cause__) if exc.__cause__ is not None else TransientError
    if isinstance(exc, KustoClientError):
        return TerminalError
    if isinstance(exc, (ServiceRequestError, ServiceResponseError)):
        return TransientError
    if isinstance(exc, HttpResponseError):
        return _by_status(exc.status_code)
    if isinstance(exc, AzureError):
        return TransientError
    if isinstance(exc, (requests.ConnectionError, requests.Timeout)):
        return TransientError
    return errors.classify(exc)


def describe_error(exc: BaseException) -> str:
    """One line about an SDK error: type, HTTP status and ADX error code when known, the inner
    storage error of a blob or queue failure, and its first line of text (redacted)."""
    parts = [type(exc).__name__]
    inner = exc.inner if isinstance(exc, KustoBlobError) else exc.__cause__ if isinstance(exc, KustoQueueError) else None
    target = inner or exc
    status = status_of(target)
    if status is not None:
        parts.append(f"HTTP {status}")
    if isinstance(target, KustoApiError):
        error = target.get_api_error()
        parts.append(f"{error.code} (permanent={error.permanent})")
    elif getattr(target, "error_code", None):
        parts.append(str(getattr(target, "error_code", "")))
    if inner is not None:
        parts.append(f"from {type(inner).__name__}")
    text = errors.error_line(target)
    if text:
        parts.append(text)
    return ": ".join(parts)
