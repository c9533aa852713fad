"""What the pipeline relies on in a ``Record`` now that it is no longer a frozen dataclass (its
``__init__`` cost five times as much): equal by its fields, hashable by them, copied with a
change by ``dataclasses.replace``, and no attribute beyond its fields."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from shared.pipeline.records import Record

STAMP = datetime(2024, 1, 1, tzinfo=UTC)


def test_records_with_the_same_fields_are_equal_and_hash_alike() -> None:
    one = Record(b"v", b"k", (("h", b"1"),), "t", 1, 7, STAMP, "kafka", "", "s")
    two = Record(b"v", b"k", (("h", b"1"),), "t", 1, 7, STAMP, "kafka", "", "s")
    assert one == two and hash(one) == hash(two)
    assert len({one, two, dataclasses.replace(one, offset=8)}) == 2


def test_replace_makes_a_changed_copy_and_leaves_the_original() -> None:
    original = Record(b"v", topic="t", offset=1)
    changed = dataclasses.replace(original, headers=(("a", None),), key=b"k")
    assert (original.headers, original.key) == ((), None)
    assert (changed.headers, changed.key, changed.value, changed.offset) == ((("a", None),), b"k", b"v", 1)


def test_a_record_holds_its_fields_only() -> None:
    record = Record(b"v")
    with pytest.raises(AttributeError):
        record.extra = 1  # type: ignore[attr-defined]
