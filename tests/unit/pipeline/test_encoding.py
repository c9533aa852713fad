"""shared/pipeline/encoding.py: each destination's encoder (server-mapped passthrough, client
mapping into CSV rows) and the readers that parse payloads back as ADX would."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.deadletters.local import LocalDeadLetterStore
from shared.errors import RecordError
from shared.pipeline.core import Pipeline, RetryPolicy
from shared.pipeline.encoding import (
    ClientMapped,
    DelimitedPassthrough,
    JsonPassthrough,
    TextPassthrough,
    count_fields,
    encoder_for,
    iter_json_values,
    parse_json,
    read_payload,
    split_delimited,
)
from shared.pipeline.routing import Router
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


# --- the encoders one by one ------------------------------------------------------------------

CLIENT_ROUTES = [
    {"topic": "mj", "table": "T", "format": "multijson", "mapping": "T_json", "apply_mapping": "client"},
    {"topic": "tsv", "table": "T", "format": "tsv", "apply_mapping": "client"},
    {"topic": "txt", "table": "Raw", "format": "txt", "apply_mapping": "client"},
]


def encode(topic: str, value: bytes, routes: list[dict[str, object]] | None = None) -> bytes:
    config = make_config(routes=routes) if routes else make_config()
    _, dest = Router(config).resolve(rec(value, topic, 7))
    return encoder_for(config, dest).encode(rec(value, topic, 7))


def test_encoder_for_picks_one_encoder_per_destination() -> None:
    config = make_config()
    router = Router(config)
    kinds = {topic: type(encoder_for(config, router.resolve(rec(b"", topic))[1])) for topic in
             ("json", "json-client", "csv", "csv-client", "raw")}
    assert kinds == {"json": JsonPassthrough, "json-client": ClientMapped, "csv": DelimitedPassthrough,
                     "csv-client": ClientMapped, "raw": TextPassthrough}


def test_server_mapped_json_on_one_line_passes_through_byte_for_byte() -> None:
    value = b'{ "a" : "x",   "n": 1 }'
    assert JsonPassthrough("json", validate=True).encode(rec(value)) == value


@pytest.mark.parametrize(
    ("value", "message"),
    [(b"{bad", "invalid JSON"), (b"[1, 2]", "JSON value is list, expected an object"),
     (b'"text"', "JSON value is str, expected an object"), (b"", "invalid JSON")],
)
def test_json_must_be_one_object(value: bytes, message: str) -> None:
    with pytest.raises(RecordError, match=message) as info:
        JsonPassthrough("json", validate=True).encode(rec(value))
    assert info.value.stage == "decode"


def test_without_validation_json_is_not_checked_but_still_put_on_one_line() -> None:
    encoder = JsonPassthrough("json", validate=False)
    assert encoder.encode(rec(b"{bad")) == b"{bad"
    assert encoder.encode(rec(b'{"a":\n 1}')) == b'{"a":1}'


def test_multijson_takes_an_object_an_array_of_objects_or_objects_back_to_back() -> None:
    assert parse_json(b'{"a": 1}', "multijson") == {"a": 1}
    assert parse_json(b'[{"a": 1}, {"a": 2}]', "multijson") == [{"a": 1}, {"a": 2}]
    assert parse_json(b'{"a": 1}\n  {"a": 2}', "multijson") == [{"a": 1}, {"a": 2}]
    with pytest.raises(RecordError, match="expected an object or an array of objects"):
        parse_json(b"[1, 2]", "multijson")
    with pytest.raises(RecordError, match="invalid JSON"):
        parse_json(b'{"a": 1} {bad', "multijson")


def test_server_mapped_csv_checks_the_exact_width_and_keeps_the_bytes() -> None:
    encoder = DelimitedPassthrough(",", 4, "the table's column count", validate=True)
    assert encoder.encode(rec(b'a,"1,5",x,y\r\n')) == b'a,"1,5",x,y'
    with pytest.raises(RecordError, match=r"has 3 fields, expected 4 \(the table's column count\)"):
        encoder.encode(rec(b"a,b,c"))
    with pytest.raises(RecordError, match="not valid UTF-8"):
        encoder.encode(rec(b"a,b,c,\xff"))


def test_server_mapped_csv_without_a_width_still_rejects_broken_records() -> None:
    encoder = DelimitedPassthrough(",", None, "", validate=True)
    assert encoder.encode(rec(b"a,b,c,d,e")) == b"a,b,c,d,e"
    with pytest.raises(RecordError, match="more than one line"):
        encoder.encode(rec(b"a,b\nc,d"))
    with pytest.raises(RecordError, match="invalid CSV quoting"):
        encoder.encode(rec(b'a,"b"x"'))
    assert DelimitedPassthrough(",", 4, "", validate=False).encode(rec(b"a\nb")) == b"a\nb"


def test_txt_is_one_row_per_record_without_line_breaks() -> None:
    encoder = TextPassthrough(validate=True)
    assert encoder.encode(rec(b"a line, with a comma\r\n")) == b"a line, with a comma"
    with pytest.raises(RecordError, match="line break"):
        encoder.encode(rec(b"two\nlines"))
    with pytest.raises(RecordError, match="line break"):
        encoder.encode(rec(b"two\rlines"))
    with pytest.raises(RecordError, match="not valid UTF-8"):
        encoder.encode(rec(b"\xff"))
    assert TextPassthrough(validate=False).encode(rec(b"\xff")) == b"\xff"


def test_client_mapping_of_multijson_writes_one_row_per_object() -> None:
    value = b'[{"a": "x", "n": 1}, {"a": "y", "n": 2}]'
    assert encode("mj", value, CLIENT_ROUTES) == b"x,1,,\ny,2,,"


def test_client_mapping_of_delimited_and_text_records() -> None:
    assert encode("tsv", b"a b\t5\t2024-01-01\t{}\n", CLIENT_ROUTES) == b'a b,5,2024-01-01T00:00:00.0000000Z,{}'
    assert encode("txt", b"say \"hi\", twice\n", CLIENT_ROUTES) == b'"say ""hi"", twice"'
    with pytest.raises(RecordError, match=r"has 2 fields, expected 4"):
        encode("tsv", b"a\t5", CLIENT_ROUTES)


def test_split_delimited_rejects_what_is_not_exactly_one_row() -> None:
    assert split_delimited("a\tb\t", "\t") == ["a", "b", ""]
    with pytest.raises(RecordError, match="more than one line"):
        split_delimited("a,b\nc,d", ",")
    with pytest.raises(RecordError, match="holds 2 rows, expected one"):
        split_delimited('"a\nb",c\nd,e', ",")


@pytest.mark.parametrize("text", ["a,b,c", '"a,b",c', "", '"multi\nline",x', ",,"])
def test_count_fields_counts_what_split_delimited_splits(text: str) -> None:
    assert count_fields(text, ",") == len(split_delimited(text, ","))


def test_iter_json_values_reads_values_back_to_back() -> None:
    assert list(iter_json_values(' {"a": 1}\n[2] 3\t"x" ')) == [{"a": 1}, [2], 3, "x"]
    assert list(iter_json_values("  \n")) == []


def test_read_payload_reads_each_wire_format_as_adx_would() -> None:
    assert list(read_payload(b'{"a": 1}\n\n{"a": 2}\n', "json")) == [{"a": 1}, {"a": 2}]
    assert list(read_payload(b'[{"a": 1}, {"a": 2}]\n{"a": 3}\n', "multijson")) == [{"a": 1}, {"a": 2}, {"a": 3}]
    assert list(read_payload(b"a\tb\nc\td\n", "tsv")) == [["a", "b"], ["c", "d"]]
    assert list(read_payload(b"one, two\n\nthree\n", "txt")) == [["one, two"], [""], ["three"]]
    assert list(read_payload(b"no newline at the end", "txt")) == [["no newline at the end"]]
