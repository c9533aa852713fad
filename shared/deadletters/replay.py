"""``kafka-adx replay``: read dead letters back and run their records through the pipeline again.

Works on either store (blob container or local folder). Filters
(:mod:`shared.deadletters.filters`) select letters by table, route, stage, reason and the time
they were dead-lettered. Each set that was replayed gets a *mark* (a blob
``replayed/<set id>.json``, or a file ``<folder>/replayed/<set id>.json``) holding the set's
content fingerprint and which of its letters were replayed, so a second run skips them:

* a set rewritten later (the same records failed again) has a new fingerprint, so its letters
  become eligible again;
* records that fail again during a replay are dead-lettered anew by the pipeline, in their own
  set, with the new reason.

Replays run with ``final_attempt=False``: a transient sink failure stops the replay with an
error (nothing of that set is marked, run it again later) instead of dead-lettering again.
A crash between ingesting a set and writing its mark can re-ingest that set on the next run
(at-least-once); dedup routes are protected by their ingest-by tags.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import orjson

from shared.deadletters.envelope import encode_letters
from shared.deadletters.filters import LetterFilter
from shared.deadletters.filters import parse_when as parse_when  # re-exported: callers import it from here
from shared.deadletters.local import LocalDeadLetterStore, write_atomically
from shared.errors import ConfigError, DeadLetterError
from shared.mapping.types import format_datetime
from shared.pipeline.core import Pipeline, Result
from shared.pipeline.deadletter import DeadLetter, DeadLetterStore

log = logging.getLogger("kafka_adx.replay")

Reingest = Callable[[Sequence[DeadLetter]], Result]
"""Runs letters' records through the pipeline and returns its result (or raises)."""


class ReplayMarks(Protocol):
    """Where replay marks are kept."""

    def get_mark(self, set_id: str) -> dict[str, Any] | None:
        """The mark of a set, or None."""
        ...

    def put_mark(self, set_id: str, mark: dict[str, Any]) -> None:
        """Store the mark of a set."""
        ...


class LocalReplayMarks:
    """Marks of a local dead-letter folder: ``<folder>/replayed/<set id>.json``."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory) / "replayed"

    def get_mark(self, set_id: str) -> dict[str, Any] | None:
        """The mark of a set, or None."""
        path = self.directory / f"{set_id}.json"
        try:
            mark: dict[str, Any] = orjson.loads(path.read_bytes())
        except FileNotFoundError:
            return None
        return mark

    def put_mark(self, set_id: str, mark: dict[str, Any]) -> None:
        """Write the mark atomically."""
        path = self.directory / f"{set_id}.json"
        try:
            write_atomically(path, orjson.dumps(mark))
        except OSError as exc:
            raise DeadLetterError(f"cannot write replay mark {path}: {exc}") from exc


def marks_for(store: DeadLetterStore) -> ReplayMarks:
    """The marks that go with a store (the blob store keeps its own)."""
    if isinstance(store, LocalDeadLetterStore):
        return LocalReplayMarks(store.directory)
    get_mark = getattr(store, "get_mark", None)
    if get_mark is None:
        raise ConfigError(f"{type(store).__name__} keeps no replay marks")
    marks: ReplayMarks = store  # type: ignore[assignment]
    return marks


ReplayFilter = LetterFilter
"""Which letters to replay (the filter ``deadletters list`` and ``show`` use too)."""


@dataclass
class SetReplay:
    """What happened to one set."""

    set_id: str
    letters: int
    selected: int
    already: int
    ingested: int = 0
    dead_lettered: int = 0


@dataclass
class ReplayReport:
    """What a replay did (or, with ``dry_run``, would do)."""

    dry_run: bool
    sets_seen: int = 0
    sets_replayed: int = 0
    letters_selected: int = 0
    letters_already_replayed: int = 0
    ingested: int = 0
    dead_lettered: int = 0
    sets: list[SetReplay] = field(default_factory=list)
    interrupted: bool = False
    """``should_stop`` said stop before every selected set was replayed."""


def fingerprint(letters: Sequence[DeadLetter]) -> str:
    """Content hash of a set as stored (changes when the set is rewritten)."""
    return hashlib.sha256(encode_letters(letters)).hexdigest()


def pipeline_reingest(pipeline: Pipeline) -> Reingest:
    """Re-run records through ``pipeline`` (routing them with the current ingestion file).

    Not the final attempt: a transient failure raises instead of dead-lettering again.
    """

    def run(letters: Sequence[DeadLetter]) -> Result:
        attempt = max(letter.attempt for letter in letters) + 1
        return pipeline.process([letter.record for letter in letters], attempt=attempt, final_attempt=False)

    return run


def replayed_indices(marks: ReplayMarks, set_id: str, digest: str) -> set[int]:
    """The indices of a set's letters a replay took, as its mark says, if the mark is of the
    set's content ``digest`` (:func:`fingerprint`); a set rewritten since has none."""
    mark = marks.get_mark(set_id)
    return set(mark.get("replayed", ())) if mark and mark.get("fingerprint") == digest else set()


def iter_selected(
    store: DeadLetterStore, marks: ReplayMarks, flt: ReplayFilter
) -> Iterator[tuple[str, list[DeadLetter], str, set[int], list[int]]]:
    """For each set: (id, letters, fingerprint, indices already replayed, indices to replay)."""
    for set_id in list(store.sets()):
        letters = store.read(set_id)
        if not letters:
            continue
        digest = fingerprint(letters)
        already = replayed_indices(marks, set_id, digest)
        todo = [i for i, letter in enumerate(letters) if i not in already and flt.matches(letter)]
        yield set_id, letters, digest, already, todo


def replay(
    store: DeadLetterStore,
    reingest: Reingest | None,
    flt: ReplayFilter | None = None,
    *,
    marks: ReplayMarks | None = None,
    dry_run: bool = False,
    on_set: Callable[[SetReplay], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    on_progress: Callable[[], None] | None = None,
) -> ReplayReport:
    """Replay the selected letters set by set, marking each set after it went through
    (``reingest`` may be None for a dry run).

    ``on_progress`` is called once per set looked at (replayed or not), for a progress bar.

    ``should_stop`` is asked before each set (the CLI's answer turns true on SIGINT/SIGTERM):
    once it says so, the replay ends with ``interrupted`` set. A set is never cut in the middle,
    so every set either went through and is marked, or was not touched.

    Raises whatever ``reingest`` raises (e.g. :class:`TransientError`): the sets done before
    stay marked, the failing one does not.
    """
    if reingest is None and not dry_run:
        raise ValueError("replay needs a reingest function unless dry_run")
    flt = flt or ReplayFilter()
    marks = marks or marks_for(store)
    report = ReplayReport(dry_run=dry_run)
    for set_id, letters, digest, already, todo in iter_selected(store, marks, flt):
        if should_stop is not None and should_stop():
            report.interrupted = True
            break
        report.sets_seen += 1
        report.letters_already_replayed += len(already)
        if not todo:
            if on_progress is not None:
                on_progress()
            continue
        entry = SetReplay(set_id, len(letters), len(todo), len(already))
        report.letters_selected += len(todo)
        if reingest is not None and not dry_run:
            result = reingest([letters[i] for i in todo])
            entry.ingested, entry.dead_lettered = result.ingested, result.dead_lettered
            report.ingested += result.ingested
            report.dead_lettered += result.dead_lettered
            report.sets_replayed += 1
            previous = marks.get_mark(set_id)
            runs = list(previous.get("runs", ())) if previous and previous.get("fingerprint") == digest else []
            runs.append({
                "at": format_datetime(datetime.now(UTC)),
                "letters": len(todo),
                "ingested": result.ingested,
                "dead_lettered": result.dead_lettered,
            })
            marks.put_mark(set_id, {
                "set_id": set_id,
                "fingerprint": digest,
                "replayed": sorted(already | set(todo)),
                "runs": runs,
            })
            log.info("replayed set %s: %d letter(s), %d ingested, %d dead-lettered again",
                     set_id, len(todo), result.ingested, result.dead_lettered)
        report.sets.append(entry)
        if on_set is not None:
            on_set(entry)
        if on_progress is not None:
            on_progress()
    return report
