"""Files as a source: splitting, gzip, streaming."""

from __future__ import annotations

import gzip
from pathlib import Path

from shared.sources.files import read_records


def test_csv_records_keep_quoted_line_breaks(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_bytes(b'a,"multi\nline",1\r\nb,"say ""hi""",2\n\nc,plain,3')
    records = list(read_records([path], "t"))
    assert [r.value for r in records] == [b'a,"multi\nline",1', b'b,"say ""hi""",2', b"c,plain,3"]
    assert [r.offset for r in records] == [1, 2, 4]  # record numbers (the blank record 3 is skipped)
    assert records[0].origin == str(path) and records[0].topic == "t"


def test_unterminated_quote_does_not_swallow_the_file(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_bytes(b'a,"open\n' + b"x,y,z\n" * 50)
    records = list(read_records([path], "t", max_record_bytes=100))
    assert len(records) > 30  # splitting resumed after the cap
    assert sum(r.value.count(b"\n") + 1 for r in records if r.value) == 51


def test_gzip_and_json_lines_and_several_files(tmp_path: Path) -> None:
    first = tmp_path / "a.jsonl.gz"
    with gzip.open(first, "wb") as fh:
        fh.write(b'{"a": 1}\n{"a": 2}\n')
    second = tmp_path / "b.jsonl"
    second.write_bytes(b'{"a": 3}')
    records = list(read_records([first, second], "t"))
    assert [(r.partition, r.offset, r.value) for r in records] == [
        (0, 1, b'{"a": 1}'), (0, 2, b'{"a": 2}'), (1, 1, b'{"a": 3}')
    ]


def test_skip_header(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_bytes(b"h1,h2\n1,2\n")
    assert [r.value for r in read_records([path], "t", skip_header=True)] == [b"1,2"]


def test_records_stream_lazily(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    path.write_bytes(b'{"a": 1}\n' * 100_000)
    iterator = read_records([path], "t")
    first = next(iterator)  # reading one record must not read the whole file into a list
    assert first.offset == 1
    assert iterator.gi_frame is not None  # type: ignore[attr-defined]
