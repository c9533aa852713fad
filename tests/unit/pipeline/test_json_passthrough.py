"""Server-mapped JSON (``JsonPassthrough.encode``) parses a record inline with orjson and hands
anything but an object to ``parse_json``: it gives exactly what the reference, ``parse_json`` for
every record, gives (the line, or the RecordError with its words)."""

from __future__ import annotations

import json

import orjson
from hypothesis import example, given, settings
from hypothesis import strategies as st

from shared.errors import RecordError
from shared.pipeline.encoding import JsonPassthrough, parse_json
from shared.pipeline.records import Record

scalars = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=5)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
                      max_leaves=8)  # fmt: skip
# Documents as a producer writes them (compact or indented: spanning lines), two back to back,
# and broken ones (cut short, or with a stray byte).
documents = st.one_of(
    values.map(lambda v: json.dumps(v).encode()),
    values.map(lambda v: json.dumps(v, indent=1).encode()),
    st.lists(st.dictionaries(st.text(max_size=3), scalars, max_size=2), min_size=2, max_size=3).map(
        lambda docs: b"\n".join(json.dumps(d).encode() for d in docs)
    ),
    st.tuples(values.map(lambda v: json.dumps(v).encode()), st.integers(0, 40)).map(lambda t: t[0][: t[1]]),
    st.binary(max_size=12),
)


def reference(value: bytes, fmt: str, validate: bool) -> bytes | str:
    """The encode of before the inlining: parse_json for every record."""
    try:
        if validate:
            doc = parse_json(value, fmt)
            if fmt == "json" and (b"\n" in value or b"\r" in value):
                return orjson.dumps(doc)
            return value
        if fmt == "json" and (b"\n" in value or b"\r" in value):
            return orjson.dumps(parse_json(value, fmt))
        return value
    except RecordError as exc:
        return f"RecordError({exc.stage}): {exc}"


def encoded(value: bytes, fmt: str, validate: bool) -> bytes | str:
    try:
        return JsonPassthrough(fmt, validate).encode(Record(value, topic="t"))
    except RecordError as exc:
        return f"RecordError({exc.stage}): {exc}"


@settings(max_examples=600)
@given(documents, st.sampled_from(["json", "multijson"]), st.booleans())
@example(b'{"a": 1}', "json", True)
@example(b'[{"a": 1}, {"b": 2}]', "multijson", True)
@example(b'[{"a": 1}, 2]', "multijson", True)
@example(b'{"a": 1}\n{"b": 2}', "multijson", True)
@example(b"[]", "json", True)
@example(b'"text"', "json", True)
@example(b'{"a":\n 1}', "json", True)
@example(b'{"a":\r 1}', "json", False)
@example(b"{", "json", True)
def test_json_passthrough_encodes_what_parse_json_per_record_gives(value: bytes, fmt: str, validate: bool) -> None:
    assert encoded(value, fmt, validate) == reference(value, fmt, validate)
