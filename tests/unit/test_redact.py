"""shared.redact: what is removed from text, what stays, and the logging filter that applies it
to every record (message, arguments, traceback) before any handler formats it."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from urllib.parse import quote

import pytest

from shared.redact import (
    REDACTED,
    RedactingFilter,
    install_log_redaction,
    redact,
    register_secret,
    register_uri_secrets,
)

SAS = "se=2026-12-02T01%3A49%3A07Z&sp=racwdl&sv=2025-07-05&sr=c&sig=b%2BY%2B4zCabcDEF123%3D"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # A SAS keeps what it says about itself (version, expiry, permissions), never its signature.
        (f"https://acct.blob.core.windows.net/dl?{SAS}",
         "https://acct.blob.core.windows.net/dl?se=2026-12-02T01%3A49%3A07Z&sp=racwdl&sv=2025-07-05&sr=c&sig=REDACTED"),
        ('"PUT /c/b.gz?sv=1&sig=XYZ%2F123 HTTP/1.1" 201', '"PUT /c/b.gz?sv=1&sig=REDACTED HTTP/1.1" 201'),
        ("?skoid=oid-1&sktid=tenant-2&skt=2024&sig=s", "?skoid=REDACTED&sktid=REDACTED&skt=2024&sig=REDACTED"),
        ("https://app.azurewebsites.net/api/f?code=abc123&x=1", "https://app.azurewebsites.net/api/f?code=REDACTED&x=1"),
        ("https://login/x?access_token=eyAbc&token=t1", "https://login/x?access_token=REDACTED&token=REDACTED"),
        # A URI nested, percent-encoded, in another one.
        ("u=https%3A%2F%2Fa%2Fc%3Fsv%3D1%26sig%3Dabc%252B%26se%3D2", "u=https%3A%2F%2Fa%2Fc%3Fsv%3D1%26sig%3DREDACTED%26se%3D2"),
        # Connection strings.
        ("DefaultEndpointsProtocol=https;AccountName=a;AccountKey=Eby8+/k==;EndpointSuffix=x",
         "DefaultEndpointsProtocol=https;AccountName=a;AccountKey=REDACTED;EndpointSuffix=x"),
        ("Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=Root;SharedAccessKey=k3y+/=",
         "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=Root;SharedAccessKey=REDACTED"),
        ("BlobEndpoint=https://a/;SharedAccessSignature=sv=2020&sig=abc", "BlobEndpoint=https://a/;SharedAccessSignature=REDACTED&sig=REDACTED"),
        ("Data Source=https://c;Application Client Id=1;Application Key=s3cr3t;Authority Id=t",
         "Data Source=https://c;Application Client Id=1;Application Key=REDACTED;Authority Id=t"),
        ("KAFKA_PASSWORD=hunter2 sasl.password=pw2", "KAFKA_PASSWORD=REDACTED sasl.password=REDACTED"),
        # Dumps of dicts and JSON, Authorization headers, tokens.
        ("{'sig': 'abc', 'password': 'pw', 'user': 'me'}", "{'sig': 'REDACTED', 'password': 'REDACTED', 'user': 'me'}"),
        ('{"AccountKey": "k==", "name": "n"}', '{"AccountKey": "REDACTED", "name": "n"}'),
        ("'Authorization': 'Bearer abcdefghijkl.mnop'", "'Authorization': 'REDACTED'"),
        ("Authorization: Basic dXNlcjpwYXNzd29yZA==", "Authorization: Basic REDACTED"),
        ("token eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJl here", "token REDACTED here"),
    ],
)  # fmt: skip
def test_redact_removes_credentials(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "storm-events: 1,002 received, 1,000 ingested, 2 dead-lettered",
        'KafkaError{code=_TRANSPORT,val=-195,str="Connection refused"}',  # error codes stay readable
        "exit code=2 error_code=5 retry=no source=60387292-cbac",
        "https://ingest-c.westeurope.kusto.windows.net/v1/rest/mgmt",
        "/tmp/in.jsonl:2 (storm-events[0]@2): has 3 fields, expected 22",
        "nopassword=1 designation=x",
    ],
)
def test_redact_leaves_ordinary_text_alone(text: str) -> None:
    assert redact(text) == text


def test_registered_secrets_are_redacted_in_every_encoding() -> None:
    register_secret("Zm9vYmFy+/secret==")
    for form in ("Zm9vYmFy+/secret==", quote("Zm9vYmFy+/secret==", safe="")):
        assert redact(f"odd place: {form}!") == f"odd place: {REDACTED}!"
    register_uri_secrets("https://a/c?sv=1&sig=QUJDREVGR0hJSktM%2B%3D")
    assert "QUJDREVGR0hJSktM" not in redact("decoded somewhere: QUJDREVGR0hJSktM+=")
    register_secret("short")  # too short to be a key: ordinary words must survive
    assert redact("a short text") == "a short text"


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger = logging.getLogger("test.redaction")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    install_log_redaction(logger)
    yield logger, stream
    logger.handlers.clear()


def test_the_filter_redacts_messages_arguments_and_tracebacks(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = captured
    logger.debug('%s "%s %s HTTP/1.1" %d', "http://127.0.0.1:1", "PUT", f"/c/b?{SAS}", 201)
    try:
        raise RuntimeError(f"upload to https://a/c?{SAS} failed")
    except RuntimeError:
        logger.exception("write failed for AccountKey=abc==;")
    text = stream.getvalue()
    assert "b%2BY%2B4zCabcDEF123" not in text and "abc==" not in text
    assert '"PUT /c/b?se=2026-12-02T01%3A49%3A07Z&sp=racwdl&sv=2025-07-05&sr=c&sig=REDACTED HTTP/1.1" 201' in text
    assert "RuntimeError: upload to https://a/c?" in text and "Traceback" in text  # the traceback stays, redacted
    assert "AccountKey=REDACTED" in text


def test_install_is_idempotent_and_covers_the_last_resort_handler() -> None:
    logger = logging.getLogger("test.redaction.install")
    handler = logging.StreamHandler(io.StringIO())
    logger.addHandler(handler)
    try:
        first = install_log_redaction(logger)
        second = install_log_redaction(logger)
        assert first is second and handler.filters.count(first) == 1
        assert logging.lastResort is not None and first in logging.lastResort.filters
        assert isinstance(first, RedactingFilter)
    finally:
        logger.removeHandler(handler)


def test_the_package_errors_redact_their_text_at_the_source() -> None:
    from shared.errors import RecordError, TransientError

    url = "https://acct.blob.core.windows.net/c/b?sv=2023-11-03&sig=AbCdEfGhIjKlMnOp%3D"
    assert "AbCdEfGhIjKlMnOp" not in str(TransientError(f"upload to {url} failed"))
    error = RecordError(f"cannot fetch {url}", stage="decode")
    assert "AbCdEfGhIjKlMnOp" not in error.reason and "AbCdEfGhIjKlMnOp" not in str(error)
