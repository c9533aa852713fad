"""The one retry policy: bounded tries, exponential backoff, optionally jittered, optionally
bounded in time too.

Used by the pipeline for transient sink failures (jittered, so that many workers retrying the
same outage do not hit it in step), and by the consumer for its dead-letter retry (bounded by
a time window opened at the first failure) and its commit retry.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to wait between tries of one operation.

    ``attempts`` is the number of tries in all (1 or less: one try, no retry; a caller that
    bounds its loop in time uses a :class:`RetryWindow` and :meth:`delay` alone). The wait before try
    ``n + 1`` is ``base_delay * 2 ** (n - 1)``, capped at ``max_delay``; with ``jitter`` (the
    default) it is drawn uniformly from zero up to that ("full jitter").
    """

    attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 10.0
    jitter: bool = True

    def backoff(self, attempt: int) -> float:
        """The capped exponential wait after try ``attempt`` (1-based), before any jitter."""
        return min(self.max_delay, self.base_delay * 2.0 ** (attempt - 1))

    def delay(self, attempt: int) -> float:
        """Backoff before try ``attempt + 1``: exponential, with full jitter unless turned off."""
        ceiling = self.backoff(attempt)
        return random.uniform(0, ceiling) if self.jitter else ceiling

    def may_retry(self, attempt: int) -> bool:
        """Whether another try may follow try ``attempt`` (1-based) under the count bound."""
        return attempt < self.attempts

    def tries(self) -> range:
        """The try numbers ``1..attempts`` (at least one try), for a ``for`` loop."""
        return range(1, max(1, self.attempts) + 1)


@dataclass
class RetryWindow:
    """A retry budget in time, opened at the first failure (not at the first try: how long the
    failed try took, say on a slow machine or with a large batch, must not eat into it)."""

    timeout: float
    """Seconds, from the first failure, within which a retry may still start."""
    clock: Callable[[], float]
    """Monotonic seconds (``time.monotonic`` or a test clock)."""
    _deadline: float | None = field(default=None, init=False)

    def allows(self, delay: float) -> bool:
        """Record a failure (the first one opens the window) and say whether a retry after
        waiting ``delay`` seconds would still start inside the window."""
        now = self.clock()
        if self._deadline is None:
            self._deadline = now + self.timeout
        return now + delay <= self._deadline
