"""Property-based tests: for arbitrary bytes no exception escapes the decoders, the mapping
engine or the pipeline, and every record ends ingested or dead-lettered."""

from __future__ import annotations

import contextlib
import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.deadletters.local import LocalDeadLetterStore
from shared.errors import RecordError
from shared.mapping.types import TYPES, csv_line
from shared.pipeline.core import Pipeline
from shared.pipeline.encoding import read_payload, split_delimited
from shared.pipeline.records import Record
from shared.pipeline.sink import MemorySink
from tests.support.records import make_config

CONFIG = make_config()
TOPICS = ["json", "json-client", "csv", "csv-client", "raw", "unrouted"]

json_like = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.sampled_from(["a", "n", "ts", "d", "x"]), children, max_size=5),
    max_leaves=12,
)

record_values = st.one_of(
    st.none(),
    st.binary(max_size=300),
    json_like.map(lambda v: json.dumps(v).encode()),
    st.lists(st.text(max_size=12), max_size=6).map(lambda fs: ",".join(fs).encode("utf-8", "surrogatepass")),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(TOPICS), record_values), max_size=30))
def test_every_record_is_ingested_or_dead_lettered(items: list[tuple[str, bytes | None]]) -> None:
    sink = MemorySink()
    with tempfile.TemporaryDirectory() as tmp:
        store = LocalDeadLetterStore(Path(tmp))
        records = [Record(value=v, topic=t, offset=i) for i, (t, v) in enumerate(items)]
        result = Pipeline(CONFIG, sink, store).process(records)
        dead = [letter for set_id in store.sets() for letter in store.read(set_id)]
    assert result.received == len(items)
    assert result.ingested + result.dead_lettered == len(items)
    assert sum(b.count for b in sink.batches) == result.ingested
    assert len(dead) == result.dead_lettered
    # Each record is in exactly one place.
    placed = sorted([r.offset for b in sink.batches for r in b.records] + [d.record.offset for d in dead])
    assert placed == list(range(len(items)))
    # Every batch is readable back the way ADX reads it.
    for batch in sink.batches:
        list(read_payload(batch.decompressed(), batch.destination.wire_format))


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80), st.sampled_from([",", "\t", "|", ";"]))
def test_split_delimited_raises_only_record_errors(text: str, delimiter: str) -> None:
    with contextlib.suppress(RecordError):
        split_delimited(text, delimiter)


@settings(max_examples=300, deadline=None)
@given(json_like, st.sampled_from(sorted(TYPES)))
def test_converters_raise_only_value_errors(value: object, adx_type: str) -> None:
    try:
        converted = TYPES[adx_type].convert(value)
    except ValueError:
        return
    csv_line([converted])  # anything converted can be written as CSV


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(max_size=20)), min_size=1, max_size=6))
def test_csv_line_round_trips(values: list[str | None]) -> None:
    line = csv_line(list(values))
    (parsed,) = list(read_payload(line.encode("utf-8", "surrogatepass") + b"\n", "csv"))
    assert parsed == [v or "" for v in values]
