"""While ``KafkaIngestor.run`` consumes, the garbage collector's youngest generation waits for
``GC_YOUNG_THRESHOLD`` allocations (a flushed batch is freed as a whole); the caller's
thresholds are back when it returns, and a threshold the caller chose itself is left alone."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.kafka.consumer import GC_YOUNG_THRESHOLD
from shared.pipeline.batching import Batch
from shared.pipeline.sink import MemorySink
from tests.unit.kafka.test_consumer import FakeConsumer, messages, run


class ThresholdSink(MemorySink):
    """Notes the collector's thresholds at every batch it is handed."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[int, int, int]] = []

    def write(self, batch: Batch) -> None:
        self.seen.append(gc.get_threshold())
        super().write(batch)


@pytest.fixture
def thresholds() -> Iterator[None]:
    saved = gc.get_threshold()
    try:
        yield
    finally:
        gc.set_threshold(*saved)


@pytest.mark.parametrize(("before", "during"), [
    ((700, 10, 10), (GC_YOUNG_THRESHOLD, 10, 10)),
    ((1000, 7, 3), (GC_YOUNG_THRESHOLD, 7, 3)),
    ((GC_YOUNG_THRESHOLD * 2, 10, 10), (GC_YOUNG_THRESHOLD * 2, 10, 10)),  # raised by the caller: kept
    ((0, 10, 10), (0, 10, 10)),  # collection off: kept off
])  # fmt: skip
def test_consuming_collects_the_young_generation_rarely_and_puts_the_thresholds_back(
    tmp_path: Path, thresholds: None, before: tuple[int, int, int], during: tuple[int, int, int]
) -> None:
    gc.set_threshold(*before)
    sink = ThresholdSink()
    _, got, _ = run(FakeConsumer(messages(b'{"a": 1}', b'{"a": 2}', b'{"a": 3}')), tmp_path, sink=sink, batch_records=2)
    assert got is sink and sink.seen and set(sink.seen) == {during}
    assert gc.get_threshold() == before
