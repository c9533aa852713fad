"""``kafka-adx replay`` and ``kafka-adx status`` end to end: real dead letters in Azurite (or a
local folder), the real CLI, ADX's queue read back."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml
from click.testing import CliRunner, Result

from shared.cli.deadletters import replay
from shared.cli.status import status
from shared.deadletters.blob import BlobDeadLetterStore
from shared.deadletters.local import LocalDeadLetterStore
from shared.deadletters.replay import LocalReplayMarks, ReplayFilter, parse_when
from shared.pipeline.core import Pipeline, RetryPolicy
from shared.pipeline.deadletter import DeadLetter
from shared.pipeline.destination import Destination
from shared.sinks.adx import AdxSink
from tests.support.adx import DATABASE, config_data, dead_letters, landed, make_config, poison, records
from tests.support.adx_standin import AdxStandIn, FaultProxy


@pytest.fixture
def env(standin: AdxStandIn, deadletter_url: str, tmp_path: Path) -> dict[str, str]:
    config = tmp_path / "ingestion.yaml"
    config.write_text(yaml.safe_dump(config_data()))
    standin.apply_config(make_config())  # the tables and mappings exist: preflight passes
    return {
        "ADX_INGEST_URI": standin.url,
        "ADX_AUTH": "none",
        "DEADLETTER_BLOB_URI": deadletter_url,
        "INGESTION_CONFIG": str(config),
        "LOCAL_DEADLETTER_DIR": str(tmp_path / "local-dl"),
    }


def run(command: object, args: list[str], env: dict[str, str]) -> Result:
    result = CliRunner().invoke(command, args, env=env, catch_exceptions=False)  # type: ignore[arg-type]
    return result


@pytest.fixture
def failed_batches(sink: AdxSink, standin: AdxStandIn, dl_store: BlobDeadLetterStore) -> None:
    """Two batches (Events, Clicks) dead-lettered on their final attempt by a permanent error."""
    standin.mgmt.permanent = True
    pipeline = Pipeline(make_config(), sink, dl_store, retry=RetryPolicy(attempts=1))
    result = pipeline.process(records("events", range(4)) + records("clicks", range(10, 13)))
    assert result.dead_lettered == 7
    standin.mgmt.clear()


def ids(standin: AdxStandIn) -> list[int]:
    return sorted(i for item in landed(standin) for i in item.ids)


@pytest.mark.usefixtures("failed_batches")
def test_replay_dry_run_filters_and_a_second_run_that_does_nothing(
    env: dict[str, str], standin: AdxStandIn, dl_store: BlobDeadLetterStore
) -> None:
    dry = run(replay, ["--dry-run"], env)
    assert dry.exit_code == 0, dry.output
    assert dry.output.count("would replay set") == 2 and "would replay 7 letter(s)" in dry.output
    # The SAS of DEADLETTER_BLOB_URI is shown without its signature.
    signature = parse_qs(urlsplit(env["DEADLETTER_BLOB_URI"]).query)["sig"][0]
    assert signature not in dry.output and "sig=REDACTED" in dry.output
    assert landed(standin) == []
    assert all(dl_store.get_mark(s) is None for s in dl_store.sets())

    clicks = run(replay, ["--table", "Clicks"], env)
    assert clicks.exit_code == 0, clicks.output
    assert ids(standin) == [10, 11, 12]
    [clicks_item] = landed(standin)
    assert clicks_item.props["format"] == "csv"  # re-encoded with the client mapping

    nothing = run(replay, ["--table", "Clicks"], env)
    assert "replayed 0 letter(s)" in nothing.output

    old = run(replay, ["--until", "2000-01-01T00:00:00Z"], env)
    assert "replayed 0 letter(s)" in old.output

    rest = run(replay, ["--since", "1h"], env)
    assert rest.exit_code == 0, rest.output
    assert "4 ingested, 0 dead-lettered again" in rest.output
    assert ids(standin) == [0, 1, 2, 3, 10, 11, 12]

    again = run(replay, [], env)
    assert again.exit_code == 0
    assert "replayed 0 letter(s)" in again.output and "7 letter(s) replayed before" in again.output
    assert ids(standin) == [0, 1, 2, 3, 10, 11, 12]


@pytest.mark.usefixtures("failed_batches")
def test_replay_stops_on_a_transient_failure_and_marks_nothing(
    env: dict[str, str], dl_store: BlobDeadLetterStore, blob_proxy: FaultProxy
) -> None:
    # ADX answers (preflight passes) but its temp storage is down: uploads fail with 503.
    blob_proxy.fail("-tmp-", 503, method="PUT")
    result = CliRunner().invoke(replay, [], env=env)
    assert result.exit_code == 2  # an error: run it again later
    assert "replay stopped by a transient failure" in result.output
    assert all(dl_store.get_mark(s) is None for s in dl_store.sets())
    assert len(dead_letters(dl_store)) == 7  # not dead-lettered a second time


@pytest.mark.usefixtures("failed_batches")
def test_status_shows_failure_reports_and_pending_dead_letters(
    env: dict[str, str], standin: AdxStandIn
) -> None:
    standin.post_failure({
        "OperationId": "op-1", "Database": DATABASE, "Table": "Events",
        "IngestionSourceId": "60387292-cbac-eaf5-4f11-17c360939922",
        "IngestionSourcePath": "https://acct.blob.core.windows.net/c/blob.json.gz?sig=SECRET",
        "FailedOn": "2024-05-01T12:00:00Z", "Details": "Mapping reference 'EventsMap' does not exist",
        "ErrorCode": "BadRequest_MappingReferenceWasNotFound", "FailureStatus": "Permanent", "ShouldRetry": False,
    })
    shown = run(status, [], env)
    assert shown.exit_code == 1, shown.output  # 1: failure reports and dead letters need attention
    assert "ADX ingestion failure reports (1)" in shown.output
    assert "db1.Events" in shown.output and "BadRequest_MappingReferenceWasNotFound" in shown.output
    assert "retry=no" in shown.output and "SECRET" not in shown.output
    assert "7 letter(s) in 2 set(s); 7 letter(s) in 2 set(s) not replayed yet" in shown.output
    assert "by table: db1.Clicks 3, db1.Events 4" in shown.output and "by stage: sink 7" in shown.output

    popped = run(status, ["--pop"], env)
    assert "(1, removed)" in popped.output
    assert "ADX ingestion failure reports (0)" in run(status, [], env).output


def test_replay_from_a_local_folder_uses_local_marks(
    env: dict[str, str], standin: AdxStandIn, tmp_path: Path
) -> None:
    folder = tmp_path / "dl"
    store = LocalDeadLetterStore(folder)
    dest = Destination(DATABASE, "Events", "json", "EventsMap", "server")
    store.write([DeadLetter(record=r, reason="terminal sink failure", stage="sink", destination=dest)
                 for r in records("events", [1, 2])])

    first = run(replay, ["--dir", str(folder)], env)
    assert first.exit_code == 0, first.output
    assert ids(standin) == [1, 2]
    [set_id] = list(store.sets())
    assert LocalReplayMarks(folder).get_mark(set_id) is not None
    assert list(store.sets()) == [set_id]  # marks are not taken for sets
    run(replay, ["--dir", str(folder)], env)
    assert ids(standin) == [1, 2]


def test_filter_and_times() -> None:
    now = datetime(2024, 5, 1, 12, tzinfo=UTC)
    assert parse_when("2h", now) == now - timedelta(hours=2)
    assert parse_when("2024-05-01T10:00", now) == datetime(2024, 5, 1, 10, tzinfo=UTC)
    dest = Destination(DATABASE, "Events", "json", "EventsMap", "server")
    [record] = records("orders-eu", [1])
    letter = DeadLetter(record=record, reason="r", stage="sink", destination=dest, time=now)
    assert ReplayFilter(table="Events").matches(letter)
    assert ReplayFilter(table="db1.Events").matches(letter)
    assert not ReplayFilter(table="Clicks").matches(letter)
    assert ReplayFilter(route="orders-*").matches(letter)  # no route recorded: the topic is matched
    assert not ReplayFilter(route="orders-us").matches(letter)
    assert ReplayFilter(since=now - timedelta(minutes=1), until=now + timedelta(minutes=1)).matches(letter)
    assert not ReplayFilter(until=now).matches(letter)


@pytest.mark.usefixtures("failed_batches")
def test_replay_exits_1_when_letters_fail_again_and_0_once_they_went_through(
    env: dict[str, str], standin: AdxStandIn, dl_store: BlobDeadLetterStore
) -> None:
    # Letters of records that still are not JSON: replaying them dead-letters them again.
    dest = Destination(DATABASE, "Events", "json", "EventsMap", "server")
    dl_store.write([DeadLetter(record=poison("events", n), reason="invalid JSON", stage="decode", destination=dest)
                    for n in (90, 91)])  # fmt: skip
    again = run(replay, ["--table", "Events"], env)
    assert again.exit_code == 1, again.output
    assert "4 ingested, 2 dead-lettered again" in again.output
    assert "2 letter(s) failed again" in again.output
    fixed = run(replay, ["--table", "Clicks"], env)
    assert fixed.exit_code == 0, fixed.output
    assert "3 ingested, 0 dead-lettered again" in fixed.output


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.usefixtures("failed_batches")
def test_status_exits_2_when_adx_cannot_be_reached_and_still_shows_the_dead_letters(env: dict[str, str]) -> None:
    unreachable = {**env, "ADX_INGEST_URI": f"http://127.0.0.1:{_closed_port()}"}
    shown = run(status, [], unreachable)
    assert shown.exit_code == 2, shown.output
    assert "ADX failure queue: cannot read it" in shown.output
    assert "7 letter(s) in 2 set(s); 7 letter(s) in 2 set(s) not replayed yet" in shown.output


def test_status_exits_0_when_nothing_needs_attention(env: dict[str, str], tmp_path: Path) -> None:
    shown = run(status, ["--dir", str(tmp_path / "empty")], env)
    assert shown.exit_code == 0, shown.output
    assert "ADX ingestion failure reports (0)" in shown.output
    assert "0 letter(s) in 0 set(s); 0 letter(s) in 0 set(s) not replayed yet" in shown.output


def test_replay_and_status_help_show_the_exit_codes() -> None:
    for command, rows in ((replay, ("0    ok", "1    attention", "2    error", "130  interrupted")),
                          (status, ("0    ok", "1    attention", "2    error"))):  # fmt: skip
        text = CliRunner().invoke(command, ["--help"]).output  # type: ignore[arg-type]
        assert "Exit codes:" in text
        for row in rows:
            assert row in text, (command.name, row, text)
