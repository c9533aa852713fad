"""Pieces shared by the command-line modules (app, files, kql, demo, adx, kafka, doctor): logging
set-up, settings and config loading, the exit-code table, errors that never carry a credential,
the preflight call, the signal handling of commands that read input, and the ingest summary."""

from __future__ import annotations

import logging
import os
import signal
import sys
import textwrap
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from types import FrameType, TracebackType
from typing import Any, NoReturn, TypeVar

import click

from shared.config import IngestionConfig, load_config
from shared.errors import ConfigError, Interrupted
from shared.pipeline.core import Result
from shared.redact import install_log_redaction, redact, register_secret, register_uri_secrets
from shared.settings import Settings

# --- logging ---------------------------------------------------------------------------------

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
"""The format of every log line the CLI writes (to standard error)."""


def register_known_secrets() -> None:
    """Secrets the environment hands the CLI: redacted wherever they might show up, even in a
    form no pattern of :mod:`shared.redact` foresaw."""
    register_uri_secrets(os.environ.get("DEADLETTER_BLOB_URI"))
    register_uri_secrets(os.environ.get("ADX_INGEST_URI"))
    register_secret(os.environ.get("KAFKA_PASSWORD"))


def setup_logging(verbose: int) -> None:
    """Log to standard error at WARNING, INFO (``verbose`` 1) or DEBUG (2 and more), every
    record redacted, Python warnings included. Called once by the ``kafka-adx`` group before any
    command runs; if logging has handlers already (a test runner's), their level stays."""
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format=LOG_FORMAT, stream=sys.stderr)
    # Before anything logs: -vv shows the HTTP clients' request lines, which carry SAS URIs.
    install_log_redaction()
    logging.captureWarnings(True)
    register_known_secrets()
    # The Azure SDKs log every HTTP request at INFO: only debug output wants them.
    if verbose < 2:
        logging.getLogger("azure").setLevel(logging.WARNING)


# --- exit codes ------------------------------------------------------------------------------

EXIT_OK = 0
EXIT_PARTIAL = 1
EXIT_ERROR = 2
EXIT_INTERRUPTED = 130

EXIT_CODES: dict[int, tuple[str, str]] = {
    EXIT_OK: ("ok", "everything went through (or there was nothing to do)"),
    EXIT_PARTIAL: ("attention", "the command finished, but not everything went through: records were "
                   "dead-lettered, letters failed again, records were not delivered, or a check found "
                   "a problem; the output says which"),
    EXIT_ERROR: ("error", "misconfiguration, an unreachable service, unreadable or truncated input; "
                 "what was read before the error was delivered and counted, nothing was lost"),
    EXIT_INTERRUPTED: ("interrupted", "by SIGINT or SIGTERM; what was read was delivered first and counted; "
                       "run the command again for the rest"),
}  # fmt: skip
"""The exit codes of every ``kafka-adx`` command: code -> (label, general meaning). One table:
each command's ``--help`` shows the rows that apply to it, with the label and what the code
means for that command. 2 is also click's code for a usage error; 130 is the shell's code for
a process ended by SIGINT."""


def exit_codes_help(specific: Mapping[int, str]) -> str:
    """The "Exit codes" block of a command's ``--help``: the rows of :data:`EXIT_CODES` that apply
    (the keys of ``specific``), each with its label and what it means for this command (an
    empty text: the general meaning)."""
    lines = ["\b", "Exit codes:"]
    for code in sorted(specific):
        label, general = EXIT_CODES[code]
        lines += textwrap.wrap(
            f"{label}: {specific[code] or general}", width=76, initial_indent=f"  {code:<4} ", subsequent_indent=" " * 7
        )
    return "\n".join(lines)


class CliError(click.ClickException):
    """A one-line error (exit code 2) whose text is redacted: no credential reaches the terminal."""

    exit_code = EXIT_ERROR

    def __init__(self, message: str) -> None:
        super().__init__(redact(message))


def fail(message: str, code: int = EXIT_ERROR) -> NoReturn:
    """Print a redacted error line to standard error and exit with ``code``."""
    click.echo(redact(message), err=True)
    raise SystemExit(code)


def echo(text: str, *, err: bool = False) -> None:
    """``click.echo`` of redacted text (for lines that hold URIs or error texts)."""
    click.echo(redact(text), err=err)


# --- settings, config, preflight -------------------------------------------------------------


def settings_or_exit() -> Settings:
    """Settings from the environment, or a clean CLI error naming the bad setting."""
    try:
        return Settings.from_env()
    except ConfigError as exc:
        raise CliError(str(exc)) from None


def config_or_exit(path: str | None) -> IngestionConfig:
    """The ingestion file, or a clean CLI error naming the file and field."""
    try:
        return load_config(path or settings_or_exit().ingestion_config)
    except ConfigError as exc:
        raise CliError(str(exc)) from None


def preflight_or_exit(settings: Settings, config: IngestionConfig) -> None:
    """Fail fast, before any input is read: the sink and the dead-letter store must be usable.
    A :class:`PreflightError` is one clear error line and exit code 2."""
    from shared.ops.preflight import PreflightError, preflight

    try:
        preflight(settings, config)
    except PreflightError as exc:
        raise CliError(str(exc)) from None


config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Ingestion file (default: $INGESTION_CONFIG or ingestion.yaml).",
)


def parse_headers(values: tuple[str, ...]) -> tuple[tuple[str, bytes | None], ...]:
    """``NAME=VALUE`` options as Kafka headers."""
    headers: list[tuple[str, bytes | None]] = []
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"{item!r}: expected NAME=VALUE", param_hint="--header")
        headers.append((name, value.encode()))
    return tuple(headers)


# --- stopping on SIGINT / SIGTERM ------------------------------------------------------------


class StopOnSignal:
    """While active, the first SIGINT or SIGTERM asks the command to stop cleanly; a second one
    ends the process at once (the default action of the signal).

    The handler only sets a flag, except while the command waits for input inside
    :meth:`wrap`: then it raises :class:`Interrupted` right there. That is what makes a read
    blocked on standard input (a terminal, a pipe whose writer stays open) interruptible: since
    PEP 475 Python retries a read that a signal interrupted, so a flag alone would never be
    looked at. Raising there is safe because nothing but reading happens inside ``next()`` of
    the source; a signal that arrives while the pipeline writes a batch or a dead letter only
    sets the flag, and :meth:`wrap` raises before it reads the next record, so a signal never
    lands inside a sink or dead-letter write. The pipeline then delivers what it holds (see
    :class:`shared.errors.InputStopped`).

    Outside the main thread (signal handlers cannot be installed there, e.g. in a test runner's
    worker) it does nothing and the signals keep their behaviour.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.received: str | None = None
        """The name of the signal that asked to stop, once one did."""
        self._reading = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopOnSignal:
        if threading.current_thread() is threading.main_thread():
            for signum in self.SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        self.received = name
        # A second signal must stop the process even if the flush hangs: the default action.
        for other in self.SIGNALS:
            signal.signal(other, signal.SIG_DFL)
        # No logging or printing here: the handler may run in the middle of a write to the
        # same stream, and a buffered stream refuses reentrant writes.
        if self._reading:
            raise Interrupted(f"{name} received while waiting for input")

    def check(self) -> None:
        """Raise :class:`Interrupted` once a signal asked to stop."""
        if self.received is not None:
            raise Interrupted(f"{self.received} received")

    def wrap(self, records: Iterable[Any]) -> Iterator[Any]:
        """Yield ``records`` until a signal asks to stop, then raise :class:`Interrupted` (checked
        before each record is read, so the record in the pipeline's hands is never cut off)."""
        source = iter(records)
        while True:
            if self.received is not None:
                raise Interrupted(f"{self.received} received")
            self._reading = True
            try:
                record = next(source)
            except StopIteration:
                return
            finally:
                self._reading = False
            yield record


# --- summaries -------------------------------------------------------------------------------


def print_summary(result: Result, raw_bytes: int, label: str = "", *, blank_lines: int = 0) -> None:
    """Per table: rows ingested, records dead-lettered, batches; then totals and throughput."""
    width = max([len(name) for name in result.tables] + [5])
    title = f"{label}: " if label else ""
    click.echo(f"{title}{result.received:,} received, {result.ingested:,} ingested, {result.dead_lettered:,} dead-lettered")
    click.echo(f"  {'table':<{width}}  {'ingested':>10}  {'dead-lettered':>13}  {'batches':>7}  {'gzip MB':>8}")
    for name in sorted(result.tables):
        c = result.tables[name]
        click.echo(
            f"  {name:<{width}}  {c.ingested:>10,}  {c.dead_lettered:>13,}  {c.batches:>7,}  {c.gzip_bytes / 1e6:>8.2f}"
        )
    seconds = max(result.seconds, 1e-9)
    click.echo(
        f"  throughput: {result.received / seconds:,.0f} records/s, {raw_bytes / 1e6 / seconds:,.1f} MB/s "
        f"({result.seconds:.2f} s)"
    )
    if blank_lines:
        # Blank lines are not records (nothing to ingest or dead-letter), but a user comparing
        # the count with `wc -l` needs to see where the difference went.
        click.echo(f"  blank lines skipped: {blank_lines:,}")
    if result.reasons:
        reasons = ", ".join(f"{stage}: {count}" for stage, count in sorted(result.reasons.items()))
        click.echo(f"  dead letters by stage: {reasons}")


_Read = TypeVar("_Read")
Runner = Callable[[str, str], list[dict[str, Any]]]
"""Runs one management command ``(database, command)`` on the engine and returns its rows."""


def read_cluster(command: str, settings: Settings, timeout: float, read: Callable[[Runner], _Read]) -> tuple[_Read, str]:
    """``read(run)`` with ``run`` sending management commands to the configured engine; returns
    the result and where it was read (the setting and host, for messages). ADX not configured,
    or the cluster not readable, is one error naming the setting and the remedy (exit 2)."""
    from shared.ops.preflight import explain_adx_error, host_of
    from shared.sinks.adx import AdxClients

    if settings.local_mode or not settings.engine_uri:
        fail(f"{command}: reading the cluster needs ADX: set ADX_ENGINE_URI, or ADX_INGEST_URI (the engine URI is "
             "then derived from it)")
    setting = "ADX_ENGINE_URI" if settings.adx_engine_uri else "ADX_ENGINE_URI (derived from ADX_INGEST_URI)"
    where = f"{setting} ({host_of(settings.engine_uri)})"
    clients = AdxClients(settings)

    def run(database: str, text: str) -> list[dict[str, Any]]:
        return clients.management(text, database=database, timeout=timeout)

    try:
        return read(run), where
    except Exception as exc:
        what, kind = explain_adx_error(exc, timeout)
        remedy = {
            "forbidden": "Grant the identity the Viewer role on the database (reading the schema needs it).",
            "auth": f"Check ADX_AUTH={settings.adx_auth}: the credential could not get a token.",
        }.get(kind, "Check the URI and that the cluster is running and reachable from here.")
        fail(f"{command}: {where}: cannot read the cluster's schema: {what}. {remedy}")
    finally:
        clients.close()


# --- progress --------------------------------------------------------------------------------


def input_size(paths: Iterable[str]) -> int | None:
    """Bytes of input the files hold, for a progress bar: a file's size, a ``.gz`` file's
    uncompressed size (its trailer, modulo 4 GiB as gzip stores it); None when unknown
    (standard input, an unreadable file)."""
    import struct

    total = 0
    for path in paths:
        if path == "-":
            return None
        try:
            if path.endswith(".gz"):
                with open(path, "rb") as fh:
                    fh.seek(-4, os.SEEK_END)
                    total += struct.unpack("<I", fh.read(4))[0]
            else:
                total += os.path.getsize(path)
        except (OSError, struct.error):
            return None
    return total


class Progress:
    """A progress bar on standard error (percent and ETA, click's) when it is a terminal and the
    total is known; nothing at all otherwise, so logs and pipes stay clean.

    Updates are gathered and drawn every ``every`` steps: drawing costs more than a record.
    """

    def __init__(self, label: str, total: int | None, *, every: int = 1 << 16, show: Callable[[], str] | None = None) -> None:
        self.enabled = bool(total) and sys.stderr.isatty()
        self.total = total or 0
        self.every = every
        self.done = 0
        self._pending = 0
        self._bar: Any = None
        if self.enabled:
            self._bar = click.progressbar(length=self.total, label=label, file=sys.stderr, show_percent=True,
                                          show_eta=True, item_show_func=(lambda _: show()) if show else None)  # fmt: skip
            self._bar.__enter__()

    def advance(self, steps: int) -> None:
        """Count ``steps`` more (drawn once enough have gathered)."""
        self.done += steps
        if self._bar is None:
            return
        self._pending += steps
        if self._pending >= self.every:
            self._bar.update(self._pending, True)
            self._pending = 0

    def clear_line(self) -> None:
        """Blank the bar's line, so that a line printed next starts clean (the bar is drawn again
        on the next update)."""
        if self._bar is not None:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()

    def finish(self, *, complete: bool) -> None:
        """Draw the last state (100% when ``complete``) and end the bar's line."""
        if self._bar is None:
            return
        remaining = self.total - self._bar.pos if complete else self._pending
        if remaining > 0:
            self._bar.update(remaining, True)
        self._bar.__exit__(None, None, None)
        self._bar = None
