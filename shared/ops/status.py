"""``kafka-adx status``: what the pipeline's target, dead-letter store and consumer group say,
gathered into one :class:`StatusReport` with its exit code.

* Per table: rows, the last batch and the rows of the last 5 minutes and hour. In ADX from
  ``.show table T details`` and ``.show table T extents | where MaxCreatedOn > ago(1h)`` (an
  extent per ingestion); locally from DuckDB (the batch times of ``dedup`` routes, the only ones
  the local sink records).
* ADX's failure reports, linked to our batch ids. Queued ingestion is asynchronous: ADX reports a
  failed blob (bad data, missing mapping, a dropped table) on the failure queue named by
  ``.get ingestion resources``, because the sink asks for ``FailuresOnly`` reports; by default
  this peeks (the reports stay for other readers), ``pop`` removes what it read. The engine's
  ``.show ingestion failures`` (14 days kept) is read too. Both name the ingested blob, whose
  name (``kafka-adx-<batch id>``) and source id (the batch id as a UUID) lead back to the batch.
* Dead letters waiting for a replay, by stage, reason kind and table
  (:mod:`shared.deadletters.browse`).
* Consumer lag per partition for a Kafka group (:mod:`shared.ops.lag`).

Exit code: 0 healthy, 1 degraded (dead letters pending, failure reports, lag over the
threshold), 2 when something could not be read (what could be read is still reported).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from shared.deadletters.browse import Group, group_letters, iter_letters
from shared.deadletters.filters import LetterFilter
from shared.deadletters.replay import ReplayMarks
from shared.ops.lag import PartitionLag
from shared.pipeline.deadletter import DeadLetterStore
from shared.redact import redact

Runner = Callable[[str, str], list[dict[str, Any]]]
"""Runs one management command ``(database, command)`` on the engine and returns its rows."""

EXIT_HEALTHY, EXIT_DEGRADED, EXIT_UNREACHABLE = 0, 1, 2


_OUR_BLOB = re.compile(r"kafka-adx-([0-9a-f]{16,64})")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


@dataclass(frozen=True)
class FailureReport:
    """One ingestion failure report (the fields ADX's data manager writes)."""

    operation_id: str | None
    database: str | None
    table: str | None
    source_id: str | None
    source_path: str | None
    failed_on: str | None
    error_code: str | None
    failure_status: str | None
    should_retry: bool | None
    details: str | None
    origin: str = "queue"
    """``queue`` (the failure queue's report) or ``engine`` (``.show ingestion failures``)."""

    @property
    def batch(self) -> str | None:
        """The kafka-adx batch id (its first 32, or 16, hex digits) the report is about; None for
        a blob kafka-adx did not write. The sink names blobs ``kafka-adx-<batch id>`` and derives
        the source id (in the blob name too) from the batch id."""
        named = _OUR_BLOB.search(self.source_path or "")
        if named is None:
            return None
        if self.source_id and _UUID.fullmatch(self.source_id):
            return self.source_id.replace("-", "").lower()
        found = _UUID.search(self.source_path or "")
        return found.group(0).replace("-", "").lower() if found else named.group(1)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> FailureReport:
        """One row of ``.show ingestion failures``."""
        path = row.get("IngestionSourcePath")
        failed_on = row.get("FailedOn")
        return cls(
            operation_id=row.get("OperationId"),
            database=row.get("Database"),
            table=row.get("Table"),
            source_id=None,
            source_path=redact(path) if isinstance(path, str) else None,
            failed_on=failed_on.isoformat() if isinstance(failed_on, datetime) else failed_on,
            error_code=row.get("ErrorCode"),
            failure_status=row.get("FailureKind"),
            should_retry=row.get("ShouldRetry"),
            details=row.get("Details"),
            origin="engine",
        )

    @classmethod
    def from_json(cls, text: str) -> FailureReport:
        """Parse a report's JSON text (already base64-decoded)."""
        data: dict[str, Any] = json.loads(text)
        path = data.get("IngestionSourcePath")
        return cls(
            operation_id=data.get("OperationId"),
            database=data.get("Database"),
            table=data.get("Table"),
            source_id=data.get("IngestionSourceId"),
            source_path=redact(path) if isinstance(path, str) else None,  # never print a SAS signature
            failed_on=data.get("FailedOn"),
            error_code=data.get("ErrorCode"),
            failure_status=data.get("FailureStatus"),
            should_retry=data.get("ShouldRetry"),
            details=data.get("Details"),
        )

    def line(self) -> str:
        """One line for the terminal."""
        retry = "" if self.should_retry is None else f" retry={'yes' if self.should_retry else 'no'}"
        details = redact((self.details or "").replace("\n", " "))
        if len(details) > 160:
            details = details[:157] + "..."
        batch = f"batch={self.batch}" if self.batch else f"source={self.source_id or '?'}"
        return (
            f"{self.failed_on or '?'}  {self.database or '?'}.{self.table or '?'}  "
            f"{self.error_code or '?'} ({self.failure_status or '?'}{retry})  {batch}  {details}"
        )


def failure_reports(queued_client: Any, count: int = 20, *, pop: bool = False) -> list[FailureReport]:
    """Up to ``count`` reports from the failure queue(s) of a ``QueuedIngestClient``, newest first."""
    from shared.sinks.adx import status_queues

    # Bounded queue clients: with storage down the SDK's defaults stall ``status`` ~80 s.
    queues = status_queues(queued_client)
    messages: Sequence[Any] = queues.failure.pop(count, raw=True) if pop else queues.failure.peek(count, raw=True)
    # The SDK's peek reads a queue twice when it holds fewer than ``count`` messages, so the
    # same message can come back twice: keep one per message id.
    seen: set[str] = set()
    reports = []
    for message in messages:
        if message.id in seen:
            continue
        seen.add(message.id)
        reports.append(FailureReport.from_json(message.content))
    reports.sort(key=lambda r: r.failed_on or "", reverse=True)
    return reports[:count]




def engine_failures(run: Runner, database: str, window: timedelta) -> list[FailureReport]:
    """``.show ingestion failures`` of the last ``window`` (the engine keeps 14 days), newest first."""
    hours = max(1, int(window.total_seconds() // 3600))
    rows = run(database, f".show ingestion failures | where FailedOn > ago({hours}h)")
    reports = [FailureReport.from_row(row) for row in rows]
    reports.sort(key=lambda r: r.failed_on or "", reverse=True)
    return reports


# --- tables ------------------------------------------------------------------------------


@dataclass
class TableActivity:
    """What arrived in one table."""

    table: str
    """``database.table``."""
    rows: int | None = None
    """Rows in the table (None: unknown)."""
    last_batch: datetime | None = None
    rows_5m: int | None = None
    rows_1h: int | None = None
    note: str | None = None
    """Why a number is missing (no batch times recorded, the table cannot be read)."""
    rate_since: float | None = None
    """Rows per second since the previous refresh of ``status --watch`` (see :func:`follow`)."""

    def per_second(self, window: str = "5m") -> float | None:
        """Rows per second over the last 5 minutes (``5m``) or hour (``1h``)."""
        rows, seconds = (self.rows_5m, 300) if window == "5m" else (self.rows_1h, 3600)
        return None if rows is None else rows / seconds


def follow(report: StatusReport, previous: StatusReport | None) -> None:
    """Set each table's rows per second since ``previous`` (the last refresh): a live rate
    also where batch times are not recorded (local tables of routes without ``dedup``)."""
    if previous is None:
        return
    seconds = (report.at - previous.at).total_seconds()
    before = {t.table: t.rows for t in previous.tables}
    for table in report.tables:
        old = before.get(table.table)
        if seconds > 0 and table.rows is not None and old is not None:
            table.rate_since = max(0, table.rows - old) / seconds


def _when(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def adx_activity(run: Runner, tables: Sequence[tuple[str, str]], now: datetime) -> list[TableActivity]:
    """Rows, last batch and recent rows of each ``(database, table)`` from ADX's extents; a table
    ADX cannot show gets a note (the error), not an exception."""
    out = []
    for database, table in tables:
        activity = TableActivity(f"{database}.{table}")
        name = f"['{table}']"
        try:
            [details] = run(database, f".show table {name} details") or [{}]
            recent = run(database, f".show table {name} extents | where MaxCreatedOn > ago(1h)")
        except Exception as exc:  # a missing table or a refused command: shown on its line
            from shared.sinks.adx import describe_error

            activity.note = describe_error(exc)
            out.append(activity)
            continue
        activity.rows = int(details.get("TotalRowCount") or 0)
        activity.last_batch = _when(details.get("MaxExtentsCreationTime"))
        extents = [(_when(e.get("MaxCreatedOn")), int(e.get("RowCount") or 0)) for e in recent]
        activity.rows_1h = sum(n for _, n in extents)
        activity.rows_5m = sum(n for when, n in extents if when is not None and when > now - timedelta(minutes=5))
        out.append(activity)
    return out


def local_activity(db_path: str, tables: Sequence[tuple[str, str]], now: datetime) -> list[TableActivity]:
    """Rows of each table in the local DuckDB file and, for tables of ``dedup`` routes (the
    local sink records their batches), the last batch and recent rows. A database another
    process holds open (a running ``consume``) cannot be read: every table gets that note."""
    import duckdb

    from shared.sinks.duckdb import INGESTED_BATCHES

    out = [TableActivity(f"{database}.{table}") for database, table in tables]
    if not Path(db_path).exists():
        for activity in out:
            activity.rows, activity.note = 0, "nothing ingested yet"
        return out
    try:
        con = duckdb.connect(db_path, read_only=True)
    except duckdb.Error as exc:
        for activity in out:
            activity.note = f"cannot read {db_path} now (a running consume holds it?): {str(exc).splitlines()[0]}"
        return out
    try:
        known = {(s, t) for s, t in con.execute("SELECT table_schema, table_name FROM information_schema.tables").fetchall()}
        batches = ("$kafka_adx", "ingested_batches") in known
        naive_now = now.astimezone(UTC).replace(tzinfo=None)
        for activity, (database, table) in zip(out, tables, strict=True):
            if (database, table) not in known:
                activity.rows, activity.note = 0, "no rows yet"
                continue
            row = con.execute(f'SELECT count(*) FROM "{database}"."{table}"').fetchone()
            activity.rows = int(row[0]) if row else 0
            if not batches:
                activity.note = "local batch times: dedup routes only"
                continue
            last, rows_5m, rows_1h = con.execute(
                f"SELECT max(ingested_at), sum(records) FILTER (WHERE ingested_at > ?), "
                f"sum(records) FILTER (WHERE ingested_at > ?) FROM {INGESTED_BATCHES} "
                "WHERE database = ? AND table_name = ?",
                [naive_now - timedelta(minutes=5), naive_now - timedelta(hours=1), database, table],
            ).fetchone() or (None, None, None)
            if last is None:
                activity.note = "local batch times: dedup routes only"
                continue
            activity.last_batch = last.replace(tzinfo=UTC)
            activity.rows_5m, activity.rows_1h = int(rows_5m or 0), int(rows_1h or 0)
    finally:
        con.close()
    return out


# --- dead letters ------------------------------------------------------------------------


@dataclass
class DeadLetterStatus:
    """What the dead-letter store holds."""

    sets: int = 0
    letters: int = 0
    pending: int = 0
    """Letters no replay has taken yet."""
    pending_sets: int = 0
    """Sets holding such letters."""
    groups: list[Group] = field(default_factory=list)
    """Groups (stage, reason kind, table) with letters pending, largest first."""
    batches: set[str] = field(default_factory=set)
    """Batch ids of the letters (sink failures), to link failure reports to."""

    def by_stage(self) -> dict[str, int]:
        """Pending letters per stage."""
        out: dict[str, int] = {}
        for group in self.groups:
            out[group.stage] = out.get(group.stage, 0) + group.pending
        return out

    def by_table(self) -> dict[str, int]:
        """Pending letters per table."""
        out: dict[str, int] = {}
        for group in self.groups:
            out[group.table] = out.get(group.table, 0) + group.pending
        return out


def deadletter_status(store: DeadLetterStore, marks: ReplayMarks) -> DeadLetterStatus:
    """Counts of the store: sets, letters, and the pending ones grouped."""
    refs = list(iter_letters(store, marks, LetterFilter(), include_replayed=True))
    status = DeadLetterStatus(sets=len({r.set_id for r in refs}), letters=len(refs))
    status.pending = sum(1 for r in refs if not r.replayed)
    status.pending_sets = len({r.set_id for r in refs if not r.replayed})
    status.groups = [g for g in group_letters(r for r in refs if not r.replayed)]
    status.batches = {r.letter.batch_id for r in refs if r.letter.batch_id}
    return status


# --- the report --------------------------------------------------------------------------


@dataclass
class StatusReport:
    """Everything ``status`` found; what could not be read is in ``unreachable``."""

    target: str
    """``local`` or ``adx``."""
    at: datetime
    tables: list[TableActivity] = field(default_factory=list)
    failures: list[FailureReport] = field(default_factory=list)
    deadletters: DeadLetterStatus | None = None
    lag: list[PartitionLag] | None = None
    group: str | None = None
    max_lag: int | None = None
    popped: bool = False
    """The failure reports were removed from the failure queue as they were read."""
    unreachable: list[str] = field(default_factory=list)
    """One line per source that could not be read (ADX, the failure queue, storage, the broker)."""

    @property
    def lag_over(self) -> list[PartitionLag]:
        """Partitions whose lag is over the threshold."""
        if self.lag is None or self.max_lag is None:
            return []
        return [p for p in self.lag if p.lag > self.max_lag]

    def dead_lettered(self, report: FailureReport) -> bool:
        """Whether letters of the report's batch are in the dead-letter store."""
        batch = report.batch
        dl = self.deadletters
        return bool(batch and dl and any(b.startswith(batch) for b in dl.batches))

    def degraded(self) -> list[str]:
        """Why the pipeline needs attention (empty: healthy)."""
        out = []
        if self.deadletters and self.deadletters.pending:
            out.append(f"{self.deadletters.pending:,} dead letter(s) not replayed")
        if self.failures:
            out.append(f"{len(self.failures)} ADX ingestion failure report(s)")
        if self.lag_over:
            out.append(f"lag over {self.max_lag:,} on {len(self.lag_over)} partition(s)")
        return out

    @property
    def exit_code(self) -> int:
        """0 healthy, 1 degraded, 2 something could not be read."""
        if self.unreachable:
            return EXIT_UNREACHABLE
        return EXIT_DEGRADED if self.degraded() else EXIT_HEALTHY

    @property
    def state(self) -> str:
        """``healthy``, ``degraded`` or ``unreachable``."""
        return ("healthy", "degraded", "unreachable")[self.exit_code]

    def to_json(self) -> dict[str, Any]:
        """The report for scripts (``status --json``)."""
        def when(value: datetime | None) -> str | None:
            return value.isoformat() if value else None

        dl = self.deadletters
        return {
            "state": self.state,
            "exit_code": self.exit_code,
            "at": when(self.at),
            "target": self.target,
            "degraded": self.degraded(),
            "unreachable": self.unreachable,
            "tables": [
                {"table": t.table, "rows": t.rows, "last_batch": when(t.last_batch), "rows_5m": t.rows_5m,
                 "rows_1h": t.rows_1h, "rows_per_second_5m": t.per_second("5m"),
                 "rows_per_second_since_last_refresh": t.rate_since, "note": t.note}
                for t in self.tables
            ],
            "failures": [asdict(f) | {"batch": f.batch, "dead_lettered": self.dead_lettered(f)}
                         for f in self.failures],
            "deadletters": None if dl is None else {
                "sets": dl.sets, "letters": dl.letters, "pending": dl.pending, "pending_sets": dl.pending_sets,
                "by_stage": dl.by_stage(), "by_table": dl.by_table(),
                "groups": [{"stage": g.stage, "reason": g.kind, "table": g.table, "pending": g.pending,
                            "first": when(g.first), "last": when(g.last), "sample": g.sample} for g in dl.groups],
            },
            "consumer": None if self.lag is None else {
                "group": self.group, "max_lag": self.max_lag, "total_lag": sum(p.lag for p in self.lag),
                "partitions": [{"topic": p.topic, "partition": p.partition, "committed": p.committed,
                                "end": p.end, "lag": p.lag} for p in self.lag],
            },
        }  # fmt: skip


def routed_tables(config: Any) -> list[tuple[str, str]]:
    """``(database, table)`` of every route of an ingestion file and of the targets its headers
    may choose, in route order, once each."""
    seen: dict[tuple[str, str], None] = {}
    for route in config.routes:
        database = route.database or config.database
        seen.setdefault((database, route.table), None)
        for target in route.header_routing:
            seen.setdefault((target.database or database, target.table), None)
    return list(seen)


def gather(
    settings: Any,
    config: Any | None,
    store: Callable[[], DeadLetterStore],
    *,
    lag: Callable[[], list[PartitionLag]] | None = None,
    group: str | None = None,
    max_lag: int | None = None,
    count: int = 20,
    pop: bool = False,
    window: timedelta = timedelta(days=1),
    now: datetime | None = None,
) -> StatusReport:
    """Read every source and build the report; a source that cannot be read adds a line to
    ``unreachable`` and the others are still read.

    ``settings`` selects the target (local DuckDB, or ADX); ``config`` (the ingestion file, may
    be None when it cannot be read) names the tables; ``store`` opens the dead-letter store;
    ``lag`` reads the consumer lag of ``group``.
    """
    from shared.deadletters.replay import marks_for
    from shared.errors import KafkaAdxError

    now = now or datetime.now(UTC)
    report = StatusReport(target="local" if settings.local_mode else "adx", at=now, group=group, max_lag=max_lag,
                          popped=pop and not settings.local_mode)
    tables = routed_tables(config) if config is not None else []
    if settings.local_mode:
        report.tables = local_activity(str(settings.local_db), tables, now)
    else:
        _gather_adx(report, settings, tables, count=count, pop=pop, window=window, now=now)
    try:
        opened = store()
        report.deadletters = deadletter_status(opened, marks_for(opened))
    except Exception as exc:  # any SDK or configuration error: reported; the rest is still shown
        text = str(exc) if isinstance(exc, KafkaAdxError) else f"{type(exc).__name__}: {exc}"
        report.unreachable.append(f"dead-letter store: {redact(text)}")
    if lag is not None:
        try:
            report.lag = lag()
        except KafkaAdxError as exc:
            report.unreachable.append(f"Kafka group {group}: {redact(str(exc))}")
    return report


def _gather_adx(
    report: StatusReport, settings: Any, tables: list[tuple[str, str]], *, count: int, pop: bool,
    window: timedelta, now: datetime,
) -> None:
    from shared.sinks.adx import clients_for, describe_error

    try:
        clients = clients_for(settings)
    except Exception as exc:  # a bad credential setting, say: the dead letters are still shown
        report.unreachable.append(f"ADX: {describe_error(exc)}")
        return

    def run(database: str, command: str) -> list[dict[str, Any]]:
        return clients.management(command, database=database, timeout=15.0)

    try:
        report.failures = failure_reports(clients.queued, count, pop=pop)
    except Exception as exc:  # any SDK or storage error: reported, and the rest is still read
        report.unreachable.append(f"ADX failure queue: cannot read it: {describe_error(exc)}")
    database = tables[0][0] if tables else "NetDefaultDB"
    try:
        engine = engine_failures(run, database, window)
    except Exception as exc:
        report.unreachable.append(f"ADX engine ({redact(str(clients.engine_uri))}): {describe_error(exc)}")
        return
    # A report can be on the queue and in the engine's list both: keep one per blob and time.
    known = {(r.source_path, r.failed_on) for r in report.failures}
    report.failures += [r for r in engine if (r.source_path, r.failed_on) not in known][:count]
    report.tables = adx_activity(run, tables, now)
