"""Error types shared by every part, the generic sorting of errors into retry classes, and
one-line descriptions of errors (redacted)."""

from __future__ import annotations

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


def classify(exc: BaseException) -> type[SinkError]:
    """Return :class:`TransientError` or :class:`TerminalError` for any exception from a sink.

    The generic rules only: a sink that talks to a service maps that SDK's errors itself and
    raises one of the two (the ADX sink: :func:`shared.sinks.adx.errors.classify`, which falls
    back to this function for what it does not know).
    """
    if isinstance(exc, TransientError):
        return TransientError
    if isinstance(exc, TerminalError):
        return TerminalError
    if isinstance(exc, (TimeoutError, ConnectionError)):
        return TransientError
    # Everything else, local I/O included (disk full, permissions), will not fix itself on an
    # immediate retry.
    return TerminalError


def error_line(exc: BaseException, limit: int = 200) -> str:
    """The first line of an exception's text, redacted (an SDK error may carry a SAS URI), at
    most ``limit`` characters: for one-line messages."""
    lines = redact(str(exc)).strip().splitlines()
    return lines[0][:limit] if lines else ""


def describe(exc: BaseException) -> str:
    """One line about an error: its type, the HTTP status and error code when it has them (the
    ``status_code`` / ``error_code`` of azure-core errors) and :func:`error_line`."""
    parts = [type(exc).__name__]
    status = getattr(exc, "status_code", None)
    if status:
        parts.append(f"HTTP {status}")
    code = getattr(exc, "error_code", None)
    if code:
        parts.append(str(code))
    text = error_line(exc)
    if text:
        parts.append(text)
    return ": ".join(parts)
