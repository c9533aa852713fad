"""The deployed package: the function app imports only what requirements.txt installs.

Flex Consumption's remote build installs requirements.txt and nothing else; the command line's
packages (requirements-cli.txt) are not there. The app is imported in a fresh interpreter with
those packages made unimportable, both triggers on, and every module the worker imports lazily
for the deployed path (ADX sink, blob dead letters, preflight) imported too.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

from tests.support.functions_app import EVENTHUB_ENV, KAFKA_ENV, REPO

CLI_ONLY = ("click", "duckdb", "confluent_kafka", "azure.eventhub", "shared.cli")
"""Import names of requirements-cli.txt's packages, and the command line (.funcignore leaves it out)."""

_PROBE = """
import importlib.abc, json, sys
blocked = tuple(json.loads(sys.argv[1]))

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if any(name == b or name.startswith(b + ".") for b in blocked):
            raise ImportError(f"{name} is not in the deployed package (requirements-cli.txt)")
        return None

sys.meta_path.insert(0, Block())
import function_app
# What the worker imports on its first invocation for the deployed path (shared.functions.worker,
# shared.wiring.build_sink/build_deadletters with ADX_INGEST_URI and DEADLETTER_BLOB_URI).
import shared.config, shared.ops.preflight, shared.redact, shared.wiring
import shared.sinks.adx.sink, shared.deadletters.blob
print(json.dumps(sorted(f.get_function_name() for f in function_app.app.get_functions())))
"""


def _requirement_names(path: str) -> set[str]:
    names = set()
    for line in (REPO / path).read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            names.add(re.split(r"[<>=!~;\s\[]", line, maxsplit=1)[0].lower())
    return names


def test_the_function_app_imports_no_command_line_package() -> None:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), **EVENTHUB_ENV, **KAFKA_ENV}
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(CLI_ONLY)],
        cwd=REPO, env=env, capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout.splitlines()[-1]) == ["eventhub_ingest", "kafka_ingest"]


def test_the_probe_fails_when_the_app_imports_a_command_line_package() -> None:
    """The block is real: importing one of the packages through it fails."""
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE.replace("import function_app", "import duckdb"), json.dumps(CLI_ONLY)],
        cwd=REPO, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)},
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert proc.returncode != 0 and "is not in the deployed package" in proc.stderr


def test_requirements_split_the_function_app_from_the_command_line() -> None:
    app, cli = _requirement_names("requirements.txt"), _requirement_names("requirements-cli.txt")
    assert {"click", "duckdb", "confluent-kafka", "azure-eventhub"} <= cli
    assert not app & cli
    assert {"azure-functions", "azure-functions-runtime"} <= app
    dev = (REPO / "requirements-dev.txt").read_text(encoding="utf-8")
    assert "-r requirements.txt" in dev and "-r requirements-cli.txt" in dev


def test_funcignore_keeps_what_the_app_imports_and_leaves_out_the_rest() -> None:
    ignored = {
        line.strip() for line in (REPO / ".funcignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }  # fmt: skip
    for needed in ("function_app.py", "host.json", "requirements.txt", "ingestion.yaml", "shared/", "shared"):
        assert needed not in ignored
    for left_out in ("tests/", "bench/", "docs/", "infra/", "scripts/", ".venv*/", "requirements-cli.txt",
                     "requirements-dev.txt", "requirements-runtime-test.txt", "shared/cli/"):
        assert left_out in ignored, left_out
