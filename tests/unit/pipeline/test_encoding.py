"""shared/pipeline/encoding.py: each destination's encoder (server-mapped passthrough, client
mapping into CSV rows) and the readers that parse payloads back as ADX would."""

from __future__ import annotations

from pathlib import Path

from shared.deadletters.local import LocalDeadLetterStore
from shared.pipeline.core import Pipeline, RetryPolicy
from shared.pipeline.encoding import split_delimited
from shared.pipeline.sink import MemorySink
from tests.support.records import make_config, rec

NO_WAIT = RetryPolicy(attempts=3, base_delay=0.0)


def pipeline(tmp_path: Path, sink: MemorySink | None = None, **limits: int) -> Pipeline:
    config = make_config(limits=limits) if limits else make_config()
    return Pipeline(config, sink or MemorySink(), LocalDeadLetterStore(tmp_path / "dl"), retry=NO_WAIT,
                    sleep=lambda _: None)


def test_json_spanning_lines_is_put_on_one_line(tmp_path: Path) -> None:
    sink = MemorySink()
    pipeline(tmp_path, sink).process([rec(b'{\n  "a": "x",\n  "n": 1\n}', "json", 1)])
    assert sink.batches[0].decompressed() == b'{"a":"x","n":1}\n'


def test_client_mapping_sends_csv_rows_in_table_order(tmp_path: Path) -> None:
    sink = MemorySink()
    pipeline(tmp_path, sink).process([rec(b'{"d": [1], "n": "5", "a": "x,y", "ts": "2024-01-01"}', "json-client", 1)])
    batch = sink.batches[0]
    assert batch.destination.wire_format == "csv" and batch.destination.wire_mapping is None
    assert batch.decompressed() == b'"x,y",5,2024-01-01T00:00:00.0000000Z,[1]\n'


def test_csv_quoting_as_adx_reads_it() -> None:
    fields = split_delimited('plain,"with, comma","with ""quotes""","line\nbreak",', ",")
    assert fields == ["plain", "with, comma", 'with "quotes"', "line\nbreak", ""]
