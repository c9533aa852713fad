"""One specialised Python function per compiled mapping: the client mapping's CSV line in one
call per record instead of one cell writer call per column.

:func:`line_writer` writes the source of a function from the mapping's columns (where each value
comes from, its ADX column type), compiles it once and returns it. The function inlines the
common cases of each column type (a ``str`` that needs no quoting, an ``int`` in range, a finite
``float``, ``None``, a UTC timestamp text, a JSON object or array into ``dynamic``) and calls the
column's cell writer (:data:`shared.mapping.types.TYPES`) for anything else. Any error, and any
document of another shape than the mapping reads, goes to the reference
(:meth:`CompiledMapping.csv_line_reference`), which then writes the line or raises the error
naming the column: the generated function never decides an edge case itself, so its output is
the reference's for every input (tests/unit/mapping/test_generated.py checks that property).

No text from the ingestion file reaches the generated source: keys, getters and writers are
passed as the function's globals, the source only names them by position.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import orjson

from shared.mapping import types as adxtypes
from shared.pipeline.records import Record


class LineWriter(Protocol):
    """(decoded document, record, source location) -> the record's CSV line."""

    def __call__(self, doc: Any, record: Record, location: str = "") -> str: ...


@dataclass(frozen=True, slots=True)
class Source:
    """Where one column's raw value comes from, as the generated code reads it.

    ``kind``: ``key`` (``doc.get(arg)``), ``ordinal`` (``doc[arg]`` of a field list), ``attr``
    (``record.<arg>``: topic, partition, offset), ``getter`` (``arg(doc, record, location)``),
    ``none`` (the mapping does not name the column: an empty field)."""

    kind: str
    arg: Any = None


CANONICAL_REAL = re.compile(r"-?(?:[1-9][0-9]*\.(?:0|[0-9]*[1-9])|0\.(?:0|(?!0000)[0-9]*[1-9]))")
"""Decimal text that ``repr(float(text))`` writes back unchanged when it has at most 15 digits
(at most 16 characters with the point and any sign): a decimal of 15 significant digits or
fewer round-trips through a double (DBL_DIG), so no shorter decimal reads as the same double
and repr's shortest form has these very digits; repr writes them in this fixed notation (no
leading zero but a lone one, a point, no trailing zero but a lone one) from 1e-4 up to 1e16,
hence no fraction starting with four zeros after ``0.``."""
CANONICAL_REAL_CHARS = 16
"""The longest text :data:`CANONICAL_REAL` is trusted for (15 digits and the point)."""

_ERRORS = (ValueError, TypeError, OverflowError, ArithmeticError, IndexError, AttributeError)
"""What the generated code hands to the reference (which decides, as for any value)."""


def line_writer(
    types: Sequence[str],
    sources: Sequence[Source],
    writers: Sequence[adxtypes.CellWriter],
    transforms: Sequence[bool],
    doc_kind: str | None,
    reference: LineWriter,
) -> LineWriter:
    """The generated CSV line function of a mapping.

    ``types``, ``sources``, ``writers`` (each column's cell writer, its transform folded in) and
    ``transforms`` (True: a DateTimeFromUnix* transform, so only the writer knows the value) run
    in table column order. ``doc_kind``: ``dict`` when a column reads a key, ``list`` when one
    reads an ordinal (a document of another type goes to ``reference``), None when none does."""
    namespace: dict[str, Any] = {
        "_ref": reference,
        "_errors": _ERRORS,
        "_field": adxtypes.csv_field,
        "_dumps": orjson.dumps,
        "_loads": orjson.loads,
        "_fromiso": datetime.fromisoformat,
        "_dict": dict,
        "_list": list,
        "_str": str,
        "_int": int,
        "_float": float,
        "_canonical_real": CANONICAL_REAL.fullmatch,
    }
    body: list[str] = []
    if doc_kind == "dict":
        body += ["if type(doc) is not _dict:", "    return _ref(doc, record, location)", "get = doc.get"]
    elif doc_kind == "list":
        body += ["if type(doc) is not _list:", "    return _ref(doc, record, location)", "n = len(doc)"]
    body.append("try:")
    parts: list[str] = []
    for index, (adx_type, source, writer, transform) in enumerate(zip(types, sources, writers, transforms, strict=True)):
        if source.kind == "none":
            parts.append("")
            continue
        namespace[f"w{index}"] = writer
        if source.kind == "key":
            namespace[f"k{index}"] = source.arg
            read = f"get(k{index})"
        elif source.kind == "ordinal":
            read = f"doc[{int(source.arg)}] if {int(source.arg)} < n else None"
        elif source.kind == "attr":
            if source.arg not in ("topic", "partition", "offset"):
                raise ValueError(f"line_writer: no record attribute {source.arg!r}")
            read = f"record.{source.arg}"
        else:
            namespace[f"g{index}"] = source.arg
            read = f"g{index}(doc, record, location)"
        body.append(f"    v = {read}")
        body += ["    " + line for line in _cell(index, adx_type, transform)]
        parts.append(f"{{f{index}}}")
    if not parts:
        return _no_columns
    if body[-1] == "try:":
        body.append("    pass")
    body.append("except _errors:")
    body.append("    return _ref(doc, record, location)")
    line = ",".join(parts)
    if len(parts) == 1:
        body.append(f'return f"{line}" or \'""\'')  # one empty field: not a blank line
    else:
        body.append(f'return f"{line}"')
    source_text = "def _line(doc, record, location=''):\n" + "\n".join("    " + b for b in body) + "\n"
    exec(compile(source_text, "<kafka-adx mapping>", "exec"), namespace)  # our own source: no config text in it
    function: LineWriter = namespace["_line"]
    function.__doc__ = "Generated by shared.mapping.generated.line_writer:\n\n" + source_text
    return function


def _no_columns(doc: Any, record: Record, location: str = "") -> str:
    """A mapping that names no column: every line is one empty field, written as ``""``."""
    return '""'


def _cell(index: int, adx_type: str, transform: bool) -> list[str]:
    """The statements that set ``f<index>`` from the raw value ``v`` (as the cell writer would)."""
    f, w = f"f{index}", f"w{index}"
    if transform:
        return [f"{f} = {w}(v)"]
    if adx_type == "string":
        # csv_field's own test: a quote, a comma, a line break, or whitespace at either end
        # (strip() returns v itself when it strips nothing: str.isspace's characters). Four
        # substring tests cost less than one isprintable() scan.
        return [
            "if type(v) is _str:",
            f"    {f} = v if (v.strip() is v and '\"' not in v and ',' not in v and '\\n' not in v and '\\r' not in v)"
            " else _field(v)",
            "elif v is None:",
            f"    {f} = ''",
            "else:",
            f"    {f} = {w}(v)",
        ]
    if adx_type in ("int", "long"):
        low, high = adxtypes._INT32 if adx_type == "int" else adxtypes._INT64
        digits = 9 if adx_type == "int" else 18  # fewer digits than that: always in range
        return [
            f"if type(v) is _int and {low} <= v <= {high}:",
            f"    {f} = v",
            # Delimited text of plain ASCII digits without a leading zero: int() and str() give it back.
            f"elif type(v) is _str and v.isdigit() and v.isascii() and len(v) <= {digits} and (v[0] != '0' or len(v) == 1):",
            f"    {f} = v",
            "elif v is None:",
            f"    {f} = ''",
            "else:",
            f"    {f} = {w}(v)",
        ]
    if adx_type == "real":
        return [
            # x - x is 0.0 exactly for every finite float (nan and inf give nan).
            "if type(v) is _float and v - v == 0.0:",
            f"    {f} = v",
            # Delimited text already in repr's form (below) is its own field; other text goes
            # through float(), which strips what the converter strips.
            f"elif type(v) is _str and len(v) <= {CANONICAL_REAL_CHARS} and _canonical_real(v):",
            f"    {f} = v",
            "elif type(v) is _str:",
            "    x = _float(v)",
            f"    {f} = x if x - x == 0.0 else {w}(v)",
            "elif v is None:",
            f"    {f} = ''",
            "else:",
            f"    {f} = {w}(v)",
        ]
    if adx_type == "datetime":
        return [
            # The shape the writer's own fast path takes (2007-01-01T00:00:00Z), checked the same way.
            "if type(v) is _str and len(v) == 20 and v[19] == 'Z' and v[10] == 'T' and v[4] == v[7] == '-'"
            " and v[13] == v[16] == ':':",
            "    _fromiso(v)",  # validates (raises ValueError: the reference decides)
            f"    {f} = v[:19] + '.0000000Z'",
            "elif v is None:",
            f"    {f} = ''",
            "else:",
            f"    {f} = {w}(v)",
        ]
    if adx_type == "dynamic":
        return [
            # orjson's text of an object or array: no line break, no whitespace at either end.
            "if type(v) is _dict or type(v) is _list:",
            "    t = _dumps(v).decode()",
            f"    {f} = '\"' + t.replace('\"', '\"\"') + '\"' if ('\"' in t or ',' in t) else t",
            # Delimited JSON text of an object or array, which the converter parses and writes
            # back (a text orjson refuses raises: the reference keeps it as a string).
            "elif type(v) is _str and (v[:1] == '{' or v[:1] == '['):",
            "    t = _dumps(_loads(v)).decode()",
            f"    {f} = '\"' + t.replace('\"', '\"\"') + '\"' if ('\"' in t or ',' in t) else t",
            "elif v is None:",
            f"    {f} = ''",
            "else:",
            f"    {f} = {w}(v)",
        ]
    return [f"{f} = '' if v is None else {w}(v)"]
