"""Fail fast: checks that run before any input is read.

A typo in ``ADX_INGEST_URI`` used to dead-letter everything (300,000 records became 546 MB of
dead letters in 22 s), and a storage account that was down held ``ingest`` for 145 s. So
``ingest``, ``consume`` and ``replay`` call :func:`preflight` first, and the function app once
per worker start (it logs the error). Each check makes one or two small requests with a short
timeout and no retries of its own; the first failure stops with one :class:`PreflightError`
whose message names the setting, the host, what failed and what to do.

What is checked:

* local mode (no ``ADX_INGEST_URI``): the DuckDB file and the dead-letter folder can be written;
* ADX: the ingestion endpoint answers ``.get ingestion resources`` with all five resource kinds,
  and the first temp container and ingestion queue it lists answer one request each; then, on the engine (``ADX_ENGINE_URI``, derived from the ingest URI), every table a route
  sends to and every mapping ADX must apply exist (``.show tables``,
  ``.show table T ingestion mappings``). An identity that may ingest but not read the schema
  (the Ingestor role alone) is not stopped: the check is skipped with a warning;
* ``DEADLETTER_BLOB_URI``: the container answers (a one-blob list), else the local folder;
* Kafka, separately (:func:`check_kafka`): the brokers answer a metadata request.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from shared.config import IngestionConfig
from shared.credentials import credential_for
from shared.errors import KafkaAdxError, error_line
from shared.settings import Settings
from shared.storage import StorageRetry

log = logging.getLogger("kafka_adx.preflight")

_RESOURCE_KINDS = ("TempStorage", "SecuredReadyForAggregationQueue", "FailedIngestionsQueue",
                   "SuccessfulIngestionsQueue", "IngestionsStatusTable")  # fmt: skip
"""What ``.get ingestion resources`` must list (the SDK re-fetches on every call otherwise)."""

_KAFKA_SECRETS = ("sasl.password", "sasl.oauthbearer.client.secret", "ssl.key.password", "ssl.keystore.password")


class PreflightError(KafkaAdxError):
    """A target cannot be used (unreachable, missing table or mapping); the message says which
    and what to do."""


def host_of(uri: str) -> str:
    """The host (and port) of a URI, without credentials, path or query (never a SAS)."""
    parts = urlsplit(uri)
    return parts.netloc.rsplit("@", 1)[-1] or uri.split("?", 1)[0]


def preflight(settings: Settings, config: IngestionConfig, *, timeout: float = 10.0) -> None:
    """Check, within about ``timeout`` seconds, that the configured sink and dead-letter store
    can be used; raise :class:`PreflightError` otherwise (see the module docstring)."""
    budget = _Budget(time.monotonic() + timeout)
    if settings.local_mode:
        _check_local_db(settings.local_db)
    else:
        clients = _clients(settings)
        _check_ingest(clients, settings, budget)
        if settings.engine_uri:
            _check_tables(clients, settings, config, budget)
    if settings.deadletter_blob_uri:
        _check_deadletter_blob(settings, budget)
    else:
        _check_folder(settings.local_deadletter_dir, "LOCAL_DEADLETTER_DIR", "the dead-letter folder")


class _Budget:
    """What is left of preflight's ``timeout``, shared by its requests."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline

    def left(self) -> float:
        """Seconds for the next request: what is left, at least one second (the SDK's resolution)."""
        return max(1.0, self.deadline - time.monotonic())


def _clients(settings: Settings) -> Any:
    """The process-wide ADX clients (the pipeline reuses them), or a PreflightError saying why
    they cannot be built (``ADX_AUTH=none`` with an https URI, for example)."""
    from shared.sinks.adx import clients_for

    try:
        return clients_for(settings)
    except Exception as exc:
        uri = settings.adx_ingest_uri or ""
        hint = ("ADX_AUTH=none is for loopback stand-ins over http://; set ADX_AUTH=managed-identity or default"
                if settings.adx_auth == "none" and uri.startswith("https://") else
                f"Check ADX_INGEST_URI and {_identity(settings)}")
        raise PreflightError(f"ADX_INGEST_URI ({host_of(uri)}): cannot set up the ADX clients: "
                             f"{type(exc).__name__}: {error_line(exc)}. {hint}.") from None


def log_preflight(settings: Settings, config: IngestionConfig, *, timeout: float = 10.0,
                  logger: logging.Logger | None = None) -> bool:
    """:func:`preflight` for a process that must start anyway (the function app, once per worker
    start): a failure is logged as one error with its remedy and False is returned; the
    delivery contract (retries, dead letters) still holds for the batches that follow."""
    logger = logger or log
    try:
        preflight(settings, config, timeout=timeout)
    except PreflightError as exc:
        logger.error("preflight failed: %s", exc)
        return False
    except Exception as exc:  # a check must never keep the worker from starting
        logger.error("preflight could not run: %s: %s", type(exc).__name__, error_line(exc, 300))
        return False
    return True


# --------------------------------------------------------------------------------------------
# Local mode
# --------------------------------------------------------------------------------------------


def _check_folder(folder: Path, setting: str, what: str, value: Path | None = None) -> None:
    """The folder exists (or can be made) and a file can be created in it (``value``: the
    setting's value, when the folder is derived from it)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        # os.access says yes to root on a read-only mount: create and remove a real file.
        handle, name = tempfile.mkstemp(prefix=".kafka-adx-preflight-", dir=folder)
        os.close(handle)
        os.unlink(name)
    except OSError as exc:
        blocker = next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), None)
        reason = f"{blocker} is a file, not a folder" if blocker is not None else (exc.strerror or str(exc))
        raise PreflightError(
            f"{setting} ({value or folder}): {what} cannot be written: {reason}. "
            f"Set {setting} to a path whose folder this process can create and write."
        ) from None


def _check_local_db(path: Path) -> None:
    """The DuckDB file's folder is writable and the file, if it exists, is a writable file."""
    _check_folder(path.parent, "LOCAL_DB", "the folder of the DuckDB file", path)
    if path.exists() and (path.is_dir() or not os.access(path, os.W_OK)):
        problem = "is a folder" if path.is_dir() else "is not writable"
        raise PreflightError(f"LOCAL_DB ({path}): the DuckDB file {problem}. Set LOCAL_DB to a writable file path.")


# --------------------------------------------------------------------------------------------
# ADX
# --------------------------------------------------------------------------------------------


def _engine_setting(settings: Settings) -> str:
    return "ADX_ENGINE_URI" if settings.adx_engine_uri else "ADX_ENGINE_URI (derived from ADX_INGEST_URI)"


def _identity(settings: Settings) -> str:
    client = f", AZURE_CLIENT_ID={settings.azure_client_id}" if settings.azure_client_id else ""
    return f"ADX_AUTH={settings.adx_auth}{client}"


def _root_cause(exc: BaseException) -> BaseException:
    seen: set[int] = set()
    while exc.__cause__ is not None and id(exc) not in seen:
        seen.add(id(exc))
        exc = exc.__cause__
    return exc


def explain_adx_error(exc: BaseException, timeout: float) -> tuple[str, str]:
    """(what failed, kind) for an SDK error of a management call; kind is ``network``,
    ``timeout``, ``auth``, ``forbidden``, ``missing`` or ``error``. Never includes a token."""
    from azure.core.exceptions import ClientAuthenticationError
    from azure.kusto.data.exceptions import KustoApiError, KustoAuthenticationError, KustoNetworkError

    from shared.sinks.adx import describe_error, status_of

    if isinstance(exc, (KustoAuthenticationError, ClientAuthenticationError)):
        return f"no token for ADX: {type(exc).__name__}: {error_line(exc)}", "auth"
    if isinstance(exc, KustoNetworkError):
        cause = _root_cause(exc)
        text = f"{type(cause).__name__}: {cause}"
        lowered = text.lower()
        if "timeout" in lowered or "timed out" in lowered:
            return f"no answer within {timeout:.0f} s", "timeout"
        if "name or service not known" in lowered or "nodename nor servname" in lowered or \
                "getaddrinfo" in lowered or "name resolution" in lowered:
            return "the host name does not resolve", "network"
        if "refused" in lowered:
            return "connection refused", "network"
        return f"network error ({type(cause).__name__})", "network"
    status = status_of(exc)
    if status in (401, 403):
        return f"ADX refused the identity (HTTP {status}: {describe_error(exc)})", "forbidden"
    if isinstance(exc, KustoApiError) and "NotFound" in (exc.get_api_error().code or ""):
        return describe_error(exc), "missing"
    return describe_error(exc), "error"


def _check_ingest(clients: Any, settings: Settings, budget: _Budget) -> None:
    """``.get ingestion resources`` on the ingest URI answers with every resource kind, and the
    storage it lists can be reached."""
    uri = settings.adx_ingest_uri or ""
    where = f"ADX_INGEST_URI ({host_of(uri)})"
    shape = "https://ingest-<cluster>.<region>.kusto.windows.net"
    timeout = budget.left()
    try:
        rows = clients.management(".get ingestion resources", timeout=timeout, endpoint="ingest")
    except Exception as exc:
        what, kind = explain_adx_error(exc, timeout)
        remedy = {
            "network": f"Check ADX_INGEST_URI for a typo (it looks like {shape}), that the cluster is "
                       "running and that this machine can reach it (DNS, firewall, private endpoint).",
            "timeout": "Check that the cluster is running and reachable from here (firewall, private endpoint, "
                       "proxy); a stopped cluster does not answer.",
            "auth": f"Check {_identity(settings)}: the credential could not get a token "
                    "(managed identity assigned? `az login` done for default?).",
            "forbidden": f"Grant the identity ({_identity(settings)}) the Ingestor role on the database.",
        }.get(kind, f"Check that ADX_INGEST_URI is the cluster's data-ingestion URI ({shape}).")
        raise PreflightError(f"{where}: cannot reach the ADX ingestion endpoint: {what}. {remedy}") from None
    kinds = {str(row.get("ResourceTypeName")) for row in rows}
    missing = [k for k in _RESOURCE_KINDS if k not in kinds]
    if missing:
        raise PreflightError(
            f"{where}: the endpoint answered but listed no {', '.join(missing)}: it is not an ADX "
            f"data-ingestion endpoint. Set ADX_INGEST_URI to the cluster's data-ingestion URI ({shape}), "
            "not the engine (query) URI."
        )
    problem = _probe_temp_storage(rows, budget)
    if problem is not None:
        raise PreflightError(
            f"{where}: the cluster's ingestion storage cannot be reached: {problem}. Queued ingestion uploads "
            "each batch there: check that this machine can reach the storage accounts the cluster hands out "
            "(*.blob.core.windows.net, *.queue.core.windows.net: firewall, proxy, private endpoint)."
        )


def _probe_temp_storage(rows: Sequence[dict[str, Any]], budget: _Budget) -> str | None:
    """One request, no retries, to the first temp container and the first ingestion queue of
    ``.get ingestion resources``: None when both accounts answer, else what failed (no SAS).

    Any HTTP answer below 500 counts as reachable (a 404 for the probe blob, a 403 for a SAS
    that may add but not read): the question is whether the account can be reached at all.
    """
    from azure.core.exceptions import AzureError, HttpResponseError
    from azure.storage.blob import ContainerClient
    from azure.storage.blob import ExponentialRetry as BlobRetry
    from azure.storage.queue import ExponentialRetry as QueueRetry
    from azure.storage.queue import QueueClient

    from shared.sinks.adx import describe_error

    def first(kind: str) -> str | None:
        return next((str(r["StorageRoot"]) for r in rows if r.get("ResourceTypeName") == kind), None)

    def options(policy: Any) -> dict[str, Any]:
        return StorageRetry.within(budget.left(), retries=0).client_kwargs(policy)

    probes: list[tuple[str, Any]] = []
    container_uri, queue_uri = first("TempStorage"), first("SecuredReadyForAggregationQueue")
    if container_uri:
        probes.append((container_uri, lambda uri: ContainerClient.from_container_url(uri, **options(BlobRetry))
                       .get_blob_client("kafka-adx-preflight-probe").exists()))
    if queue_uri:
        probes.append((queue_uri, lambda uri: QueueClient.from_queue_url(uri, **options(QueueRetry))
                       .get_queue_properties()))
    for uri, probe in probes:
        try:
            probe(uri)
        except HttpResponseError as exc:
            if (exc.status_code or 500) < 500:
                continue
            return f"{host_of(uri)}: {describe_error(exc)}"
        except AzureError as exc:
            return f"{host_of(uri)}: {describe_error(exc)}"
    return None


def routed_targets(config: IngestionConfig) -> dict[str, dict[str, dict[str, str]]]:
    """database -> table -> {mapping name: kind} of every destination a route (or an allowed
    header-routing target) can send to; only mappings ADX applies (server side) are listed."""
    from shared.pipeline.routing import Router

    router = Router(config)
    out: dict[str, dict[str, dict[str, str]]] = {}
    for route in config.routes:
        for target in (None, *route.header_routing):
            dest = router.destination(route, target)
            mappings = out.setdefault(dest.database, {}).setdefault(dest.table, {})
            if dest.wire_mapping is not None:
                # An external mapping's kind is unknown here ("": checked by name only).
                declared = config.declared_mapping(dest.table, dest.wire_mapping)
                mappings[dest.wire_mapping] = declared.kind if declared is not None else ""
    return out


def _check_tables(clients: Any, settings: Settings, config: IngestionConfig, budget: _Budget) -> None:
    """Every routed table and server-side mapping exists on the engine."""
    from shared.ops.doctor import quote_name

    uri = settings.engine_uri or ""
    where = f"{_engine_setting(settings)} ({host_of(uri)})"
    timeout = budget.left()

    def run(database: str, command: str) -> list[dict[str, Any]]:
        nonlocal timeout
        timeout = budget.left()
        rows: list[dict[str, Any]] = clients.management(command, database=database, timeout=timeout)
        return rows

    missing: list[str] = []
    try:
        for database, tables in sorted(routed_targets(config).items()):
            try:
                existing = {str(r["TableName"]) for r in run(database, ".show tables")}
            except Exception as exc:
                if explain_adx_error(exc, timeout)[1] == "missing":
                    missing.append(f"database {database}")
                    continue
                raise
            for table, mappings in sorted(tables.items()):
                if table not in existing:
                    missing.append(f"table {database}.{table}")
                    continue
                if not mappings:
                    continue
                have = {(str(r["Name"]), str(r.get("Kind") or "").lower())
                        for r in run(database, f".show table {quote_name(table)} ingestion mappings")}
                for name, kind in sorted(mappings.items()):
                    if not any(n == name and (not kind or k == kind) for n, k in have):
                        missing.append(f"{kind or 'external'} mapping {name} of table {database}.{table}")
    except Exception as exc:
        what, kind = explain_adx_error(exc, timeout)
        if kind == "forbidden":
            # Ingesting needs only the Ingestor role; reading the schema needs Viewer. Not being
            # able to verify is no reason to stop: ADX reports missing tables asynchronously.
            log.warning("%s: cannot verify the routed tables and mappings: %s; grant the identity (%s) the "
                        "Viewer role on the database to have them checked before ingesting", where, what,
                        _identity(settings))
            return
        remedy = {
            "network": "Check ADX_ENGINE_URI (or the ingest URI it is derived from) and that this machine can "
                       "reach the engine.",
            "timeout": "Check that the engine is running and reachable from here.",
            "auth": f"Check {_identity(settings)}: the credential could not get a token.",
        }.get(kind, "Check ADX_ENGINE_URI: it must be the cluster's engine URI (https://<cluster>.<region>.kusto."
                    "windows.net).")
        raise PreflightError(f"{where}: cannot check the routed tables and mappings: {what}. {remedy}") from None
    if missing:
        raise PreflightError(
            f"{where}: the ingestion file routes to what the cluster does not have: {'; '.join(missing)}. "
            "Create them with `kafka-adx kql` (run its output in the database), or fix the names in the "
            "ingestion file; `kafka-adx doctor` lists every difference."
        )


# --------------------------------------------------------------------------------------------
# Dead-letter storage
# --------------------------------------------------------------------------------------------


def _check_deadletter_blob(settings: Settings, budget: _Budget) -> None:
    """The dead-letter container answers one small request, without retries."""
    from shared.deadletters.blob import BlobDeadLetterStore

    uri = settings.deadletter_blob_uri or ""
    # With ADX configured, the very credential object of the ADX clients (one token cache).
    credential = credential_for(settings) if settings.local_mode else _clients(settings).credential
    try:
        store = BlobDeadLetterStore.from_url(uri, credential, retries=0, timeout=budget.left())
    except ValueError as exc:  # the storage SDK's word for a URL it cannot use
        raise PreflightError(f"DEADLETTER_BLOB_URI ({host_of(uri)}): not a container URL: "
                             f"{error_line(exc)}. Set it to "
                             "https://<account>.blob.core.windows.net/<container>.") from None
    try:
        problem = store.check()
    finally:
        with contextlib.suppress(Exception):
            store.close()
    if problem is None:
        return
    parts = urlsplit(uri)
    container = parts.path.strip("/").split("/")[-1] or "?"
    lowered = problem.lower()
    if "403" in problem or "401" in problem or "authentic" in lowered or "authoriz" in lowered:
        remedy = (f"Check the credential ({_identity(settings)}, or the SAS in DEADLETTER_BLOB_URI: expired?): "
                  "the identity needs the Storage Blob Data Contributor role on the container.")
    else:
        remedy = ("Check DEADLETTER_BLOB_URI for a typo (https://<account>.blob.core.windows.net/<container>) and "
                  "that the storage account is up and reachable from here (firewall, private endpoint).")
    raise PreflightError(
        f"DEADLETTER_BLOB_URI ({host_of(uri)}, container {container}): the dead-letter store cannot be "
        f"reached: {problem}. {remedy}"
    )


# --------------------------------------------------------------------------------------------
# Kafka
# --------------------------------------------------------------------------------------------


def _scrub(text: str, conf: dict[str, Any]) -> str:
    for key in _KAFKA_SECRETS:
        secret = conf.get(key)
        if isinstance(secret, str) and secret:
            text = text.replace(secret, "***")
    return text


def check_kafka(conf: dict[str, Any], topics: Sequence[str], *, timeout: float) -> None:
    """Ask the brokers of ``conf`` (a confluent-kafka client configuration) for metadata within
    ``timeout`` seconds; raise :class:`PreflightError` naming the bootstrap servers (never a
    password) when they do not answer. Topics that do not exist (``^regex`` patterns are not
    checked) are logged as a warning: they may be created later, and a consumer waits for them.
    """
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import AdminClient

    servers = str(conf.get("bootstrap.servers") or "(no bootstrap.servers)")
    admin_conf = {k: v for k, v in conf.items() if k not in _CONSUMER_ONLY}
    # librdkafka would print each failed connection to stderr itself; route it to our logging.
    admin_conf.setdefault("logger", logging.getLogger("kafka_adx.preflight.librdkafka"))
    # Authentication refusals reach error_cb, not the metadata error ("transport failure"):
    # collect them so the error can say the broker refused the login.
    refusals: list[str] = []

    def on_error(error: Any) -> None:
        if error.code() == KafkaError._AUTHENTICATION:
            refusals.append(error.str())

    admin_conf["error_cb"] = on_error
    admin: AdminClient | None = None
    try:
        admin = AdminClient(admin_conf)
        metadata = admin.list_topics(timeout=max(0.5, timeout))
    except KafkaException as exc:
        if admin is not None:
            admin.poll(0)  # serve the queued error callbacks
        if refusals:
            raise PreflightError(
                f"KAFKA_BROKERS / --brokers ({servers}): the broker refused authentication: "
                f"{_scrub(refusals[-1], conf)}. Check KAFKA_SASL_MECHANISM and the credentials (KAFKA_USERNAME/"
                "KAFKA_PASSWORD, or the Entra ID identity and scope for OAUTHBEARER)."
            ) from None
        error = exc.args[0] if exc.args else None
        reason = _scrub(error.str() if isinstance(error, KafkaError) else str(exc), conf)
        raise PreflightError(
            f"KAFKA_BROKERS / --brokers ({servers}): no metadata from the brokers within {timeout:.0f} s: {reason}. "
            "Check the bootstrap servers (host:port), that the brokers are up and reachable from here, and the "
            "protocol and credentials (KAFKA_PROTOCOL, KAFKA_SASL_MECHANISM, KAFKA_USERNAME/KAFKA_PASSWORD)."
        ) from None
    absent = [t for t in topics if not t.startswith("^") and
              (t not in metadata.topics or metadata.topics[t].error is not None)]
    if absent:
        log.warning("Kafka (%s): topic(s) %s do not exist (yet); the consumer waits for them", servers,
                    ", ".join(absent))


# Consumer properties an admin client would warn about; the metadata request does not need them.
_CONSUMER_ONLY = frozenset({
    "group.id", "group.instance.id", "enable.auto.commit", "auto.offset.reset", "enable.auto.offset.store",
    "on_commit", "session.timeout.ms", "heartbeat.interval.ms", "max.poll.interval.ms", "isolation.level",
    "partition.assignment.strategy", "enable.partition.eof", "auto.commit.interval.ms", "fetch.min.bytes",
    "fetch.wait.max.ms", "queued.min.messages", "queued.max.messages.kbytes", "fetch.max.bytes",
    "max.partition.fetch.bytes", "fetch.message.max.bytes", "allow.auto.create.topics", "check.crcs",
})  # fmt: skip
