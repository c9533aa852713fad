"""shared/mapping/jsonpath.py: the JSON paths ADX mappings use, parsed once and resolved per
document; a missing step gives None, never an error."""

from __future__ import annotations

import pytest

from shared.mapping.jsonpath import parse_path, resolve


def test_bracket_notation_for_odd_names() -> None:
    assert parse_path("$['a b'].c[\"d.e\"][2]") == ("a b", "c", "d.e", 2)
    assert resolve({"a b": {"c": {"d.e": [0, 1, 2]}}}, parse_path("$['a b'].c[\"d.e\"][2]")) == 2


def test_wildcards_are_rejected() -> None:
    with pytest.raises(ValueError, match="wildcard"):
        parse_path("$.a.*")


# --- parsing --------------------------------------------------------------------------------------

def test_root_and_surrounding_whitespace() -> None:
    assert parse_path("$") == ()
    assert parse_path("  $.a  ") == ("a",)
    doc = {"a": 1}
    assert resolve(doc, parse_path("$")) is doc


@pytest.mark.parametrize(
    ("path", "steps"),
    [
        ("$.a[0][1]", ("a", 0, 1)),
        ("$[ 3 ]", (3,)),
        ("$[-1]", (-1,)),
        ("$['it\\'s'].x", ("it's", "x")),
        ('$["say \\"hi\\""]', ('say "hi"',)),
        ("$['[0]']", ("[0]",)),
        ("$.a-b.c_d", ("a-b", "c_d")),
    ],
)
def test_names_quoted_names_and_indexes(path: str, steps: tuple[object, ...]) -> None:
    assert parse_path(path) == steps


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("a.b", "must start with '\\$'"),
        ("$.a.", "cannot read from position 3"),
        ("$.a[*]", "cannot read from position 3"),
        ("$.a[?(@.b)]", "cannot read from position 3"),
        ("$..a", "cannot read from position 1"),
        ("$['unclosed]", "cannot read from position 1"),
    ],
)
def test_paths_adx_does_not_support_are_rejected_naming_the_place(path: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_path(path)


# --- resolving ------------------------------------------------------------------------------------

def test_negative_indexes_count_from_the_end() -> None:
    doc = {"a": [10, 20, 30]}
    assert [resolve(doc, parse_path(f"$.a[{i}]")) for i in (-1, -3, -4, 2, 3)] == [30, 10, None, 30, None]


@pytest.mark.parametrize(
    "path",
    ["$.missing", "$.a.b.c", "$.list.name", "$.obj[0]", "$.a[0]", "$.nothing.below"],
)
def test_a_step_that_does_not_exist_gives_none(path: str) -> None:
    doc = {"a": {"b": "text"}, "list": [{"name": 1}], "obj": {"0": "zero"}, "nothing": None}
    assert resolve(doc, parse_path(path)) is None


def test_false_zero_and_empty_values_are_values_not_missing() -> None:
    doc = {"f": False, "z": 0, "e": "", "l": [], "o": {}}
    assert [resolve(doc, (name,)) for name in ("f", "z", "e", "l", "o")] == [False, 0, "", [], {}]


def test_a_name_step_is_a_key_even_when_it_looks_like_a_number() -> None:
    assert resolve({"0": "key"}, parse_path("$['0']")) == "key"
    assert resolve({"0": "key"}, parse_path("$[0]")) is None
    assert resolve(["item"], parse_path("$[0]")) == "item"
