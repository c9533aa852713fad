"""The JSON paths ADX mappings use: ``$``, ``$.a.b``, ``$['a b']``, ``$.a[0]``, ``$.a[-1]``.

A path that does not exist in a document yields ``None`` (ADX ingests null), never an error.
Wildcards and filters are not supported by ADX mappings and are rejected when the file loads.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

Step = str | int

_NAME = re.compile(r"\.([^.\[\]'\"]+)")
_QUOTED = re.compile(r"""\[\s*(?:'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)")\s*\]""")
_INDEX = re.compile(r"\[\s*(-?\d+)\s*\]")


@lru_cache(maxsize=4096)
def parse_path(path: str) -> tuple[Step, ...]:
    """Parse a path into steps (names and array indexes); ``ValueError`` names the problem."""
    text = path.strip()
    if not text.startswith("$"):
        raise ValueError(f"JSON path {path!r} must start with '$'")
    steps: list[Step] = []
    pos = 1
    while pos < len(text):
        for pattern in (_NAME, _QUOTED, _INDEX):
            match = pattern.match(text, pos)
            if match is None:
                continue
            if pattern is _INDEX:
                steps.append(int(match.group(1)))
            elif pattern is _QUOTED:
                raw = match.group(1) if match.group(1) is not None else match.group(2)
                steps.append(re.sub(r"\\(.)", r"\1", raw))
            else:
                name = match.group(1)
                if name == "*":
                    raise ValueError(f"JSON path {path!r}: wildcards are not supported in mappings")
                steps.append(name)
            pos = match.end()
            break
        else:
            raise ValueError(f"JSON path {path!r}: cannot read from position {pos} ({text[pos:]!r})")
    return tuple(steps)


def resolve(document: Any, steps: tuple[Step, ...]) -> Any:
    """The value at ``steps`` in ``document``, or ``None`` where any step is missing."""
    value = document
    for step in steps:
        if isinstance(step, str):
            if not isinstance(value, dict):
                return None
            value = value.get(step)
        else:
            if not isinstance(value, list):
                return None
            try:
                value = value[step]
            except IndexError:
                return None
        if value is None:
            return None
    return value
