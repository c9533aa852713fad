"""The pipeline and its delivery contract: every record is ingested or dead-lettered."""

from __future__ import annotations

import zlib
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shared.deadletters.local import LocalDeadLetterStore
from shared.errors import DeadLetterError, TransientError
from shared.pipeline.batching import Batch
from shared.pipeline.core import Pipeline, Result, RetryPolicy
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


# --- more of the pipeline's contract --------------------------------------------------------------

def test_null_empty_oversize_and_unrouted_records_are_dead_lettered_by_stage(tmp_path: Path) -> None:
    sink = MemorySink()
    records = [rec(None, "json", 1), rec(b"  \n", "json", 2), rec(b'{"a": "%s"}' % (b"x" * 100), "json", 3),
               rec(b"{}", "nowhere", 4), rec(good_json(5), "json", 5)]
    result = pipeline(tmp_path, sink, max_record_bytes=64).process(records)
    assert (result.received, result.ingested, result.dead_lettered) == (5, 1, 4)
    assert result.reasons == {"decode": 2, "size": 1, "route": 1}
    reasons = {d.record.offset: d.reason for d in letters(tmp_path)}
    assert reasons[1] == "json[0]@1: value is null"
    assert reasons[2] == "json[0]@2: value is empty"
    assert reasons[3] == "json[0]@3: record is 109 bytes, over the limit of 64"
    assert reasons[4].startswith("nowhere[0]@4: no route for topic 'nowhere'")
    # Null, empty and oversize records are refused before routing: they have no destination.
    assert (result.tables["db.T"].ingested, result.tables["db.T"].dead_lettered) == (1, 0)
    assert result.tables["(unrouted)"].dead_lettered == 4


def test_a_poison_record_names_its_route_and_destination(tmp_path: Path) -> None:
    pipeline(tmp_path).process([rec(b'{"n": "many"}', "json-client", 1)])
    (letter,) = letters(tmp_path)
    assert (letter.stage, letter.field, letter.route) == ("map", "n", "json-client")
    assert letter.destination is not None and letter.destination.apply == "client"


def test_poison_records_are_written_in_sets_of_at_most_poison_set_size(tmp_path: Path) -> None:
    p = pipeline(tmp_path)
    p.POISON_SET_SIZE = 2
    result = p.process([rec(b"{bad", "json", i) for i in range(5)] + [rec(good_json(9), "json", 9)])
    assert (result.ingested, result.dead_lettered) == (1, 5)
    sets = list(LocalDeadLetterStore(tmp_path / "dl").sets())
    assert sorted(len(list(LocalDeadLetterStore(tmp_path / "dl").read(s))) for s in sets) == [1, 2, 2]


def test_table_counts_and_on_batch_cover_each_written_batch(tmp_path: Path) -> None:
    written: list[Batch] = []
    sink = MemorySink()
    p = Pipeline(make_config(limits={"max_batch_records": 2}), sink, LocalDeadLetterStore(tmp_path / "dl"),
                 retry=NO_WAIT, sleep=lambda _: None, on_batch=written.append)
    result = p.process([rec(good_json(i), "json", i) for i in range(5)] + [rec(b"x", "raw", 1)])
    assert [b.batch_id for b in written] == [b.batch_id for b in sink.batches]
    counts = result.tables["db.T"]
    assert (counts.ingested, counts.batches) == (5, 3)
    assert counts.raw_bytes == sum(b.raw_size for b in written if b.destination.table == "T")
    assert counts.gzip_bytes == sum(len(b.payload) for b in written if b.destination.table == "T")
    assert result.tables["db.Raw"].ingested == 1


def test_on_batch_is_not_called_for_a_dead_lettered_batch(tmp_path: Path) -> None:
    written: list[Batch] = []
    p = Pipeline(make_config(), MemorySink(terminal=True), LocalDeadLetterStore(tmp_path / "dl"), retry=NO_WAIT,
                 on_batch=written.append)
    assert p.process([rec(good_json(1), "json", 1)]).dead_lettered == 1
    assert written == []


def test_the_result_keeps_the_oldest_timestamp_of_everything_received(tmp_path: Path) -> None:
    old = replace(rec(b"{bad", "json", 1), timestamp=datetime(2020, 1, 1, tzinfo=UTC))
    result = pipeline(tmp_path).process([rec(good_json(2), "json", 2), old])
    assert result.oldest_timestamp == datetime(2020, 1, 1, tzinfo=UTC)


def test_results_merge_into_one(tmp_path: Path) -> None:
    first = pipeline(tmp_path).process([rec(good_json(1), "json", 1), rec(b"{bad", "json", 2)])
    second = pipeline(tmp_path).process([rec(good_json(3), "json", 3), rec(None, "raw", 4)])
    total = Result()
    total.merge(first)
    total.merge(second)
    assert (total.received, total.ingested, total.dead_lettered, total.balanced) == (4, 2, 2, True)
    assert total.reasons == {"decode": 2}
    assert (total.tables["db.T"].ingested, total.tables["db.T"].dead_lettered, total.tables["db.T"].batches) == (2, 1, 2)
    assert total.oldest_timestamp == datetime(2024, 1, 1, tzinfo=UTC)


def test_unsettled_needs_tracking_turned_on() -> None:
    with pytest.raises(ValueError, match="track_settled"):
        Result().unsettled([])


def test_any_failure_of_the_dead_letter_store_is_a_dead_letter_error(tmp_path: Path) -> None:
    class Full(LocalDeadLetterStore):
        def write(self, letters):  # type: ignore[no-untyped-def]
            raise OSError("No space left on device")

    p = Pipeline(make_config(), MemorySink(), Full(tmp_path / "dl"), retry=NO_WAIT)
    with pytest.raises(DeadLetterError, match="dead-letter store failed: No space left on device"):
        p.process([rec(b"{bad", "json", 1)])


def test_a_batch_is_written_once_per_process_until_forget_written(tmp_path: Path) -> None:
    sink = MemorySink()
    p = pipeline(tmp_path, sink)
    records = [rec(good_json(1), "json", 1)]
    p.process(records)
    again = p.process(records)
    assert (len(sink.batches), again.ingested, again.already_queued) == (1, 1, 1)
    p.forget_written()
    p.process(records)
    assert len(sink.batches) == 2


class _RegistryDown:
    """An encoder whose service (a schema registry) cannot answer for records marked ``down``."""

    def __init__(self, inner: object) -> None:
        self.inner = inner

    def encode(self, record: object) -> bytes:
        if b"down" in record.value:  # type: ignore[attr-defined]
            raise TransientError("schema registry unreachable")
        return self.inner.encode(record)  # type: ignore[attr-defined]


def _registry_down(p: Pipeline) -> Pipeline:
    plain = p.encoder
    p.encoder = lambda dest: _RegistryDown(plain(dest))  # type: ignore[method-assign]
    return p


def test_a_decoder_service_down_before_the_final_attempt_raises_and_dead_letters_nothing(tmp_path: Path) -> None:
    sink = MemorySink()
    p = _registry_down(pipeline(tmp_path, sink))
    with pytest.raises(TransientError, match="registry unreachable"):
        p.process([rec(good_json(1), "json", 1), rec(b'{"a": "down"}', "json", 2), rec(b"{bad", "json", 3)],
                  final_attempt=False)
    assert letters(tmp_path) == []  # the whole batch comes back, the bad record with it


def test_a_decoder_service_down_on_the_final_attempt_dead_letters_those_records_as_transient(tmp_path: Path) -> None:
    sink = MemorySink()
    p = _registry_down(pipeline(tmp_path, sink))
    records = [rec(good_json(1), "json", 1), rec(b'{"a": "down"}', "json", 2), rec(b"{bad", "json", 3)]
    result = p.process(records, final_attempt=True)
    assert (result.received, result.ingested, result.dead_lettered) == (3, 1, 2)
    by_offset = {letter.record.offset: letter for letter in letters(tmp_path)}
    assert set(by_offset) == {2, 3}
    assert by_offset[2].stage == "decode" and "transient (final attempt): schema registry unreachable" in by_offset[2].reason
    assert by_offset[2].route is not None
    assert "transient" not in by_offset[3].reason  # bad data stays bad data
