"""The whole-batch fast paths of the function adapters run with the cyclic garbage collector
paused (``shared.sources.functions._paused_gc``): paused while they run, put back as it was when
they return or raise, and left alone when the caller had paused it. (That the records are the
same is what tests/unit/sources/test_functions_fast_paths.py pins: the pause changes no record.)"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from shared.sources import functions as fx
from tests.support.functions_host import HubEvent, KafkaMessage, eventhub_events, kafka_events

STAMP = datetime(2024, 5, 1, 12, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _collector_enabled() -> Iterator[None]:
    gc.enable()
    yield
    gc.enable()


def _kafka(data_type: str) -> list[Any]:
    messages = [KafkaMessage("t", n, b"v", key=b"k", headers=[("a", b"1")], timestamp=STAMP) for n in range(3)]
    return kafka_events(messages, data_type=data_type)


def _adapt_all() -> list[fx.Adapted]:
    hubs = eventhub_events([HubEvent(n, b"x") for n in range(3)], event_hub="h", partition="0")
    return [fx.kafka_records(_kafka("binary"), envelope=False, key_type="binary"),
            fx.kafka_records(_kafka("string"), envelope=True, key_type="binary"),
            fx.eventhub_records(hubs, event_hub="h")]  # fmt: skip


@pytest.mark.parametrize("name", ["_kafka_event_batch", "_envelope_batch", "_eventhub_batch"])
def test_the_collector_is_paused_in_the_fast_path_and_put_back(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    seen: list[bool] = []
    real = getattr(fx, name)

    def spy(*args: Any) -> Any:
        seen.append(gc.isenabled())
        return real(*args)

    monkeypatch.setattr(fx, name, spy)
    adapted = _adapt_all()
    assert seen == [False]
    assert gc.isenabled()
    assert all(len(a.records) == 3 and not a.errors for a in adapted)


def test_a_collector_the_caller_paused_stays_paused() -> None:
    gc.disable()
    _adapt_all()
    assert not gc.isenabled()


@pytest.mark.parametrize("name", ["_kafka_event_batch", "_envelope_batch", "_eventhub_batch"])
def test_the_collector_is_put_back_when_the_fast_path_raises(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    def broken(*args: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(fx, name, broken)
    with pytest.raises(RuntimeError, match="boom"):
        _adapt_all()
    assert gc.isenabled()
