"""Looking at dead letters without replaying them (``kafka-adx deadletters list`` and ``show``):
every letter of a store with its id and whether it was replayed, groups of letters by stage,
reason kind and table, and one letter or set found by its id.

A letter's id is ``<set id>:<index>`` (its place in the set's file or blob); a set id alone
names every letter of the set, and any unique prefix of at least :data:`MIN_PREFIX` characters
does too.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from shared.deadletters.filters import LetterFilter, reason_kind, table_of
from shared.deadletters.replay import ReplayMarks, fingerprint, iter_selected, replayed_indices
from shared.errors import ConfigError
from shared.pipeline.deadletter import DeadLetter, DeadLetterStore

MIN_PREFIX = 6
"""Shortest set-id prefix accepted as an id."""


@dataclass(frozen=True)
class LetterRef:
    """One stored letter: where it is and whether a replay took it already."""

    set_id: str
    index: int
    letter: DeadLetter
    replayed: bool

    @property
    def id(self) -> str:
        """``<set id>:<index>``, what ``deadletters show`` takes."""
        return f"{self.set_id}:{self.index}"


def iter_letters(
    store: DeadLetterStore, marks: ReplayMarks, flt: LetterFilter, *, include_replayed: bool = False
) -> Iterator[LetterRef]:
    """The letters ``flt`` selects, set by set (oldest set first), without those a replay took
    unless ``include_replayed``."""
    for set_id, letters, _digest, already, _todo in iter_selected(store, marks, LetterFilter()):
        for index, letter in enumerate(letters):
            replayed = index in already
            if (include_replayed or not replayed) and flt.matches(letter):
                yield LetterRef(set_id, index, letter, replayed)


@dataclass
class Group:
    """Letters of one stage, reason kind and table."""

    stage: str
    kind: str
    """The reason without the record's position and numbers (:func:`reason_kind`)."""
    table: str
    count: int = 0
    replayed: int = 0
    first: datetime | None = None
    last: datetime | None = None
    sample: str = ""
    """The id of the first letter of the group (for ``deadletters show``)."""
    topics: set[str] = field(default_factory=set)

    @property
    def pending(self) -> int:
        """Letters of the group no replay has taken."""
        return self.count - self.replayed

    def add(self, ref: LetterRef) -> None:
        """Count one letter in."""
        when = ref.letter.time
        self.count += 1
        self.replayed += ref.replayed
        self.first = when if self.first is None else min(self.first, when)
        self.last = when if self.last is None else max(self.last, when)
        self.sample = self.sample or ref.id
        self.topics.add(ref.letter.record.topic)


def group_letters(refs: Iterable[LetterRef]) -> list[Group]:
    """Groups by (stage, reason kind, table), the largest first (then by stage, table, kind)."""
    groups: dict[tuple[str, str, str], Group] = {}
    for ref in refs:
        key = (ref.letter.stage, reason_kind(ref.letter), table_of(ref.letter))
        group = groups.get(key)
        if group is None:
            group = groups[key] = Group(*key)
        group.add(ref)
    return sorted(groups.values(), key=lambda g: (-g.count, g.stage, g.table, g.kind))


def resolve_ids(store: DeadLetterStore, ids: Iterable[str]) -> list[tuple[str, int | None]]:
    """``(set id, index or None for the whole set)`` for each id: a set id or a unique prefix of
    one, optionally ``:index``. An id that names no set (or more than one) is a
    :class:`ConfigError` naming it."""
    wanted = [_split_id(text) for text in ids]
    if not wanted:
        return []
    known = list(store.sets())
    out: list[tuple[str, int | None]] = []
    for text, prefix, index in wanted:
        if len(prefix) < MIN_PREFIX:
            raise ConfigError(f"{text!r}: give at least {MIN_PREFIX} characters of a set id")
        found = [set_id for set_id in known if set_id.startswith(prefix)]
        if not found:
            raise ConfigError(f"{text!r}: no dead-letter set has this id")
        if len(found) > 1:
            raise ConfigError(f"{text!r}: {len(found)} sets start with it ({', '.join(found[:3])}, ...): give more")
        out.append((found[0], index))
    return out


def _split_id(text: str) -> tuple[str, str, int | None]:
    prefix, sep, index = text.strip().partition(":")
    if not sep:
        return text, prefix, None
    if not index.isdigit():
        raise ConfigError(f"{text!r}: expected <set id>:<index>, the index a number")
    return text, prefix, int(index)


def letters_by_id(
    store: DeadLetterStore, marks: ReplayMarks, ids: Iterable[str], flt: LetterFilter | None = None
) -> list[LetterRef]:
    """The letters the ids name (a set id: each of its letters that ``flt`` selects, replayed or
    not), in the order given; an index past the end of its set is a :class:`ConfigError`."""
    flt = flt or LetterFilter()
    refs: list[LetterRef] = []
    for set_id, index in resolve_ids(store, ids):
        letters = store.read(set_id)
        already = replayed_indices(marks, set_id, fingerprint(letters))
        if index is not None:
            if index >= len(letters):
                raise ConfigError(f"{set_id}:{index}: the set holds {len(letters)} letter(s) (0 to {len(letters) - 1})")
            refs.append(LetterRef(set_id, index, letters[index], index in already))
            continue
        refs += [LetterRef(set_id, i, le, i in already) for i, le in enumerate(letters) if flt.matches(le)]
    return refs

