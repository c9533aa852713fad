"""A/B of consumer versions in one process, over the same topics of one broker, taking turns
(the only fair comparison on a shared machine):

    git show <commit>:shared/kafka/consumer.py > /tmp/consumer_before.py
    python bench/consumer_ab.py --before /tmp/consumer_before.py --records 200000 --format csv --turns 2
    python bench/consumer_ab.py --variants after,frozen-record,csv-module-count

Prints records per CPU-second of the whole process (and the main thread's share) of each
variant, validated and not, plus the floor of bench/kafka_e2e.py; best of ``--turns`` at the end.
Variants: ``before`` (the consumer.py of ``--before``), ``after`` (the working tree), and the
working tree with one change undone (see ``PATCHES``), to weigh each change on its own.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib.util
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import shared.kafka.consumer as current  # noqa: E402
import shared.pipeline.encoding as encoding  # noqa: E402
from bench.kafka_e2e import _create_topics, _floor, _produce, cpu_seconds, pin_away  # noqa: E402
from bench.run import CONFIG, Workload, new_pipeline, pin_to_one_cpu  # noqa: E402
from shared.config import load_config  # noqa: E402
from shared.pipeline.records import Record  # noqa: E402


def load(path: Path) -> Any:
    """A consumer.py from ``path`` as a module of its own."""
    spec = importlib.util.spec_from_file_location("consumer_before", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def patched(target: Any, name: str, value: Any) -> Iterator[None]:
    """``target.name`` set to ``value`` for the duration."""
    original = getattr(target, name)
    setattr(target, name, value)
    try:
        yield
    finally:
        setattr(target, name, original)


# The frozen Record the consumer built before 82e8231 (same fields and methods, frozen=True).
FrozenRecord = dataclasses.make_dataclass(
    "Record", [(f.name, f.type, dataclasses.field(default=f.default)) if f.default is not dataclasses.MISSING
               else (f.name, f.type) for f in dataclasses.fields(Record)],
    namespace={name: Record.__dict__[name] for name in ("header", "has_header", "where", "size")},
    frozen=True, slots=True,
)  # fmt: skip


def _csv_module_count(text: str, delimiter: str, value: bytes | None = None) -> int:
    return len(encoding.split_delimited(text, delimiter))


PATCHES: dict[str, Callable[[], contextlib.AbstractContextManager[None]]] = {
    "after": contextlib.nullcontext,
    "no-gc-freeze": lambda: patched(current, "_start_up_frozen", contextlib.nullcontext),
    "frozen-record": lambda: patched(current, "Record", FrozenRecord),
    "csv-module-count": lambda: patched(encoding, "count_fields", _csv_module_count),
    "prefetch-64MiB": lambda: patched(current, "PREFETCH_KBYTES", 65536),  # librdkafka's default
}
"""The working tree, or the working tree with one change undone."""


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--before", type=Path, help="another consumer.py (variant 'before')")
    parser.add_argument("--variants", default="", help=f"comma-separated, of before, {', '.join(PATCHES)}")
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--format", choices=("csv", "json"), default="csv")
    parser.add_argument("--turns", type=int, default=2)
    args = parser.parse_args()
    from scripts.kafka_broker import install_kafka, start_broker

    names = [n for n in args.variants.split(",") if n] or (["before", "after"] if args.before else ["after"])
    unknown = [n for n in names if n not in PATCHES and n != "before"]
    if unknown or ("before" in names and not args.before):
        parser.error(f"unknown variant(s) {unknown} (or 'before' without --before)")
    before = load(args.before) if args.before else None
    count = args.records
    config = load_config(CONFIG)
    workload = Workload.generate(count)
    values = workload.csv if args.format == "csv" else workload.json
    broker = start_broker(install_kafka(), num_partitions=4)
    cpu = pin_to_one_cpu()
    if cpu is not None:
        pin_away(broker.pid, cpu)
    topics = [f"bench-{args.format}", f"bench-{args.format}-novalidate"]
    best: dict[str, tuple[float, float]] = {}

    def run(module: Any, topic: str, tmp: str) -> tuple[float, float]:
        options = module.ConsumerOptions(topics=(topic,), group=f"ab-{uuid.uuid4().hex}", batch_records=5000,
                                         max_records=count, idle_exit=30.0)
        ingestor = module.KafkaIngestor(new_pipeline(config, Path(tmp)), {"bootstrap.servers": broker.bootstrap},
                                        options)
        started, main_started = cpu_seconds(), time.thread_time()
        stats = ingestor.run()
        if stats.result.ingested != count:
            raise SystemExit(f"{topic}: {stats.result.ingested} of {count} ingested")
        return cpu_seconds() - started, time.thread_time() - main_started

    try:
        _create_topics(broker.bootstrap, topics)
        for topic in topics:
            _produce(broker.bootstrap, topic, values)
        del workload, values
        time.sleep(3.0)
        with tempfile.TemporaryDirectory() as tmp:
            for _ in range(args.turns):
                for name in names:
                    module = before if name == "before" else current
                    for topic in topics:
                        with PATCHES.get(name, contextlib.nullcontext)():
                            total, main = run(module, topic, tmp)
                        key = f"{name:<20} {topic:<22}"
                        best[key] = min(best.get(key, (float("inf"), 0.0)), (total, main))
                        print(f"{key}: {count / total:>9,.0f} rec/CPU-s (main thread {main:.2f} of {total:.2f} s)",
                              flush=True)
                floor = _floor(broker.bootstrap, topics[0], count, config.limits.gzip_level)
                key = f"{'floor':<20} {'':<22}"
                best[key] = min(best.get(key, (float("inf"), 0.0)), (floor, 0.0))
                print(f"{key}: {count / floor:>9,.0f} rec/CPU-s", flush=True)
        floor_s = best[f"{'floor':<20} {'':<22}"][0]
        print("best:")
        for key, (total, main) in best.items():
            print(f"{key}: {count / total:>9,.0f} rec/CPU-s  ratio {floor_s / total:.2f}  main thread {main:.2f} s")
    finally:
        broker.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
