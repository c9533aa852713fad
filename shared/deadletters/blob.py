"""Dead letters on Azure Blob Storage: one blob per set, ``<set id>.jsonl`` (JSON lines of
envelopes, see :mod:`shared.deadletters.envelope`), plus replay marks under ``replayed/<set id>.json``.

The container comes from ``DEADLETTER_BLOB_URI``; the credential from ``ADX_AUTH`` (managed
identity in Azure). Product code never holds an account key: a test passes Azurite's dev key
explicitly. Writing a set again (a redelivered trigger batch) overwrites the same blob.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from typing import Any

import orjson
from azure.core.exceptions import AzureError, ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import ContainerClient, ContentSettings, ExponentialRetry

from shared.credentials import credential_for
from shared.deadletters.envelope import decode_letters, encode_letters
from shared.errors import ConfigError, DeadLetterError, describe
from shared.pipeline.deadletter import DeadLetter, set_id_for
from shared.settings import Settings
from shared.storage import StorageRetry

log = logging.getLogger("kafka_adx.deadletter")

MARK_PREFIX = "replayed/"
SUFFIX = ".jsonl"


def _metadata(letters: Sequence[DeadLetter]) -> dict[str, str]:
    """Blob metadata that lets an operator see what a set holds without downloading it."""
    first = letters[0]
    dest = first.destination
    tables = sorted({f"{le.destination.database}.{le.destination.table}" for le in letters if le.destination})
    meta = {
        "count": str(len(letters)),
        "stage": first.stage,
        "tables": ",".join(tables)[:1024],
        "first_time": min(le.time for le in letters).isoformat(),
    }
    if dest is not None and len(tables) == 1:
        meta["database"], meta["table"] = dest.database, dest.table
    if first.batch_id:
        meta["batch_id"] = first.batch_id
    return meta


class BlobDeadLetterStore:
    """Dead-letter store on a blob container (same protocol as ``LocalDeadLetterStore``)."""

    def __init__(self, container: ContainerClient, *, create_container: bool = True) -> None:
        self.container = container
        self.create_container = create_container

    @classmethod
    def from_url(
        cls,
        url: str,
        credential: Any | None = None,
        *,
        retries: int = 1,
        backoff: float = 0.5,
        timeout: float = 30.0,
    ) -> BlobDeadLetterStore:
        """A store for the container at ``url`` with bounded, jittered retries (the n-th after
        about ``backoff + 1`` seconds, ``backoff + 2`` with ``backoff >= 1``).

        One retry by default: the callers retry a failed write themselves (the pipeline raises
        :class:`DeadLetterError`, the consumer retries for ``--deadletter-retry-timeout``, the
        trigger redelivers), and the storage SDK's own policy held ``ingest`` for 145 s and
        ``status`` for 104 s when storage was down.
        """
        container = ContainerClient.from_container_url(
            url,
            credential=credential,
            **StorageRetry.within(timeout, retries=retries, backoff=backoff).client_kwargs(ExponentialRetry),
        )
        return cls(container)

    @classmethod
    def from_settings(cls, settings: Settings) -> BlobDeadLetterStore:
        """The store of ``DEADLETTER_BLOB_URI`` with the credential of ``ADX_AUTH``."""
        if not settings.deadletter_blob_uri:
            raise ConfigError("DEADLETTER_BLOB_URI is not set")
        return cls.from_url(settings.deadletter_blob_uri, credential_for(settings))

    def check(self) -> str | None:
        """Whether the container can be reached with this store's credential: None when it can,
        else one line saying what failed (no SAS). One small request: list at most one blob.

        A missing container counts as usable (the store creates it on the first write), and so
        does a credential that may write but not list (a write-only SAS): the account answered.
        """
        try:
            pages = self.container.list_blobs(results_per_page=1).by_page()
            next(pages, None)
        except ResourceNotFoundError:
            return None
        except AzureError as exc:
            code = str(getattr(exc, "error_code", "") or "")
            if getattr(exc, "status_code", None) == 403 and code == "AuthorizationPermissionMismatch":
                return None
            return describe(exc)
        return None

    # -- the DeadLetterStore protocol ---------------------------------------------------------

    def write(self, letters: Sequence[DeadLetter]) -> str:
        """Upload the set as one blob (overwriting the same set); raise DeadLetterError."""
        if not letters:
            raise DeadLetterError("refusing to write an empty dead-letter set")
        set_id = set_id_for(letters)
        name = f"{set_id}{SUFFIX}"
        data = encode_letters(letters)
        try:
            self._upload(name, data, _metadata(letters))
        except ResourceNotFoundError:
            if not self.create_container:
                raise DeadLetterError(f"dead-letter container {self.container.container_name} does not exist") from None
            try:
                self._create()
                self._upload(name, data, _metadata(letters))
            except AzureError as exc:
                raise DeadLetterError(f"cannot write dead-letter set {set_id} to blob storage: {describe(exc)}") from exc
        except AzureError as exc:
            raise DeadLetterError(f"cannot write dead-letter set {set_id} to blob storage: {describe(exc)}") from exc
        log.info("dead-letter set %s: %d record(s) in blob %s", set_id, len(letters), name)
        return set_id

    def sets(self) -> Iterator[str]:
        """Set ids, oldest first (by the blob's creation time)."""
        try:
            blobs = [
                b
                for b in self.container.list_blobs()
                if b.name.endswith(SUFFIX) and "/" not in b.name
            ]
        except ResourceNotFoundError:
            return iter(())
        except AzureError as exc:
            raise DeadLetterError(f"cannot list dead letters: {describe(exc)}") from exc
        blobs.sort(key=lambda b: (b.creation_time, b.name))
        return (b.name[: -len(SUFFIX)] for b in blobs)

    def read(self, set_id: str) -> list[DeadLetter]:
        """The letters of one set."""
        name = f"{set_id}{SUFFIX}"
        try:
            data = self.container.download_blob(name).readall()
        except AzureError as exc:
            raise DeadLetterError(f"cannot read dead-letter set {set_id}: {describe(exc)}") from exc
        return decode_letters(bytes(data), f"{self.container.container_name}/{name}")

    # -- replay marks ------------------------------------------------------------------------

    def get_mark(self, set_id: str) -> dict[str, Any] | None:
        """The replay mark of a set, or None."""
        try:
            data = self.container.download_blob(f"{MARK_PREFIX}{set_id}.json").readall()
        except ResourceNotFoundError:
            return None
        except AzureError as exc:
            raise DeadLetterError(f"cannot read the replay mark of {set_id}: {describe(exc)}") from exc
        mark: dict[str, Any] = orjson.loads(data)
        return mark

    def put_mark(self, set_id: str, mark: dict[str, Any]) -> None:
        """Record that (part of) a set was replayed."""
        try:
            self._upload(f"{MARK_PREFIX}{set_id}.json", orjson.dumps(mark), {}, "application/json")
        except AzureError as exc:
            raise DeadLetterError(f"cannot write the replay mark of {set_id}: {describe(exc)}") from exc

    # -- helpers ----------------------------------------------------------------------------

    def _upload(self, name: str, data: bytes, metadata: dict[str, str], content_type: str = "application/x-ndjson") -> None:
        self.container.upload_blob(
            name,
            data,
            length=len(data),
            overwrite=True,
            metadata=metadata,
            content_settings=ContentSettings(content_type=content_type),
        )

    def _create(self) -> None:
        with contextlib.suppress(ResourceExistsError):
            self.container.create_container()

    def close(self) -> None:
        """Close the container client."""
        self.container.close()

