"""Error types shared by every part, and the one place that sorts errors into retry classes."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

from shared.redact import redact


class KafkaAdxError(Exception):
    """Base class of this package's errors. Text arguments are redacted on the way in, so no
    credential (a SAS signature in an SDK's error, a key) reaches a log or a dead letter
    through an exception's message."""

    def __init__(self, *args: object) -> None:
        super().__init__(*(redact(a) if isinstance(a, str) else a for a in args))


class ConfigError(KafkaAdxError):
    """The ingestion file or the settings are invalid; the message names the file and field."""


class RecordError(KafkaAdxError):
    """One record cannot be decoded, routed or mapped: it is dead-lettered, the batch goes on.

    ``stage`` is where it failed (decode, route, map, size); ``field`` the column or path when
    one applies.
    """

    def __init__(self, reason: str, *, stage: str, field: str | None = None) -> None:
        reason = redact(reason)
        super().__init__(reason)
        self.reason = reason
        self.stage = stage
        self.field = field
        # Filled in by the pipeline once known, so the dead letter can name them.
        self.route: str | None = None
        self.destination: Any = None


class SinkError(KafkaAdxError):
    """A sink could not write a batch."""


class TransientError(SinkError):
    """Worth retrying: throttling, network errors, timeouts, 5xx, non-permanent service errors."""


class TerminalError(SinkError):
    """Retrying cannot help: permanent service errors, auth failures, missing tables."""


class InputStopped(KafkaAdxError):
    """Reading the input stopped before its end. The pipeline first delivers the batches and
    dead letters of what it has read, then lets this propagate (the caller's ``Result`` holds
    the counts so far)."""


class InputError(InputStopped):
    """The input cannot be read further (a truncated or corrupt file, a read error); the message
    names the file and the line and byte where reading failed."""


class Interrupted(InputStopped):
    """The user asked to stop (SIGINT / SIGTERM): what was read so far is flushed first."""


class DeadLetterError(KafkaAdxError):
    """The dead-letter store itself failed; the caller must not advance its checkpoint."""


# Extra classifiers registered by optional sinks (the ADX sink maps SDK errors here), so that
# the decision stays in this one function without importing heavy SDKs at module load.
_CLASSIFIERS: list[Callable[[BaseException], type[SinkError] | None]] = []


def register_classifier(fn: Callable[[BaseException], type[SinkError] | None]) -> None:
    """Add a classifier consulted by :func:`classify` before the generic rules."""
    if fn not in _CLASSIFIERS:
        _CLASSIFIERS.append(fn)


def classify(exc: BaseException) -> type[SinkError]:
    """Return :class:`TransientError` or :class:`TerminalError` for any exception from a sink."""
    if isinstance(exc, TransientError):
        return TransientError
    if isinstance(exc, TerminalError):
        return TerminalError
    for fn in _CLASSIFIERS:
        kind = fn(exc)
        if kind is not None:
            return kind
    if isinstance(exc, (TimeoutError, ConnectionError, socket.timeout)):
        return TransientError
    if isinstance(exc, OSError) and exc.errno is not None:
        # Local I/O (disk full, permissions) will not fix itself on an immediate retry.
        return TerminalError
    return TerminalError
