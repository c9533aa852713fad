"""The pipeline's hot path gives exactly what its reference definitions give:

- :meth:`Pipeline.process` checks and encodes a record without headers of a known topic itself,
  and builds the batch inline (``BatchBuilder.add``'s body); a pipeline whose ``prepare`` is
  overridden runs ``prepare`` for every record (the reference). Both must write the same
  batches (payload, id, records, ranges, timestamps), the same dead letters (reason, stage,
  route, destination) and the same counts, and the oldest timestamp (now taken from the sealed
  batches and the dead letters) must be the oldest of the records received;
- :func:`ranges_and_span` (runs of one partition, timestamps compared once per object) gives
  what the plain walk over every record gives;
- :meth:`DelimitedPassthrough.encode` (``count_fields`` of a one-line row inlined) gives the
  row or the RecordError the reference (``count_fields`` itself) gives.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.errors import RecordError
from shared.pipeline.batching import OffsetRange, ranges_and_span
from shared.pipeline.core import Pipeline, Result
from shared.pipeline.deadletter import DeadLetter
from shared.pipeline.encoding import DelimitedPassthrough, _utf8, _wrong_field_count, count_fields
from shared.pipeline.records import Record
from shared.pipeline.sink import MemorySink
from tests.support.records import make_config


class ReferencePipeline(Pipeline):
    """``prepare`` overridden (by itself): ``process`` calls it for every record."""

    def prepare(self, record: Record) -> tuple[str, object, bytes]:  # type: ignore[override]
        return super().prepare(record)  # type: ignore[return-value]


class CapturingStore:
    """A dead-letter store keeping every letter it is given."""

    def __init__(self) -> None:
        self.letters: list[DeadLetter] = []

    def write(self, letters: Sequence[DeadLetter]) -> str:
        self.letters.extend(letters)
        return f"set-{len(self.letters)}"


BASE = datetime(2024, 1, 1, tzinfo=UTC)
SHARED = [BASE, BASE + timedelta(seconds=1), BASE - timedelta(days=3)]
"""Timestamp objects shared by several records (as the Kafka consumer shares them)."""

timestamps = st.one_of(
    st.none(),
    st.sampled_from(SHARED),
    st.integers(-10**6, 10**6).map(lambda ms: BASE + timedelta(milliseconds=ms)),  # equal values, distinct objects
)
values = st.one_of(
    # null, empty, blank, over the 64-byte record limit, a plain line
    st.sampled_from([None, b"", b"   ", b" \n", b"\n", b"x" * 80, b"abc", b"a,1,2024-01-01T00:00:00Z,{}"]),
    st.binary(max_size=40),
    st.lists(st.sampled_from(["a", "1", '"q"', '"a,b"', '"x""y"', "", " ", "\u00e9", '"', "\r", "\n"]),
             min_size=1, max_size=6).map(lambda fields: ",".join(fields).encode()),
    st.sampled_from([b'{"a": "x", "n": 1}', b'{"a":\n "y"}', b"[1, 2]", b"{not json"]),
)  # fmt: skip
# Runs of records of one topic (as a consumer hands them over), so that most records find their
# topic's lane: (topic, headers, stream, partition, [(value, timestamp), ...]) per run.
runs = st.lists(
    st.tuples(
        st.sampled_from(["json", "csv", "csv-client", "raw", "unrouted", "json-client", "csv-novalidate",
                         "json-novalidate"]),
        st.sampled_from([(), (("h", b"1"),)]),
        st.sampled_from(["", "s1", "s2"]),
        st.integers(0, 2),
        st.lists(st.tuples(values, timestamps), min_size=1, max_size=8),
    ),
    max_size=8,
)


def build(runs_: list[tuple[str, tuple[tuple[str, bytes], ...], str, int, list[tuple[bytes | None, datetime | None]]]],
          ) -> list[Record]:  # fmt: skip
    next_offset: dict[tuple[str, str, int], int] = {}
    out = []
    for topic, headers, stream, partition, items in runs_:
        for value, timestamp in items:
            key = (stream, topic, partition)
            offset = next_offset.get(key, 10 * partition)
            next_offset[key] = offset + 1
            out.append(Record(value, None, headers, topic, partition, offset, timestamp, "kafka", "", stream))
    return out


# make_config's routes, and the server-mapped ones without validation (a delimited one passes its
# values through without the encoder's call).
ROUTES = [
    *(route.model_dump(exclude_defaults=True) for route in make_config().routes),
    {"topic": "csv-novalidate", "table": "T", "format": "csv", "mapping": "T_csv", "validate": False},
    {"topic": "json-novalidate", "table": "T", "format": "json", "mapping": "T_json", "validate": False},
]


def run(cls: type[Pipeline], recs: list[Record], limits: dict[str, int]) -> tuple[MemorySink, CapturingStore, Result]:
    sink, store = MemorySink(), CapturingStore()
    pipeline = cls(make_config(limits=limits, routes=ROUTES), sink, store)  # type: ignore[arg-type]
    result = pipeline.process(recs)
    return sink, store, result


def batch_view(sink: MemorySink) -> list[tuple[object, ...]]:
    return [(b.destination, b.decompressed(), b.raw_size, b.records, b.ranges, b.batch_id, b.oldest_timestamp)
            for b in sink.batches]  # fmt: skip


def letter_view(store: CapturingStore) -> list[tuple[object, ...]]:
    return [(d.record, d.reason, d.stage, d.field, d.route, d.destination, d.attempt) for d in store.letters]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(runs, st.integers(1, 5), st.integers(20, 300))
def test_process_gives_what_prepare_per_record_gives(items: list[tuple[object, ...]], max_records: int,
                                                     max_bytes: int) -> None:  # fmt: skip
    recs = build(items)  # type: ignore[arg-type]
    limits = {"max_batch_records": max_records, "max_batch_bytes": max_bytes, "max_record_bytes": 64}
    fast_sink, fast_store, fast = run(Pipeline, recs, limits)
    ref_sink, ref_store, ref = run(ReferencePipeline, recs, limits)
    assert batch_view(fast_sink) == batch_view(ref_sink)
    assert letter_view(fast_store) == letter_view(ref_store)
    fast.seconds = ref.seconds = 0.0
    assert fast == ref
    known = [r.timestamp for r in recs if r.timestamp is not None]
    assert fast.oldest_timestamp == (min(known) if known else None)


def reference_ranges_and_span(
    recs: Sequence[Record],
) -> tuple[tuple[OffsetRange, ...], datetime | None, datetime | None]:
    """The plain walk: a dict lookup and two comparisons per record."""
    spans: dict[tuple[str, str, int], list[int]] = {}
    oldest: datetime | None = None
    newest: datetime | None = None
    for record in recs:
        key = (record.stream, record.topic, record.partition)
        span = spans.setdefault(key, [record.offset, record.offset])
        span[0], span[1] = min(span[0], record.offset), max(span[1], record.offset)
        ts = record.timestamp
        if ts is not None:
            oldest = ts if oldest is None else min(oldest, ts)
            newest = ts if newest is None else max(newest, ts)
    return tuple(OffsetRange(t, p, first, last, s) for (s, t, p), (first, last) in spans.items()), oldest, newest


@settings(max_examples=500, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["", "s"]), st.sampled_from(["a", "b"]), st.integers(0, 2),
                          st.integers(-3, 30), timestamps), max_size=40))  # fmt: skip
def test_ranges_and_span_equals_the_plain_walk(items: list[tuple[str, str, int, int, datetime | None]]) -> None:
    recs = [Record(b"v", None, (), topic, partition, offset, ts, "kafka", "", stream)
            for stream, topic, partition, offset, ts in items]  # fmt: skip
    assert ranges_and_span(recs) == reference_ranges_and_span(recs)


def reference_encode(encoder: DelimitedPassthrough, value: bytes) -> bytes:
    """``DelimitedPassthrough.encode`` with validation as it was: ``count_fields`` for every row."""
    if value.endswith(b"\n"):
        value = value[:-1]
        if value.endswith(b"\r"):
            value = value[:-1]
    text = _utf8(value)
    if encoder.fields is None:
        count_fields(text, encoder.delimiter, value)
        return value
    count = count_fields(text, encoder.delimiter, value)
    if count != encoder.fields:
        raise _wrong_field_count(count, encoder.fields, encoder.why)
    return value


def outcome(fn: object, *args: object) -> tuple[str, object]:
    try:
        return "ok", fn(*args)  # type: ignore[operator]
    except RecordError as exc:
        return "error", (exc.stage, exc.reason)


csv_text = st.lists(st.sampled_from(['"', ",", ";", "\t", "|", "a", " ", "\n", "\r", "\x00", "\u00e9", '""', '"a,b"']),
                    max_size=16).map("".join)  # fmt: skip


@settings(max_examples=1500, deadline=None)
@given(csv_text | st.binary(max_size=12).map(lambda b: b.decode("latin-1")), st.sampled_from([",", ";", "\t", "|"]),
       st.none() | st.integers(1, 6), st.booleans())  # fmt: skip
def test_delimited_encode_equals_count_fields(text: str, delimiter: str, fields: int | None, raw: bool) -> None:
    value = text.encode("latin-1") if raw else text.encode("utf-8")  # latin-1: bytes that are not UTF-8
    encoder = DelimitedPassthrough(delimiter, fields, "the mapping's ordinals", validate=True)
    assert outcome(encoder.encode, Record(value)) == outcome(reference_encode, encoder, value)
