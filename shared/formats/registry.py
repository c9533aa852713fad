"""Schemas by id from a schema registry, fetched once per process.

Two registries: a Confluent-compatible one (Confluent, Apicurio's ``/apis/ccompat/v7``,
Karapace, Redpanda), read with confluent-kafka's :class:`SchemaRegistryClient`, and the Azure
Schema Registry of an Event Hubs namespace, read with azure-schemaregistry's client signed in
with the one credential factory (:mod:`shared.credentials`).

The delivery contract's split is made here, once:

- the registry answered that the id does not exist (404), or the schema it returned cannot be
  parsed: :class:`UnknownSchema`, and the record that names it is dead-lettered (the data, or
  its producer, is what is wrong);
- the registry could not answer (connection refused, timeout, 5xx, 429, refused credentials):
  :class:`RegistryUnavailable`, a :class:`TransientError`: the batch is retried, never
  dead-lettered record by record as if the data were bad.

A schema is fetched once per id and process (:class:`SchemaCache`); an unknown id is
remembered for :data:`UNKNOWN_TTL` seconds, so a topic full of records naming a missing id
does not ask the registry once per record.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache, partial
from typing import TYPE_CHECKING, Any, Generic, Literal, Protocol, TypeVar
from urllib.parse import urlsplit

from shared.errors import TransientError, describe
from shared.redact import register_secret

if TYPE_CHECKING:
    from shared.settings import Settings

log = logging.getLogger("kafka_adx.formats")

SchemaKind = Literal["AVRO", "JSON", "PROTOBUF"]

UNKNOWN_TTL = 60.0
"""Seconds an id the registry did not know is answered from memory (a producer may register it
in the meantime; ids are never reused)."""

UNKNOWN_MEMORY = 10_000
"""At most this many unknown ids are remembered (then forgotten all at once)."""


@dataclass(frozen=True, slots=True)
class RegisteredSchema:
    """A schema as the registry returned it."""

    schema_id: str
    """The id records carry: a number for a Confluent registry, a hex id for Azure's."""
    kind: SchemaKind
    """AVRO, JSON or PROTOBUF."""
    text: str
    """The schema definition (JSON text for Avro and JSON Schema)."""
    references: tuple[str, ...] = ()
    """The definitions of the schemas it references (Confluent schema references), dependencies
    first: an Avro schema naming a type registered under another subject needs them to parse."""


class UnknownSchema(Exception):
    """The registry does not have the schema (or returned one that cannot be used): the record
    naming it is bad."""


class RegistryUnavailable(TransientError):
    """The registry could not answer now: worth retrying the whole batch."""


class SchemaSource(Protocol):
    """Where schemas come from: one registry."""

    name: str
    """What to call the registry in messages (no credential in it)."""

    def fetch(self, schema_id: str) -> RegisteredSchema:
        """The schema of ``schema_id``; raises :class:`UnknownSchema` or :class:`RegistryUnavailable`."""
        ...


def _http_errors() -> tuple[type[BaseException], ...]:
    # confluent-kafka talks through httpx2 on Python >= 3.10: its transport errors (refused,
    # reset, timed out) mean the registry did not answer.
    import httpx2

    return (httpx2.HTTPError, OSError)


_RETRIABLE_4XX = frozenset({401, 403, 408, 429})
"""Client-error statuses that say nothing about the record: a timeout, throttling, or credentials
the registry refused (fixing the settings makes the same record decode)."""


T = TypeVar("T")


def _transient_status(status: int) -> bool:
    """Whether an HTTP status says the registry could not answer now (rather than "not here")."""
    return status in _RETRIABLE_4XX or status >= 500 or status < 400


_KINDS: dict[str, SchemaKind] = {"AVRO": "AVRO", "JSON": "JSON", "PROTOBUF": "PROTOBUF"}


class ConfluentSource:
    """A Confluent-compatible registry, through confluent-kafka's client (which caches by id)."""

    def __init__(self, client: Any, name: str = "schema registry") -> None:
        self.client = client
        self.name = name
        self._transport_errors = _http_errors()

    @classmethod
    def connect(
        cls, url: str, *, username: str | None = None, password: str | None = None, timeout: float = 10.0
    ) -> ConfluentSource:
        """A client of the registry at ``url`` (comma-separated URLs fail over), with basic auth
        when ``username`` is given. Few quick retries: the pipeline retries the whole batch."""
        from confluent_kafka.schema_registry import SchemaRegistryClient

        # httpx2 logs every request at INFO: one line per schema fetch is ours to log.
        logging.getLogger("httpx2").setLevel(logging.WARNING)
        conf: dict[str, Any] = {
            "url": url,
            "timeout": timeout,
            "max.retries": 1,
            "retries.wait.ms": 200,
            "retries.max.wait.ms": 1000,
        }
        if username:
            register_secret(password)
            conf["basic.auth.user.info"] = f"{username}:{password or ''}"
        first = urlsplit(url.split(",")[0].strip())
        register_secret(first.password)  # credentials in the URL itself (https://key:secret@host)
        shown = first._replace(netloc=first.hostname + (f":{first.port}" if first.port else "") if first.hostname else "")
        return cls(SchemaRegistryClient(conf), name=f"schema registry {shown.geturl()}")

    def _ask(self, call: Callable[[], T], missing: str) -> T:
        """``call()``'s answer, its failures sorted: a registry that cannot answer now is
        :class:`RegistryUnavailable`; one that answers "not here" (4xx) :class:`UnknownSchema`
        with ``missing`` and the registry's message."""
        from confluent_kafka.schema_registry.error import SchemaRegistryError

        try:
            return call()
        except SchemaRegistryError as exc:
            status = exc.http_status_code
            if _transient_status(status):
                raise RegistryUnavailable(f"{self.name} answered HTTP {status}: {exc.error_message}") from None
            raise UnknownSchema(f"{missing} (HTTP {status}: {exc.error_message})") from None
        except self._transport_errors as exc:
            raise RegistryUnavailable(f"{self.name} unreachable: {describe(exc)}") from None

    def fetch(self, schema_id: str) -> RegisteredSchema:
        """GET /schemas/ids/{id}, sorted into the two kinds of failure."""
        schema = self._ask(lambda: self.client.get_schema(int(schema_id)), f"{self.name} has no schema id {schema_id}")
        kind = _KINDS.get((schema.schema_type or "AVRO").upper())
        if kind is None:
            raise UnknownSchema(f"schema id {schema_id} has type {schema.schema_type}, which kafka-adx does not read")
        return RegisteredSchema(schema_id, kind, schema.schema_str, self._referenced(schema, schema_id))

    def _referenced(self, schema: Any, schema_id: str, depth: int = 0) -> tuple[str, ...]:
        """The texts of the schemas ``schema`` references, each after its own references (GET
        /subjects/{subject}/versions/{version}); cached by the client like the schemas."""
        out: list[str] = []
        for ref in schema.references or ():
            if depth > 16:
                raise UnknownSchema(f"schema id {schema_id}: schema references nest deeper than 16 levels")
            found = self._ask(
                partial(self.client.get_version, ref.subject, ref.version),
                f"schema id {schema_id} references {ref.subject} version {ref.version}, which {self.name} does not have",
            )
            out += [*self._referenced(found.schema, schema_id, depth + 1), found.schema.schema_str]
        return tuple(out)


    def latest(self, subject: str) -> RegisteredSchema:
        """The latest version of ``subject`` (for ``kafka-adx init --from-schema``)."""
        found = self._ask(lambda: self.client.get_latest_version(subject), f"{self.name} has no subject {subject!r}")
        kind = _KINDS.get((found.schema.schema_type or "AVRO").upper())
        if kind is None:
            raise UnknownSchema(f"subject {subject!r} has type {found.schema.schema_type}, which kafka-adx does not read")
        return RegisteredSchema(str(found.schema_id), kind, found.schema.schema_str)


class AzureSource:
    """The Azure Schema Registry of an Event Hubs namespace (schemas by id, Avro)."""

    def __init__(self, client: Any, name: str) -> None:
        self.client = client
        self.name = name

    @classmethod
    def connect(cls, namespace: str, credential: Any, **kwargs: Any) -> AzureSource:
        """A client of ``namespace``'s registry signed in with ``credential``."""
        from azure.schemaregistry import SchemaRegistryClient

        client = SchemaRegistryClient(fully_qualified_namespace=namespace, credential=credential, **kwargs)
        return cls(client, name=f"Azure Schema Registry {namespace}")

    def fetch(self, schema_id: str) -> RegisteredSchema:
        """GET /$schemaGroups/$schemas/{id}, sorted into the two kinds of failure."""
        from azure.core.exceptions import (
            ClientAuthenticationError,
            HttpResponseError,
            ResourceNotFoundError,
            ServiceRequestError,
            ServiceResponseError,
        )

        try:
            schema = self.client.get_schema(schema_id)
        except ResourceNotFoundError:
            raise UnknownSchema(f"{self.name} has no schema id {schema_id}") from None
        except (ClientAuthenticationError, ServiceRequestError, ServiceResponseError) as exc:
            raise RegistryUnavailable(f"{self.name} unreachable: {describe(exc)}") from None
        except HttpResponseError as exc:
            if _transient_status(exc.status_code or 0):
                raise RegistryUnavailable(f"{self.name}: {describe(exc)}") from None
            raise UnknownSchema(f"{self.name} refused schema id {schema_id}: {describe(exc)}") from None
        fmt = getattr(schema.properties, "format", "Avro")
        fmt = str(getattr(fmt, "value", fmt)).upper()  # a SchemaFormat enum, or the content type it did not know
        if fmt != "AVRO":
            raise UnknownSchema(f"schema id {schema_id} has format {fmt}, which kafka-adx does not read")
        return RegisteredSchema(schema_id, "AVRO", schema.definition)


class SchemaCache(Generic[T]):
    """Parsed schemas by id, process-wide for one registry: each id is fetched and parsed once.

    ``parse`` turns a :class:`RegisteredSchema` into what decoding needs (a parsed Avro schema, a
    JSON Schema validator); it raises :class:`UnknownSchema` for a schema it cannot use.
    """

    def __init__(self, source: SchemaSource, parse: Callable[[RegisteredSchema], T]) -> None:
        self.source = source
        self.parse = parse
        self._parsed: dict[str, T] = {}
        self._unknown: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()
        self.fetches = 0
        """How many times the registry was asked (for tests and the bench)."""

    def get(self, schema_id: str) -> T:
        """The parsed schema of ``schema_id``; :class:`UnknownSchema` or :class:`RegistryUnavailable`."""
        parsed = self._parsed.get(schema_id)
        if parsed is not None:
            return parsed
        with self._lock:  # one fetch per id even when trigger invocations run in threads
            parsed = self._parsed.get(schema_id)
            if parsed is not None:
                return parsed
            known = self._unknown.get(schema_id)
            if known is not None and known[1] > time.monotonic():
                raise UnknownSchema(known[0])
            self.fetches += 1
            try:
                parsed = self.parse(self.source.fetch(schema_id))
            except UnknownSchema as exc:
                if len(self._unknown) >= UNKNOWN_MEMORY:  # random bytes name random ids: stay bounded
                    self._unknown.clear()
                self._unknown[schema_id] = (str(exc), time.monotonic() + UNKNOWN_TTL)
                raise
            self._parsed[schema_id] = parsed
            log.info("schema id %s read from %s", schema_id, self.source.name)
            return parsed


@dataclass(frozen=True)
class Registries:
    """The registries a process can read: either may be absent (not configured)."""

    confluent: SchemaSource | None = None
    azure: SchemaSource | None = None
    problems: tuple[tuple[str, str], ...] = ()
    """(registry, why it is absent though configured): what a dead letter then says."""

    def problem(self, registry: str) -> str | None:
        """Why ``registry`` (``confluent`` or ``azure``) is configured but cannot be used."""
        return next((why for name, why in self.problems if name == registry), None)


def registries_from(settings: Settings) -> Registries:
    """The registries the settings configure (SCHEMA_REGISTRY_*, AZURE_SCHEMA_REGISTRY_NAMESPACE),
    created once per process for equal settings."""
    password = settings.schema_registry_password.get_secret_value() if settings.schema_registry_password else None
    return _registries(
        settings.schema_registry_url,
        settings.schema_registry_username,
        password,
        settings.schema_registry_timeout,
        settings.azure_schema_registry_namespace,
        settings.adx_auth,
        settings.azure_client_id,
    )


@lru_cache(maxsize=8)
def _registries(
    url: str | None,
    username: str | None,
    password: str | None,
    timeout: float,
    namespace: str | None,
    auth: Literal["managed-identity", "default", "none"],
    client_id: str | None,
) -> Registries:
    confluent: SchemaSource | None = None
    azure: SchemaSource | None = None
    problems: list[tuple[str, str]] = []
    if url:
        try:
            confluent = ConfluentSource.connect(url, username=username, password=password, timeout=timeout)
        except ImportError as exc:
            # requirements.txt holds confluent-kafka, but an environment built otherwise may lack
            # it: say so in each dead letter rather than fail the batch.
            problems.append(("confluent", f"SCHEMA_REGISTRY_URL is set but its client is not installed here "
                                          f"(pip install 'confluent-kafka[schemaregistry]'): {exc}"))  # fmt: skip
    if namespace:
        from shared.credentials import make_credential

        credential = make_credential(auth, client_id)
        if credential is not None:
            azure = AzureSource.connect(namespace, credential)
        else:
            problems.append(("azure", "AZURE_SCHEMA_REGISTRY_NAMESPACE is set but ADX_AUTH is none: the Azure "
                                      "Schema Registry needs Entra ID"))  # fmt: skip
    for _, why in problems:
        log.error("%s", why)
    return Registries(confluent=confluent, azure=azure, problems=tuple(problems))
