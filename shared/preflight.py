"""Fail fast: checks that run before any input is read (placeholder signatures; being built)."""

from __future__ import annotations

from shared.config import IngestionConfig
from shared.errors import KafkaAdxError
from shared.settings import Settings


class PreflightError(KafkaAdxError):
    """A target cannot be used (unreachable, missing table or mapping); the message says which
    and what to do."""


def preflight(settings: Settings, config: IngestionConfig, *, timeout: float = 10.0) -> None:
    """Check, within about ``timeout`` seconds, that the configured sink and dead-letter store
    can be used; raise :class:`PreflightError` otherwise."""
    return None
