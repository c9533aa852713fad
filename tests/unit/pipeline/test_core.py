"""The pipeline and its delivery contract: every record is ingested or dead-lettered."""

from __future__ import annotations

import zlib
from dataclasses import replace
from pathlib import Path

import pytest

from shared.deadletters.local import LocalDeadLetterStore
from shared.errors import DeadLetterError, TerminalError, TransientError
from shared.pipeline.core import Pipeline, RetryPolicy
from shared.pipeline.sink import MemorySink
from tests.support.records import make_config, rec

NO_WAIT = RetryPolicy(attempts=3, base_delay=0.0)


def pipeline(tmp_path: Path, sink: MemorySink | None = None, **limits: int) -> Pipeline:
    config = make_config(limits=limits) if limits else make_config()
    return Pipeline(config, sink or MemorySink(), LocalDeadLetterStore(tmp_path / "dl"), retry=NO_WAIT,
                    sleep=lambda _: None)


def letters(tmp_path: Path) -> list:
    store = LocalDeadLetterStore(tmp_path / "dl")
    return [letter for set_id in store.sets() for letter in store.read(set_id)]


def good_json(i: int) -> bytes:
    return b'{"a": "x%d", "n": %d, "ts": "2024-01-01T00:00:00Z", "d": {"i": %d}}' % (i, i, i)


def test_happy_path_groups_per_destination(tmp_path: Path) -> None:
    sink = MemorySink()
    p = pipeline(tmp_path, sink)
    records = [rec(good_json(i), "json", i) for i in range(10)] + [rec(b"a,1,2024-01-01,{}", "csv", i) for i in range(5)]
    result = p.process(records)
    assert (result.received, result.ingested, result.dead_lettered) == (15, 15, 0)
    assert sorted((b.destination.format, b.count) for b in sink.batches) == [("csv", 5), ("json", 10)]
    json_batch = next(b for b in sink.batches if b.destination.format == "json")
    assert zlib.decompress(json_batch.payload, wbits=31) == b"".join(good_json(i) + b"\n" for i in range(10))
    assert result.tables["db.T"].ingested == 15


def test_transient_failure_is_retried_in_process(tmp_path: Path) -> None:
    sink = MemorySink(fail_times=2)
    result = pipeline(tmp_path, sink).process([rec(good_json(1), "json", 1)])
    assert result.ingested == 1 and sink.attempts == 3
    assert letters(tmp_path) == []


def test_transient_failure_on_non_final_attempt_raises_for_redelivery(tmp_path: Path) -> None:
    sink = MemorySink(fail_times=10)
    with pytest.raises(TransientError):
        pipeline(tmp_path, sink).process([rec(good_json(1), "json", 1), rec(b"{bad", "json", 2)], final_attempt=False)
    # Nothing was dead-lettered yet: the whole batch comes back.
    assert letters(tmp_path) == []


def test_transient_failure_on_final_attempt_dead_letters_the_batch(tmp_path: Path) -> None:
    sink = MemorySink(fail_times=10)
    records = [rec(good_json(i), "json", i) for i in range(3)]
    result = pipeline(tmp_path, sink).process(records, attempt=5, final_attempt=True)
    assert (result.received, result.ingested, result.dead_lettered) == (3, 0, 3)
    dead = letters(tmp_path)
    assert sorted(d.record.offset for d in dead) == [0, 1, 2]
    assert all(d.stage == "sink" and "final attempt" in d.reason and d.attempt == 5 for d in dead)
    assert all(d.batch_id and d.destination and d.destination.table == "T" for d in dead)
    assert dead[0].record.value == good_json(dead[0].record.offset)


def test_terminal_failure_dead_letters_without_retry(tmp_path: Path) -> None:
    sink = MemorySink(terminal=True)
    result = pipeline(tmp_path, sink).process([rec(good_json(1), "json", 1)], final_attempt=False)
    assert result.dead_lettered == 1 and sink.attempts == 1
    assert "terminal" in letters(tmp_path)[0].reason


def test_dead_letter_store_failure_raises(tmp_path: Path) -> None:
    blocker = tmp_path / "dl"
    blocker.write_text("a file where the folder should be")
    p = Pipeline(make_config(), MemorySink(), LocalDeadLetterStore(blocker), retry=NO_WAIT)
    with pytest.raises(DeadLetterError, match="cannot write dead letters"):
        p.process([rec(b"{bad", "json", 1)])


def test_redelivery_overwrites_the_same_dead_letter_set(tmp_path: Path) -> None:
    records = [rec(b"{bad", "json", 1), rec(b"{worse", "json", 2)]
    pipeline(tmp_path).process(records)
    pipeline(tmp_path).process(records)
    assert len(list(LocalDeadLetterStore(tmp_path / "dl").sets())) == 1
    assert len(letters(tmp_path)) == 2


def test_unknown_sink_exception_is_terminal(tmp_path: Path) -> None:
    class Broken(MemorySink):
        def write(self, batch):  # type: ignore[no-untyped-def]
            raise RuntimeError("boom")

    result = pipeline(tmp_path, Broken()).process([rec(good_json(1), "json", 1)])
    assert result.dead_lettered == 1
    assert "RuntimeError: boom" in letters(tmp_path)[0].reason


def test_memory_sink_terminal_error_type() -> None:
    assert issubclass(TerminalError, Exception)


def test_headers_and_keys_survive_dead_lettering(tmp_path: Path) -> None:
    record = replace(rec(b"{bad", "json", 9), key=b"\x00key", headers=(("h", b"\xff"), ("n", None)))
    pipeline(tmp_path).process([record])
    (letter,) = letters(tmp_path)
    assert letter.record == record


def test_close_closes_the_sink_and_a_closable_dead_letter_store(tmp_path: Path) -> None:
    closed: list[str] = []

    class Sink(MemorySink):
        def close(self) -> None:
            closed.append("sink")

    class Store(LocalDeadLetterStore):
        def close(self) -> None:
            closed.append("store")

    Pipeline(make_config(), Sink(), Store(tmp_path)).close()
    Pipeline(make_config(), Sink(), LocalDeadLetterStore(tmp_path)).close()  # a store without close
    assert closed == ["sink", "store", "sink"]
