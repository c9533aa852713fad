"""Which delivery of a trigger batch an invocation is: the Functions host's retry context read as
an attempt number and whether it is the final one (then failures are dead-lettered, not retried)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Attempt:
    """Which delivery of a batch this invocation is."""

    number: int
    """1 for the first delivery."""
    max_retries: int
    """The retry policy's max_retry_count (-1: forever; 0: no retry policy)."""

    @property
    def final(self) -> bool:
        """No retry follows this attempt: failures must be dead-lettered now."""
        return self.max_retries >= 0 and self.number > self.max_retries

    def describe(self) -> str:
        """``2/6`` style, ``3/inf`` for unlimited retries."""
        total = "inf" if self.max_retries < 0 else str(self.max_retries + 1)
        return f"{self.number}/{total}"


def attempt_of(context: Any) -> Attempt:
    """The attempt from ``context.retry_context`` (no retry context: a single, final attempt)."""
    retry = getattr(context, "retry_context", None)
    if retry is None:
        return Attempt(1, 0)
    count = int(getattr(retry, "retry_count", 0) or 0)
    max_count = getattr(retry, "max_retry_count", 0)
    return Attempt(count + 1, int(max_count if max_count is not None else 0))
