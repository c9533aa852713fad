"""Which dead letters a command works on: the one filter ``replay``, ``deadletters list`` and
``deadletters show`` share (``--table``, ``--route``, ``--stage``, ``--reason``, ``--since``,
``--until``), the time parser of ``--since``/``--until``, and the reason *kind* letters are
grouped by."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatchcase

from shared.errors import ConfigError
from shared.pipeline.deadletter import DeadLetter

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_when(text: str, now: datetime | None = None) -> datetime:
    """An ISO 8601 time (UTC if no zone) or a duration back from now: ``30m``, ``2h``, ``7d``."""
    text = text.strip()
    match = _DURATION.match(text)
    if match:
        amount, unit = float(match.group(1)), match.group(2)
        return (now or datetime.now(UTC)) - timedelta(**{_UNITS[unit]: amount})
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"not a time: {text!r} (use ISO 8601 like 2024-05-01T10:00Z, or 30m, 2h, 7d)") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


# The pipeline prefixes every reason with where the record came from (``topic[p]@offset: ...``,
# or ``file:line (topic[p]@offset): ...``), so that a reason alone is actionable; for grouping
# that prefix (and the numbers in the message: sizes, line numbers) would make every letter a
# group of its own.
_WHERE = re.compile(r"^(?:\S+:\d+ \()?[^\s\[\]]*\[\d+\]@\d+\)?: ")
_HEX_ID = re.compile(r"\b[0-9a-f]{8,}\b")
_NUMBER = re.compile(r"\b\d+\b")
KIND_WIDTH = 120
"""Characters of a reason kind: a longer one keeps its start (the kind of failure) and its end
(where the error text says what went wrong, e.g. ADX's error code) around a ``...``."""


def reason_text(letter: DeadLetter) -> str:
    """The letter's reason without the record's location prefix."""
    return _WHERE.sub("", letter.reason, count=1)


def reason_kind(letter: DeadLetter) -> str:
    """What letters are grouped by: the reason without its location prefix, every number
    written ``N`` and every hex id (a batch id) ``ID``, at most :data:`KIND_WIDTH` characters
    (``record is N bytes, over the limit of N``)."""
    kind = _NUMBER.sub("N", _HEX_ID.sub("ID", " ".join(reason_text(letter).split())))
    if len(kind) <= KIND_WIDTH:
        return kind
    head = KIND_WIDTH // 3
    return f"{kind[:head]} ... {kind[-(KIND_WIDTH - head - 5):]}"


def table_of(letter: DeadLetter) -> str:
    """``database.table`` of the letter's destination, ``(unrouted)`` when it has none."""
    dest = letter.destination
    return f"{dest.database}.{dest.table}" if dest else "(unrouted)"


@dataclass(frozen=True)
class LetterFilter:
    """Which letters to select; every given criterion must hold. Empty filter: all."""

    table: str | None = None
    """``Table`` or ``Database.Table`` of the letter's destination."""
    route: str | None = None
    """The route (topic pattern) the letter matched; for letters that name no route (whole
    batches that failed in the sink), the record's topic must match this pattern."""
    stage: str | None = None
    """The stage that dead-lettered it: decode, size, route, map, sink, internal."""
    reason: str | None = None
    """Text the reason contains (case-insensitive)."""
    since: datetime | None = None
    """Dead-lettered at or after this time."""
    until: datetime | None = None
    """Dead-lettered before this time."""

    def matches(self, letter: DeadLetter) -> bool:
        """Whether the letter passes every given criterion."""
        if self.table is not None:
            dest = letter.destination
            if dest is None or self.table not in (dest.table, f"{dest.database}.{dest.table}"):
                return False
        if self.route is not None:
            if letter.route is not None:
                if letter.route != self.route:
                    return False
            elif not fnmatchcase(letter.record.topic, self.route):
                return False
        if self.stage is not None and letter.stage != self.stage:
            return False
        if self.reason is not None and self.reason.casefold() not in letter.reason.casefold():
            return False
        if self.since is not None and letter.time < self.since:
            return False
        return not (self.until is not None and letter.time >= self.until)
