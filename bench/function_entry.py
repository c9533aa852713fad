"""The bench rows "function entry" (bench/run.py): what the function app adds per event on top of
the pipeline, for trigger batches of 1,000 events.

The events are built as the worker hands them to the function: the host's values serialised as
the host sends them and decoded by the real ``azure.functions`` converters
(``tests/support/functions_host.py``; building them is the worker's part and is not timed). Three
shapes: Event Hubs, Kafka ``dataType: binary`` and Kafka ``dataType: string`` (the extension's
JSON envelope), each through the JSON passthrough route (a) of ``bench/ingestion.yaml``.

Per shape, in the same run and interleaved, best of ``repeat``:

- *entry*: ``handle_eventhub`` / ``handle_kafka`` (adapter, attempt, pipeline into a memory
  sink, batch summary and its log line, telemetry), one call per batch, as the first delivery
  under the app's retry policy;
- *pipeline*: ``Pipeline.process`` of the very records the adapter makes of those batches;
- *floor*: reading just the body and the offset (sequence number) of each event.

Overhead per event = (entry - pipeline) / events; target <= 3 us (issue 13, item 2). The ratio is
(pipeline + floor) / entry: 1.0 would be an entry that costs no more than the pipeline plus
reading each event once.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from shared.config import IngestionConfig
from shared.pipeline.core import Pipeline, Result
from shared.pipeline.records import Record

BATCH = 1000
"""Events per trigger batch."""
TARGET_US = 3.0
"""Most the entry may add per event over the pipeline, in microseconds."""
TOPIC = "bench-json"


@dataclass
class EntryMeasured:
    """One trigger shape: entry, pipeline and floor CPU seconds over the same events."""

    label: str
    events: int
    entry_s: float
    pipeline_s: float
    floor_s: float

    @property
    def overhead_us(self) -> float:
        """What the entry adds per event over the pipeline, in microseconds."""
        return (self.entry_s - self.pipeline_s) / self.events * 1e6

    @property
    def floor_us(self) -> float:
        """Reading the body and offset of one event, in microseconds."""
        return self.floor_s / self.events * 1e6

    @property
    def ratio(self) -> float:
        """(pipeline + floor) / entry."""
        return (self.pipeline_s + self.floor_s) / self.entry_s


@dataclass
class Shape:
    """One trigger shape: its batches, the handler call and the floor's read of one event."""

    label: str
    batches: list[list[Any]]
    handle: Callable[[list[Any]], Result]
    adapt: Callable[[list[Any]], list[Record]]
    read: Callable[[Any], Any]


def shapes(values: Sequence[bytes], invocations: int) -> list[Shape]:
    """The three trigger shapes over ``invocations`` batches of :data:`BATCH` of ``values``."""
    from shared.functions import invocation
    from shared.sources.functions import eventhub_records, kafka_records
    from tests.support.functions_host import Context, HubEvent, KafkaMessage, eventhub_events, kafka_events

    # The first delivery under the app's retry policy (RETRY_MAX_COUNT's default, 5), as the
    # host sends almost every batch.
    context = Context("bench", retry_count=0, max_retry_count=5)
    chunks = [(i * BATCH, values[i * BATCH:(i + 1) * BATCH]) for i in range(invocations)]
    # Every event its own timestamp and one of 50 keys: no cache of equal values flatters the
    # adapter (a busy topic has runs of equal milliseconds; this measures none).
    start = datetime(2024, 5, 1, 12, tzinfo=UTC)

    def when(offset: int) -> datetime:
        return start + timedelta(milliseconds=offset)

    hubs = [eventhub_events([HubEvent(first + n, v, enqueued=when(first + n)) for n, v in enumerate(chunk)],
                            event_hub=TOPIC, partition="0")
            for first, chunk in chunks]

    def messages(first: int, chunk: Sequence[bytes]) -> list[KafkaMessage]:
        return [KafkaMessage(TOPIC, first + n, v, key=b"station-%d" % (n % 50), headers=[("source", b"k")],
                             timestamp=when(first + n))
                for n, v in enumerate(chunk)]

    binary = [kafka_events(messages(first, chunk), data_type="binary") for first, chunk in chunks]
    string = [kafka_events(messages(first, chunk), data_type="string") for first, chunk in chunks]
    return [
        Shape("Event Hubs", hubs,
              lambda events: invocation.handle_eventhub(events, context, trigger="bench", event_hub=TOPIC),
              lambda events: eventhub_records(events, event_hub=TOPIC).records,
              lambda event: (event.get_body(), event.sequence_number)),
        Shape("Kafka, binary", binary,
              lambda events: invocation.handle_kafka(events, context, trigger="bench", data_type="binary"),
              lambda events: kafka_records(events, envelope=False, key_type="binary").records,
              lambda event: (event.get_body(), event.offset)),
        Shape("Kafka, string", string,
              lambda events: invocation.handle_kafka(events, context, trigger="bench", data_type="string"),
              lambda events: kafka_records(events, envelope=True, key_type="binary").records,
              lambda event: (event.get_body(), event.offset)),
    ]


def _fresh(batch: list[Any]) -> None:
    """Forget what ``EventHubEvent.metadata`` / ``KafkaEvent.metadata`` cached on an earlier run
    (each event keeps the converted trigger metadata once read), so that every timed run pays
    for reading it, as every invocation does."""
    for event in batch[:1]:
        if getattr(event, "_trigger_metadata_pyobj", None) is not None:
            event._trigger_metadata_pyobj = None


def _cpu(fn: Callable[[], Any]) -> float:
    """CPU seconds of one call of ``fn``, after a full collection (as bench/run.py ``timed``)."""
    gc.collect()
    started = time.process_time()
    fn()
    return time.process_time() - started


def measure_function_entry(values: Sequence[bytes], config: IngestionConfig, workdir: Path,
                           new_pipeline: Callable[[IngestionConfig, Path], Pipeline],
                           invocations: int, repeat: int) -> list[EntryMeasured]:
    """Entry, pipeline and floor per shape, interleaved, best of ``repeat`` each."""
    from shared.functions import worker

    pipeline = new_pipeline(config, workdir / "deadletter-functions")
    worker.install(pipeline)
    out = []
    try:
        for shape in shapes(values, invocations):
            records = [shape.adapt(events) for events in shape.batches]
            events = sum(map(len, shape.batches))
            if sum(map(len, records)) != events:
                raise SystemExit(f"function entry, {shape.label}: the adapter refused events")

            def entry(shape: Shape = shape) -> None:
                pipeline.forget_written()
                for batch in shape.batches:
                    _fresh(batch)
                    shape.handle(batch)

            def pipeline_only(records: list[list[Record]] = records) -> None:
                pipeline.forget_written()
                for batch in records:
                    pipeline.process(batch, attempt=1, final_attempt=True)

            def floor(shape: Shape = shape) -> None:
                read = shape.read
                for batch in shape.batches:
                    for event in batch:
                        read(event)

            written = pipeline.sink.records_written  # type: ignore[attr-defined]
            best = {"entry": float("inf"), "pipeline": float("inf"), "floor": float("inf")}
            gc.freeze()  # the input lives for the whole measurement, as a streamed one would not
            try:
                for _ in range(repeat):
                    for name, fn in (("floor", floor), ("pipeline", pipeline_only), ("entry", entry)):
                        best[name] = min(best[name], _cpu(fn))
            finally:
                gc.unfreeze()
            if pipeline.sink.records_written - written != 2 * repeat * events:  # type: ignore[attr-defined]
                raise SystemExit(f"function entry, {shape.label}: not every event reached the sink")
            out.append(EntryMeasured(shape.label, events, best["entry"], best["pipeline"], best["floor"]))
        return out
    finally:
        worker.reset()


def entry_lines(entries: Sequence[EntryMeasured]) -> list[str]:
    """The bench rows: events/s through the entry, us per event over the pipeline, the floor."""
    lines = []
    for e in entries:
        ok = "ok" if e.overhead_us <= TARGET_US else "MISSED"
        lines.append(
            f"{'function entry, ' + e.label + f', {BATCH:,} events':<42} {e.events / e.entry_s:>14,.0f} "
            f"{'':>7} {e.overhead_us:>8,.1f} us/event over the pipeline ({e.pipeline_s / e.events * 1e6:,.1f}), "
            f"floor {e.floor_us:,.2f} us, ratio {e.ratio:.2f}  <= {TARGET_US:.0f} us {ok}"
        )
    return lines


def profile_entry(values: Sequence[bytes], config: IngestionConfig, workdir: Path,
                  new_pipeline: Callable[[IngestionConfig, Path], Pipeline], invocations: int, label: str) -> None:
    """cProfile of one shape's entry (``label``: a prefix of the shape's name), top entries."""
    import cProfile
    import pstats

    from shared.functions import worker

    pipeline = new_pipeline(config, workdir / "deadletter-functions")
    worker.install(pipeline)
    try:
        [shape] = [s for s in shapes(values, invocations) if s.label.lower().startswith(label.lower())]
        for batch in shape.batches[:1]:  # warm
            shape.handle(batch)
        pipeline.forget_written()
        profiler = cProfile.Profile()
        profiler.enable()
        for batch in shape.batches:
            shape.handle(batch)
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
    finally:
        worker.reset()


def main(argv: Sequence[str] | None = None) -> int:
    """``python bench/function_entry.py [SHAPE]``: a cProfile of one shape's entry (SHAPE a prefix
    of its name: ``event``, ``"kafka, b"``, ``"kafka, s"``); with ``--measure``, the bench rows
    alone, as ``make bench`` prints them (``--runs`` times, each its own same-run floors)."""
    import argparse
    import sys
    import tempfile

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from bench.run import CONFIG, Workload, new_pipeline, pin_to_one_cpu
    from shared.config import load_config

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("shape", nargs="?", default="event", help="the shape to profile (a prefix of its name)")
    parser.add_argument("--measure", action="store_true", help="print the bench rows instead of a profile")
    parser.add_argument("--invocations", type=int, default=20, help="batches of 1,000 events per shape")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per measure (best of)")
    parser.add_argument("--runs", type=int, default=1, help="--measure: how many times")
    parser.add_argument("--no-pin", action="store_true", help="do not pin to one CPU")
    args = parser.parse_args(argv)
    if not args.no_pin:
        pin_to_one_cpu()
    values = Workload.generate(args.invocations * BATCH).json
    config = load_config(CONFIG)
    with tempfile.TemporaryDirectory() as tmp:
        if not args.measure:
            profile_entry(values, config, Path(tmp), new_pipeline, args.invocations, args.shape)
            return 0
        for run in range(args.runs):
            entries = measure_function_entry(values, config, Path(tmp) / str(run), new_pipeline, args.invocations,
                                             args.repeat)  # fmt: skip
            print("\n".join(entry_lines(entries)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
