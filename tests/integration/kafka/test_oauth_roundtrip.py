"""Entra ID (SASL OAUTHBEARER) end to end: a broker really validates the token the product fetched.

The session broker has a SASL_PLAINTEXT listener whose OAUTHBEARER tokens Kafka's built-in
unsecured validator checks (``sub`` present, ``exp`` in the future, ``OAUTH_REQUIRED_SCOPE`` in
the ``scope`` claim). A loopback App Service managed-identity endpoint (``IDENTITY_ENDPOINT`` /
``IDENTITY_HEADER``, as Azure sets them) issues unsigned JWTs whose ``scope`` is the requested
resource. ``kafka-adx produce`` and ``kafka-adx consume`` run as real processes with
``--credential managed-identity``: azure-identity's ManagedIdentityCredential fetches the token,
the product's ``oauth_cb`` hands it to librdkafka, and the broker accepts or refuses it.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from shared.errors import KafkaAdxError
from tests.fixtures.kafka import OAUTH_REQUIRED_SCOPE
from tests.support.kafka_e2e import (
    ConsumerProcess,
    Workspace,
    committed,
    counts,
    db_rows,
    read_topic,
    run_cli,
)

pytestmark = pytest.mark.kafka

PARTITIONS = 2
IDENTITY_HEADER = "loopback-identity-header"
SCOPE = f"{OAUTH_REQUIRED_SCOPE}/.default"


def _b64url(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def unsecured_jwt(subject: str, scope: str, exp: int) -> str:
    """An unsigned JWT (``{"alg":"none"}``, empty signature), as Kafka's unsecured validator reads it."""
    now = int(time.time())
    return (
        f"{_b64url({'alg': 'none'})}.{_b64url({'sub': subject, 'iat': now - 5, 'exp': exp, 'scope': scope})}."
    )


@dataclass
class IdentityEndpoint:
    """What the loopback managed-identity endpoint issues, and the requests it served."""

    url: str
    token_lifetime: int = 3600
    """Seconds until the JWT's ``exp`` (negative: an already expired token)."""
    requests: list[dict[str, Any]] = field(default_factory=list)
    issued: list[str] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        # AZURE_CLIENT_ID empty: the system-assigned identity, whatever the outer environment says.
        return {"IDENTITY_ENDPOINT": self.url, "IDENTITY_HEADER": IDENTITY_HEADER, "AZURE_CLIENT_ID": ""}


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        endpoint: IdentityEndpoint = self.server.endpoint  # type: ignore[attr-defined]
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        endpoint.requests.append(
            {"path": url.path, "query": query, "header": self.headers.get("X-IDENTITY-HEADER")}
        )
        if url.path != "/msi/token" or self.headers.get("X-IDENTITY-HEADER") != IDENTITY_HEADER:
            self.send_error(401)
            return
        resource = query.get("resource", "")
        token = unsecured_jwt("kafka-adx-function", resource, int(time.time()) + endpoint.token_lifetime)
        endpoint.issued.append(token)
        # expires_on is what azure-identity and librdkafka believe; only the JWT's exp says "expired".
        body = json.dumps({"access_token": token, "expires_on": str(int(time.time()) + 3600),
                           "token_type": "Bearer", "resource": resource}).encode()  # fmt: skip
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def identity() -> Iterator[IdentityEndpoint]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    endpoint = IdentityEndpoint(url=f"http://127.0.0.1:{server.server_address[1]}/msi/token")
    server.endpoint = endpoint  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield endpoint
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def ws(tmp_path: Path, kafka_oauth_bootstrap: str) -> Workspace:
    return Workspace(tmp_path, kafka_oauth_bootstrap)


def _oauth_args(ws: Workspace) -> list[str]:
    return ["--brokers", ws.bootstrap, "--protocol", "SASL_PLAINTEXT", "--sasl-mechanism", "OAUTHBEARER",
            "--oauth-scope", SCOPE, "--credential", "managed-identity"]  # fmt: skip


def test_produce_and_consume_authenticate_with_a_managed_identity_token_and_land_exactly_once(
    ws: Workspace, identity: IdentityEndpoint, kafka_bootstrap: str, kafka_topic: Callable[..., str]
) -> None:
    topic = kafka_topic(partitions=PARTITIONS, prefix="e2e-oauth")
    total = 300
    out = run_cli(
        ["produce", "-t", topic, "--records", str(total), *_oauth_args(ws)], ws.env(**identity.env()), ws.root
    )
    assert out.returncode == 0, f"produce failed ({out.returncode}):\n{out.stdout}\n{out.stderr}"
    assert f"delivered {total} record(s)" in out.stdout
    assert "SASL_PLAINTEXT OAUTHBEARER" in out.stderr
    produced_tokens = len(identity.issued)
    assert produced_tokens >= 1, "produce never fetched a token"

    group = f"e2e-oauth-{uuid.uuid4().hex[:8]}"
    consumer = ConsumerProcess(ws, topic, group, "--idle-exit", "2", "--batch-wait", "0.5", *_oauth_args(ws),
                               env=identity.env())  # fmt: skip
    try:
        assert consumer.wait(timeout=30) == 0, consumer.output()
    finally:
        consumer.stop()
    assert len(identity.issued) > produced_tokens, "consume never fetched a token"

    # Ground truth over the PLAINTEXT listener of the same broker.
    sent = read_topic(kafka_bootstrap, topic, total)
    rows = db_rows(ws.db)
    assert counts(rows) == {key: 1 for key in sent}, "every record exactly once"
    assert {r.topic for r in rows} == {topic}
    ends: dict[int, int] = {}
    for partition, offset in sent:
        ends[partition] = max(ends.get(partition, 0), offset + 1)
    assert committed(kafka_bootstrap, group, topic, PARTITIONS) == {
        p: ends.get(p, 0) for p in range(PARTITIONS)
    }

    # azure-identity asked the managed-identity endpoint for the broker's scope, with its header.
    for request in identity.requests:
        assert request["path"] == "/msi/token" and request["header"] == IDENTITY_HEADER
        assert request["query"]["resource"] == OAUTH_REQUIRED_SCOPE
    output = consumer.output()
    assert "Entra ID managed-identity credential" in output
    assert all(token not in output + out.stdout + out.stderr for token in identity.issued), (
        "a token was logged"
    )


def test_an_expired_token_is_refused_by_the_broker_and_consume_exits_with_an_authentication_error(
    ws: Workspace, identity: IdentityEndpoint, kafka_topic: Callable[..., str]
) -> None:
    topic = kafka_topic(partitions=1, prefix="e2e-oauth-expired")
    identity.token_lifetime = -120  # exp two minutes ago; otherwise the same token as above
    group = f"e2e-oauth-{uuid.uuid4().hex[:8]}"
    started = time.monotonic()
    consumer = ConsumerProcess(ws, topic, group, "--auth-timeout", "2", *_oauth_args(ws), env=identity.env())
    try:
        code = consumer.wait(timeout=25)  # bounded: fails the test instead of hanging
    finally:
        consumer.stop()
    elapsed = time.monotonic() - started
    output = consumer.output()
    assert code == 2, output
    assert "refused authentication" in output and "invalid_token" in output, output
    assert elapsed < 20
    assert identity.issued, "the consumer never fetched a token"
    assert all(token not in output for token in identity.issued), "a token was logged"
    assert db_rows(ws.db) == []


def test_produce_with_an_expired_token_gives_up_after_the_auth_timeout(
    ws: Workspace, identity: IdentityEndpoint, kafka_topic: Callable[..., str]
) -> None:
    topic = kafka_topic(partitions=1, prefix="e2e-oauth-expired-produce")
    identity.token_lifetime = -120
    started = time.monotonic()
    out = run_cli(["produce", "-t", topic, "--records", "5", "--auth-timeout", "2", *_oauth_args(ws)],
                  ws.env(**identity.env()), ws.root)  # fmt: skip
    assert out.returncode == 1, out.stdout + out.stderr
    assert "refused authentication" in out.stderr and "invalid_token" in out.stderr, out.stderr
    assert time.monotonic() - started < 20  # not librdkafka's 300 s delivery timeout
    assert all(token not in out.stdout + out.stderr for token in identity.issued), "a token was logged"


def test_auth_guard_gives_up_only_on_refusals_that_keep_coming() -> None:
    from confluent_kafka import KafkaError

    from shared.kafka.connection import AuthFailureGuard, KafkaAuthError

    now = [0.0]
    guard = AuthFailureGuard(5.0, reset_after=30.0, clock=lambda: now[0])
    refused = KafkaError(KafkaError._AUTHENTICATION, "SASL authentication error: invalid_token")
    for t in (0.0, 4.0):  # refusals within the window
        now[0] = t
        guard(refused)
    now[0] = 100.0  # a refusal long after the last one starts a new window
    guard(refused)
    guard(KafkaError(KafkaError._ALL_BROKERS_DOWN, "1/1 brokers are down"))  # other errors only logged
    now[0] = 105.0
    with pytest.raises(KafkaAuthError, match="invalid_token"):
        guard(refused)
    assert guard.failures == 2
    with pytest.raises(KafkaAdxError, match="fatal"):
        guard(KafkaError(KafkaError._FATAL, "fenced", fatal=True))
