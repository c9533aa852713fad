"""``kafka-adx deadletters list|show`` over blob dead letters in Azurite, through the real CLI,
with the filters ``replay`` shares: what list shows pending is what a replay takes."""

from __future__ import annotations

from pathlib import Path

import orjson
import yaml
from click.testing import CliRunner

from shared.cli.app import main
from shared.deadletters.blob import BlobDeadLetterStore
from shared.pipeline.deadletter import DeadLetter
from shared.pipeline.destination import Destination
from tests.support.adx import DATABASE, config_data, make_config, poison, records
from tests.support.adx_standin import AdxStandIn

EVENTS = Destination(DATABASE, "Events", "json", "EventsMap", "server")


def cli(env: dict[str, str], *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.output


def test_list_and_show_blob_dead_letters_and_replay_takes_what_list_shows(
    dl_store: BlobDeadLetterStore, deadletter_url: str, standin: AdxStandIn, tmp_path: Path
) -> None:
    config = tmp_path / "ingestion.yaml"
    config.write_text(yaml.safe_dump(config_data()))
    standin.apply_config(make_config())
    env = {"DEADLETTER_BLOB_URI": deadletter_url, "ADX_INGEST_URI": standin.url, "ADX_AUTH": "none",
           "INGESTION_CONFIG": str(config)}
    dl_store.write([DeadLetter(record=poison("events", n), reason=f"events[0]@{n}: invalid JSON at char {n}",
                               stage="decode", destination=EVENTS) for n in (90, 91)])
    dl_store.write([DeadLetter(record=r, reason=f"{r.where}: terminal sink failure: BadRequest_X", stage="sink",
                               destination=EVENTS, batch_id="b" * 64) for r in records("events", [1, 2])])

    code, out = cli(env, "deadletters", "list")
    assert code == 0, out
    assert "sig=REDACTED" in out  # the SAS of the container is never shown
    assert "invalid JSON at char N" in out and "terminal sink failure: BadRequest_X" in out
    assert "4 letter(s) in 2 group(s) from 2 set(s); 4 not replayed yet" in out

    code, out = cli(env, "deadletters", "show", "--stage", "sink", "--json")
    shown = [orjson.loads(line) for line in out.splitlines()]
    assert code == 0 and [(s["offset"], s["batch_id"]) for s in shown] == [(1, "b" * 64), (2, "b" * 64)]
    assert all("text" in s["value"] for s in shown)

    code, out = cli(env, "replay", "--stage", "sink")
    assert code == 0, out
    assert "2 ingested, 0 dead-lettered again" in out
    code, out = cli(env, "deadletters", "list", "--json")
    assert orjson.loads(out)["letters"] == 2  # the replayed ones are no longer pending
    code, out = cli(env, "deadletters", "list", "--json", "--all")
    data = orjson.loads(out)
    assert data["letters"] == 4 and data["pending"] == 2
