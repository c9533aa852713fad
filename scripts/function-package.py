"""The function app's deployed package, measured: the size of what the remote build installs from
requirements.txt (``pip install --target``, as Flex Consumption's build does) and the cold import
time of ``function_app`` (fresh interpreters, both triggers on, median of --runs).

Usage: python scripts/function-package.py [--python .venv-313/bin/python] [--runs 5] [--json]
[--requirements FILE]

``--requirements`` measures another requirements file's package (default requirements.txt), to
compare a change of dependencies before committing it.

``--python`` is the app's interpreter (Python 3.13 with requirements.txt: ``make venv313``); the
import runs there with the repo's code, so the figure is the app's own start-up before its first
invocation (the worker's state is built on that invocation, not at import).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SETTINGS = {
    "EVENTHUB_NAME": "events",
    "EventHubConnection__fullyQualifiedNamespace": "kafka-adx.servicebus.windows.net",
    "KAFKA_BROKERS": "127.0.0.1:9092",
    "KAFKA_TOPIC": "events",
}
_IMPORT = "import time; t = time.perf_counter(); import function_app; print(time.perf_counter() - t)"


def package_size(python: str, requirements: Path = REPO / "requirements.txt") -> tuple[int, list[tuple[str, int]]]:
    """Bytes of ``pip install -r requirements --target``, and the five largest top-level entries."""
    with tempfile.TemporaryDirectory() as target:
        subprocess.run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check", "-r",
                        str(requirements), "--target", target], check=True)  # fmt: skip
        sizes = {
            entry.name: sum(f.stat().st_size for f in entry.rglob("*") if f.is_file()) if entry.is_dir()
            else entry.stat().st_size
            for entry in Path(target).iterdir()
        }  # fmt: skip
    largest = sorted(sizes.items(), key=lambda item: item[1], reverse=True)[:5]
    return sum(sizes.values()), largest


def cold_import_seconds(python: str, runs: int) -> list[float]:
    """Seconds to import function_app in each of ``runs`` fresh interpreters."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(REPO), **SETTINGS}
    def once() -> float:
        proc = subprocess.run([python, "-c", _IMPORT], cwd=REPO, env=env, capture_output=True, text=True, check=True)
        return float(proc.stdout.strip().splitlines()[-1])

    return [once() for _ in range(runs)]


def main() -> None:
    """Measure and print (text or JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", default=str(REPO / ".venv-313" / "bin" / "python"))
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--requirements", type=Path, default=REPO / "requirements.txt")
    args = parser.parse_args()
    size, largest = package_size(args.python, args.requirements)
    times = cold_import_seconds(args.python, args.runs)
    result = {
        "package_mb": round(size / 1e6, 1),
        "largest_mb": {name: round(n / 1e6, 1) for name, n in largest},
        "cold_import_s_median": round(statistics.median(times), 3),
        "cold_import_s": [round(t, 3) for t in times],
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"function package: {result['package_mb']} MB (largest: "
              + ", ".join(f"{k} {v} MB" for k, v in result["largest_mb"].items()) + ")")
        print(f"cold import of function_app: median {result['cold_import_s_median']} s over {args.runs} runs")


if __name__ == "__main__":
    sys.exit(main())
