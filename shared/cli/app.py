"""The ``kafka-adx`` command group: its options, the logging set-up, the mapping of errors onto
the exit codes, and the registration of the commands, each of which lives in the module named
for it: validate, preview, ingest (:mod:`shared.cli.files`), kql (:mod:`shared.cli.kql`), demo
(:mod:`shared.cli.demo`), replay and deadletters (:mod:`shared.cli.deadletters`), status
(:mod:`shared.cli.status`), consume, produce (:mod:`shared.cli.kafka`), doctor
(:mod:`shared.cli.doctor`), import-connect (:mod:`shared.cli.connect`), init (:mod:`shared.cli.init`).

Every command's ``--help`` ends with its exit codes, from the one table in
:data:`shared.cli.common.EXIT_CODES`. Nothing the CLI prints carries a credential: log records go
through :class:`shared.redact.RedactingFilter`, printed URIs and error texts through
:func:`shared.redact.redact`.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

import click

from shared.cli.common import EXIT_CODES, EXIT_INTERRUPTED, CliError, exit_codes_help, setup_logging
from shared.errors import KafkaAdxError
from shared.redact import redact

log = logging.getLogger("kafka_adx.cli")

COMMANDS: dict[str, tuple[str, str]] = {
    "consume": ("shared.cli.kafka", "consume"),
    "deadletters": ("shared.cli.deadletters", "deadletters"),
    "demo": ("shared.cli.demo", "demo"),
    "doctor": ("shared.cli.doctor", "doctor"),
    "import-connect": ("shared.cli.connect", "import_connect"),
    "ingest": ("shared.cli.files", "ingest"),
    "init": ("shared.cli.init", "init"),
    "kql": ("shared.cli.kql", "kql"),
    "preview": ("shared.cli.files", "preview"),
    "produce": ("shared.cli.kafka", "produce"),
    "replay": ("shared.cli.deadletters", "replay"),
    "status": ("shared.cli.status", "status"),
    "validate": ("shared.cli.files", "validate"),
}
"""Every command: name -> (module, attribute). A command's module is imported when the command
is looked up, not when the group loads: ``consume`` (a long-running process, whose peak memory
counts) then carries none of the other commands' modules (~1.2 MiB and ~0.1 s of start-up)."""


class KafkaAdxGroup(click.Group):
    """The command group: maps what escapes a command onto the exit-code table and redacts the
    text of every error it shows; loads each command of :data:`COMMANDS` when it is looked up."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Every command's name, the ones not loaded yet included."""
        return sorted(set(super().list_commands(ctx)) | set(COMMANDS))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """The command called ``cmd_name``, its module imported on first use."""
        command = super().get_command(ctx, cmd_name)
        if command is None and cmd_name in COMMANDS:
            module, attribute = COMMANDS[cmd_name]
            command = getattr(importlib.import_module(module), attribute)
            self.add_command(command, cmd_name)
        return command

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; errors become one redacted line and exit code 2, Ctrl-C outside a
        command's own signal handling exit code 130."""
        try:
            return super().invoke(ctx)
        except CliError:
            raise
        except click.UsageError as exc:
            # Click's errors show user input (a path, an option value): redact them too. The
            # exception is kept (it prints the usage line); its message is declared final in
            # click's stubs, hence setattr.
            setattr(exc, "message", redact(exc.message))  # noqa: B010
            raise
        except click.ClickException as exc:
            # click.FileError and friends exit 1, which means "dead-lettered" here: an error is 2.
            raise CliError(exc.format_message()) from None
        except KeyboardInterrupt:
            click.echo("\ninterrupted", err=True)
            raise click.exceptions.Exit(EXIT_INTERRUPTED) from None
        except KafkaAdxError as exc:
            raise CliError(str(exc)) from None
        except (click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception as exc:
            # An unexpected error: its text may hold a URI, so no raw traceback on the terminal;
            # the (redacted) traceback is in the debug log.
            log.debug("unexpected error", exc_info=True)
            raise CliError(f"unexpected error: {type(exc).__name__}: {exc} (run with -vv for the traceback)") from None


@click.group(
    cls=KafkaAdxGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog=exit_codes_help(dict.fromkeys(EXIT_CODES, "")) + "\n\nEach command's --help says what each code means for it.",
)
@click.version_option(package_name="kafka-adx")
@click.option("--verbose", "-v", count=True, help="More log output (-v: info, -vv: debug).")
def main(verbose: int) -> None:
    """Ingest Kafka and Event Hubs records into Azure Data Explorer, or locally into DuckDB."""
    setup_logging(verbose)


if __name__ == "__main__":
    main()
