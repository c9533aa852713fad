"""ADX scalar types in Python: converting source values to a column type, and writing them back
as the CSV text ADX reads (and the text the local DuckDB sink loads).

:data:`TYPES` is the one table of them: a :class:`ScalarType` row per type with its name,
aliases, converter, CSV writers and DuckDB type. The config's type names, the encoders and the
local sink all read it.

``convert(value, type)`` returns the canonical Python value or raises ``ValueError`` with what
was expected. Empty text converts to null for every type but ``string`` (as ADX reads an empty
CSV field). Client-side mapping with validation on dead-letters a record whose value does not
convert; with validation off it ingests null, as ADX itself does.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from email.utils import parsedate_to_datetime
from typing import Any, Literal

import orjson

Converter = Callable[[Any], Any]


def json_text(value: Any) -> str:
    """Compact JSON text of a value (stdlib fallback for integers beyond 64 bits)."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)

_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_DT = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?\s*(Z|[+-]\d{2}:?\d{2})?$"
)
_TIMESPAN = re.compile(r"^(-)?(?:(\d+)\.)?(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,7}))?)?$")
_TIMESPAN_LITERAL = re.compile(r"^(-)?(\d+(?:\.\d+)?)\s*(d|h|m|s|ms|microsecond|tick)$")
_LITERAL_UNITS = {
    "d": timedelta(days=1),
    "h": timedelta(hours=1),
    "m": timedelta(minutes=1),
    "s": timedelta(seconds=1),
    "ms": timedelta(milliseconds=1),
    "microsecond": timedelta(microseconds=1),
    "tick": timedelta(microseconds=0.1),
}


def _text(value: Any) -> str | None:
    """Strip text; None for empty."""
    text = value.strip()
    return text or None


def to_string(value: Any) -> str | None:
    """string: text as is; numbers and booleans as JSON writes them; objects as compact JSON."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, Decimal)):
        return str(value)
    if isinstance(value, datetime):
        return format_datetime(value)
    return json_text(value)


def _integer(value: Any, bounds: tuple[int, int], name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"expected {name}, got a boolean")
    if isinstance(value, int):
        result = value
    elif isinstance(value, float):
        if not value.is_integer():
            raise ValueError(f"expected {name}, got {value!r} (not a whole number)")
        result = int(value)
    elif isinstance(value, str):
        text = _text(value)
        if text is None:
            return None
        try:
            result = int(text)
        except ValueError:
            raise ValueError(f"expected {name}, got {value[:40]!r}") from None
    else:
        raise ValueError(f"expected {name}, got {type(value).__name__}")
    if not bounds[0] <= result <= bounds[1]:
        raise ValueError(f"{result} is out of range for {name}")
    return result


def to_int(value: Any) -> int | None:
    """int: a 32-bit whole number."""
    if type(value) is int and _INT32[0] <= value <= _INT32[1]:  # the common case, checked first
        return value
    return _integer(value, _INT32, "int")


def to_long(value: Any) -> int | None:
    """long: a 64-bit whole number."""
    if type(value) is int and _INT64[0] <= value <= _INT64[1]:
        return value
    return _integer(value, _INT64, "long")


def to_real(value: Any) -> float | None:
    """real: a double; text may be NaN, inf, -inf as ADX writes them."""
    if type(value) is float:
        return value
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError("expected real, got a boolean")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        text = _text(value)
        if text is None:
            return None
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"expected real, got {value[:40]!r}") from None
    raise ValueError(f"expected real, got {type(value).__name__}")


def to_decimal(value: Any) -> Decimal | None:
    """decimal: exact decimal number."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError("expected decimal, got a boolean")
    if isinstance(value, str):
        text = _text(value)
        if text is None:
            return None
        value = text
    try:
        result = Decimal(str(value)) if isinstance(value, (int, float, str)) else None
    except InvalidOperation:
        result = None
    if result is None or not result.is_finite():
        raise ValueError(f"expected decimal, got {str(value)[:40]!r}")
    return result


def to_bool(value: Any) -> bool | None:
    """bool: true/false (any case), 1/0."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = _text(value)
        if text is None:
            return None
        lowered = text.lower()
        if lowered in ("true", "1"):
            return True
        if lowered in ("false", "0"):
            return False
    raise ValueError(f"expected bool (true/false), got {str(value)[:40]!r}")


def _simple_utc_stamp(text: str) -> datetime | None:
    """``2007-01-01T00:00:00Z``, the most common shape, parsed by the C parser; None for any
    other text. On exactly this shape (ASCII digits only) it agrees with the full rules."""
    if len(text) == 20 and text[19] == "Z" and text[10] == "T" and text[4] == text[7] == "-" and text[13] == text[16] == ":":
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            return None
    return None


def parse_datetime(text: str) -> datetime:
    """ISO 8601 (``2007-01-01``, ``2007-01-01T00:00:00.1234567Z``, offsets) or RFC 822; UTC."""
    parsed = _simple_utc_stamp(text)
    return parsed if parsed is not None else _parse_datetime_full(text)


def _parse_datetime_full(text: str) -> datetime:
    match = _DT.match(text)
    if match:
        year, month, day, hour, minute, second, fraction, zone = match.groups()
        micro = int((fraction or "0")[:6].ljust(6, "0"))
        result = datetime(
            int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0), micro, tzinfo=UTC
        )
        if zone and zone != "Z":
            sign = 1 if zone[0] == "+" else -1
            digits = zone[1:].replace(":", "")
            result -= sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
        return result
    parsed = parsedate_to_datetime(text)  # raises ValueError/TypeError
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def to_datetime(value: Any) -> datetime | None:
    """datetime: ISO 8601 or RFC 822 text (numbers need a DateTimeFromUnix* transform)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str):
        text = _text(value)
        if text is None:
            return None
        try:
            return parse_datetime(text)
        except (ValueError, TypeError, IndexError):
            raise ValueError(f"expected datetime (ISO 8601), got {value[:40]!r}") from None
    raise ValueError(f"expected datetime text, got {type(value).__name__} (use a DateTimeFromUnix* transform)")


def to_timespan(value: Any) -> timedelta | None:
    """timespan: ``[-][d.]hh:mm[:ss[.fffffff]]`` or a KQL literal like ``90s``, ``2h``, ``1.5d``."""
    if value is None or isinstance(value, timedelta):
        return value
    if isinstance(value, str):
        text = _text(value)
        if text is None:
            return None
        match = _TIMESPAN.match(text)
        if match:
            neg, days, hours, minutes, seconds, fraction = match.groups()
            result = timedelta(
                days=int(days or 0),
                hours=int(hours),
                minutes=int(minutes),
                seconds=int(seconds or 0),
                microseconds=int((fraction or "0")[:6].ljust(6, "0")),
            )
            return -result if neg else result
        match = _TIMESPAN_LITERAL.match(text)
        if match:
            neg, amount, unit = match.groups()
            result = _LITERAL_UNITS[unit] * float(amount)
            return -result if neg else result
    raise ValueError(f"expected timespan (d.hh:mm:ss), got {str(value)[:40]!r}")


def to_guid(value: Any) -> uuid.UUID | None:
    """guid: a UUID in any of its text forms."""
    if value is None or isinstance(value, uuid.UUID):
        return value
    if isinstance(value, str):
        text = _text(value)
        if text is None:
            return None
        try:
            return uuid.UUID(text)
        except ValueError:
            pass
    raise ValueError(f"expected guid, got {str(value)[:40]!r}")


def to_dynamic(value: Any) -> Any:
    """dynamic: JSON values as they are; text is parsed as JSON and kept as a string if it is
    not JSON (what ADX's parse_json does)."""
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if text[0] in '{["' or text in ("true", "false", "null") or text[0] in "-0123456789":
            try:
                return orjson.loads(text)
            except orjson.JSONDecodeError:
                return value
        return value
    return value


def convert(value: Any, adx_type: str) -> Any:
    """Convert ``value`` to ``adx_type``; ``ValueError`` says what was expected."""
    return TYPES[adx_type].convert(value)


_UNIX_SCALE = {
    "DateTimeFromUnixSeconds": 1,
    "DateTimeFromUnixMilliseconds": 1_000,
    "DateTimeFromUnixMicroseconds": 1_000_000,
    "DateTimeFromUnixNanoseconds": 1_000_000_000,
}


def from_unix(value: Any, transform: str) -> datetime | None:
    """Apply a DateTimeFromUnix* transform to a number (or numeric text)."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"{transform} expects a number, got a boolean")
    if isinstance(value, str):
        text = _text(value)
        if text is None:
            return None
        try:
            value = int(text) if text.lstrip("-").isdigit() else float(text)
        except ValueError:
            raise ValueError(f"{transform} expects a number, got {value[:40]!r}") from None
    if not isinstance(value, (int, float)) or (isinstance(value, float) and not math.isfinite(value)):
        raise ValueError(f"{transform} expects a number, got {str(value)[:40]!r}")
    scale = _UNIX_SCALE[transform]
    if isinstance(value, int):
        seconds, rest = divmod(value, scale)
        micros = rest * 1_000_000 // scale
        delta = timedelta(seconds=seconds, microseconds=micros)
    else:
        delta = timedelta(seconds=value / scale)
    try:
        return _EPOCH + delta
    except OverflowError:
        raise ValueError(f"{transform}: {value} is out of the datetime range") from None


# --- writing values as the CSV text ADX reads ---------------------------------------------------


def format_datetime(value: datetime, digits: int = 7) -> str:
    """ISO 8601 in UTC, ``Z``-suffixed, with ``digits`` fractional digits (0 to 7; 7, the
    default, is how ADX writes datetimes). The one datetime formatter: every caller uses it."""
    value = value.astimezone(UTC) if value.tzinfo else value
    # Four-digit years always (glibc's strftime %Y would write year 999 as "999", which ADX
    # cannot read); f-strings are also faster than strftime.
    stamp = (
        f"{value.year:04d}-{value.month:02d}-{value.day:02d}T{value.hour:02d}:{value.minute:02d}:{value.second:02d}"
    )
    if digits == 7:
        return f"{stamp}.{value.microsecond:06d}0Z"
    if not 0 <= digits <= 7:
        raise ValueError(f"format_datetime: digits must be 0 to 7, not {digits}")
    return f"{stamp}.{f'{value.microsecond:06d}0'[:digits]}Z" if digits else f"{stamp}Z"


def format_timespan(value: timedelta) -> str:
    """``[-][d.]hh:mm:ss.fffffff``."""
    total = round(value.total_seconds() * 1_000_000)
    sign = "-" if total < 0 else ""
    total = abs(total)
    days, rem = divmod(total, 86_400_000_000)
    hours, rem = divmod(rem, 3_600_000_000)
    minutes, rem = divmod(rem, 60_000_000)
    seconds, micros = divmod(rem, 1_000_000)
    day_part = f"{days}." if days else ""
    return f"{sign}{day_part}{hours:02d}:{minutes:02d}:{seconds:02d}.{micros:06d}0"


def to_text(value: Any) -> str:
    """A converted value as CSV field text (before quoting); null is the empty field."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, (int, Decimal, uuid.UUID)):
        return str(value)
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, timedelta):
        return format_timespan(value)
    return json_text(value)


def csv_field(text: str) -> str:
    """Quote a CSV field the way ADX's CSV reader expects (RFC 4180): when it holds a quote, a
    comma or a line break, or starts or ends with whitespace."""
    if text and (
        '"' in text or "," in text or "\n" in text or "\r" in text or text[0].isspace() or text[-1].isspace()
    ):
        return '"' + text.replace('"', '""') + '"'
    return text


FieldWriter = Callable[[Any], str]
"""Converted value -> CSV field text."""
CellWriter = Callable[[Any], str]
"""Raw source value -> CSV field text (convert and write in one step)."""


def _text_field(value: str | None) -> str:
    return "" if value is None else csv_field(value)


def _plain_field(value: Any) -> str:
    # int, long, decimal, guid: digits, signs, letters and dashes never need quotes.
    return "" if value is None else str(value)


def _real_field(value: float | None) -> str:
    if value is None:
        return ""
    return repr(value) if math.isfinite(value) else to_text(value)


def _bool_field(value: bool | None) -> str:
    return "" if value is None else "true" if value else "false"


def _datetime_field(value: datetime | None) -> str:
    return "" if value is None else format_datetime(value)


def _timespan_field(value: timedelta | None) -> str:
    return "" if value is None else format_timespan(value)


def _any_field(value: Any) -> str:
    return csv_field(to_text(value))


def csv_line(values: list[Any]) -> str:
    """One CSV row of converted values. A row that would be an empty line (one column, null or
    empty) is written as ``""`` so that it is not read as a blank line and skipped."""
    line = ",".join([csv_field(to_text(v)) for v in values])
    return line or '""'


# --- converting and writing in one step (client-side mapping) ----------------------------------
# A cell takes a raw source value and returns its CSV field: TYPES[t].field(TYPES[t].convert(raw)),
# raising what the converter raises. The common raw types go straight to text.


def _string_cell(raw: Any) -> str:
    text = raw if type(raw) is str else to_string(raw)
    return "" if text is None else csv_field(text)


def _int_cell(raw: Any) -> str:
    if type(raw) is int and _INT32[0] <= raw <= _INT32[1]:
        return str(raw)
    return _plain_field(to_int(raw))


def _long_cell(raw: Any) -> str:
    if type(raw) is int and _INT64[0] <= raw <= _INT64[1]:
        return str(raw)
    return _plain_field(to_long(raw))


def _real_cell(raw: Any) -> str:
    if type(raw) is float and math.isfinite(raw):
        return repr(raw)
    return _real_field(to_real(raw))


def _datetime_cell(raw: Any) -> str:
    if type(raw) is datetime and raw.tzinfo is UTC:
        # A UTC datetime (what Avro's timestamp-* values decode to): C's isoformat, then ADX's
        # seven digits and Z; exactly format_datetime(raw) at half its cost.
        text = raw.isoformat()
        return text[:26] + "0Z" if raw.microsecond else text[:19] + ".0000000Z"
    if type(raw) is str and _simple_utc_stamp(raw) is not None:
        # A valid 2007-01-01T00:00:00Z with a four-digit year is written as itself + fraction.
        return raw[:19] + ".0000000Z"
    return _datetime_field(to_datetime(raw))


def _dynamic_cell(raw: Any) -> str:
    return csv_field(to_text(to_dynamic(raw)))


def _composed(converter: Converter, writer: FieldWriter) -> CellWriter:
    """The cell of a type without a shortcut: the converter, then the field writer."""
    return lambda raw: writer(converter(raw))


# --- writing values as the text DuckDB's CSV reader parses (local mode) ------------------------


def _duck_scalar(value: Any) -> str:
    """A converted non-null value of a scalar column as DuckDB CSV text."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, timedelta):
        return f"{round(value.total_seconds() * 1_000_000)} microseconds"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (int, Decimal)):
        return str(value)
    if isinstance(value, (dict, list)):
        return json_text(value)
    return str(value)


# --- the type table ----------------------------------------------------------------------------

AdxType = Literal["string", "int", "long", "real", "decimal", "bool", "datetime", "timespan", "guid", "dynamic"]
"""The ADX scalar type names a column may have (the rows of :data:`TYPES`)."""


@dataclass(frozen=True, slots=True)
class ScalarType:
    """One ADX scalar type: everything the project does with a value of it."""

    name: AdxType
    """The canonical name (what ``.create table`` writes)."""
    aliases: tuple[str, ...]
    """Other names ADX accepts for it, lower case (normalised to ``name`` by the config)."""
    convert: Converter
    """Source value to the canonical Python value; ``ValueError`` says what was expected."""
    field: FieldWriter
    """Converted value to its CSV field: exactly ``csv_field(to_text(value))``, faster."""
    cell: CellWriter
    """Raw source value to its CSV field in one call: exactly ``field(convert(raw))``."""
    duckdb: str
    """The DuckDB column type of the local sink."""
    duck_text: Callable[[Any], str]
    """Converted non-null value to the text DuckDB's CSV reader parses into ``duckdb``."""


def _row(
    name: AdxType, aliases: tuple[str, ...], convert: Converter, field: FieldWriter, duckdb: str,
    cell: CellWriter | None = None, duck_text: Callable[[Any], str] = _duck_scalar,
) -> ScalarType:
    return ScalarType(name, aliases, convert, field, cell or _composed(convert, field), duckdb, duck_text)


TYPES: dict[str, ScalarType] = {
    row.name: row
    for row in (
        _row("string", (), to_string, _text_field, "VARCHAR", _string_cell),
        _row("int", ("int32",), to_int, _plain_field, "INTEGER", _int_cell),
        _row("long", ("int64",), to_long, _plain_field, "BIGINT", _long_cell),
        _row("real", ("double", "float"), to_real, _real_field, "DOUBLE", _real_cell),
        _row("decimal", (), to_decimal, _plain_field, "DECIMAL(38, 10)"),
        _row("bool", ("boolean",), to_bool, _bool_field, "BOOLEAN"),
        _row("datetime", ("date",), to_datetime, _datetime_field, "TIMESTAMP", _datetime_cell),
        _row("timespan", ("time",), to_timespan, _timespan_field, "INTERVAL"),
        _row("guid", ("uniqueid", "uuid"), to_guid, _plain_field, "UUID"),
        # Dynamic values are JSON whatever their Python type (a string too: DuckDB's JSON column).
        _row("dynamic", (), to_dynamic, _any_field, "JSON", _dynamic_cell, json_text),
    )
}
"""The ADX type table: one row per scalar type, keyed by canonical name."""

_NAMES: dict[str, str] = {alias: row.name for row in TYPES.values() for alias in (row.name, *row.aliases)}


def normalise_type_name(text: str) -> str:
    """The canonical name of a type name or alias in any case (unknown names come back lower
    case, for the config's validation to reject)."""
    lowered = text.strip().lower()
    return _NAMES.get(lowered, lowered)


def field_writer(adx_type: str) -> FieldWriter:
    """The CSV field writer of a column type: for every value the type's converter returns it
    writes exactly ``csv_field(to_text(value))``, skipping the checks that type cannot need."""
    row = TYPES.get(adx_type)
    return _any_field if row is None else row.field


def csv_cell(adx_type: str) -> CellWriter:
    """Convert a raw value to ``adx_type`` and write it as a CSV field in one call: exactly
    ``field_writer(adx_type)(convert(raw, adx_type))``, raising what the converter raises."""
    return TYPES[adx_type].cell
