"""A/B of consumer versions in one process, over the same topics of one broker, taking turns
(the only fair comparison on a shared machine):

    git show <commit>:shared/kafka/consumer.py > /tmp/consumer_before.py
    python bench/consumer_ab.py --before /tmp/consumer_before.py --records 200000 --format csv --turns 2
    python bench/consumer_ab.py --variants after,frozen-record,csv-module-count

Prints records per CPU-second of the whole process (and the main thread's share) of each
variant, validated and not, plus the floor of bench/kafka_e2e.py; best of ``--turns`` at the end.
Variants: ``before`` (the consumer.py of ``--before``), ``after`` (the working tree), and the
working tree with one change undone (see ``PATCHES``), to weigh each change on its own.

Whole trees (a change to the pipeline as well as the consumer): ``--trees NAME=DIR,...`` runs
each case in a child process importing ``DIR``'s ``shared`` (e.g. ``git archive <commit> | tar
-x -C /tmp/before``), over the same broker and topics, taking turns::

    python bench/consumer_ab.py --trees before=/tmp/before,after=. --format csv,json --turns 3

(the child's CPU time is counted from ``KafkaIngestor.run`` to its return).
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
    # The collector's thresholds left as they are while consuming (CPython's 700).
    "gc-young-700": lambda: patched(current, "GC_YOUNG_THRESHOLD", 700),
}
"""The working tree, or the working tree with one change undone."""


# One consumer run of a tree, in a child process (argv: bootstrap, topic, count, config): prints
# the CPU seconds of the whole process from KafkaIngestor.run to its return.
_TREE_CHILD = """
import json, resource, sys, tempfile, uuid
from pathlib import Path
from shared.config import load_config
from shared.deadletters.local import LocalDeadLetterStore
from shared.kafka.consumer import ConsumerOptions, KafkaIngestor
from shared.pipeline.core import Pipeline
from shared.pipeline.sink import MemorySink
bootstrap, topic, count, config = sys.argv[1], sys.argv[2], int(sys.argv[3]), load_config(sys.argv[4])
def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
with tempfile.TemporaryDirectory() as tmp:
    pipeline = Pipeline(config, MemorySink(keep_payloads=False), LocalDeadLetterStore(Path(tmp)))
    options = ConsumerOptions(topics=(topic,), group=f"ab-{uuid.uuid4().hex}", batch_records=5000,
                              max_records=count, idle_exit=30.0)
    started = cpu()
    stats = KafkaIngestor(pipeline, {"bootstrap.servers": bootstrap}, options).run()
    seconds = cpu() - started
if stats.result.ingested != count:
    raise SystemExit(f"{topic}: {stats.result.ingested} of {count} ingested")
print(json.dumps(seconds))
"""


def tree_ab(trees: dict[str, Path], formats: list[str], count: int, turns: int) -> int:
    """``--trees``: every case of every tree in a child process, taking turns (module docstring)."""
    import json
    import os
    import subprocess

    from scripts.kafka_broker import install_kafka, start_broker

    config = load_config(CONFIG)
    workload = Workload.generate(count)
    broker = start_broker(install_kafka(), num_partitions=4)
    cpu = pin_to_one_cpu()  # the children inherit it
    if cpu is not None:
        pin_away(broker.pid, cpu)
    topics = [f"bench-{fmt}{suffix}" for fmt in formats for suffix in ("", "-novalidate")]
    best: dict[tuple[str, str], float] = {}
    try:
        _create_topics(broker.bootstrap, topics)
        for topic in topics:
            _produce(broker.bootstrap, topic, workload.json if "json" in topic else workload.csv)
        del workload
        time.sleep(3.0)
        for topic in topics:  # one untimed read of each, as bench/kafka_e2e.py does
            _floor(broker.bootstrap, topic, count, config.limits.gzip_level)
        for turn in range(turns):
            names = list(trees) if turn % 2 == 0 else list(trees)[::-1]
            for topic in topics:
                for name in names:
                    env = dict(os.environ, PYTHONPATH=str(trees[name]))
                    child = subprocess.run(
                        [sys.executable, "-c", _TREE_CHILD, broker.bootstrap, topic, str(count), str(CONFIG)],
                        env=env, cwd=trees[name], capture_output=True, text=True, check=False,
                    )  # fmt: skip
                    if child.returncode:
                        raise SystemExit(f"{name} {topic}: {child.stderr[-2000:]}")
                    seconds = json.loads(child.stdout.strip().splitlines()[-1])
                    best[(name, topic)] = min(best.get((name, topic), float("inf")), seconds)
                    print(f"turn {turn} {name:<10} {topic:<22} {count / seconds:>9,.0f} rec/CPU-s", flush=True)
                if not topic.endswith("-novalidate"):
                    seconds = _floor(broker.bootstrap, topic, count, config.limits.gzip_level)
                    best[("floor", topic)] = min(best.get(("floor", topic), float("inf")), seconds)
                    print(f"turn {turn} {'floor':<10} {topic:<22} {count / seconds:>9,.0f} rec/CPU-s", flush=True)
        print("best:")
        for (name, topic), seconds in sorted(best.items(), key=lambda item: (item[0][1], item[0][0])):
            floor_s = best[("floor", topic.removesuffix("-novalidate"))]
            print(f"{name:<10} {topic:<22} {count / seconds:>9,.0f} rec/CPU-s  ratio {floor_s / seconds:.3f}")
    finally:
        broker.stop()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trees", help="NAME=DIR,...: whole trees, each case in a child process")
    parser.add_argument("--before", type=Path, help="another consumer.py (variant 'before')")
    parser.add_argument("--variants", default="", help=f"comma-separated, of before, {', '.join(PATCHES)}")
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--format", default="csv", help="csv or json (with --trees: csv,json for both)")
    parser.add_argument("--turns", type=int, default=2)
    args = parser.parse_args()
    if args.trees:
        trees = {name: Path(path).resolve() for name, path in (item.split("=", 1) for item in args.trees.split(","))}
        return tree_ab(trees, args.format.split(","), args.records, args.turns)
    if args.format not in ("csv", "json"):
        parser.error("--format: csv or json")
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
