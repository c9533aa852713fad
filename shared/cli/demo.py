"""The ``demo`` command: generated storm events through the full pipeline into a fresh local
DuckDB, and a look at what landed (what ``make demo`` runs)."""

from __future__ import annotations

import shutil
from pathlib import Path

import click

from shared.cli.common import CliError, config_option, config_or_exit, exit_codes_help, print_summary
from shared.cli.files import run_ingest
from shared.settings import Settings


@click.command(epilog=exit_codes_help({0: "", 2: "the ingestion file is invalid", 130: "Ctrl-C"}))
@config_option
@click.option("--records", "count", default=20_000, show_default=True, help="Storm events to generate.")
@click.option("--dir", "directory", default=".local/demo", show_default=True, type=click.Path(file_okay=False))
def demo(config_path: str | None, count: int, directory: str) -> None:
    """Generate storm events (CSV and JSON, with a few poison records), ingest them into a fresh
    local DuckDB, and show what landed."""
    from shared.ops.sample import write_sample
    from shared.sinks.duckdb import DuckDbSink

    config = config_or_exit(config_path)
    root = Path(directory)
    if root.exists():
        shutil.rmtree(root)
    csv_path, json_path = write_sample(root / "data", count, poison_every=500)
    click.echo(f"generated {count:,} storm events (+ poison records) as {csv_path} and {json_path}")
    settings = Settings(local_db=root / "kafka-adx.duckdb", local_deadletter_dir=root / "deadletter")
    for topic, path in (("storm-events", csv_path), ("storm-events-csv", csv_path), ("storm-events-json", json_path)):
        run = run_ingest(settings, config, [str(path)], topic)
        print_summary(run.result, run.raw_bytes, label=f"{topic} <- {path.name}", blank_lines=run.blank_lines)
        if run.stopped is not None:  # the demo writes its own files: this would be a bug
            raise CliError(str(run.stopped))
    click.echo(f"dead letters: {settings.local_deadletter_dir}")
    sink = DuckDbSink(config, settings.local_db)
    try:
        rows = sink.query(
            'SELECT "State", "EventType", count(*) AS events, sum("DamageProperty") AS damage '
            'FROM "Weather"."StormEvents" WHERE "KafkaTopic" = \'storm-events-json\' '
            "GROUP BY ALL ORDER BY events DESC, \"State\", \"EventType\" LIMIT 10"
        )
        click.echo("\nevents per state and type (StormEvents, from JSON), top 10:")
        click.echo(f"  {'State':<14} {'EventType':<18} {'events':>6} {'damage':>12}")
        for state, event_type, events, damage in rows:
            click.echo(f"  {state:<14} {event_type:<18} {events:>6} {damage or 0:>12,}")
        storms = sink.query('SELECT count(*) FROM "Weather"."Storms"')[0][0]
        click.echo(f"\nStorms (classic tutorial table): {storms:,} rows")
    finally:
        sink.close()
    click.echo(
        "query it yourself: python -c \"import duckdb; print(duckdb.connect('"
        f"{settings.local_db}', read_only=True).sql('FROM Weather.Storms LIMIT 5'))\""
    )
