"""The direct load of server-mapped batches: DuckDB reads the producer's payload itself.

A server-mapped batch is the producer's bytes (CSV rows, JSON lines) with the mapping ADX would
apply. The reference path (:meth:`shared.sinks.duckdb.DuckDbSink._write_converted`) parses each
row in Python (``csv.reader`` / ``orjson.loads``), applies :class:`CompiledMapping` leniently
and rewrites every value as DuckDB text. Here DuckDB reads the payload (``read_csv`` with every
field VARCHAR, ``read_json`` with every top-level key the mapping reads as JSON) and SQL
computes each column, but **only** for the forms of a value that the reference converts
unambiguously to the same value: a canonical integer text or a JSON integer, DuckDB's own text
of a double, a timestamp in one of three exact shapes, a hyphenated guid, a JSON string, a JSON
object/array already in orjson's compact form... Any other form, anywhere in the batch, calls
``error()`` (:data:`NEEDS_REFERENCE`): the sink's transaction is rolled back and the batch takes
the reference path, which decides the edge case. A DuckDB cast never decides one: every typed
value is checked by printing it back (``TRY_CAST(t AS INTEGER)::VARCHAR = t``) or by its JSON
type.

What the parsers disagree on, and how it is kept out (see :func:`scan_csv` and the expressions):
``csv.reader`` keeps spaces around quotes that DuckDB trims, yields an empty row for a blank line
that DuckDB skips, reads a BOM as text that DuckDB drops, and refuses fields over its size
limit; DuckDB's JSON reader takes NaN, Infinity, trailing commas and huge numbers that orjson
refuses, keeps the first of two duplicate keys where orjson keeps the last, and writes some
doubles in another form than orjson.
"""

from __future__ import annotations

import csv
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

import orjson

from shared.config import Mapping, Table
from shared.mapping.jsonpath import parse_path

NEEDS_REFERENCE = "kafka-adx: value needs the reference path"
"""The error message prefix of a value the direct load does not take (shared with the client
direct load of :mod:`shared.sinks.duckdb`)."""

CSV_NULL = "\x01kafka-adx-null\x01"
"""read_csv's null string: text no field holds (a \\x01 pair), so an empty field is '' (the
reference's '' too) and only a field past the end of a short row (null_padding) is NULL."""

JSON_OBJECT_BYTES = 2 * 1024 * 1024
"""read_json's largest line (its buffers are a multiple of it: the default, 16 MiB, does not fit
the sink's memory_limit): twice the default max_record_bytes; a longer line raises, and its
batch takes the reference path."""

_FIELD_LIMIT = csv.field_size_limit()
"""csv.reader refuses a longer field (the reference then fails the batch); DuckDB would take it."""

# An object or array as orjson writes it (the reference stores orjson.dumps of the parsed value):
# no whitespace, strings without escapes or control characters (both writers leave the other
# characters as they are), integers of at most 16 digits (written alike) and decimals of at most
# 15 significant digits in fixed notation (repr's form, which orjson and DuckDB's writer share
# there; pinned by the tests). DuckDB's JSON writer and orjson differ on the rest (1e16, escapes).
_STRING = r'"[^"\\\x00-\x1f]*"'
_INT = r"(?:0|-?[1-9][0-9]{0,15})"
_DEC = (
    r"-?(?:0\.0{0,3}[1-9](?:[0-9]{0,9}[1-9])?|[1-9][0-9]{0,14}\.[0-9]{0,14}[1-9]|(?:0|[1-9][0-9]{0,14})\.0)"
)
# RE2 (DuckDB's regular expressions) has no lookahead: a number takes the character after it (a
# comma or a closing bracket), so that two tokens never make one number ("1.50" as 1.5 and 0).
# Two checks beside it: no run of 17 digits or dots (at most 15 significant digits, so that a
# decimal is the shortest text of its double; 16-digit integers) and no trailing comma (DuckDB
# accepts one, orjson does not).
CANONICAL_JSON = rf"[\[{{](?:{_STRING}|[\[\]{{}}:,]|(?:{_DEC}|{_INT})[,\]}}]|true|false|null)*"
"""A JSON object or array exactly as orjson would write it (duplicate keys aside: checked apart)."""


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _qi(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _fail(what: str, value: str) -> str:
    # The message names the value by its length only (no record content in logs); it depends on
    # the row, or DuckDB would raise it while planning, for every batch.
    return f"error({_lit(NEEDS_REFERENCE + ': ' + what + ' of ')} || coalesce(strlen({value}::VARCHAR), 0) || ' bytes')"


def _checked(value: str, accept: str, result: str, what: str) -> str:
    """``result`` where ``accept`` holds, null for a null ``value``, else the reference's error."""
    return f"CASE WHEN {value} IS NULL THEN NULL WHEN {accept} THEN {result} ELSE {_fail(what, value)} END"


def _no_duplicate_keys(text: str) -> str:
    """True when no two keys of canonical JSON ``text`` are equal, anywhere in it (orjson keeps
    the last of two keys of one object, DuckDB would store both): its strings hold no quote, so
    every ``":`` closes a key, and the text between it and the quote before is that key. Keys
    repeated across objects (an array of objects) also go to the reference, needlessly but
    safely. (json_structure, which merges repeated keys, ran out of memory_limit on a batch.)"""
    keys = f'regexp_extract_all({text}, \'"([^"]*)":\', 1)'
    return f"(strlen({text}) - strlen(replace({text}, '\":', ''))) // 2 = list_unique({keys})"


def _dynamic(text: str) -> str:
    """A dynamic value from its JSON text: stored as it is when it is an object or array in
    orjson's form without repeated keys (the reference parses and rewrites it to the same text)."""
    accept = (
        f"regexp_full_match({text}, {_lit(CANONICAL_JSON)}) AND NOT regexp_matches({text}, '[0-9.]{{17}}|,[\\]}}]') "
        f"AND {_no_duplicate_keys(text)}"
    )
    return _checked(text, accept, f"{text}::JSON", "a dynamic value")


def _datetime(text: str) -> str:
    """A datetime from text in one of three exact shapes (StormEvents.csv's ``2007-01-01
    00:00:00.0000000``, ``2007-01-01T00:00:00Z``, ADX's ``...T00:00:00.0000000Z``): DuckDB's
    value printed back must be the text itself, so its digits are the ones the reference's regex
    reads (a seventh fraction digit 0: the reference truncates to microseconds)."""
    ts = f"TRY_CAST({text} AS TIMESTAMP)"
    accept = (
        f"{ts} >= TIMESTAMP '0001-01-01' AND ({text} = strftime({ts}, '%Y-%m-%d %H:%M:%S.%f') || '0' "
        f"OR {text} = strftime({ts}, '%Y-%m-%dT%H:%M:%SZ') OR {text} = strftime({ts}, '%Y-%m-%dT%H:%M:%S.%f') || '0Z')"
    )
    return _checked(text, accept, ts, "a datetime")


def _round_trip(text: str, duck_type: str, what: str, printed: str | None = None) -> str:
    """A value DuckDB reads from ``text`` and prints back as ``text`` (or ``printed``): the
    canonical form, which the reference's int()/float()/UUID() reads as the same value."""
    value = f"TRY_CAST({text} AS {duck_type})"
    return _checked(text, f"{value}::VARCHAR = {printed or text}", value, what)


def _text_expr(adx_type: str, text: str) -> str | None:
    """SQL of a column from the text ``text`` (a CSV field, or a JSON string's content)."""
    if adx_type == "string":
        return text
    empty_null = f"nullif({text}, '')"  # empty text is null for every type but string
    if adx_type == "int":
        return _round_trip(empty_null, "INTEGER", "an int")
    if adx_type == "long":
        return _round_trip(empty_null, "BIGINT", "a long")
    if adx_type == "real":
        return _round_trip(empty_null, "DOUBLE", "a real")
    if adx_type == "guid":
        return _round_trip(empty_null, "UUID", "a guid", f"lower({empty_null})")
    if adx_type == "bool":
        return (
            f"CASE WHEN {empty_null} IS NULL THEN NULL WHEN {text} IN ('true', 'True', 'TRUE', '1') THEN true "
            f"WHEN {text} IN ('false', 'False', 'FALSE', '0') THEN false ELSE {_fail('a bool', text)} END"
        )
    if adx_type == "datetime":
        return _datetime(empty_null)
    if adx_type == "dynamic":
        return _dynamic(empty_null)
    return None  # decimal, timespan: the reference decides


def _json_expr(adx_type: str, value: str) -> str | None:
    """SQL of a column from a JSON value (DuckDB's text of it; null for a missing key or null)."""
    kind = f"json_type({value})"
    if adx_type in ("string", "datetime", "guid"):
        text = f"({value} ->> '$')"
        inner = _text_expr(adx_type, text)
        # Only a JSON string converts the same (the reference writes numbers, booleans and
        # objects into a string column in Python's forms).
        return _checked(value, f"{kind} = 'VARCHAR'", inner or "NULL", f"a {adx_type} value")
    if adx_type in ("int", "long"):
        duck = "INTEGER" if adx_type == "int" else "BIGINT"
        # A cast out of range raises: the reference's null (out of range) is its to decide.
        return _checked(value, f"{kind} IN ('BIGINT', 'UBIGINT')", f"{value}::{duck}", f"an {adx_type}")
    if adx_type == "real":
        # NaN and Infinity never get here: orjson refused them (validation, or scan_json_lines).
        return _checked(value, f"{kind} IN ('BIGINT', 'UBIGINT', 'DOUBLE')", f"{value}::DOUBLE", "a real")
    if adx_type == "bool":
        return _checked(value, f"{kind} = 'BOOLEAN'", f"{value}::BOOLEAN", "a bool")
    if adx_type == "dynamic":
        return _dynamic(f"{value}::VARCHAR")
    return None


@dataclass(frozen=True, slots=True)
class ServerPlan:
    """How DuckDB reads a server-mapped payload: the reader's columns (name, type) and the SQL
    of each table column over them."""

    kind: str
    reader_columns: list[str]
    exprs: list[str]
    fields: int = 0


def _duck_type(adx_type: str) -> str:
    from shared.mapping.types import TYPES

    return TYPES[adx_type].duckdb


def csv_plan(table: Table, mapping: Mapping | None) -> ServerPlan | None:
    """The plan of a CSV payload mapped by ordinals (None: a column needs the reference)."""
    ordinals: list[int | None] = []
    for index, column in enumerate(table.columns):
        if mapping is None:
            ordinals.append(index)
            continue
        props = next((e.properties for e in mapping.columns if e.column == column.name), None)
        if props is None:
            ordinals.append(None)
        elif (
            props.ordinal is not None
            and props.path is None
            and props.const_value is None
            and props.transform is None
            and props.metadata is None
        ):
            ordinals.append(props.ordinal)
        else:  # constants, transforms: the reference applies them
            return None
    width = max(
        [o + 1 for o in ordinals if o is not None] + [mapping.source_fields or 0 if mapping else 0, 1]
    )
    exprs = []
    for column, ordinal in zip(table.columns, ordinals, strict=True):
        if ordinal is None:
            exprs.append(f"NULL::{_duck_type(column.type)}")
            continue
        expr = _text_expr(column.type, f"c{ordinal}")
        if expr is None:
            return None
        exprs.append(expr)
    return ServerPlan("csv", [f"c{i}" for i in range(width)], exprs, width)


def csv_select(plan: ServerPlan, path: str, buffer_bytes: int) -> str:
    """The SELECT of a CSV plan over the gzip payload at ``path``: a row with a field over the
    csv module's limit raises (the reference fails that batch)."""
    columns = ", ".join(f"{_lit(c)}: 'VARCHAR'" for c in plan.reader_columns)
    longest = f"greatest({', '.join(f'coalesce(strlen({c}), 0)' for c in plan.reader_columns)}, 0)"
    # In the first column's expression, not a WHERE: a filter makes DuckDB hold the rows to keep
    # their order, which runs out of the sink's memory_limit on a 32 MiB batch.
    first = f"CASE WHEN {longest} > {_FIELD_LIMIT} THEN {_fail('a field', plan.reader_columns[0])} ELSE {plan.exprs[0]} END"
    return (
        f"SELECT {', '.join([first, *plan.exprs[1:]])} FROM read_csv({_lit(path)}, header = false, columns = {{{columns}}}, "
        f"nullstr = {_lit(CSV_NULL)}, quote = '\"', escape = '\"', delim = ',', new_line = '\\n', "
        f"auto_detect = false, strict_mode = true, null_padding = true, compression = 'gzip', "
        f"buffer_size = {buffer_bytes})"
    )


def json_plan(table: Table, mapping: Mapping | None) -> ServerPlan | None:
    """The plan of a JSON-lines payload mapped by key paths (``$.a``, ``$['a']``, ``$.a.b``)."""
    keys: list[str] = []
    exprs = []
    for column in table.columns:
        if mapping is None:
            path: str | None = (
                f"$['{column.name}']" if "'" not in column.name and "\\" not in column.name else None
            )
            if path is None:
                return None
        else:
            props = next((e.properties for e in mapping.columns if e.column == column.name), None)
            if props is None:
                exprs.append(f"NULL::{_duck_type(column.type)}")
                continue
            if props.path is None or props.transform is not None or props.const_value is not None:
                return None
            path = props.path
        steps = parse_path(path)
        if not steps or not all(isinstance(s, str) for s in steps):
            return None  # the whole document, array indexes: the reference
        first = str(steps[0])
        if first not in keys:
            if any(first.lower() == k.lower() for k in keys):
                return None  # read_json's columns are named case-insensitively
            keys.append(first)
        value = _qi(f"k{keys.index(first)}")
        for step in steps[1:]:
            if not str(step).replace("_", "").isalnum() or not str(step).isascii():
                return None
            # orjson keeps the last of two repeated keys, json_extract the first: the object a
            # step reads from must not repeat one.
            distinct = f"len(json_keys({value})) = len(list_distinct(json_keys({value})))"
            value = (
                f"CASE WHEN {value} IS NULL OR json_type({value}) <> 'OBJECT' THEN NULL WHEN {distinct} "
                f"THEN json_extract({value}, {_lit('$.' + str(step))}) ELSE {_fail('an object', value)}::JSON END"
            )
        expr = _json_expr(column.type, f"({value})")
        if expr is None:
            return None
        exprs.append(expr)
    return ServerPlan("json", keys, exprs)


def json_select(plan: ServerPlan, path: str) -> str:
    """The SELECT of a JSON plan over the gzip payload at ``path``: each top-level key the
    mapping reads as a JSON column (read_json raises on a record that is not an object, or that
    repeats one of them)."""
    columns = ", ".join(f"{_lit(k)}: 'JSON'" for k in plan.reader_columns)
    renamed = ", ".join(f"{_qi(k)} AS {_qi(f'k{i}')}" for i, k in enumerate(plan.reader_columns))
    source = (
        f"read_json({_lit(path)}, format = 'newline_delimited', columns = {{{columns}}}, "
        f"compression = 'gzip', maximum_object_size = {JSON_OBJECT_BYTES})"
    )
    if not plan.reader_columns:
        return f"SELECT {', '.join(plan.exprs)} FROM {source}"
    return f"SELECT {', '.join(plan.exprs)} FROM (SELECT {renamed} FROM {source})"


_CHUNK = 1 << 20
# Spaces between a delimiter (or a line's start or end) and a quote: DuckDB trims them and reads
# the field as quoted; csv.reader keeps them (the field is not quoted, or gets the spaces). The
# start and end of a chunk count as a line's (a needless fallback at worst).
_TRIMMED = re.compile(rb'(?:^|[,\n]) +"|" +(?:[,\n]|$)')
_BOM = b"\xef\xbb\xbf"


def _chunks(payload: bytes) -> Iterator[bytes]:
    """The decompressed gzip payload, a chunk at a time (never whole); :data:`_BOM` itself,
    and nothing more, when it starts with a BOM (or a first chunk too short to tell)."""
    inflate = zlib.decompressobj(wbits=31)
    first, data = True, payload
    while True:
        chunk = inflate.decompress(data, _CHUNK)
        data = inflate.unconsumed_tail
        if chunk:
            if first and chunk.startswith(_BOM[: len(chunk)]):
                yield _BOM
                return
            first = False
            yield chunk
        if not data and (inflate.eof or not chunk):
            return


def scan_csv(payload: bytes) -> int | None:
    """The number of lines of a gzip CSV payload, or None when DuckDB's reader could read it
    otherwise than ``csv.reader`` does: a BOM first (DuckDB drops it), a carriage return, a
    blank line (csv.reader yields an empty row, DuckDB none), a space before or after a quote
    (DuckDB trims it), a field that is read_csv's null string. Decompressed a chunk at a time,
    never whole."""
    lines, previous = 0, b"\n"
    null = CSV_NULL.encode()
    for chunk in _chunks(payload):
        if chunk is _BOM:
            return None
        joined = previous + chunk  # the tail of the previous chunk: patterns across the two
        if 13 in chunk or b"\n\n" in joined or null in joined:
            return None
        if (b' "' in joined or b'" ' in joined) and _TRIMMED.search(joined):
            return None
        lines += chunk.count(b"\n")
        # Enough of the tail for the patterns, and a run of spaces whole.
        previous = chunk[-(len(null) + len(chunk) - len(chunk.rstrip(b" "))) :]
    return lines + (0 if previous.endswith(b"\n") else 1)


def scan_json_lines(payload: bytes, *, parse: bool) -> bool:
    """Whether DuckDB's reader may take a gzip JSON-lines payload: no BOM first (DuckDB drops
    it, orjson refuses it) and, with ``parse`` (a route without validation, whose lines no one
    parsed), every line one orjson accepts: DuckDB also takes NaN, Infinity, trailing commas and
    numbers beyond a double, and the reference fails on them."""
    rest = b""
    for chunk in _chunks(payload):
        if chunk is _BOM:
            return False
        if not parse:
            return True
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()
        for line in lines:
            if not _json_line_ok(line):
                return False
    return not parse or not rest or _json_line_ok(rest)


def _json_line_ok(line: bytes) -> bool:
    if not line.strip():
        return not line  # a blank line: skipped by both, but Python's strip is wider than DuckDB's
    try:
        orjson.loads(line)
    except orjson.JSONDecodeError:
        return False
    return True
