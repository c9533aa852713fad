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

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.support.functions_app import EVENTHUB_ENV, KAFKA_ENV, REPO

# confluent_kafka is the app's: its schema-registry client decodes Confluent-framed Avro and JSON
# Schema records in the triggers (shared/formats); its Kafka client is the CLI's only.
CLI_ONLY = ("click", "duckdb", "azure.eventhub", "shared.cli")
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
    assert {"click", "duckdb", "azure-eventhub"} <= cli
    assert "confluent-kafka" in app  # the schema-registry client of the Avro / JSON Schema routes
    assert not app & cli
    assert {"azure-functions", "azure-functions-runtime"} <= app
    dev = (REPO / "requirements-dev.txt").read_text(encoding="utf-8")
    assert "-r requirements.txt" in dev and "-r requirements-cli.txt" in dev  # the suite runs on the lock


def test_funcignore_keeps_what_the_app_imports_and_leaves_out_the_rest() -> None:
    ignored = {
        line.strip() for line in (REPO / ".funcignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }  # fmt: skip
    for needed in ("function_app.py", "host.json", "requirements.txt", "ingestion.yaml", "shared/", "shared"):
        assert needed not in ignored
    for left_out in ("tests/", "bench/", "docs/", "infra/", "scripts/", ".venv*/", "requirements.in", "requirements-cli.txt",
                     "requirements-dev.txt", "requirements-runtime-test.txt", "shared/cli/"):
        assert left_out in ignored, left_out


# --- the lock: requirements.in -> requirements.txt (make lock), and pyproject.toml -------------------

PYTHONS = ("3.11", "3.12", "3.13")
"""The versions requires-python allows and the lock is compiled for (uv pip compile --universal)."""


def _requirements(path: str) -> list[Requirement]:
    lines = [line.split("#", 1)[0].strip() for line in (REPO / path).read_text(encoding="utf-8").splitlines()]
    return [Requirement(line) for line in lines if line]


def _applies(requirement: Requirement, python: str) -> bool:
    environment = {"python_version": python, "python_full_version": f"{python}.0", "sys_platform": "linux",
                   "platform_system": "Linux", "platform_machine": "x86_64"}  # fmt: skip
    return requirement.marker is None or requirement.marker.evaluate(environment)


def test_pyproject_lists_the_requirements_of_requirements_in() -> None:
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert "dependencies" not in project.get("dynamic", [])
    assert [str(Requirement(r)) for r in project["dependencies"]] == [str(r) for r in _requirements("requirements.in")]


@pytest.mark.parametrize("python", PYTHONS)
def test_requirements_txt_pins_every_package_and_satisfies_requirements_in(python: str) -> None:
    """What the remote build installs (Linux x86_64) is one version of each package, chosen by the
    lock, inside every range of requirements.in; a stale lock (a range changed without
    `make lock`) fails here."""
    pins: dict[str, Version] = {}
    for requirement in _requirements("requirements.txt"):
        specifiers = list(requirement.specifier)
        assert len(specifiers) == 1 and specifiers[0].operator == "==", str(requirement)
        if _applies(requirement, python):
            name = canonicalize_name(requirement.name)
            assert name not in pins, f"{name} pinned twice for Python {python}"
            pins[name] = Version(specifiers[0].version)
    for wanted in _requirements("requirements.in"):
        if _applies(wanted, python):
            name = canonicalize_name(wanted.name)
            assert name in pins, f"{name} (requirements.in) is not in requirements.txt: make lock"
            assert wanted.specifier.contains(pins[name], prereleases=True), (str(wanted), str(pins[name]))
    assert ("azure-functions-runtime" in pins) is (python == "3.13")


def test_the_lock_is_what_the_function_apps_venv_holds() -> None:
    """.venv-313 (make venv313) is installed from requirements.txt: every pinned package is
    there at its pinned version (the lock resolves and installs on Python 3.13)."""
    from tests.support.runtime_host import RUNTIME_PYTHON

    script = "import json, importlib.metadata as m; print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}))"
    proc = subprocess.run([str(RUNTIME_PYTHON), "-c", script], capture_output=True, text=True, check=True, timeout=120)
    installed = {canonicalize_name(name): Version(version) for name, version in json.loads(proc.stdout).items()}
    for requirement in _requirements("requirements.txt"):
        if _applies(requirement, "3.13"):
            name = canonicalize_name(requirement.name)
            assert installed.get(name) == Version(next(iter(requirement.specifier)).version), name
