"""The status report's pieces without a service: the tables it watches, how a failure report
leads back to our batch id, and the exit code each state gives."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from shared.config import load_config
from shared.ops.lag import PartitionLag
from shared.ops.status import DeadLetterStatus, FailureReport, StatusReport, routed_tables
from tests.support.records import make_config

REPO = Path(__file__).resolve().parents[3]

BATCH = "7515f3228f0d" + "ab" * 26


def report(path: str | None, source_id: str | None = None) -> FailureReport:
    return FailureReport(None, "db", "T", source_id, path, "2024-05-01T00:00:00Z", "E", "Permanent", False, None)


def test_the_tables_of_every_route_and_header_target_once() -> None:
    # storm-events-json lets a Table header choose Storms: listed once, with the routes' tables.
    assert routed_tables(load_config(REPO / "ingestion.yaml")) == [
        ("Weather", "Storms"), ("Weather", "StormEvents"), ("Weather", "RawEvents")]
    assert routed_tables(make_config()) == [("db", "T"), ("db", "Raw")]
    only_by_header = make_config(routes=[{"topic": "json", "table": "T", "format": "json", "mapping": "T_json",
                                          "header_routing": [{"table": "Raw", "format": "txt"}]}])
    assert routed_tables(only_by_header) == [("db", "T"), ("db", "Raw")]


def test_a_failure_report_leads_back_to_our_batch() -> None:
    uuid_text = f"{BATCH[:8]}-{BATCH[8:12]}-{BATCH[12:16]}-{BATCH[16:20]}-{BATCH[20:32]}"
    ours = f"https://a.blob.core.windows.net/c/db__T__{uuid_text}__kafka-adx-{BATCH[:16]}.json.gz"
    assert report(ours).batch == BATCH[:32]
    assert report(f"https://a.blob.core.windows.net/c/kafka-adx-{BATCH[:16]}.json.gz").batch == BATCH[:16]
    assert report(ours, source_id=uuid_text.upper()).batch == BATCH[:32]
    # A blob another ingestor wrote is not ours, whatever UUID it holds.
    assert report(f"https://a.blob.core.windows.net/c/db__T__{uuid_text}__other.csv").batch is None
    linked = StatusReport("adx", datetime.now(UTC), deadletters=DeadLetterStatus(batches={BATCH}))
    assert linked.dead_lettered(report(ours)) and not linked.dead_lettered(report("https://x/y.csv"))


def test_the_exit_code_of_each_state() -> None:
    now = datetime.now(UTC)
    assert StatusReport("local", now, deadletters=DeadLetterStatus()).exit_code == 0
    assert StatusReport("local", now, deadletters=DeadLetterStatus(letters=2, pending=1)).exit_code == 1
    assert StatusReport("adx", now, failures=[report(None)]).exit_code == 1
    lagging = [PartitionLag("t", 0, 5, 100, 0), PartitionLag("t", 1, None, 3, 1)]
    assert StatusReport("local", now, lag=lagging, max_lag=100).exit_code == 0
    over = StatusReport("local", now, lag=lagging, max_lag=50)
    assert over.exit_code == 1 and over.degraded() == ["lag over 50 on 1 partition(s)"]
    assert [p.lag for p in lagging] == [95, 2]
    assert StatusReport("local", now, deadletters=DeadLetterStatus(pending=3), unreachable=["x"]).exit_code == 2
