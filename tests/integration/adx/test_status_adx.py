"""``kafka-adx status`` against the ADX stand-in (Azurite behind it): per-table activity from the
extents ADX creates, ``.show ingestion failures`` and the failure queue linked to our batch ids,
dead letters pending, ``--json``, and each exit code."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
import yaml
from click.testing import CliRunner

from shared.cli.app import main
from shared.deadletters.blob import BlobDeadLetterStore
from shared.pipeline.core import Pipeline, RetryPolicy
from shared.sinks.adx import AdxSink
from tests.support.adx import DATABASE, config_data, landed, make_config, records
from tests.support.adx_standin import AdxStandIn


@pytest.fixture
def env(standin: AdxStandIn, deadletter_url: str, tmp_path: Path) -> dict[str, str]:
    config = tmp_path / "ingestion.yaml"
    config.write_text(yaml.safe_dump(config_data()))
    standin.apply_config(make_config())
    return {"ADX_INGEST_URI": standin.url, "ADX_AUTH": "none", "DEADLETTER_BLOB_URI": deadletter_url,
            "INGESTION_CONFIG": str(config)}


def status(env: dict[str, str], *args: str) -> tuple[int, dict[str, object], str]:
    as_json = CliRunner().invoke(main, ["status", "--json", *args], env=env, catch_exceptions=False)
    text = CliRunner().invoke(main, ["status", *args], env=env, catch_exceptions=False)
    assert as_json.exit_code == text.exit_code
    return as_json.exit_code, orjson.loads(as_json.output), text.output


def test_healthy_with_the_tables_activity_from_their_extents(
    env: dict[str, str], sink: AdxSink, dl_store: BlobDeadLetterStore, standin: AdxStandIn
) -> None:
    result = Pipeline(make_config(), sink, dl_store).process(records("events", range(6)) + records("clicks", [20]))
    assert result.ingested == 7 and len(landed(standin)) == 2
    code, data, text = status(env)
    assert code == 0, text
    assert data["state"] == "healthy" and data["failures"] == [] and data["unreachable"] == []
    tables = {t["table"]: t for t in data["tables"]}  # type: ignore[union-attr]
    assert tables[f"{DATABASE}.Events"]["rows"] == 6 and tables[f"{DATABASE}.Events"]["rows_5m"] == 6
    assert tables[f"{DATABASE}.Clicks"]["rows_1h"] == 1 and tables[f"{DATABASE}.Clicks"]["last_batch"]
    assert "state: HEALTHY" in text and "ADX ingestion failure reports (0)" in text


def test_degraded_by_an_engine_failure_linked_to_our_dead_lettered_batch(
    env: dict[str, str], sink: AdxSink, dl_store: BlobDeadLetterStore, standin: AdxStandIn
) -> None:
    standin.mgmt.permanent = True
    Pipeline(make_config(), sink, dl_store, retry=RetryPolicy(attempts=1)).process(records("events", range(3)))
    standin.mgmt.clear()
    [letter] = {le.batch_id for s in dl_store.sets() for le in dl_store.read(s)}
    assert letter is not None
    # What ADX reports for a blob the sink wrote: the blob is named for the batch.
    standin.add_ingestion_failure(Database=DATABASE, Table="Events", ErrorCode="BadRequest_InvalidBlob",
                                  Details="bad blob", IngestionSourcePath=f"https://acct.blob.core.windows.net/"
                                  f"c/{DATABASE}__Events__x__kafka-adx-{letter[:16]}.json.gz?sig=SECRET")  # fmt: skip
    standin.add_ingestion_failure(Database=DATABASE, Table="Events", FailedOn="2020-01-01T00:00:00+00:00")  # too old
    code, data, text = status(env)
    assert code == 1, text
    [failure] = data["failures"]  # type: ignore[misc]
    assert failure["origin"] == "engine" and failure["batch"] == letter[:16] and failure["dead_lettered"] is True
    assert failure["error_code"] == "BadRequest_InvalidBlob" and "SECRET" not in text
    assert f"batch={letter[:16]}" in text and "[dead-lettered]" in text
    assert data["degraded"] == ["3 dead letter(s) not replayed", "1 ADX ingestion failure report(s)"]


def test_unreachable_when_the_engine_refuses_and_still_shows_the_rest(
    env: dict[str, str], standin: AdxStandIn
) -> None:
    standin.mgmt.permanent = True
    code, data, text = status(env)
    assert code == 2, text
    assert any(line.startswith("ADX engine") for line in data["unreachable"])  # type: ignore[union-attr]
    assert data["deadletters"] == {"sets": 0, "letters": 0, "pending": 0, "pending_sets": 0, "by_stage": {}, "by_table": {},
                                   "groups": []}  # fmt: skip
    assert "state: UNREACHABLE" in text
