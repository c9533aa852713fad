"""Per-invocation handling for the Azure Functions app, so that ``function_app.py`` stays wiring.

One invocation = one trigger batch:

1. the adapter turns the events into records (:mod:`shared.sources.functions`); events it
   cannot read are dead-lettered with their reason;
2. the attempt number and whether it is the final one come from ``context.retry_context``
   (:mod:`shared.functions.attempts`);
3. the process-wide pipeline (:mod:`shared.functions.worker`, built once per worker) runs the
   records under the delivery contract of :mod:`shared.pipeline.core` with
   ``RetryPolicy(attempts=1)``: the trigger's retry policy does the retrying. A transient failure
   on an earlier attempt raises, so the host redelivers; a terminal failure, or any failure on
   the final attempt, dead-letters and returns so the checkpoint can advance;
4. one structured log line per batch (:mod:`shared.functions.summary`; never payloads), and
   OpenTelemetry metrics and a span when ``APPLICATIONINSIGHTS_CONNECTION_STRING`` is set
   (:mod:`shared.functions.telemetry`).

Trigger settings are read when the app is indexed (:mod:`shared.functions.settings`); the
pipeline's own settings (:class:`shared.settings.Settings`) on the first invocation.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from shared.errors import DeadLetterError, TransientError
from shared.functions.attempts import Attempt, attempt_of
from shared.functions.settings import KafkaDataType
from shared.functions.summary import BatchSummary
from shared.functions.telemetry import Telemetry
from shared.functions.worker import worker
from shared.pipeline.core import Pipeline, Result
from shared.pipeline.deadletter import DeadLetter
from shared.pipeline.records import Record, SourceKind
from shared.sources.functions import (
    Adapted,
    AdapterError,
    EventHubEventLike,
    HeaderEncoding,
    KafkaEventLike,
    eventhub_records,
    kafka_records,
)

log = logging.getLogger("kafka_adx.functions")


def _letters(errors: Sequence[AdapterError], attempt: Attempt) -> list[DeadLetter]:
    return [
        DeadLetter(record=e.record, reason=f"{e.record.where}: {e.reason}", stage="decode", attempt=attempt.number)
        for e in errors
    ]


def process(adapted: Adapted, context: Any, *, trigger: str, source: str) -> Result:
    """Run one trigger batch through the process-wide pipeline under the delivery contract.

    Returns the counts when every record was ingested or dead-lettered; raises
    :class:`TransientError` for redelivery (not the final attempt) and
    :class:`DeadLetterError` when even the dead-letter store failed.
    """
    attempt = attempt_of(context)
    summary = BatchSummary(trigger=trigger, source=source, attempt=attempt.describe())
    received = adapted.records + [error.record for error in adapted.errors] if adapted.errors else adapted.records
    summary.describe_input(received, datetime.now(UTC))
    started = time.perf_counter()
    state = worker()
    # On the final attempt the records not yet settled are what an unexpected error leaves to
    # dead-letter, so the result tracks them; before it, such an error is retried whole.
    result = Result().track_settled() if attempt.final else Result()
    with state.telemetry.span(trigger) as span:
        try:
            if adapted.errors:
                # Unreadable events: dead-lettered with their reason, never dropped.
                result.received += len(adapted.errors)
                state.pipeline.dead_letter(_letters(adapted.errors, attempt), result)
            state.pipeline.process(adapted.records, attempt=attempt.number, final_attempt=attempt.final, result=result)
        except TransientError as exc:
            summary.outcome = "retry"
            summary.error_type = type(exc).__name__
            _finish(summary, result, started, state.telemetry, span, logging.WARNING)
            raise
        except DeadLetterError as exc:
            summary.outcome = "failed"
            summary.error_type = type(exc).__name__
            _finish(summary, result, started, state.telemetry, span, logging.ERROR)
            raise
        except Exception as exc:
            summary.error_type = type(exc).__name__
            if not attempt.final:
                summary.outcome = "retry"
                _finish(summary, result, started, state.telemetry, span, logging.ERROR)
                raise
            # Final attempt: the host will move past this batch, so keep every record; but only
            # those not yet written (a replay of the others would ingest them twice).
            log.exception("unexpected error on the final attempt of %s after %d record(s) were ingested; "
                          "dead-lettering the rest of the batch", trigger, result.ingested)  # fmt: skip
            _dead_letter_rest(state.pipeline, adapted, attempt, f"{type(exc).__name__}: {exc}", result)
            summary.outcome = "dead-lettered"
        _finish(summary, result, started, state.telemetry, span, logging.INFO)
    return result


def _dead_letter_rest(pipeline: Pipeline, adapted: Adapted, attempt: Attempt, error: str, result: Result) -> None:
    """Dead-letter the records of a failed final attempt that were neither ingested nor
    dead-lettered, and make ``result`` cover the whole batch."""
    everything = adapted.records + [e.record for e in adapted.errors]
    rest = result.unsettled(everything)
    letters = [
        DeadLetter(record=r, reason=f"{r.where}: unexpected error on the final attempt: {error}",
                   stage="internal", attempt=attempt.number)
        for r in rest
    ]  # fmt: skip
    pipeline.dead_letter(letters, result)
    result.received = len(everything)


def _finish(summary: BatchSummary, result: Result, started: float, telemetry: Telemetry, span: Any, level: int) -> None:
    summary.take(result)  # totals, dead letters by stage, and per table (batches and bytes queued)
    summary.seconds = time.perf_counter() - started
    if summary.outcome == "ok" and result.dead_lettered:
        summary.outcome = "partial" if result.ingested else "dead-lettered"
    log.log(level, summary.line(), extra={f"kafka_adx_{k}": v for k, v in summary.fields().items()})
    telemetry.record(summary, span)


def handle_kafka(
    events: Sequence[KafkaEventLike],
    context: Any,
    *,
    trigger: str,
    data_type: KafkaDataType = "binary",
    brokers: str = "",
) -> Result:
    """Process one Kafka trigger batch. ``brokers`` (``KAFKA_BROKERS``) names the cluster in the
    records' stream identity: the events do not carry it."""
    adapted = _adapt(
        lambda: kafka_records(events, envelope=data_type == "string", key_type="binary", brokers=brokers),
        events, context, trigger=trigger, source="kafka",
    )
    return process(adapted, context, trigger=trigger, source="kafka")


def handle_eventhub(
    events: Sequence[EventHubEventLike],
    context: Any,
    *,
    trigger: str,
    event_hub: str | None,
    header_encoding: HeaderEncoding = "base64",
    namespace: str = "",
) -> Result:
    """Process one Event Hubs trigger batch. ``namespace``
    (``EventHubConnection__fullyQualifiedNamespace``) names the namespace in the records' stream
    identity."""
    adapted = _adapt(
        lambda: eventhub_records(events, event_hub=event_hub, header_encoding=header_encoding, namespace=namespace),
        events, context, trigger=trigger, source="eventhub",
    )
    return process(adapted, context, trigger=trigger, source="eventhub")


def _adapt(
    build: Callable[[], Adapted], events: Sequence[Any], context: Any, *, trigger: str, source: SourceKind
) -> Adapted:
    """The adapter's records, or, when the adapter itself fails (a bug, not a bad event: those
    are per-event errors already), the same rule as a bug in the pipeline: raise for a retry
    before the final attempt; on the final attempt dead-letter every event's original body,
    because the host moves past the batch and nothing may be lost."""
    try:
        return build()
    except Exception as exc:
        if not attempt_of(context).final:
            raise
        log.exception("the %s adapter failed on the final attempt of %s; dead-lettering the batch's raw events",
                      source, trigger)
        reason = f"unexpected adapter error on the final attempt: {type(exc).__name__}: {exc}"
        return Adapted(errors=[AdapterError(_raw_record(event, source), reason) for event in events])


def _raw_record(event: Any, source: SourceKind) -> Record:
    """An event as it came, with whatever position it tells without the adapter."""
    def attr(name: str) -> Any:
        try:
            return getattr(event, name, None)
        except Exception:  # a property that fails: the position stays unknown
            return None

    body = event.get_body()
    value = body.encode("utf-8") if isinstance(body, str) else bytes(body or b"")
    number = attr("offset") if source == "kafka" else attr("sequence_number")
    partition = attr("partition")
    return Record(
        value=value,
        topic=str(attr("topic") or ""),
        partition=int(partition) if isinstance(partition, int | str) and str(partition).isdigit() else 0,
        offset=int(number) if isinstance(number, int | str) and str(number).isdigit() else 0,
        source=source,
    )
