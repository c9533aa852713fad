"""The files ``kafka-adx import-connect`` writes from a :class:`~shared.ops.connect.Translation`:
the ingestion file, a ``.env``-style settings file and a ``local.settings.json`` fragment.

Every property that was not translated is a comment at the top of the ingestion file and of
the ``.env`` file (JSON has no comments: the fragment holds values only). Settings whose value
must not or cannot be copied (a client secret, a blob container URI) are commented-out lines
that say where the value comes from. No secret value is ever written: the translation never
holds one outside :attr:`~shared.ops.connect.Translation.secrets`, and :func:`write_outputs`
refuses to write a file that contains one.
"""

from __future__ import annotations

import json
import shlex
import textwrap
from pathlib import Path

import yaml

from shared.errors import ConfigError
from shared.ops.connect import Translation

INGESTION_FILE = "ingestion.yaml"
ENV_FILE = "kafka-adx.env"
LOCAL_SETTINGS_FILE = "local.settings.fragment.json"
OUTPUT_FILES = (INGESTION_FILE, ENV_FILE, LOCAL_SETTINGS_FILE)


def consume_command(out: Translation) -> str:
    """The ``kafka-adx consume`` command line that reproduces the connector's consumer."""
    return "kafka-adx consume " + " ".join(shlex.quote(arg) for arg in out.consume_args)


def _comment_block(lines: list[str]) -> list[str]:
    block: list[str] = []
    for line in lines:
        wrapped = textwrap.wrap(line, width=100, subsequent_indent="    ", break_on_hyphens=False, break_long_words=False) or [""]
        block += [f"# {part}".rstrip() for part in wrapped]
    return block


def _notes(out: Translation) -> list[str]:
    if not out.notes:
        return ["Every setting was translated."]
    return ["Not translated (or only in part), and why:", *(f"- {note.line()}" for note in out.notes)]


def render_ingestion(out: Translation) -> str:
    """The ingestion file (YAML) with the notes as comments."""
    where = "read from the cluster" if out.cluster_read else "external references (no cluster was read)"
    header = [
        f"kafka-adx ingestion file, written by `kafka-adx import-connect {out.connect.source}`.",
        f"Tables and mappings: {where}. Check it with `kafka-adx validate` and `kafka-adx doctor`.",
        "",
        *_notes(out),
    ]
    body = yaml.safe_dump(out.ingestion, sort_keys=False, allow_unicode=True, width=120)
    return "\n".join(_comment_block(header)) + "\n\n" + body


def render_env(out: Translation) -> str:
    """The settings as ``NAME=value`` lines (a ``.env`` file, or ``export`` them in a shell)."""
    lines = _comment_block([
        f"kafka-adx settings, written by `kafka-adx import-connect {out.connect.source}`.",
        "Load them with `set -a; . ./kafka-adx.env; set +a` before kafka-adx consume, or copy them into the "
        "function app's settings (local.settings.fragment.json has the same values).",
        f"The consumer as the connector ran it: {consume_command(out)}",
        *([f"host.json of the function app: {k} = {v}" for k, v in out.host_json.items()]),
        "",
        *_notes(out),
    ])
    lines.append("")
    settings = {"INGESTION_CONFIG": INGESTION_FILE, **out.settings}
    for name, value in settings.items():
        lines.append(f"{name}={shlex.quote(value)}")
    if out.pending:
        lines += ["", "# To set (kafka-adx does not copy these values):"]
        for name, where in out.pending.items():
            lines += _comment_block([f"{name}=  <- {where}"])
    return "\n".join(lines) + "\n"


def render_local_settings(out: Translation) -> str:
    """A ``local.settings.json`` fragment: merge its ``Values`` into the function app's file."""
    values = {"INGESTION_CONFIG": INGESTION_FILE, **out.settings}
    return json.dumps({"IsEncrypted": False, "Values": values}, indent=2) + "\n"


def write_outputs(out: Translation, directory: str | Path, *, force: bool = False) -> list[Path]:
    """Write the three files into ``directory`` (created if missing). Refuses (ConfigError naming
    the file) to overwrite one without ``force``, and to write any text holding a secret."""
    directory = Path(directory)
    texts = {INGESTION_FILE: render_ingestion(out), ENV_FILE: render_env(out), LOCAL_SETTINGS_FILE: render_local_settings(out)}
    paths = [directory / name for name in texts]
    if not force:
        existing = [str(p) for p in paths if p.exists()]
        if existing:
            raise ConfigError(f"{', '.join(existing)}: already exist(s); pass --force to overwrite")
    for name, text in texts.items():
        # A last guard: the translation is built never to carry a secret value, but a value that
        # is also a secret (the same string reused) must not reach a file either.
        if any(len(secret) >= 4 and secret in text for secret in out.secrets):
            raise ConfigError(f"{directory / name}: would contain the value of a secret property; nothing written")
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in texts.items():
        (directory / name).write_text(text, encoding="utf-8")
    return paths
