"""The Application Insights export as deployed: the real Azure Monitor exporter
(azure-monitor-opentelemetry-exporter, not the distro) sends the catalogue's metrics and the
batch span to a loopback server playing the ingestion endpoint (``/v2.1/track``), signed in with
the host's managed identity, whose token comes from the same server playing the App Service
identity endpoint (``IDENTITY_ENDPOINT`` / ``IDENTITY_HEADER``, as Functions sets them). Over
TLS with a certificate made here: azure-core refuses a bearer token over plain HTTP."""

from __future__ import annotations

import gzip
import json
import ssl
import tempfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from shared import metrics as m
from shared.functions.summary import BatchSummary
from shared.functions.telemetry import Telemetry

# The Azure schema registry stand-in's self-signed certificate for 127.0.0.1.
from tests.fixtures.registry_azure import _certificate as loopback_certificate

TOKEN = "managed-identity-token"  # not a secret: the loopback identity endpoint hands it out
IDENTITY_HEADER = "identity-header"


class Ingestion:
    """What the loopback server received: telemetry envelopes, their Authorization headers, and
    the token requests."""

    def __init__(self) -> None:
        self.envelopes: list[dict[str, Any]] = []
        self.authorizations: list[str | None] = []
        self.token_requests: list[dict[str, list[str]]] = []


@pytest.fixture
def ingestion(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[tuple[Ingestion, str]]:
    seen = Ingestion()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:  # the App Service managed-identity endpoint
            url = urlparse(self.path)
            assert url.path == "/msi/token" and self.headers["X-IDENTITY-HEADER"] == IDENTITY_HEADER
            seen.token_requests.append(parse_qs(url.query))
            body = json.dumps({"access_token": TOKEN, "expires_on": "4102444800", "token_type": "Bearer",
                               "resource": parse_qs(url.query)["resource"][0]}).encode()  # fmt: skip
            self._reply(body)

        def do_POST(self) -> None:  # Application Insights' track endpoint
            assert urlparse(self.path).path == "/v2.1/track"
            data = self.rfile.read(int(self.headers["Content-Length"]))
            if self.headers.get("Content-Encoding") == "gzip":
                data = gzip.decompress(data)
            items = json.loads(data)
            seen.envelopes.extend(items)
            seen.authorizations.append(self.headers.get("Authorization"))
            self._reply(json.dumps({"itemsReceived": len(items), "itemsAccepted": len(items), "errors": []}).encode())

        def _reply(self, body: bytes) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    cert_file, key_file = loopback_certificate(tmp_path)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert_file, key_file)
    server.socket = tls.wrap_socket(server.socket, server_side=True)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert_file))  # azure-core's requests transport trusts it
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"https://127.0.0.1:{server.server_address[1]}"
    # The exporter's own usage reporting: statsbeat goes to Microsoft's endpoint, and its SDK
    # statistics (Item_Success_Count) to ours, still retrying once the server is gone: both off.
    monkeypatch.setenv("APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL", "true")
    monkeypatch.setenv("APPLICATIONINSIGHTS_SDKSTATS_DISABLED", "true")
    # The exporter's offline store (for sends that fail) is made under the temporary folder.
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setenv("IDENTITY_ENDPOINT", f"{base}/msi/token")
    monkeypatch.setenv("IDENTITY_HEADER", IDENTITY_HEADER)
    monkeypatch.setenv("WEBSITE_SITE_NAME", "func-kafka-adx")
    monkeypatch.setenv("FUNCTIONS_WORKER_RUNTIME", "python")
    monkeypatch.delenv("AZURE_CLIENT_ID", raising=False)
    try:
        yield seen, f"InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint={base}/"
    finally:
        server.shutdown()
        server.server_close()


def test_metrics_and_the_batch_span_reach_application_insights_signed_in_as_the_host(
    ingestion: tuple[Ingestion, str],
) -> None:
    seen, connection_string = ingestion
    export = m.configure_export({m.APPINSIGHTS_SETTING: connection_string})
    assert export is not None and export.kind == "azure-monitor"
    telemetry = Telemetry()
    telemetry.enable(meter_provider=export.meter_provider, tracer_provider=export.tracer_provider)
    summary = BatchSummary(trigger="kafka_ingest", source="kafka", attempt="1/6")
    summary.received, summary.ingested = 3, 3
    with telemetry.span("kafka_ingest") as span:
        telemetry.record(summary, span)
    export.flush()
    try:
        names = {item["name"] for item in seen.envelopes}
        # An internal span is a dependency in Application Insights (AppDependencies).
        assert {"Microsoft.ApplicationInsights.Metric", "Microsoft.ApplicationInsights.RemoteDependency"} <= names
        metrics = {point["name"]: point for item in seen.envelopes if item["name"].endswith(".Metric")
                   for point in item["data"]["baseData"]["metrics"]}  # fmt: skip
        assert metrics["kafka_adx.records.ingested"]["value"] == 3
        spans = [item for item in seen.envelopes if item["name"].endswith(".RemoteDependency")]
        assert [item["data"]["baseData"]["name"] for item in spans] == ["kafka_adx.batch"]
        # The cloud role is the function app (the Azure resource detectors' service.name).
        catalogue = {metric.name for metric in m.CATALOGUE}
        ours = spans + [item for item in seen.envelopes if item["name"].endswith(".Metric")
                        and item["data"]["baseData"]["metrics"][0]["name"] in catalogue]  # fmt: skip
        assert len(ours) >= 3
        assert {item["tags"]["ai.cloud.role"] for item in ours} == {"func-kafka-adx"}
        # Entra ID, as the host's managed identity, for Application Insights' audience.
        assert seen.authorizations and set(seen.authorizations) == {f"Bearer {TOKEN}"}
        assert {q["resource"][0] for q in seen.token_requests} == {"https://monitor.azure.com/"}
    finally:
        export.meter_provider.shutdown()
        export.tracer_provider.shutdown()
