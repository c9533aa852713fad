"""A/B of two versions of shared/kafka/consumer.py in one process, over the same topics of one
broker, taking turns (the only fair comparison on a shared machine):

    git show <commit>:shared/kafka/consumer.py > /tmp/consumer_before.py
    python bench/consumer_ab.py /tmp/consumer_before.py --records 200000 --format csv --turns 2

Prints records per CPU-second of the whole process (and the main thread's share) for the old
version, the current one, and the current one with the GC freeze of start-up disabled, each
validated and not, plus the floor of bench/kafka_e2e.py; best of ``--turns`` at the end.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import shared.kafka.consumer as current  # noqa: E402
from bench.kafka_e2e import _create_topics, _floor, _produce, cpu_seconds  # noqa: E402
from bench.run import CONFIG, Workload, new_pipeline, pin_to_one_cpu  # noqa: E402
from shared.config import load_config  # noqa: E402


def load(path: Path) -> Any:
    """A consumer.py from ``path`` as a module of its own."""
    spec = importlib.util.spec_from_file_location("consumer_before", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("before", type=Path, help="the other consumer.py")
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--format", choices=("csv", "json"), default="csv")
    parser.add_argument("--turns", type=int, default=2)
    args = parser.parse_args()
    from scripts.kafka_broker import install_kafka, start_broker

    before = load(args.before)
    count = args.records
    config = load_config(CONFIG)
    workload = Workload.generate(count)
    values = workload.csv if args.format == "csv" else workload.json
    broker = start_broker(install_kafka(), num_partitions=4)
    cpu = pin_to_one_cpu()
    if cpu is not None and (others := set(range(os.cpu_count() or 1)) - {cpu}):
        os.sched_setaffinity(broker.pid, others)
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
                variants: list[tuple[str, Any, Any]] = [("before", before, None), ("after", current, None),
                                                        ("after, no gc freeze", current, _no_freeze)]
                for name, module, patch in variants:
                    for topic in topics:
                        undo = patch() if patch else None
                        try:
                            total, main = run(module, topic, tmp)
                        finally:
                            if undo:
                                undo()
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


def _no_freeze() -> Any:
    import contextlib

    original = current._start_up_frozen
    current._start_up_frozen = contextlib.nullcontext  # type: ignore[assignment]

    def undo() -> None:
        current._start_up_frozen = original  # type: ignore[assignment]

    return undo


if __name__ == "__main__":
    sys.exit(main())
