"""The function app's own settings: the catalogue of what it reads, and the trigger settings that
decide, when the worker indexes ``function_app.py``, which functions exist and what each binding
hands the Functions host.

The pipeline's settings (:class:`shared.settings.Settings`) are read separately, on the first
invocation (:mod:`shared.functions.worker`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails, PydanticCustomError

from shared.errors import ConfigError
from shared.kafka.connection import MECHANISMS, PROTOCOLS, spelling_key
from shared.sources.functions import HeaderEncoding

FUNCTION_SETTINGS: dict[str, tuple[str, str]] = {
    "EVENTHUB_NAME": (
        "event hub(s) to consume; setting it switches the Event Hubs trigger on. A comma-separated "
        "list registers one function per event hub",
        "unset (trigger off)",
    ),
    "EVENTHUB_CONSUMER_GROUP": ("consumer group of the Event Hubs trigger", "$Default"),
    "EVENTHUB_HEADER_ENCODING": (
        "how string application properties become header bytes: base64 (Kafka headers written "
        "through the Event Hubs Kafka endpoint; text that is not base64 is kept as text) or text "
        "(AMQP producers' string properties)",
        "base64",
    ),
    "EventHubConnection__fullyQualifiedNamespace": (
        "Event Hubs namespace host (<ns>.servicebus.windows.net) of the identity-based connection; "
        "required when the Event Hubs trigger is on",
        "—",
    ),
    "EventHubConnection__credential": (
        "managedidentity to use the app's managed identity for Event Hubs",
        "unset (the host's default credential: your developer sign-in locally)",
    ),
    "EventHubConnection__clientId": ("client id of the user-assigned identity for Event Hubs", "unset (system identity)"),
    "KAFKA_BROKERS": (
        "bootstrap servers of a non-Azure Kafka cluster (host:port,...); setting it switches the "
        "Kafka trigger on",
        "unset (trigger off)",
    ),
    "KAFKA_TOPIC": (
        "topic(s) to consume; required with KAFKA_BROKERS. A comma-separated list registers one "
        "function per topic",
        "—",
    ),
    "KAFKA_CONSUMER_GROUP": ("consumer group of the Kafka trigger", "kafka-adx"),
    "KAFKA_PROTOCOL": ("security protocol: plaintext, ssl, sasl_plaintext or sasl_ssl", "plaintext (sasl_ssl with a SASL mechanism)"),
    "KAFKA_SASL_MECHANISM": ("SASL mechanism: plain, scram-sha-256, scram-sha-512 or gssapi", "unset (no SASL)"),
    "KAFKA_USERNAME": ("SASL user name (Confluent Cloud: the API key); a Key Vault reference in Azure", "—"),
    "KAFKA_PASSWORD": ("SASL password (Confluent Cloud: the API secret); a Key Vault reference in Azure", "—"),
    "KAFKA_DATA_TYPE": (
        "how the Kafka trigger hands over values: binary (raw bytes) or string (the extension's "
        "JSON envelope; values that are not UTF-8 are damaged by the extension)",
        "binary",
    ),
    "RETRY_MAX_COUNT": ("retries of a failed batch before it is dead-lettered (-1: forever)", "5"),
    "RETRY_MIN_INTERVAL": ("first retry delay (hh:mm:ss), doubled on each retry", "00:00:10"),
    "RETRY_MAX_INTERVAL": ("longest retry delay (hh:mm:ss)", "00:05:00"),
    "APPLICATIONINSIGHTS_CONNECTION_STRING": (
        "Application Insights connection string; when set, OpenTelemetry metrics and traces are "
        "exported with azure-monitor-opentelemetry-exporter",
        "unset (no export)",
    ),
}
"""Settings the function app reads beyond the core ones (:data:`shared.settings.SETTING_NAMES`):
name -> (meaning, default)."""

HOST_SETTINGS: dict[str, str] = {
    "FUNCTIONS_WORKER_RUNTIME": "python (read by the Functions host)",
    "AzureWebJobsStorage": "storage of the Functions host: Event Hubs checkpoints, leases (read by the host)",
    "AzureWebJobsStorage__accountName": "identity-based form of AzureWebJobsStorage (read by the host)",
    "AzureWebJobsStorage__credential": "identity-based form of AzureWebJobsStorage (read by the host)",
    "AzureWebJobsStorage__clientId": "identity-based form of AzureWebJobsStorage (read by the host)",
    "AzureWebJobsFeatureFlags": "feature flags of the Functions host (read by the host)",
}
"""Platform settings a deployment may name that the Functions host, not this code, reads."""

KafkaDataType = Literal["binary", "string"]

_INTERVAL = re.compile(r"^\d{1,2}:[0-5]\d:[0-5]\d$")
_FUNCTION_NAME = re.compile(r"[^A-Za-z0-9_]")


def _problem(text: str) -> PydanticCustomError:
    # The text is passed as context, not as the template: a value with braces stays as it is.
    return PydanticCustomError("setting", "{text}", {"text": text})


def _names(value: str | None) -> tuple[str, ...]:
    """A comma-separated list, blanks dropped, order kept, duplicates removed."""
    if not value:
        return ()
    seen: dict[str, None] = {}
    for item in value.split(","):
        item = item.strip()
        if item:
            seen.setdefault(item, None)
    return tuple(seen)


def _seconds(interval: str) -> int:
    hours, minutes, seconds = (int(part) for part in interval.split(":"))
    return hours * 3600 + minutes * 60 + seconds


@dataclass(frozen=True)
class TriggerBinding:
    """One function to register: its name, the source it reads and the binding's value for it."""

    function_name: str
    source: str
    """The event hub or topic name (the records' topic)."""
    binding_value: str
    """What goes into the binding: ``%SETTING%`` for a single name, else the literal name."""


class TriggerSettings(BaseModel):
    """The trigger settings, read when the function app is indexed (see FUNCTION_SETTINGS).

    Build with :meth:`from_env`; the validators take the settings' text as it is written and
    normalise it (lists split, enum spellings mapped to the Functions enums).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    eventhubs: tuple[str, ...] = ()
    """EVENTHUB_NAME: the event hubs to consume, one function each; empty: the trigger is off."""
    eventhub_consumer_group: str | None = None
    """EVENTHUB_CONSUMER_GROUP: unset, the binding names ``$Default`` rather than the setting."""
    eventhub_header_encoding: HeaderEncoding = "base64"
    """EVENTHUB_HEADER_ENCODING: how string application properties become header bytes."""
    eventhub_namespace: str = ""
    """EventHubConnection__fullyQualifiedNamespace: part of the records' stream identity."""
    kafka_brokers: str = ""
    """KAFKA_BROKERS: switches the Kafka trigger on; names the cluster in the records' stream identity."""
    kafka_topics: tuple[str, ...] = ()
    """KAFKA_TOPIC: the topics to consume, one function each."""
    kafka_consumer_group: str | None = None
    """KAFKA_CONSUMER_GROUP: unset, the binding names ``kafka-adx`` rather than the setting."""
    kafka_protocol: str | None = None
    """KAFKA_PROTOCOL, as the Functions enum spells it (``SaslSsl``); ``SaslSsl`` by default with SASL."""
    kafka_sasl_mechanism: str | None = None
    """KAFKA_SASL_MECHANISM, as the Functions enum spells it (``ScramSha256``); unset: no SASL."""
    kafka_data_type: KafkaDataType = "binary"
    """KAFKA_DATA_TYPE: raw value bytes, or the extension's JSON envelope."""
    retry_max_count: int = 5
    """RETRY_MAX_COUNT: retries of a failed batch before it is dead-lettered (-1: forever)."""
    retry_min_interval: str = "00:00:10"
    """RETRY_MIN_INTERVAL: first retry delay (hh:mm:ss)."""
    retry_max_interval: str = "00:05:00"
    """RETRY_MAX_INTERVAL: longest retry delay (hh:mm:ss)."""

    @property
    def eventhub_enabled(self) -> bool:
        """Whether the Event Hubs trigger is registered (EVENTHUB_NAME is set)."""
        return bool(self.eventhubs)

    @property
    def kafka_enabled(self) -> bool:
        """Whether the Kafka trigger is registered (KAFKA_BROKERS is set)."""
        return bool(self.kafka_brokers)

    # -- validators: the settings' text in, normalised values out --------------------------

    @field_validator("eventhubs", "kafka_topics", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        return _names(value) if isinstance(value, str) else value

    @field_validator("eventhub_header_encoding", mode="before")
    @classmethod
    def _header_encoding(cls, value: Any) -> Any:
        value = str(value).lower()
        if value not in ("base64", "text"):
            raise _problem(f"{value!r} is not base64 or text")
        return value

    @field_validator("kafka_data_type", mode="before")
    @classmethod
    def _data_type(cls, value: Any) -> Any:
        value = str(value).lower()
        if value not in ("binary", "string"):
            raise _problem(f"{value!r} is not binary or string")
        return value

    @field_validator("kafka_protocol", mode="before")
    @classmethod
    def _protocol(cls, value: Any) -> Any:
        if value is None:
            return None
        spelling = PROTOCOLS.get(spelling_key(value))
        if spelling is None or spelling.functions is None:
            raise _problem(f"{value!r} is not one of plaintext, ssl, sasl_plaintext, sasl_ssl")
        return spelling.functions

    @field_validator("kafka_sasl_mechanism", mode="before")
    @classmethod
    def _mechanism(cls, value: Any) -> Any:
        if value is None:
            return None
        spelling = MECHANISMS.get(spelling_key(value))
        if spelling is not None and spelling.functions is None:
            raise _problem(
                f"{spelling.librdkafka} is not supported by the Python Kafka trigger; use plain or scram-sha-256/512"
            )
        if spelling is None:
            raise _problem(f"{value!r} is not one of plain, scram-sha-256, scram-sha-512, gssapi")
        return spelling.functions

    @field_validator("retry_max_count", mode="before")
    @classmethod
    def _retry_count(cls, value: Any) -> Any:
        try:
            count: int | None = int(value)
        except ValueError:
            count = None
        if count is None or count < -1:
            raise _problem(f"{value!r} is not a whole number >= -1")
        return count

    @field_validator("retry_min_interval", "retry_max_interval", mode="before")
    @classmethod
    def _interval(cls, value: Any) -> Any:
        if not _INTERVAL.match(str(value)):
            raise _problem(f"{value!r} is not hh:mm:ss")
        return value

    @model_validator(mode="before")
    @classmethod
    def _sasl_means_tls(cls, data: Any) -> Any:
        # SASL without a protocol means SASL over TLS: credentials never travel in clear text.
        if isinstance(data, dict) and data.get("kafka_sasl_mechanism") and not data.get("kafka_protocol"):
            data = {**data, "kafka_protocol": "SaslSsl"}
        return data

    @model_validator(mode="after")
    def _intervals_in_order(self) -> TriggerSettings:
        if _seconds(self.retry_min_interval) > _seconds(self.retry_max_interval):
            raise _problem("RETRY_MIN_INTERVAL: longer than RETRY_MAX_INTERVAL")
        return self

    # -- reading ------------------------------------------------------------------------------

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> TriggerSettings:
        """Read and check the trigger settings; every problem is reported at once, each with the
        name of its setting. Empty values count as unset."""
        get = _reader(os.environ if env is None else env)
        values = {
            field: value
            for field, (name, switch) in _FIELDS.items()
            if (switch is None or get(switch)) and (value := get(name)) is not None
        }
        problems = _missing(get)
        try:
            settings = cls.model_validate(values)
        except ValidationError as exc:
            problems += [_describe(error) for error in exc.errors()]
        if problems:
            raise ConfigError("invalid function app settings: " + "; ".join(problems))
        return settings

    @classmethod
    def per_trigger(cls, env: Mapping[str, str] | None = None) -> tuple[TriggerSettings, dict[str, ConfigError]]:
        """The settings with every trigger whose own settings are invalid switched off, and the
        error of each one switched off (by its switch: ``EVENTHUB_NAME``, ``KAFKA_BROKERS``), so
        that a broken Kafka setting leaves the Event Hubs trigger running and the other way round.

        Each trigger is checked on its own (the other switched off). Settings that every trigger
        shares (``RETRY_*``) still raise :class:`ConfigError`: no function could register with them.
        """
        source = os.environ if env is None else env
        get = _reader(source)
        switches = [name for name in _SWITCHES if get(name)]
        broken: dict[str, ConfigError] = {}
        for switch in switches:
            alone = {name: value for name, value in source.items() if name not in _SWITCHES or name == switch}
            try:
                cls.from_env(alone)
            except ConfigError as exc:
                broken[switch] = exc
        working = {name: value for name, value in source.items() if name not in broken}
        return cls.from_env(working), broken

    # -- what function_app.py registers -------------------------------------------------------

    def retry_kwargs(self) -> dict[str, str]:
        """Arguments of ``FunctionApp.retry``: exponential backoff from the RETRY_* settings."""
        return {
            "strategy": "exponential_backoff",
            "max_retry_count": str(self.retry_max_count),
            "minimum_interval": self.retry_min_interval,
            "maximum_interval": self.retry_max_interval,
        }

    def eventhub_bindings(self) -> list[TriggerBinding]:
        """One function per event hub."""
        return _bindings("eventhub_ingest", self.eventhubs, "%EVENTHUB_NAME%")

    def kafka_bindings(self) -> list[TriggerBinding]:
        """One function per Kafka topic (none when the Kafka trigger is off)."""
        return _bindings("kafka_ingest", self.kafka_topics, "%KAFKA_TOPIC%") if self.kafka_enabled else []

    def eventhub_trigger_kwargs(self, binding: TriggerBinding) -> dict[str, Any]:
        """Arguments of ``FunctionApp.event_hub_message_trigger`` for one event hub."""
        return {
            "arg_name": "events",
            "connection": "EventHubConnection",
            "event_hub_name": binding.binding_value,
            "data_type": "binary",
            "cardinality": "many",
            "consumer_group": "%EVENTHUB_CONSUMER_GROUP%" if self.eventhub_consumer_group else "$Default",
        }

    def kafka_trigger_kwargs(self, binding: TriggerBinding) -> dict[str, Any]:
        """Arguments of ``FunctionApp.kafka_trigger`` for one topic. Secrets stay in settings: the
        binding names them (``%KAFKA_PASSWORD%``) and the extension resolves them."""
        kwargs: dict[str, Any] = {
            "arg_name": "events",
            "topic": binding.binding_value,
            "broker_list": "%KAFKA_BROKERS%",
            "consumer_group": "%KAFKA_CONSUMER_GROUP%" if self.kafka_consumer_group else "kafka-adx",
            "cardinality": "many",
            "data_type": self.kafka_data_type,
            # Keys as bytes (base64 on the wire): with the default String the extension decodes
            # keys itself and replaces bytes that are not UTF-8, so a key would be altered
            # silently (Kafka extension 4.1+; host.json's bundle floor guarantees it).
            "key_data_type": "Binary",
        }
        if self.kafka_protocol:
            kwargs["protocol"] = self.kafka_protocol
        if self.kafka_sasl_mechanism:
            kwargs["authentication_mode"] = self.kafka_sasl_mechanism
            if self.kafka_sasl_mechanism != "Gssapi":
                kwargs["username"] = "%KAFKA_USERNAME%"
                kwargs["password"] = "%KAFKA_PASSWORD%"
        return kwargs


_SWITCHES = ("EVENTHUB_NAME", "KAFKA_BROKERS")
"""The settings that switch a trigger on."""

_FIELDS: dict[str, tuple[str, str | None]] = {
    "eventhubs": ("EVENTHUB_NAME", None),
    "eventhub_consumer_group": ("EVENTHUB_CONSUMER_GROUP", None),
    "eventhub_header_encoding": ("EVENTHUB_HEADER_ENCODING", None),
    "eventhub_namespace": ("EventHubConnection__fullyQualifiedNamespace", "EVENTHUB_NAME"),
    "kafka_brokers": ("KAFKA_BROKERS", None),
    "kafka_topics": ("KAFKA_TOPIC", "KAFKA_BROKERS"),
    "kafka_consumer_group": ("KAFKA_CONSUMER_GROUP", "KAFKA_BROKERS"),
    "kafka_protocol": ("KAFKA_PROTOCOL", "KAFKA_BROKERS"),
    "kafka_sasl_mechanism": ("KAFKA_SASL_MECHANISM", "KAFKA_BROKERS"),
    "kafka_data_type": ("KAFKA_DATA_TYPE", "KAFKA_BROKERS"),
    "retry_max_count": ("RETRY_MAX_COUNT", None),
    "retry_min_interval": ("RETRY_MIN_INTERVAL", None),
    "retry_max_interval": ("RETRY_MAX_INTERVAL", None),
}
"""Field of :class:`TriggerSettings` -> (the app setting it is read from, the trigger switch it
is read under: a trigger's settings count only when it is on, so a stray KAFKA_PROTOCOL on an
Event Hubs-only app is not an error)."""


def _describe(error: ErrorDetails) -> str:
    """One pydantic error as ``SETTING: problem`` (a model-wide one names its settings itself)."""
    if not error["loc"]:
        return str(error["msg"])
    field = str(error["loc"][0])
    return f"{_FIELDS[field][0] if field in _FIELDS else field}: {error['msg']}"


def _requirements(get: Callable[[str], str | None]) -> list[tuple[str, str]]:
    """(setting, why) for each setting the triggers switched on need beside their switch."""
    needed: list[tuple[str, str]] = []
    if get("EVENTHUB_NAME"):
        needed.append(("EventHubConnection__fullyQualifiedNamespace",
                       "required when EVENTHUB_NAME is set (<namespace>.servicebus.windows.net)"))  # fmt: skip
    if get("KAFKA_BROKERS"):
        needed.append(("KAFKA_TOPIC", "required when KAFKA_BROKERS is set"))
        mechanism = get("KAFKA_SASL_MECHANISM")
        if mechanism and spelling_key(mechanism) != "gssapi":
            needed += [(name, "required with KAFKA_SASL_MECHANISM") for name in ("KAFKA_USERNAME", "KAFKA_PASSWORD")]
    return needed


def _missing(get: Callable[[str], str | None]) -> list[str]:
    """Required settings that are unset, and identity settings that only work together."""
    problems: list[str] = []
    for name, why in _requirements(get):
        if name == "EventHubConnection__fullyQualifiedNamespace":
            present = bool(get(name) or get("EventHubConnection"))  # or a connection string
        elif name == "KAFKA_TOPIC":
            present = bool(_names(get(name)))
        else:
            present = get(name) is not None
        if not present:
            problems.append(f"{name}: {why}")
    if get("EVENTHUB_NAME"):
        credential = get("EventHubConnection__credential")
        if credential and credential.lower() != "managedidentity":
            problems.append("EventHubConnection__credential: only 'managedidentity' is supported")
        if get("EventHubConnection__clientId") and not credential:
            problems.append("EventHubConnection__clientId: needs EventHubConnection__credential=managedidentity")
    return problems


def _bindings(prefix: str, names: Sequence[str], setting: str) -> list[TriggerBinding]:
    if len(names) == 1:
        return [TriggerBinding(prefix, names[0], setting)]
    bindings: list[TriggerBinding] = []
    used: set[str] = set()
    for name in names:
        function_name = f"{prefix}_{_FUNCTION_NAME.sub('_', name)}"[:120]
        candidate, number = function_name, 2
        while candidate in used:
            candidate, number = f"{function_name}_{number}", number + 1
        used.add(candidate)
        bindings.append(TriggerBinding(candidate, name, name))
    return bindings


def required_settings(env: Mapping[str, str]) -> set[str]:
    """Settings that must be present for the triggers switched on in ``env``."""
    get = _reader(env)
    switches = {name for name in _SWITCHES if get(name)}
    return switches | {name for name, _ in _requirements(get)}


def _reader(env: Mapping[str, str]) -> Callable[[str], str | None]:
    """A setting's value from ``env``, stripped; empty counts as unset."""

    def get(name: str) -> str | None:
        value = env.get(name, "").strip()
        return value or None

    return get
