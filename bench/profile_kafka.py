"""Profile `KafkaIngestor` (main thread's CPU time, cProfile) reading CSV records from a real broker into a
memory sink: ``python bench/profile_kafka.py [--records N] [--topic bench-csv] [--consumer FILE]``.

``--sample`` runs without cProfile, for a sampling profiler around it (cProfile charges every call,
so it overweights code made of many cheap C calls)::

    py-spy record --format raw --nonblocking -r 250 -o /tmp/stacks.txt -- \
        python bench/profile_kafka.py --sample
    python bench/profile_kafka.py --own-time /tmp/stacks.txt   # top entries by own time

``--consumer`` loads another version of shared/kafka/consumer.py (e.g. one taken with
``git show <commit>:shared/kafka/consumer.py``) to compare profiles before and after a change.
"""

from __future__ import annotations

import argparse
import cProfile
import importlib.util
import io
import pstats
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.kafka_e2e import _create_topics, _produce, cpu_seconds  # noqa: E402
from bench.run import CONFIG, Workload, new_pipeline  # noqa: E402
from shared.config import load_config  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--topic", default="bench-csv", help="a route of bench/ingestion.yaml (bench-csv, bench-json, ...)")
    parser.add_argument("--consumer", type=Path, help="another shared/kafka/consumer.py to profile")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--sample", action="store_true", help="no cProfile (for py-spy around this process)")
    parser.add_argument("--own-time", type=Path, metavar="STACKS", help="summarise py-spy's raw output and exit")
    args = parser.parse_args()
    if args.own_time:
        return own_time(args.own_time, args.top)
    if args.consumer:
        spec = importlib.util.spec_from_file_location("consumer_under_test", args.consumer)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up
        spec.loader.exec_module(module)
    else:
        import shared.kafka.consumer as module

    from scripts.kafka_broker import install_kafka, start_broker

    config = load_config(CONFIG)
    workload = Workload.generate(args.records)
    values = workload.json if "json" in args.topic else workload.csv
    broker = start_broker(install_kafka(), num_partitions=4)
    try:
        _create_topics(broker.bootstrap, [args.topic])
        _produce(broker.bootstrap, args.topic, values)
        with tempfile.TemporaryDirectory() as tmp:
            options = module.ConsumerOptions(topics=(args.topic,), group=f"profile-{uuid.uuid4().hex}",
                                             batch_records=5000, max_records=len(values), idle_exit=30.0)
            ingestor = module.KafkaIngestor(new_pipeline(config, Path(tmp)), {"bootstrap.servers": broker.bootstrap},
                                            options)
            profiler = cProfile.Profile(time.thread_time)  # this thread's CPU time
            started = cpu_seconds()
            if not args.sample:
                profiler.enable()
            ingestor.run()
            profiler.disable()
            print(f"{len(values):,} records, {cpu_seconds() - started:.2f} CPU s"
                  f"{'' if args.sample else ' (under cProfile)'}")
        if not args.sample:
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(args.top)
            print(out.getvalue())
    finally:
        broker.stop()
    return 0


def own_time(stacks: Path, top: int) -> int:
    """Print the functions with the most samples at the top of the stack, counting only the
    stacks of the consume phase (through consumer.py; py-spy's raw format: ``frame;frame;...
    count`` per line, each frame ``name (file:line)``)."""
    own: dict[str, int] = {}
    total = 0
    for line in stacks.read_text().splitlines():
        frames, _, count = line.rpartition(" ")
        if not frames or not count.isdigit() or "consumer.py:" not in frames:
            continue
        leaf = frames.rsplit(";", 1)[-1].rsplit(":", 1)[0] + ")"  # the function, not the line
        own[leaf] = own.get(leaf, 0) + int(count)
        total += int(count)
    print(f"{total:,} samples; own time (samples at the top of the stack):")
    for name, count in sorted(own.items(), key=lambda item: -item[1])[:top]:
        print(f"  {100 * count / total:5.1f} %  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
