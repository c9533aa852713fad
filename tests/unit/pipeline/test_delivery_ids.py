"""Ids that name their source and content, no re-queue within a process, and partial progress
(the delivery-trust issue, items 1-3 and 11). Local parts only: the pipeline, files, the local
dead-letter store; tests/integration/adx/test_source_ids.py runs the same cases into the ADX stand-in."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import duckdb
import orjson
import pytest

from shared.deadletters.local import LocalDeadLetterStore
from shared.errors import InputError, TransientError
from shared.pipeline.batching import Batch
from shared.pipeline.core import Pipeline, Result, RetryPolicy
from shared.pipeline.deadletter import set_id_for
from shared.pipeline.records import Record
from shared.pipeline.sink import Sink
from shared.sources.files import FileSource
from tests.support.records import make_config, rec

REPO = Path(__file__).resolve().parents[3]


class RecordingSink(Sink):
    """Keeps every batch it was asked to write; with ``fail_from`` a batch holding an offset at
    or past it fails transiently (storage going down after the first batch, and staying down)."""

    def __init__(self, fail_from: int | None = None) -> None:
        self.batches: list[Batch] = []
        self.fail_from = fail_from

    def write(self, batch: Batch) -> None:
        if self.fail_from is not None and any(r.offset >= self.fail_from for r in batch.records):
            raise TransientError("storage unavailable (injected)")
        self.batches.append(batch)

    def close(self) -> None:
        pass


def _config(max_batch_records: int = 100_000, dedup: bool = False) -> object:
    routes = [{"topic": "json", "table": "T", "format": "json", "mapping": "T_json", "dedup": dedup}]
    return make_config(routes=routes, limits={"max_batch_records": max_batch_records})


def _lines(values: list[int]) -> bytes:
    return b"".join(orjson.dumps({"a": "x", "n": n}) + b"\n" for n in values)


def _ids(path: Path, tmp: Path) -> list[str]:
    sink = RecordingSink()
    Pipeline(_config(), sink, LocalDeadLetterStore(tmp / "dl")).process(FileSource([path], "json"))  # type: ignore[arg-type]
    return [b.batch_id for b in sink.batches]


# ---------------------------------------------------------------- 1. ids name source and content


def test_two_files_of_the_same_shape_get_different_batch_ids_and_a_rerun_the_same(tmp_path: Path) -> None:
    day1, day2 = tmp_path / "day1.jsonl", tmp_path / "day2.jsonl"
    day1.write_bytes(_lines([1, 2, 3]))
    day2.write_bytes(_lines([7, 8, 9]))  # same length, same positions, other records
    assert day1.stat().st_size == day2.stat().st_size
    first, second = _ids(day1, tmp_path), _ids(day2, tmp_path)
    assert first != second
    assert _ids(day1, tmp_path) == first  # the same file again: the same ids


def test_the_same_records_from_another_stream_get_another_id() -> None:
    """Same topic, partition, offsets and bytes, different stream (a recreated topic, another
    cluster): never one id."""
    ids = set()
    for stream in ("kafka:clusterA/t:id1", "kafka:clusterA/t:id2", "kafka:clusterB/t:id1"):
        sink = RecordingSink()
        records = [rec(orjson.dumps({"a": "x", "n": i}), offset=i, stream=stream) for i in range(3)]
        Pipeline(_config(), sink, LocalDeadLetterStore("/nonexistent")).process(records)  # type: ignore[arg-type]
        ids.add(sink.batches[0].batch_id)
    assert len(ids) == 3


def test_different_records_at_the_same_positions_never_share_an_id() -> None:
    sink = RecordingSink()
    pipeline = Pipeline(_config(), sink, LocalDeadLetterStore("/nonexistent"))  # type: ignore[arg-type]
    pipeline.process([rec(b'{"a": "x", "n": 1}', offset=5)])
    pipeline.process([rec(b'{"a": "y", "n": 1}', offset=5)])  # a redelivery would be byte-equal
    assert len({b.batch_id for b in sink.batches}) == 2


def test_dead_letter_set_ids_name_the_source_and_the_bytes(tmp_path: Path) -> None:
    from shared.pipeline.deadletter import DeadLetter

    def letters(value: bytes, stream: str = "") -> list[DeadLetter]:
        return [DeadLetter(record=rec(value, offset=1, stream=stream), reason="r", stage="decode")]

    assert set_id_for(letters(b"{bad")) == set_id_for(letters(b"{bad"))
    assert set_id_for(letters(b"{bad")) != set_id_for(letters(b"{bax"))  # same size, other bytes
    assert set_id_for(letters(b"{bad", "file:a")) != set_id_for(letters(b"{bad", "file:b"))


def _ingest(tmp_path: Path, config: Path, path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LOCAL_DB": str(tmp_path / "local.duckdb"), "LOCAL_DEADLETTER_DIR": str(tmp_path / "dl")}
    env.pop("ADX_INGEST_URI", None)
    env.pop("DEADLETTER_BLOB_URI", None)
    cmd = [sys.executable, "-m", "shared.cli.app", "ingest", "--config", str(config), "--topic", "json", str(path)]
    return subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=120)


def test_ingest_day1_then_day2_keeps_both_days_rows_and_dead_letters(tmp_path: Path) -> None:
    """The issue's case in local mode, through the command line: two files of one length on a
    dedup route land both, and the second run's dead letters do not overwrite the first's."""
    config = tmp_path / "ingestion.yaml"
    config.write_text(
        "database: db\n"
        "tables:\n  T:\n    columns: [{name: a, type: string}, {name: n, type: long}]\n"
        "    mappings:\n      T_json:\n        kind: json\n        columns:\n"
        "          - {column: a, Properties: {Path: $.a}}\n          - {column: n, Properties: {Path: $.n}}\n"
        "routes:\n  - {topic: json, table: T, format: json, mapping: T_json, dedup: true}\n"
    )
    day1, day2 = tmp_path / "day1.jsonl", tmp_path / "day2.jsonl"
    day1.write_bytes(_lines([1, 2]) + b"{bad1\n")
    day2.write_bytes(_lines([3, 4]) + b"{bad2\n")
    for path in (day1, day2):
        proc = _ingest(tmp_path, config, path)
        assert proc.returncode == 1, proc.stderr  # 1: a record was dead-lettered
    con = duckdb.connect(str(tmp_path / "local.duckdb"), read_only=True)
    try:
        assert sorted(n for (n,) in con.execute('SELECT n FROM "db"."T"').fetchall()) == [1, 2, 3, 4]
    finally:
        con.close()
    sets = list((tmp_path / "dl").glob("*.jsonl"))
    assert len(sets) == 2, "the second file's dead letters must not overwrite the first's"
    values = sorted(orjson.loads(p.read_bytes())["value"] for p in sets)
    assert len(set(values)) == 2


# ---------------------------------------------------------------- 2. no re-queue within a process


def test_a_retried_invocation_does_not_queue_its_first_batch_again(tmp_path: Path) -> None:
    """Storage fails after the first batch on each of three attempts: 5 of 10 records used to be
    queued three times; now each record is queued once or dead-lettered once."""
    sink = RecordingSink(fail_from=5)
    store = LocalDeadLetterStore(tmp_path / "dl")
    pipeline = Pipeline(_config(max_batch_records=5), sink, store, retry=RetryPolicy(attempts=1))  # type: ignore[arg-type]
    records = [rec(orjson.dumps({"a": "x", "n": i}), offset=i) for i in range(10)]
    for attempt in (1, 2):
        with pytest.raises(TransientError):
            pipeline.process(records, attempt=attempt, final_attempt=False)
    result = pipeline.process(records, attempt=3, final_attempt=True)
    queued = [r.offset for b in sink.batches for r in b.records]
    assert sorted(queued) == [0, 1, 2, 3, 4], "the first batch is queued once, not three times"
    assert (result.ingested, result.dead_lettered, result.already_queued) == (5, 5, 5)
    dead = [letter.record.offset for s in store.sets() for letter in store.read(s)]
    assert sorted(dead) == [5, 6, 7, 8, 9]


def test_the_queued_memory_is_bounded(tmp_path: Path) -> None:
    sink = RecordingSink()
    pipeline = Pipeline(_config(max_batch_records=1), sink, LocalDeadLetterStore(tmp_path))  # type: ignore[arg-type]
    pipeline.QUEUED_MEMORY = 3
    first = rec(b'{"a": "x", "n": 0}', offset=0)
    pipeline.process([first, *(rec(orjson.dumps({"a": "x", "n": i}), offset=i) for i in range(1, 5))])
    assert len(pipeline._queued) == 3
    pipeline.process([first])  # forgotten: written again (what ADX's ingest-by tags are for)
    assert len(sink.batches) == 6


# ---------------------------------------------------------------- 3. partial progress


class FailsAfter(Pipeline):
    """A pipeline with a bug that strikes at the n-th record (after some batches were written)."""

    fail_at = 7

    def prepare(self, record: Record) -> tuple[str, object, bytes]:  # type: ignore[override]
        if record.offset == self.fail_at:
            raise KeyError("injected bug")
        return super().prepare(record)  # type: ignore[return-value]


def test_an_unexpected_error_leaves_exact_counts_and_the_unsettled_records(tmp_path: Path) -> None:
    sink = RecordingSink()
    pipeline = FailsAfter(_config(max_batch_records=3), sink, LocalDeadLetterStore(tmp_path))  # type: ignore[arg-type]
    records = [rec(orjson.dumps({"a": "x", "n": i}), offset=i) for i in range(10)]
    result = Result().track_settled()
    with pytest.raises(KeyError):
        pipeline.process(records, result=result)
    assert result.ingested == 6  # two batches of three landed before the bug
    assert [r.offset for r in result.unsettled(records)] == [6, 7, 8, 9]


# ---------------------------------------------------------------- 6/7. input that stops early


def test_a_truncated_gzip_names_the_file_and_place_and_what_was_read_is_delivered(tmp_path: Path) -> None:
    whole = gzip.compress(_lines(list(range(2000))) + b"{poison\n" + _lines(list(range(2000, 4000))))
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(whole[: len(whole) * 2 // 3])
    sink = RecordingSink()
    store = LocalDeadLetterStore(tmp_path / "dl")
    result = Result()
    with pytest.raises(InputError) as caught:
        Pipeline(_config(), sink, store).process(FileSource([cut], "json"), result=result)  # type: ignore[arg-type]
    message = str(caught.value)
    assert str(cut) in message and "record" in message and "byte" in message
    assert result.received > 2000 and result.balanced
    assert result.ingested == sum(b.count for b in sink.batches) == result.received - 1
    assert result.dead_lettered == 1  # the poison record read before the cut


def test_input_interrupted_midway_flushes_what_was_read(tmp_path: Path) -> None:
    from shared.errors import Interrupted

    def source() -> Iterator[Record]:
        yield rec(b'{"a": "x", "n": 1}', offset=1)
        yield rec(b"{poison", offset=2)
        raise Interrupted("SIGINT")

    sink = RecordingSink()
    store = LocalDeadLetterStore(tmp_path / "dl")
    result = Result()
    with pytest.raises(Interrupted):
        Pipeline(_config(), sink, store).process(source(), result=result)  # type: ignore[arg-type]
    assert (result.received, result.ingested, result.dead_lettered) == (2, 1, 1)
    assert len(list(store.sets())) == 1


# ---------------------------------------------------------------- 11. blank lines


def test_blank_lines_are_skipped_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(b'{"a": "x", "n": 1}\n\n   \n\t\r\n{"a": "x", "n": 2}\n')
    source = FileSource([path], "json")
    records = list(source)
    assert [r.offset for r in records] == [1, 5]  # line numbers stay those of the file
    assert (source.records, source.blank_lines) == (2, 3)
    assert {r.stream for r in records} == {records[0].stream} and records[0].stream.startswith("file:")


def test_a_fifo_is_read_once_not_consumed_by_its_fingerprint(tmp_path: Path) -> None:
    """``ingest <(cmd)`` or a named pipe: hashing it first would eat the data (0 records)."""
    import threading

    fifo = tmp_path / "in.fifo"
    os.mkfifo(fifo)

    def feed() -> None:
        with open(fifo, "wb") as fh:
            fh.write(_lines([1, 2, 3]))

    writer = threading.Thread(target=feed)
    writer.start()
    records = list(FileSource([fifo], "json"))
    writer.join()
    assert [r.offset for r in records] == [1, 2, 3]
    assert records[0].stream == f"stream:{fifo}"


def test_a_sink_error_carrying_a_sas_is_dead_lettered_without_it(tmp_path: Path) -> None:
    class LeakySink(RecordingSink):
        def write(self, batch: Batch) -> None:
            raise PermissionError("403 on https://a.blob.core.windows.net/t/x?sv=2023-11-03&sig=SeCrEtSiGnAtUrE123%3D")

    store = LocalDeadLetterStore(tmp_path / "dl")
    Pipeline(_config(), LeakySink(), store).process([rec(b'{"a": "x", "n": 1}', offset=1)])  # type: ignore[arg-type]
    (letter,) = [x for s in store.sets() for x in store.read(s)]
    assert letter.stage == "sink" and "403" in letter.reason
    assert "SeCrEtSiGnAtUrE123" not in letter.reason
