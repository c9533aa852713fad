"""infra/ without the Bicep CLI: every file parses with pycep, and the cross-file checks the Bicep
compiler would make are made here (module parameters and outputs, loaded files, azd layout)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from tests.infra.bicep_model import (
    INFRA,
    MAIN,
    REPO,
    bicep_files,
    body,
    module_path,
    modules,
    parse,
    rel,
)

FILES = bicep_files()


def test_infra_has_the_azd_layout() -> None:
    assert MAIN.exists()
    assert (INFRA / "main.parameters.json").exists()
    assert (INFRA / "abbreviations.json").exists()
    assert len(FILES) >= 8, [rel(p) for p in FILES]


@pytest.mark.parametrize("path", FILES, ids=[rel(p) for p in FILES])
def test_every_bicep_file_parses(path: Path) -> None:
    try:
        parsed = parse(path)
    except Exception as exc:  # the parser's own error type varies; any failure fails the build
        pytest.fail(f"pycep cannot parse {rel(path)}: {type(exc).__name__}: {str(exc)[:500]}")
    assert parsed.get("resources") or parsed.get("modules"), f"{rel(path)} declares nothing"


@pytest.mark.parametrize("path", FILES, ids=[rel(p) for p in FILES])
def test_only_local_modules_that_exist(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert not re.search(r"'(br|ts)[:/]", text), f"{rel(path)} uses a registry module"
    for symbol, module in modules(parse(path)):
        assert module["type"] == "local", f"{rel(path)}: module {symbol} is not a local file"
        assert module_path(path, module).exists(), f"{rel(path)}: module {symbol} points at a missing file"


@pytest.mark.parametrize("path", FILES, ids=[rel(p) for p in FILES])
def test_module_parameters_match(path: Path) -> None:
    """Every parameter passed to a module exists there; every required one is passed."""
    for symbol, module in modules(parse(path)):
        target = module_path(path, module)
        declared = parse(target).get("parameters", {})
        passed = set(body(module).get("params", {}))
        unknown = passed - set(declared)
        missing = {name for name, p in declared.items() if p.get("default") is None and name not in passed}
        assert not unknown, f"{rel(path)}: module {symbol} passes unknown parameters {sorted(unknown)}"
        assert not missing, f"{rel(path)}: module {symbol} misses required parameters {sorted(missing)}"


@pytest.mark.parametrize("path", FILES, ids=[rel(p) for p in FILES])
def test_module_outputs_used_exist(path: Path) -> None:
    parsed = parse(path)
    targets = {symbol: parse(module_path(path, module)) for symbol, module in modules(parsed)}
    text = path.read_text(encoding="utf-8")
    for symbol, output in re.findall(r"\b(\w+)\.outputs\.(\w+)", text):
        assert symbol in targets, f"{rel(path)}: {symbol}.outputs used but {symbol} is not a module"
        assert output in targets[symbol].get("outputs", {}), (
            f"{rel(path)}: module {symbol} has no output {output}"
        )


@pytest.mark.parametrize("path", FILES, ids=[rel(p) for p in FILES])
def test_loaded_files_exist(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    for name in re.findall(r"load(?:Text|Json|FileAsBase64)Content\('([^']+)'", text):
        assert (path.parent / name).is_file(), f"{rel(path)} loads missing file {name}"


def test_main_is_subscription_scoped_with_azd_parameters() -> None:
    parsed = parse(MAIN)
    assert parsed["globals"]["scope"]["value"] == "subscription"
    params = parsed["parameters"]
    assert {"environmentName", "location", "principalId"} <= set(params)
    # The resource token: unique per subscription, environment and region.
    assert "uniqueString(subscription().id, environmentName, location)" in MAIN.read_text(encoding="utf-8")


def test_parameters_file_matches_main() -> None:
    declared = parse(MAIN)["parameters"]
    values = json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))["parameters"]
    assert set(values) <= set(declared), f"unknown parameters: {sorted(set(values) - set(declared))}"
    required = {name for name, p in declared.items() if p.get("default") is None}
    assert required <= set(values), (
        f"required parameters azd would prompt for: {sorted(required - set(values))}"
    )
    assert values["environmentName"]["value"] == "${AZURE_ENV_NAME}"
    assert values["location"]["value"] == "${AZURE_LOCATION}"


def test_abbreviations_used_exist() -> None:
    abbreviations = json.loads((INFRA / "abbreviations.json").read_text(encoding="utf-8"))
    used = set(re.findall(r"abbrs\.(\w+)", MAIN.read_text(encoding="utf-8")))
    assert used, "main.bicep uses no abbreviation"
    assert used <= set(abbreviations), f"missing abbreviations: {sorted(used - set(abbreviations))}"


def test_azure_yaml_targets_the_function_app() -> None:
    project = yaml.safe_load((REPO / "azure.yaml").read_text(encoding="utf-8"))
    assert project["infra"] == {"provider": "bicep", "path": "infra", "module": "main"}
    services = project["services"]
    assert len(services) == 1
    ((name, service),) = services.items()
    assert service["host"] == "function" and service["language"] == "python"
    # azd finds the app by its azd-service-name tag.
    app_params = parse(INFRA / "modules" / "functionapp.bicep")["parameters"]
    assert app_params["serviceName"]["default"] == name
    assert "'azd-service-name': serviceName" in (INFRA / "modules" / "functionapp.bicep").read_text(
        encoding="utf-8"
    )
