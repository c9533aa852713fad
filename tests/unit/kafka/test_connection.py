"""Kafka client settings: PLAINTEXT, SASL PLAIN (Event Hubs connection string), OAUTHBEARER with a
real azure-identity credential fetching its token from a managed-identity endpoint on loopback,
handed to a real librdkafka client."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from click.testing import CliRunner
from confluent_kafka import Producer

from shared.credentials import make_credential
from shared.errors import ConfigError
from shared.kafka.connection import (
    CONNECTION_STRING_USER,
    EntraTokenProvider,
    KafkaConnection,
    normalize_mechanism,
    normalize_protocol,
)

SECRET = "Endpoint=sb://ns1.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=c2VjcmV0LWtleQ=="


def test_local_broker_is_plaintext_without_credentials() -> None:
    conn = KafkaConnection.resolve(brokers="127.0.0.1:9092")
    assert conn.protocol == "PLAINTEXT" and conn.mechanism is None
    config = conn.client_config()
    assert config == {"bootstrap.servers": "127.0.0.1:9092", "security.protocol": "PLAINTEXT"}


@pytest.mark.parametrize(
    ("given", "expected"),
    [("SaslSsl", "SASL_SSL"), ("sasl_ssl", "SASL_SSL"), ("SASL-SSL", "SASL_SSL"), ("Plaintext", "PLAINTEXT"),
     ("SaslPlaintext", "SASL_PLAINTEXT"), ("ssl", "SSL")],
)  # fmt: skip
def test_protocol_names_of_librdkafka_and_of_the_functions_trigger_are_accepted(given: str, expected: str) -> None:
    assert normalize_protocol(given) == expected


@pytest.mark.parametrize(
    ("given", "expected"),
    [("Plain", "PLAIN"), ("ScramSha512", "SCRAM-SHA-512"), ("SCRAM-SHA-256", "SCRAM-SHA-256"),
     ("OAuthBearer", "OAUTHBEARER")],
)  # fmt: skip
def test_mechanism_names_are_normalised(given: str, expected: str) -> None:
    assert normalize_mechanism(given) == expected


def test_unknown_names_are_rejected_with_the_setting_name() -> None:
    with pytest.raises(ConfigError, match="KAFKA_PROTOCOL"):
        normalize_protocol("tls")
    with pytest.raises(ConfigError, match="KAFKA_SASL_MECHANISM"):
        normalize_mechanism("kerberos")


def test_event_hubs_connection_string_mode_is_sasl_ssl_plain_and_never_shows_the_secret() -> None:
    conn = KafkaConnection.resolve(brokers=None, eventhubs_namespace="ns1", username=CONNECTION_STRING_USER,
                                   password=SECRET)  # fmt: skip
    assert conn.brokers == "ns1.servicebus.windows.net:9093"
    assert (conn.protocol, conn.mechanism) == ("SASL_SSL", "PLAIN")
    config = conn.client_config()
    assert config["sasl.username"] == "$ConnectionString" and config["sasl.password"] == SECRET
    assert config["socket.keepalive.enable"] is True  # Event Hubs closes idle connections
    assert "SharedAccessKey" not in conn.describe() and "SharedAccessKey" not in repr(conn)
    # librdkafka accepts every setting (pointed at a closed loopback port: no lookup leaves the machine).
    Producer({**config, "bootstrap.servers": "127.0.0.1:9", "log_level": 0})


def test_event_hubs_with_entra_id_uses_oauthbearer_with_the_namespace_scope() -> None:
    conn = KafkaConnection.resolve(brokers="ns1.servicebus.windows.net:9093", protocol="SaslSsl")
    assert (conn.protocol, conn.mechanism) == ("SASL_SSL", "OAUTHBEARER")
    assert conn.oauth_scope == "https://ns1.servicebus.windows.net/.default"
    assert "Entra ID" in conn.describe()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"brokers": ""}, "KAFKA_BROKERS"),
        ({"brokers": "h:9092", "password": "x"}, "sends no credentials"),
        ({"brokers": "h:9092", "protocol": "SASL_SSL", "mechanism": "PLAIN", "username": "u"}, "KAFKA_PASSWORD"),
        ({"brokers": "h:9092", "protocol": "SASL_SSL", "mechanism": "OAUTHBEARER"}, "--oauth-scope"),
        ({"brokers": "ns.servicebus.windows.net:9093", "protocol": "PLAINTEXT"}, "sends no credentials"),
        ({"brokers": "ns.servicebus.windows.net:9093", "username": "someone", "password": "pw"}, "OAUTHBEARER"),
    ],
)
def test_inconsistent_settings_are_refused_before_connecting(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        KafkaConnection.resolve(**kwargs)
    assert "pw" not in str(info.value).replace("KAFKA_PASSWORD", "")


def test_consume_refuses_bad_settings_without_echoing_the_password() -> None:
    from shared.cli.app import main

    result = CliRunner().invoke(
        main, ["consume", "-t", "x", "--brokers", "h:9092", "--protocol", "PLAINTEXT"],
        env={"KAFKA_PASSWORD": "hunter2-secret", "KAFKA_USERNAME": "me"},
    )  # fmt: skip
    assert result.exit_code == 2  # a misconfiguration
    assert "sends no credentials" in result.output and "hunter2-secret" not in result.output


# --- OAUTHBEARER with a real managed-identity credential ---------------------------------------


class _MsiHandler(BaseHTTPRequestHandler):
    requests: list[dict[str, Any]]

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        self.server.requests.append({"path": url.path, "query": query,  # type: ignore[attr-defined]
                                     "header": self.headers.get("X-IDENTITY-HEADER")})  # fmt: skip
        body = json.dumps({"access_token": f"token-for-{query.get('resource')}",
                           "expires_on": str(int(time.time()) + 3600), "token_type": "Bearer",
                           "resource": query.get("resource")}).encode()  # fmt: skip
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def msi_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    """An App Service managed-identity endpoint on loopback (IDENTITY_ENDPOINT/IDENTITY_HEADER)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _MsiHandler)
    server.requests = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("IDENTITY_ENDPOINT", f"http://127.0.0.1:{server.server_address[1]}/msi/token")
    monkeypatch.setenv("IDENTITY_HEADER", "header-value")
    try:
        yield server.requests  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()


def test_oauth_callback_gets_an_entra_token_for_the_event_hubs_scope(msi_endpoint: list[dict[str, Any]]) -> None:
    credential = make_credential("managed-identity", "11111111-2222-3333-4444-555555555555")
    provider = EntraTokenProvider("https://ns1.servicebus.windows.net/.default", credential)
    token, expires = provider("")
    assert token == "token-for-https://ns1.servicebus.windows.net"
    assert time.time() + 3000 < expires <= time.time() + 3600
    [request] = msi_endpoint
    assert request["query"]["resource"] == "https://ns1.servicebus.windows.net"
    assert request["query"]["client_id"] == "11111111-2222-3333-4444-555555555555"
    assert request["header"] == "header-value"


def test_librdkafka_calls_the_oauth_callback_of_the_client_config(msi_endpoint: list[dict[str, Any]]) -> None:
    # A loopback port nobody listens on: the client fetches its token before it connects.
    conn = KafkaConnection.resolve(brokers="127.0.0.1:9", protocol="SASL_PLAINTEXT", mechanism="OAUTHBEARER",
                                   oauth_scope="api://kafka-adx-test/.default", credential="managed-identity")  # fmt: skip
    config = conn.client_config()
    provider = config["oauth_cb"]
    assert isinstance(provider, EntraTokenProvider)
    producer = Producer({**config, "log_level": 0})
    deadline = time.monotonic() + 10
    while provider.calls == 0 and time.monotonic() < deadline:
        producer.poll(0.1)
    assert provider.calls >= 1, "librdkafka never asked for a token"
    assert msi_endpoint[0]["query"]["resource"] == "api://kafka-adx-test"


def test_loopback_detection_for_the_plaintext_sasl_warning() -> None:
    from shared.kafka.connection import _all_loopback

    assert _all_loopback("127.0.0.1:9092,localhost:9093,[::1]:9094")
    assert not _all_loopback("127.0.0.1:9092,broker.example.com:9092")
