"""The one sink interface, and an in-memory sink with failure switches for tests and benches."""

from __future__ import annotations

from typing import Protocol

from shared.errors import TerminalError, TransientError
from shared.pipeline.batching import Batch


class Sink(Protocol):
    """Writes a sealed batch or raises.

    ``write`` either returns (the batch is durably handed to the destination: queued, streamed
    or inserted) or raises. Any exception is sorted by :func:`shared.errors.classify`;
    implementations should raise :class:`TransientError` / :class:`TerminalError` themselves
    where they know better.
    """

    name: str

    def write(self, batch: Batch) -> None:
        """Hand one batch to the destination."""
        ...

    def close(self) -> None:
        """Release resources (clients are long-lived: call once per process)."""
        ...


class MemorySink:
    """Keeps batches in memory. ``fail_times`` transient failures first, or ``terminal=True``."""

    name = "memory"

    def __init__(self, *, fail_times: int = 0, terminal: bool = False, keep_payloads: bool = True) -> None:
        self.batches: list[Batch] = []
        self.fail_times = fail_times
        self.terminal = terminal
        self.keep_payloads = keep_payloads
        self.attempts = 0
        self.records_written = 0
        self.bytes_written = 0

    def write(self, batch: Batch) -> None:
        """Store the batch, or fail as configured."""
        self.attempts += 1
        if self.terminal:
            raise TerminalError(f"memory sink: terminal failure for {batch.destination.table}")
        if self.fail_times > 0:
            self.fail_times -= 1
            raise TransientError(f"memory sink: injected transient failure for {batch.destination.table}")
        self.records_written += batch.count
        self.bytes_written += len(batch.payload)
        if self.keep_payloads:
            self.batches.append(batch)

    def close(self) -> None:
        """Nothing to release."""
