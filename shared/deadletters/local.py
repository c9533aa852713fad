"""The local dead-letter store (a folder of JSON-lines files) and the one atomic file write
used for local dead letters and replay marks."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from shared.deadletters.envelope import decode_letters, encode_letters
from shared.errors import DeadLetterError
from shared.pipeline.deadletter import DeadLetter, set_id_for


def write_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that a reader (or a crash) sees the old file or the
    whole new one, never a part: a temp file beside it, flushed to disk, then renamed over.
    Creates the folder; raises :class:`OSError`."""
    tmp = path.with_name(path.name + ".tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class LocalDeadLetterStore:
    """A folder of JSON-lines files, one per set: ``<dir>/<set id>.jsonl``."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    def write(self, letters: Sequence[DeadLetter]) -> str:
        """Write the set atomically (temp file, then rename)."""
        set_id = set_id_for(letters)
        target = self.path_of(set_id)
        try:
            write_atomically(target, encode_letters(letters))
        except OSError as exc:
            raise DeadLetterError(f"cannot write dead letters to {target}: {exc}") from exc
        return set_id

    def sets(self) -> Iterator[str]:
        """Set ids by modification time."""
        if not self.directory.is_dir():
            return iter(())
        files = sorted(self.directory.glob("*.jsonl"), key=lambda p: (p.stat().st_mtime, p.name))
        return (p.stem for p in files)

    def read(self, set_id: str) -> list[DeadLetter]:
        """Read one set back."""
        path = self.path_of(set_id)
        return decode_letters(path.read_bytes(), str(path))

    def path_of(self, set_id: str) -> Path:
        """File of a set."""
        return self.directory / f"{set_id}.jsonl"
