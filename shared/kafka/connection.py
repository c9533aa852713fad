"""librdkafka client settings for `kafka-adx consume` and `kafka-adx produce`.

Supported connections:

- ``PLAINTEXT`` (a local broker, ``make kafka``);
- ``SASL_SSL`` + ``PLAIN`` with a username and password (Confluent Cloud API keys, and the Event
  Hubs Kafka endpoint in connection-string mode: username ``$ConnectionString``, password the
  namespace or event hub connection string);
- ``SASL_SSL`` + ``SCRAM-SHA-256/512``;
- ``SASL_SSL`` + ``OAUTHBEARER`` with a Microsoft Entra ID token from azure-identity, for the Event
  Hubs Kafka endpoint (scope ``https://<namespace>.servicebus.windows.net/.default``) or any
  broker that accepts Entra tokens (``oauth_scope``).

Protocol and mechanism names are accepted as librdkafka spells them (``SASL_SSL``, ``PLAIN``)
and as the Functions Kafka trigger does (``SaslSsl``, ``Plain``), so ``KAFKA_PROTOCOL`` and
``KAFKA_SASL_MECHANISM`` can be shared with the function app: one table (:data:`PROTOCOLS`,
:data:`MECHANISMS`) holds both spellings, and the function app's trigger settings
(:mod:`shared.functions.settings`) read it too. Secrets never appear in
:meth:`KafkaConnection.describe`, in ``repr`` or in error messages.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, cast

from shared.credentials import make_credential
from shared.errors import ConfigError, KafkaAdxError

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

log = logging.getLogger("kafka_adx.kafka")

Protocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
Mechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"]
CredentialKind = Literal["default", "managed-identity"]
"""The ``--credential`` of Entra ID tokens (see :func:`shared.credentials.make_credential`)."""

EVENTHUBS_SUFFIX = ".servicebus.windows.net"
EVENTHUBS_KAFKA_PORT = 9093
CONNECTION_STRING_USER = "$ConnectionString"
"""The SASL PLAIN username of the Event Hubs Kafka endpoint's connection-string mode."""


class Spelling(NamedTuple):
    """One protocol or mechanism as each client spells it (None: that client does not support it)."""

    librdkafka: str | None
    """As librdkafka's ``security.protocol`` / ``sasl.mechanism`` (``kafka-adx consume/produce``)."""
    functions: str | None
    """As the Functions Kafka trigger's ``protocol`` / ``authentication_mode`` enums."""


PROTOCOLS: dict[str, Spelling] = {
    "plaintext": Spelling("PLAINTEXT", "Plaintext"),
    "ssl": Spelling("SSL", "Ssl"),
    "saslplaintext": Spelling("SASL_PLAINTEXT", "SaslPlaintext"),
    "saslssl": Spelling("SASL_SSL", "SaslSsl"),
}
"""Security protocols by squashed name (:func:`spelling_key`): one table for both clients."""

MECHANISMS: dict[str, Spelling] = {
    "plain": Spelling("PLAIN", "Plain"),
    "scramsha256": Spelling("SCRAM-SHA-256", "ScramSha256"),
    "scramsha512": Spelling("SCRAM-SHA-512", "ScramSha512"),
    # The Python Functions trigger has no OAUTHBEARER; this code's librdkafka clients no Kerberos.
    "oauthbearer": Spelling("OAUTHBEARER", None),
    "gssapi": Spelling(None, "Gssapi"),
}
"""SASL mechanisms by squashed name (:func:`spelling_key`): one table for both clients."""

# Client settings Microsoft recommends for librdkafka against the Event Hubs Kafka endpoint: it
# closes idle connections after 240 s, so keep them alive and refresh metadata before that.
EVENTHUBS_CLIENT_SETTINGS: dict[str, Any] = {
    "socket.keepalive.enable": True,
    "metadata.max.age.ms": 180_000,
}


def spelling_key(value: str) -> str:
    """The key of a protocol or mechanism in :data:`PROTOCOLS` / :data:`MECHANISMS`: case,
    dashes, underscores and other punctuation ignored (``SASL_SSL``, ``SaslSsl``, ``sasl-ssl``)."""
    return "".join(ch for ch in value.lower() if ch.isalnum())


def _lookup(table: dict[str, Spelling], value: str | None, where: str) -> str | None:
    """The librdkafka spelling of ``value`` in ``table``; None/empty -> None."""
    if value is None or not value.strip():
        return None
    found = table.get(spelling_key(value))
    if found is None or found.librdkafka is None:
        known = ", ".join(s.librdkafka for s in table.values() if s.librdkafka)
        raise ConfigError(f"{where}: unknown {value!r}; expected one of {known}")
    return found.librdkafka


def normalize_protocol(value: str | None) -> Protocol | None:
    """``SASL_SSL``, ``SaslSsl``, ``sasl-ssl`` ... -> ``SASL_SSL``; None/empty -> None."""
    return cast("Protocol | None", _lookup(PROTOCOLS, value, "KAFKA_PROTOCOL / --protocol: security protocol"))


def normalize_mechanism(value: str | None) -> Mechanism | None:
    """``PLAIN``/``Plain``, ``SCRAM-SHA-256``/``ScramSha256``, ``OAUTHBEARER``/``OAuthBearer``."""
    return cast(
        "Mechanism | None", _lookup(MECHANISMS, value, "KAFKA_SASL_MECHANISM / --sasl-mechanism: SASL mechanism")
    )


def eventhubs_fqdn(namespace: str) -> str:
    """``myns`` or ``myns.servicebus.windows.net`` (or a host:port) -> ``myns.servicebus.windows.net``."""
    host = namespace.strip().split("://")[-1].split("/")[0].split(":")[0]
    if not host:
        raise ConfigError("--eventhubs-namespace: empty namespace")
    return host if "." in host else f"{host}{EVENTHUBS_SUFFIX}"


def _first_host(brokers: str) -> str:
    first = brokers.split(",")[0].strip()
    return first.rsplit(":", 1)[0] if ":" in first else first


class EntraTokenProvider:
    """librdkafka ``oauth_cb``: returns an Entra ID access token for ``scope`` and its expiry.

    librdkafka calls it from ``poll``/``consume``/``flush`` when it needs a token and again
    before the token expires (at 80 % of its lifetime).
    """

    def __init__(self, scope: str, credential: TokenCredential) -> None:
        self.scope = scope
        self.credential = credential
        self.calls = 0

    def __call__(self, oauthbearer_config: str) -> tuple[str, float]:
        """(token, expiry as seconds since the epoch); ``oauthbearer_config`` is unused."""
        self.calls += 1
        token = self.credential.get_token(self.scope)
        log.info("got an Entra ID token for %s (expires at %d)", self.scope, token.expires_on)
        return token.token, float(token.expires_on)


class KafkaAuthError(KafkaAdxError):
    """The broker kept refusing the client's credentials (SASL authentication failed)."""


class AuthFailureGuard:
    """librdkafka ``error_cb`` that gives up when SASL authentication keeps failing.

    librdkafka treats a refused login (wrong password, expired or wrongly scoped token) as a
    transient error and retries for ever, so a client with bad credentials would hang. This
    callback logs every Kafka error, raises :class:`KafkaAdxError` on a fatal one and
    :class:`KafkaAuthError` once authentication errors have kept arriving for ``timeout``
    seconds (confluent-kafka re-raises both from ``poll``). A pause longer than ``reset_after``
    seconds between two of them (librdkafka retries at least every ``reconnect.backoff.max.ms``,
    10 s by default) starts a new window, so a single refusal between successful logins does not
    add up over a long run.
    """

    def __init__(
        self, timeout: float, *, reset_after: float = 30.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.timeout = timeout
        self.reset_after = reset_after
        self.clock = clock
        self.failures = 0
        self._first: float | None = None
        self._last = 0.0

    def __call__(self, error: Any) -> None:
        """Handle one librdkafka error (a ``confluent_kafka.KafkaError``)."""
        from confluent_kafka import KafkaError

        if error.fatal():
            # With an error_cb set, librdkafka reports fatal errors here, not as messages.
            raise KafkaAdxError(f"fatal Kafka error: {error.str()}")
        if error.code() != KafkaError._AUTHENTICATION:
            log.warning("Kafka: %s", error.str())
            return
        now = self.clock()
        if self._first is None or now - self._last > self.reset_after:
            self._first = now
            self.failures = 0
        self._last = now
        self.failures += 1
        log.error("Kafka authentication failed: %s", error.str())
        if now - self._first >= self.timeout:
            raise KafkaAuthError(
                f"the broker refused authentication for {now - self._first:.0f} s "
                f"({self.failures} attempt(s)); last error: {error.str()}"
            )


@dataclass(frozen=True)
class KafkaConnection:
    """Where the broker is and how to authenticate to it. Build with :meth:`resolve`."""

    brokers: str
    protocol: Protocol = "PLAINTEXT"
    mechanism: Mechanism | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    oauth_scope: str | None = None
    """Entra ID scope of OAUTHBEARER tokens."""
    credential: CredentialKind = "default"
    client_id: str | None = None
    """Client id of a user-assigned managed identity (AZURE_CLIENT_ID)."""
    extra: tuple[tuple[str, str], ...] = ()
    """Any other librdkafka property (``-X name=value``), applied last."""

    @property
    def eventhubs(self) -> bool:
        """Whether the brokers are an Event Hubs namespace's Kafka endpoint."""
        return _first_host(self.brokers).lower().endswith(EVENTHUBS_SUFFIX)

    @classmethod
    def resolve(
        cls,
        *,
        brokers: str | None,
        protocol: str | None = None,
        mechanism: str | None = None,
        username: str | None = None,
        password: str | None = None,
        eventhubs_namespace: str | None = None,
        oauth_scope: str | None = None,
        credential: CredentialKind = "default",
        client_id: str | None = None,
        extra: tuple[tuple[str, str], ...] = (),
    ) -> KafkaConnection:
        """Fill in what follows from the inputs and check that they fit together.

        ``eventhubs_namespace`` (``myns`` or its FQDN) sets the brokers to its Kafka endpoint
        (port 9093) and SASL_SSL; the mechanism is then PLAIN when the username is
        ``$ConnectionString``, else OAUTHBEARER with a token for the namespace.
        """
        username = username or None
        password = password or None
        if eventhubs_namespace:
            fqdn = eventhubs_fqdn(eventhubs_namespace)
            brokers = brokers or f"{fqdn}:{EVENTHUBS_KAFKA_PORT}"
        if not brokers or not brokers.strip():
            raise ConfigError("KAFKA_BROKERS / --brokers: no bootstrap servers given (host:port[,host:port])")
        brokers = brokers.strip()
        host = _first_host(brokers)
        on_eventhubs = host.lower().endswith(EVENTHUBS_SUFFIX)
        proto = normalize_protocol(protocol)
        mech = normalize_mechanism(mechanism)
        if on_eventhubs:
            proto = proto or "SASL_SSL"
            if mech is None:
                mech = "PLAIN" if username == CONNECTION_STRING_USER else "OAUTHBEARER"
        elif proto is None:
            proto = "SASL_SSL" if (mech or username) else "PLAINTEXT"
        if proto.startswith("SASL_") and mech is None:
            mech = "PLAIN" if username else "OAUTHBEARER"
        if not proto.startswith("SASL_"):
            if mech is not None or username or password:
                raise ConfigError(
                    f"KAFKA_PROTOCOL is {proto}, which sends no credentials, but a SASL mechanism, "
                    "username or password is set: use SASL_SSL (or unset them)"
                )
        elif mech == "OAUTHBEARER":
            if oauth_scope is None:
                if not on_eventhubs:
                    raise ConfigError(
                        "OAUTHBEARER needs a token scope: give --oauth-scope, or use the Event Hubs "
                        f"Kafka endpoint (<namespace>{EVENTHUBS_SUFFIX}:9093), whose scope is derived"
                    )
                oauth_scope = f"https://{host}/.default"
            if username or password:
                raise ConfigError("OAUTHBEARER uses an Entra ID token: unset KAFKA_USERNAME / KAFKA_PASSWORD")
        else:
            missing = [name for name, value in (("KAFKA_USERNAME", username), ("KAFKA_PASSWORD", password))
                       if not value]  # fmt: skip
            if missing:
                raise ConfigError(f"SASL {mech} needs {' and '.join(missing)} (or --username / --password)")
        if on_eventhubs and proto != "SASL_SSL":
            raise ConfigError(f"the Event Hubs Kafka endpoint needs SASL_SSL, not {proto}")
        return cls(
            brokers=brokers,
            protocol=proto,
            mechanism=mech,
            username=username,
            password=password,
            oauth_scope=oauth_scope if mech == "OAUTHBEARER" else None,
            credential=credential,
            client_id=client_id or None,
            extra=extra,
        )

    def describe(self) -> str:
        """A one-line description without secrets, for logs and errors."""
        text = f"{self.brokers} ({self.protocol}"
        if self.mechanism:
            text += f" {self.mechanism}"
        if self.mechanism == "OAUTHBEARER":
            text += f", Entra ID {self.credential} credential, scope {self.oauth_scope}"
        elif self.username:
            text += f", user {self.username}"
        return text + ")"

    def client_config(
        self, *, credential_factory: Callable[[CredentialKind, str | None], TokenCredential] = make_credential
    ) -> dict[str, Any]:
        """librdkafka settings shared by consumers and producers (credentials included)."""
        config: dict[str, Any] = {"bootstrap.servers": self.brokers, "security.protocol": self.protocol}
        if self.eventhubs:
            config.update(EVENTHUBS_CLIENT_SETTINGS)
        if self.mechanism is not None:
            config["sasl.mechanism"] = self.mechanism
            if self.protocol == "SASL_PLAINTEXT" and not _all_loopback(self.brokers):
                log.warning(
                    "SASL over PLAINTEXT to %s: credentials and tokens travel unencrypted; use SASL_SSL",
                    self.brokers,
                )
        if self.mechanism == "OAUTHBEARER":
            assert self.oauth_scope is not None  # resolve() guarantees it
            config["oauth_cb"] = EntraTokenProvider(self.oauth_scope, credential_factory(self.credential, self.client_id))
        elif self.mechanism is not None:
            config["sasl.username"] = self.username
            config["sasl.password"] = self.password
        for name, value in self.extra:
            config[name] = value
        return config


def _all_loopback(brokers: str) -> bool:
    """Whether every bootstrap server is on this machine (127.0.0.0/8, ::1 or localhost)."""
    for server in brokers.split(","):
        host = server.strip().rsplit(":", 1)[0].strip("[]")
        if not (host == "localhost" or host.startswith("127.") or host == "::1"):
            return False
    return True


def parse_properties(values: tuple[str, ...] | list[str]) -> tuple[tuple[str, str], ...]:
    """``name=value`` librdkafka properties (``-X``), in order."""
    out = []
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"-X {item!r}: expected name=value (a librdkafka property)")
        out.append((name.strip(), value))
    return tuple(out)
