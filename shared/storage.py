"""Azure Storage clients with bounded retries: the one set of retry and timeout options for every
blob and queue client this package builds (the ADX sink's upload and queue message, the status
queues, the blob dead-letter store, preflight's probes).

The storage SDK's own default (15 s initial backoff, 3 retries) can hold a call for about a
minute on each 5xx: with storage down, ``ingest`` took 145 s and ``status`` 104 s to give up.
The callers retry a batch or a dead-letter set themselves (the pipeline's retry policy, the
trigger's redelivery), so a storage client only rides out a blip.

It sits below the sinks and the dead-letter store, next to :mod:`shared.credentials`, because
both use it, and imports no storage package itself: the caller passes the ``ExponentialRetry``
of the package it builds a client from (blob and queue each have their own).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class StorageRetry:
    """Retries and timeouts of one storage call (per container or queue tried).

    The default is one retry after about 1.5 s, then the next container or queue (a few seconds
    per container with storage down).
    """

    total: int = 1
    """Retries after the first try (network errors, 408, 5xx); 0 for one request, no retry."""
    initial_backoff: float = 0.5
    """Seconds before the first retry (plus ``increment_base ** retry``)."""
    increment_base: float = 1.0
    """Backoff grows as ``initial_backoff + increment_base ** retry``."""
    jitter: float = 0.5
    """Random +/- seconds added to each backoff."""
    connection_timeout: float = 5.0
    """Seconds to connect (a loopback or in-region storage account connects in milliseconds)."""
    read_timeout: float = 60.0
    """Seconds to wait for an answer."""

    @classmethod
    def within(cls, timeout: float, *, retries: int = 1, backoff: float = 0.5) -> StorageRetry:
        """``retries`` retries, the n-th after about ``backoff + 1`` seconds (``backoff + 2**n``
        with ``backoff >= 1``), each request answered within ``timeout`` seconds (connecting
        within at most 5)."""
        return cls(
            total=retries,
            initial_backoff=backoff,
            increment_base=2 if backoff >= 1 else 1,
            jitter=min(1.0, backoff / 2),
            connection_timeout=min(timeout, 5.0),
            read_timeout=timeout,
        )

    def client_kwargs(self, policy_cls: Callable[..., Any]) -> dict[str, Any]:
        """Keyword arguments for a storage client (``policy_cls`` is the ``ExponentialRetry`` of
        the client's package: ``azure.storage.blob`` or ``azure.storage.queue``)."""
        return {
            "retry_policy": policy_cls(
                initial_backoff=self.initial_backoff,
                increment_base=self.increment_base,
                retry_total=self.total,
                random_jitter_range=self.jitter,
            ),
            "connection_timeout": self.connection_timeout,
            "read_timeout": self.read_timeout,
        }
