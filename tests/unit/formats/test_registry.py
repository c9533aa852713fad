"""shared/formats/registry.py without a service: what the registry clients are called in
messages (never with a credential), and the process-wide caching of the clients."""

from __future__ import annotations

from shared.formats.registry import ConfluentSource, registries_from
from shared.redact import redact
from shared.settings import Settings


def test_credentials_in_the_registry_url_never_reach_a_message() -> None:
    source = ConfluentSource.connect("https://key-id:url-s3cret-value@registry.example:8081/apis/ccompat/v7,https://b.example")
    assert source.name == "schema registry https://registry.example:8081/apis/ccompat/v7"
    assert redact("refused: url-s3cret-value") == "refused: REDACTED"


def test_the_basic_auth_password_is_redacted_wherever_it_shows_up() -> None:
    ConfluentSource.connect("https://registry.example", username="api-key", password="basic-s3cret-value")
    assert "basic-s3cret-value" not in redact("401 for api-key:basic-s3cret-value")


def test_clients_are_made_once_per_process_for_equal_settings() -> None:
    env = {"SCHEMA_REGISTRY_URL": "http://127.0.0.1:9", "SCHEMA_REGISTRY_USERNAME": "u", "SCHEMA_REGISTRY_PASSWORD": "pw-123456"}
    first = registries_from(Settings.from_env(env))
    assert registries_from(Settings.from_env(env)) is first
    assert first.confluent is not None and first.azure is None
    assert "pw-123456" not in repr(Settings.from_env(env))
