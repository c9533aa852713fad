"""The delivery contract inside the function app, driven by ``context.retry_context``: transient
failures raise for redelivery until the final attempt, which dead-letters the whole batch and
returns; terminal failures dead-letter at once; a failing dead-letter store always raises."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from shared.config import IngestionConfig
from shared.deadletters.local import LocalDeadLetterStore
from shared.errors import DeadLetterError, TransientError
from shared.functions import worker as functions_worker
from shared.functions.attempts import attempt_of
from shared.ops.sample import storm_events, to_json
from shared.pipeline.batching import Batch
from shared.pipeline.core import Pipeline
from shared.pipeline.deadletter import DeadLetter
from shared.pipeline.retry import RetryPolicy
from shared.pipeline.sink import MemorySink
from tests.support.functions_app import KAFKA_ENV, LocalApp, load_app
from tests.support.functions_host import Context, KafkaMessage, kafka_events

MESSAGES = [
    KafkaMessage("storm-events-json", 50 + i, to_json(event), partition=i % 2)
    for i, event in enumerate(storm_events(6, seed=2))
] + [KafkaMessage("storm-events-json", 90, None)]
POISON = 1
"""The null value at offset 90 is dead-lettered on every attempt, whatever the sink does."""


class Harness:
    """The Kafka function with a pipeline on a MemorySink with failure switches."""

    def __init__(self, config: IngestionConfig, functions: dict[str, Any], tmp: Path) -> None:
        self.config = config
        self.function = functions["kafka_ingest"].get_user_function()
        self.store = LocalDeadLetterStore(tmp / "deadletter")
        self.sink = MemorySink()

    def use(self, sink: MemorySink, *, on_batch: Callable[[Batch], None] | None = None, store: Any = None) -> None:
        self.sink = sink
        pipeline = Pipeline(self.config, sink, store or self.store, retry=RetryPolicy(attempts=1), on_batch=on_batch)
        functions_worker.install(pipeline)

    def call(self, retry_count: int, max_retry_count: int = 5) -> None:
        self.function(events=kafka_events(MESSAGES), context=Context("kafka_ingest", retry_count, max_retry_count))

    def letters(self) -> list[DeadLetter]:
        return [letter for set_id in self.store.sets() for letter in self.store.read(set_id)]


@pytest.fixture
def harness(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sample_config: IngestionConfig) -> Iterator[Harness]:
    functions_worker.reset()
    yield Harness(sample_config, load_app(monkeypatch, KAFKA_ENV), tmp_path)
    functions_worker.reset()


def test_transient_failure_before_the_final_attempt_raises_for_redelivery(harness: Harness) -> None:
    harness.use(MemorySink(fail_times=100))
    with pytest.raises(TransientError):
        harness.call(retry_count=0)
    assert harness.sink.attempts == 1  # no in-process retry: the host's policy retries
    assert harness.sink.records_written == 0
    assert harness.letters() == []  # the redelivery handles the whole batch, poison included


def test_redelivered_batch_is_ingested_once_the_sink_recovers(harness: Harness) -> None:
    harness.use(MemorySink(fail_times=1))
    with pytest.raises(TransientError):
        harness.call(retry_count=0)
    harness.call(retry_count=1)
    assert harness.sink.records_written == len(MESSAGES) - POISON
    assert {letter.stage for letter in harness.letters()} == {"decode"}


def test_final_attempt_dead_letters_the_whole_batch_and_returns(harness: Harness) -> None:
    harness.use(MemorySink(fail_times=100))
    harness.call(retry_count=5, max_retry_count=5)  # does not raise: the checkpoint may advance
    letters = harness.letters()
    sink_letters = [letter for letter in letters if letter.stage == "sink"]
    assert sorted(letter.record.offset for letter in sink_letters) == [50, 51, 52, 53, 54, 55]
    assert all(letter.attempt == 6 and "transient (final attempt)" in letter.reason for letter in sink_letters)
    assert len(letters) == len(MESSAGES)  # 6 sink letters + 1 poison: nothing lost
    assert sink_letters[0].record.value == MESSAGES[int(sink_letters[0].record.offset) - 50].value


def test_terminal_failure_dead_letters_on_the_first_attempt(harness: Harness) -> None:
    harness.use(MemorySink(terminal=True))
    harness.call(retry_count=0)
    letters = harness.letters()
    assert len(letters) == len(MESSAGES)
    assert sum("terminal sink failure" in letter.reason for letter in letters) == len(MESSAGES) - POISON


def test_failing_dead_letter_store_raises_even_on_the_final_attempt(harness: Harness, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("x")
    harness.use(MemorySink(terminal=True), store=LocalDeadLetterStore(blocker / "deadletter"))
    with pytest.raises(DeadLetterError):
        harness.call(retry_count=5, max_retry_count=5)


def test_unexpected_error_on_the_final_attempt_dead_letters_only_what_was_not_written(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    """A bug strikes after the first batch was written: the written records are not
    dead-lettered too (a replay would ingest them twice), the rest is, and the batch line says
    how many were ingested before the failure."""
    def explode(batch: Batch) -> None:
        raise RuntimeError("bug after the write")

    caplog.set_level(logging.INFO, logger="kafka_adx.functions")
    harness.use(MemorySink(), on_batch=explode)
    harness.call(retry_count=5, max_retry_count=5)
    assert sum(b.count for b in harness.sink.batches) == len(MESSAGES) - POISON
    internal = [letter for letter in harness.letters() if letter.stage == "internal"]
    assert [x.record.offset for x in internal] == [90]  # only the record that was not settled
    assert "RuntimeError: bug after the write" in internal[0].reason
    assert internal[0].record.stream == "kafka:127.0.0.1:9092/storm-events-json"  # KAFKA_BROKERS names it
    line = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("kafka-adx batch"))
    assert f"ingested={len(MESSAGES) - POISON} dead_lettered={POISON}" in line


def test_unexpected_error_is_retried_and_the_retry_queues_nothing_twice(harness: Harness) -> None:
    calls: list[Batch] = []

    def explode_once(batch: Batch) -> None:
        calls.append(batch)
        if len(calls) == 1:
            raise RuntimeError("bug after the write")

    harness.use(MemorySink(), on_batch=explode_once)
    with pytest.raises(RuntimeError):
        harness.call(retry_count=0)
    harness.call(retry_count=5, max_retry_count=5)
    assert sum(b.count for b in harness.sink.batches) == len(MESSAGES) - POISON  # queued once
    assert [x.stage for x in harness.letters()] == ["decode"]  # the null value, once


def test_retry_forever_never_dead_letters_a_transient_failure(harness: Harness) -> None:
    harness.use(MemorySink(fail_times=100))
    with pytest.raises(TransientError):
        harness.call(retry_count=50, max_retry_count=-1)
    assert harness.letters() == []


def test_without_a_retry_context_the_only_attempt_is_final() -> None:
    attempt = attempt_of(object())
    assert (attempt.number, attempt.final) == (1, True)
    assert attempt_of(Context("f", 0, 0)).final  # policy with zero retries
    assert not attempt_of(Context("f", 4, 5)).final
    assert attempt_of(Context("f", 5, 5)).describe() == "6/6"


def test_worker_pipeline_leaves_retrying_to_the_trigger(local_app: Callable[[dict[str, str]], LocalApp]) -> None:
    app = local_app(KAFKA_ENV)
    app.call("kafka_ingest", kafka_events(MESSAGES[:1]), Context("kafka_ingest"))
    assert functions_worker.worker().pipeline.retry.attempts == 1


def test_an_adapter_bug_is_retried_then_dead_letters_the_raw_events_on_the_final_attempt(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug in the adapter (not a bad event) used to escape every attempt, and the host moved
    past the batch on the last one: every record lost. It follows the pipeline's rule now."""
    from shared.functions import invocation

    def broken(*args: object, **kwargs: object) -> object:
        raise KeyError("adapter bug")

    monkeypatch.setattr(invocation, "kafka_records", broken)
    harness.use(MemorySink())
    with pytest.raises(KeyError):
        harness.call(retry_count=0)
    assert harness.letters() == []
    harness.call(retry_count=5, max_retry_count=5)
    letters = harness.letters()
    assert sorted(x.record.offset for x in letters) == sorted(m.offset for m in MESSAGES)
    assert all("unexpected adapter error" in x.reason and "KeyError" in x.reason for x in letters)
    by_offset = {x.record.offset: x.record.value for x in letters}
    assert all(by_offset[m.offset] == (m.value or b"") for m in MESSAGES)  # the original bodies
    assert harness.sink.batches == []
