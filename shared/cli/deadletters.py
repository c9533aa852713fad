"""``kafka-adx deadletters list|show`` (what the dead-letter store holds, and why) and
``kafka-adx replay`` (re-ingest it), with the one set of letter filters both use, and the store
options ``status`` uses too (registered by :mod:`shared.cli.app`)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar, cast

import click
import orjson

from shared.cli.common import (
    EXIT_INTERRUPTED,
    EXIT_PARTIAL,
    CliError,
    Progress,
    StopOnSignal,
    config_option,
    config_or_exit,
    echo,
    exit_codes_help,
    fail,
    preflight_or_exit,
    settings_or_exit,
)
from shared.deadletters.filters import LetterFilter, parse_when
from shared.deadletters.local import LocalDeadLetterStore
from shared.deadletters.replay import Reingest, SetReplay, marks_for
from shared.errors import ConfigError, KafkaAdxError, TransientError
from shared.pipeline.deadletter import DeadLetterStore
from shared.redact import redact
from shared.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])

STAGES = ("decode", "size", "route", "map", "sink", "internal")
"""The stages that dead-letter a record (``--stage``)."""


def open_store(settings: Settings, directory: str | None) -> DeadLetterStore:
    """The store ``--dir`` names, else the configured one (blob container or local folder)."""
    if directory:
        return LocalDeadLetterStore(directory)
    from shared.wiring import build_deadletters

    return build_deadletters(settings)


def store_where(settings: Settings, directory: str | None) -> str:
    """Where the store is, for the terminal (a SAS signature redacted)."""
    if directory:
        return directory
    if settings.deadletter_blob_uri:
        return redact(settings.deadletter_blob_uri)
    return str(settings.local_deadletter_dir)


def _when(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_when(value)
    except ConfigError as exc:
        raise click.BadParameter(str(exc), param_hint=name) from None


directory_option = click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False),
    default=None,
    help="A local dead-letter folder (default: $DEADLETTER_BLOB_URI, else $LOCAL_DEADLETTER_DIR).",
)

_FILTER_OPTIONS = [
    click.option("--table", default=None, help="Only letters for this table (Table or Database.Table)."),
    click.option("--route", default=None, help="Only letters of this route (topic pattern) or topic."),
    click.option("--stage", type=click.Choice(STAGES), default=None, help="Only letters of this stage."),
    click.option("--reason", default=None, help="Only letters whose reason contains this text (any case)."),
    click.option("--since", default=None, help="Dead-lettered at or after (ISO 8601, or 30m / 2h / 7d ago)."),
    click.option("--until", default=None, help="Dead-lettered before (ISO 8601, or 30m / 2h / 7d ago)."),
]  # fmt: skip


def letter_filter_options(fn: F) -> F:
    """The filter options (``--table``, ``--route``, ``--stage``, ``--reason``, ``--since``,
    ``--until``), handed to the command as one :class:`LetterFilter` named ``flt``."""

    @functools.wraps(fn)
    def command(*args: Any, **kw: Any) -> Any:
        flt = LetterFilter(
            table=kw.pop("table"),
            route=kw.pop("route"),
            stage=kw.pop("stage"),
            reason=kw.pop("reason"),
            since=_when(kw.pop("since"), "--since"),
            until=_when(kw.pop("until"), "--until"),
        )
        return fn(*args, flt=flt, **kw)

    for option in reversed(_FILTER_OPTIONS):
        command = option(command)
    return cast(F, command)


# --- replay ----------------------------------------------------------------------------------


@click.command(epilog=exit_codes_help({
    0: "every selected letter was ingested (or there was nothing to replay, or --dry-run)",
    1: "letters failed again: they were dead-lettered anew, with the new reason",
    2: "misconfiguration, the dead-letter store or ADX unreachable, or a transient failure stopped "
       "the replay (nothing of that set was marked: run it again later)",
    130: "stopped after the set in progress (it is marked); run it again for the rest",
}))  # fmt: skip
@config_option
@directory_option
@letter_filter_options
@click.option("--dry-run", is_flag=True, help="Show what would be replayed; ingest and mark nothing.")
def replay(config_path: str | None, directory: str | None, flt: LetterFilter, dry_run: bool) -> None:
    """Re-ingest dead letters through the pipeline, once.

    Replayed sets are marked, so running it again does nothing new. Records that fail again are
    dead-lettered again with the new reason. `kafka-adx deadletters list` with the same filters
    shows what would be replayed.
    """
    from shared.deadletters.replay import pipeline_reingest
    from shared.deadletters.replay import replay as run_replay
    from shared.pipeline.core import Pipeline

    settings = settings_or_exit()
    pipeline: Pipeline | None = None
    reingest: Reingest | None = None
    if not dry_run:
        # Fail fast, before a letter is read: a dry run writes nothing, so it needs no sink.
        config = config_or_exit(config_path)
        preflight_or_exit(settings, config)
    try:
        store = open_store(settings, directory)
        marks = marks_for(store)
        if not dry_run:
            from shared.wiring import build_registries, build_sink

            registries = build_registries(settings, config)
            pipeline = Pipeline(config, build_sink(settings, config), store, registries=registries)
            reingest = pipeline_reingest(pipeline)
    except KafkaAdxError as exc:
        raise CliError(str(exc)) from None

    try:
        total_sets = len(list(store.sets()))
    except KafkaAdxError as exc:
        raise CliError(str(exc)) from None
    seen = [0]
    progress = Progress("replay", total_sets, every=1, show=lambda: f"{seen[0]:,}/{total_sets:,} set(s)")

    def tick() -> None:
        seen[0] += 1
        progress.advance(1)

    def show(entry: SetReplay) -> None:
        progress.clear_line()
        if dry_run:
            click.echo(f"would replay set {entry.set_id}: {entry.selected} of {entry.letters} letter(s)")
        else:
            click.echo(f"replayed set {entry.set_id}: {entry.selected} letter(s), {entry.ingested} ingested, "
                       f"{entry.dead_lettered} dead-lettered again")

    echo(f"dead letters: {store_where(settings, directory)}")
    try:
        with StopOnSignal() as guard:
            report = run_replay(store, reingest, flt, marks=marks, dry_run=dry_run, on_set=show,
                                should_stop=lambda: guard.received is not None, on_progress=tick)  # fmt: skip
    except TransientError as exc:
        fail(f"replay stopped by a transient failure (nothing of that set was marked; run it again): {exc}")
    except KafkaAdxError as exc:
        raise CliError(str(exc)) from None
    finally:
        progress.finish(complete=False)
        if pipeline is not None:
            pipeline.close()
    verb = "would replay" if dry_run else "replayed"
    click.echo(
        f"{report.sets_seen} set(s) seen, {verb} {report.letters_selected} letter(s) from "
        f"{len(report.sets)} set(s); {report.letters_already_replayed} letter(s) replayed before"
    )
    if not dry_run:
        click.echo(f"  {report.ingested} ingested, {report.dead_lettered} dead-lettered again")
    if report.interrupted:
        fail(f"kafka-adx replay: interrupted ({guard.received}): stopped after {len(report.sets)} set(s); "
             "the sets replayed are marked, run it again for the rest", EXIT_INTERRUPTED)  # fmt: skip
    if report.dead_lettered:
        fail(f"kafka-adx replay: {report.dead_lettered} letter(s) failed again (dead-lettered anew with the "
             "new reason: see `kafka-adx deadletters list`)", EXIT_PARTIAL)  # fmt: skip


# --- deadletters list / show -----------------------------------------------------------------

_LOOK_CODES = exit_codes_help({
    0: "the letters were shown (also when there are none: a dead letter is not an error here)",
    2: "misconfiguration, the dead-letter store unreachable or damaged, or an id that names no set",
})  # fmt: skip

all_option = click.option("--all", "include_replayed", is_flag=True,
                          help="Include letters a replay has taken (default: only those waiting).")  # fmt: skip
json_option = click.option("--json", "as_json", is_flag=True, help="JSON for scripts instead of text.")


@click.group(epilog=_LOOK_CODES)
def deadletters() -> None:
    """Look at the dead-letter store: what failed, why, and the records themselves.

    Both commands take the filters of `kafka-adx replay`, so what they show is what a replay
    with the same filters takes.
    """


def _short(when: datetime | None) -> str:
    return when.isoformat(timespec="seconds") if when else "-"


@deadletters.command("list", epilog=_LOOK_CODES)
@directory_option
@letter_filter_options
@all_option
@json_option
def list_letters(directory: str | None, flt: LetterFilter, include_replayed: bool, as_json: bool) -> None:
    """Dead letters grouped by stage, reason and table, with counts and time range.

    The reason is shown without the record's position and with numbers as N, so letters that
    failed the same way are one line; `kafka-adx deadletters show ID` shows the records.
    """
    from shared.deadletters.browse import group_letters, iter_letters

    settings = settings_or_exit()
    try:
        store = open_store(settings, directory)
        refs = list(iter_letters(store, marks_for(store), flt, include_replayed=include_replayed))
    except KafkaAdxError as exc:
        raise CliError(str(exc)) from None
    groups = group_letters(refs)
    if as_json:
        click.echo(orjson.dumps({
            "letters": len(refs),
            "pending": sum(g.pending for g in groups),
            "sets": len({r.set_id for r in refs}),
            "groups": [{"stage": g.stage, "reason": g.kind, "table": g.table, "count": g.count,
                        "pending": g.pending, "first": _short(g.first), "last": _short(g.last),
                        "topics": sorted(g.topics), "sample": g.sample} for g in groups],
        }).decode())  # fmt: skip
        return
    echo(f"dead letters: {store_where(settings, directory)}")
    if not groups:
        click.echo("no dead letters" + ("" if include_replayed else " waiting for a replay") + " match")
        return
    table_width = max(len(g.table) for g in groups)
    click.echo(f"  {'count':>7}  {'pending':>7}  {'stage':<8}  {'table':<{table_width}}  "
               f"{'first':<25}  {'last':<25}  reason")  # fmt: skip
    for g in groups:
        click.echo(f"  {g.count:>7,}  {g.pending:>7,}  {g.stage:<8}  {g.table:<{table_width}}  "
                   f"{_short(g.first):<25}  {_short(g.last):<25}  {g.kind}")  # fmt: skip
    pending = sum(g.pending for g in groups)
    click.echo(f"{len(refs):,} letter(s) in {len(groups)} group(s) from {len({r.set_id for r in refs})} set(s); "
               f"{pending:,} not replayed yet. Show one: kafka-adx deadletters show {groups[0].sample}")  # fmt: skip


@deadletters.command("show", epilog=_LOOK_CODES)
@directory_option
@letter_filter_options
@all_option
@click.option("--limit", "-n", default=10, show_default=True, type=click.IntRange(min=1),
              help="Letters to show when no id is given.")
@click.option("--width", default=120, show_default=True, type=click.IntRange(min=10),
              help="Characters of a text value shown (the rest is cut, and counted).")
@click.option("--bytes", "max_bytes", default=128, show_default=True, type=click.IntRange(min=1),
              help="Bytes of a binary value hex-dumped.")
@json_option
@click.argument("ids", nargs=-1)
def show_letters(
    directory: str | None,
    flt: LetterFilter,
    include_replayed: bool,
    limit: int,
    width: int,
    max_bytes: int,
    as_json: bool,
    ids: tuple[str, ...],
) -> None:
    """Show dead letters: the reason, where the record came from (topic, partition, offset) and
    its key, value and headers, decoded when they are text and hex-dumped when not.

    IDS are letter ids (SET:INDEX, as `deadletters list` and this command print them) or set
    ids (every letter of the set); a unique prefix of a set id of 6 characters or more will do.
    Without IDS: the first --limit letters the filters select.
    """
    from itertools import islice

    from shared.deadletters.browse import iter_letters, letters_by_id
    from shared.deadletters.render import describe, to_json

    settings = settings_or_exit()
    try:
        store = open_store(settings, directory)
        marks = marks_for(store)
        if ids:
            refs = letters_by_id(store, marks, ids, flt)
        else:
            refs = list(islice(iter_letters(store, marks, flt, include_replayed=include_replayed), limit))
    except KafkaAdxError as exc:
        raise CliError(str(exc)) from None
    if as_json:
        for ref in refs:
            click.echo(orjson.dumps(to_json(ref)).decode())
        return
    if not refs:
        click.echo("no dead letters match", err=True)
    for number, ref in enumerate(refs):
        if number:
            click.echo("")
        for line in describe(ref, width=width, max_bytes=max_bytes):
            echo(line)
