"""Read infra/ the way the tests need it: every .bicep file parsed by pycep-parser into its JSON
form, plus small helpers to walk resources, resolve variables and collect app settings.

pycep's JSON drops the difference between a string literal and an identifier (``'x'`` and ``x``
both become ``"x"``); the helpers look names up in the file's parameters/variables/resources to
tell them apart where it matters.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

from pycep import BicepParser

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"
MAIN = INFRA / "main.bicep"


def bicep_files() -> list[Path]:
    """Every .bicep file under infra/, sorted."""
    return sorted(INFRA.rglob("*.bicep"))


@cache
def _parser() -> BicepParser:
    return BicepParser()


@cache
def parse(path: Path) -> dict[str, Any]:
    """The pycep JSON of one file (raises the parser's error if it cannot be parsed)."""
    return _parser().parse(text=path.read_text(encoding="utf-8"))  # type: ignore[return-value]


def rel(path: Path) -> str:
    """Path relative to the repo, for messages."""
    return str(path.relative_to(REPO))


def body(resource: dict[str, Any]) -> dict[str, Any]:
    """The object body of a resource or module, under any ``if (...)`` or ``for`` wrapper."""
    config = resource["config"]
    while (
        isinstance(config, dict) and ("condition" in config or "loop_type" in config) and "config" in config
    ):
        config = config["config"]
    return config


def resources(parsed: dict[str, Any], type_: str | None = None) -> Iterator[tuple[str, dict[str, Any]]]:
    """(symbol, resource) of the declared (not ``existing``) resources, optionally of one type."""
    for symbol, resource in parsed.get("resources", {}).items():
        if resource.get("existing"):
            continue
        if type_ is None or resource["type"].lower() == type_.lower():
            yield symbol, resource


def all_resources(type_: str) -> list[tuple[Path, str, dict[str, Any]]]:
    """(file, symbol, resource) of every declared resource of ``type_`` in infra/."""
    return [(path, symbol, res) for path in bicep_files() for symbol, res in resources(parse(path), type_)]


def one_resource(type_: str) -> tuple[Path, str, dict[str, Any]]:
    """The single declared resource of ``type_`` in infra/ (fails if there are none or several)."""
    found = all_resources(type_)
    assert len(found) == 1, f"expected exactly one {type_}, found {[(rel(p), s) for p, s, _ in found]}"
    return found[0]


def variable(parsed: dict[str, Any], name: str) -> Any:
    """The value expression of variable ``name``."""
    return parsed["variables"][name]["value"]


def modules(parsed: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(symbol, module) of the file."""
    yield from parsed.get("modules", {}).items()


def module_path(source: Path, module: dict[str, Any]) -> Path:
    """The file a local module points at."""
    return (source.parent / module["detail"]["path"]).resolve()


def resolve_items(expr: Any, parsed: dict[str, Any]) -> list[Any]:
    """The array elements ``expr`` can evaluate to: follows variables, ``concat``/``union`` and
    both branches of ``?:`` (so conditional settings count as set)."""
    variables = parsed.get("variables", {})
    if isinstance(expr, str) and expr in variables:
        return resolve_items(variables[expr]["value"], parsed)
    if isinstance(expr, list):
        out: list[Any] = []
        for item in expr:
            out.extend(
                resolve_items(item, parsed) if not isinstance(item, dict) or "name" not in item else [item]
            )
        return out
    if isinstance(expr, dict) and "function" in expr and expr["function"]["type"] in ("concat", "union"):
        out = []
        for arg in expr["function"]["parameters"].values():
            out.extend(resolve_items(arg, parsed))
        return out
    if isinstance(expr, dict) and "operator" in expr and expr["operator"]["type"] == "conditional":
        operands = expr["operator"]["operands"]
        return resolve_items(operands["true_value"], parsed) + resolve_items(operands["false_value"], parsed)
    return []


def app_settings() -> dict[str, Any]:
    """Setting name -> value expression of the function app's ``siteConfig.appSettings``."""
    path, _, site = one_resource("Microsoft.Web/sites")
    parsed = parse(path)
    items = resolve_items(body(site)["properties"]["siteConfig"]["appSettings"], parsed)
    settings: dict[str, Any] = {}
    for item in items:
        assert isinstance(item.get("name"), str), f"app setting without a literal name: {item}"
        assert item["name"] not in settings, f"app setting {item['name']} is set twice"
        settings[item["name"]] = item.get("value")
    return settings


def function_call(expr: Any) -> tuple[str, dict[str, Any]] | None:
    """(pycep function type, parameters) when ``expr`` is a function call."""
    if isinstance(expr, dict) and "function" in expr:
        return expr["function"]["type"], expr["function"]["parameters"]
    return None


def property_path(expr: Any) -> list[str] | None:
    """``a.b.c`` as ["a", "b", "c"] when ``expr`` is a chain of property accesses."""
    if isinstance(expr, str):
        return [expr]
    if isinstance(expr, dict) and "operator" in expr and expr["operator"]["type"] == "property_accessor":
        operands = expr["operator"]["operands"]
        left = property_path(operands["operand_1"])
        right = property_path(operands["operand_2"])
        if left is not None and right is not None:
            return left + right
    return None


SKIP_COMMENT = re.compile(r"//\s*checkov:skip=([A-Z0-9_]+)(?::(.*))?$")
