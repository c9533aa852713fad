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
