"""Read infra/ the way the tests need it: every .bicep file parsed by pycep-parser into its JSON
form, plus small helpers to walk resources, resolve variables and collect app settings.

pycep's JSON drops the difference between a string literal and an identifier (``'x'`` and ``x``
both become ``"x"``); the helpers look names up in the file's parameters/variables/resources to
tell them apart where it matters.
"""

from __future__ import annotations

import json
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


# --- a tiny evaluator of the templates' variables -------------------------------------------------

_INTERPOLATION = re.compile(r"\$\{(\w+)\}")


def evaluate(expr: Any, parsed: dict[str, Any], values: dict[str, Any]) -> Any:
    """Value of ``expr`` given parameter ``values`` (missing ones: their defaults). Knows what the
    deployment switches and the app settings use: &&, ||, !, ==, !=, ?:, empty(), split(),
    string(), [index] and ``${name}`` interpolation of a parameter or variable."""
    params = parsed.get("parameters", {})
    variables = parsed.get("variables", {})
    if isinstance(expr, str):
        if expr in values:
            return values[expr]
        if expr in params:
            return params[expr].get("default")
        if expr in variables:
            return evaluate(variables[expr]["value"], parsed, values)
        # A string literal; pycep keeps '${name}' interpolations inside it as text. A name
        # without a value (a required parameter not given) stays as it is.
        return _INTERPOLATION.sub(lambda m: _interpolated(m, parsed, values), expr)
    if isinstance(expr, (bool, int, list)) or expr is None:
        return expr
    if "operator" not in expr and "function" not in expr:
        return expr  # an object literal, its members left as written
    if "operator" in expr:
        kind = expr["operator"]["type"]
        ops = expr["operator"]["operands"]
        if kind == "and":
            return evaluate(ops["operand_1"], parsed, values) and evaluate(ops["operand_2"], parsed, values)
        if kind == "or":
            return evaluate(ops["operand_1"], parsed, values) or evaluate(ops["operand_2"], parsed, values)
        if kind == "not":
            return not evaluate(ops["bool_value"], parsed, values)
        if kind == "equals":
            return evaluate(ops["operand_1"], parsed, values) == evaluate(ops["operand_2"], parsed, values)
        if kind == "not_equals":
            return evaluate(ops["operand_1"], parsed, values) != evaluate(ops["operand_2"], parsed, values)
        if kind == "conditional":
            branch = "true_value" if evaluate(ops["condition"], parsed, values) else "false_value"
            return evaluate(ops[branch], parsed, values)
        if kind == "index_accessor":
            return evaluate(ops["operand_1"], parsed, values)[evaluate(ops["operand_2"], parsed, values)]
        if kind == "property_accessor":
            return expr  # a resource's or module's property: known only in Azure, left as written
    if "function" in expr:
        kind = expr["function"]["type"]
        args = expr["function"]["parameters"]
        if kind == "empty":
            return not evaluate(args["item_to_test"], parsed, values)
        if kind == "split":
            return str(evaluate(args["input_string"], parsed, values)).split(args["delimiter"])
        if kind == "string":
            value = evaluate(args["value_to_convert"], parsed, values)
            return str(value).lower() if isinstance(value, bool) else str(value)
    raise AssertionError(f"the test's evaluator does not know {json.dumps(expr)[:200]}")


def _interpolated(match: re.Match[str], parsed: dict[str, Any], values: dict[str, Any]) -> str:
    value = evaluate(match.group(1), parsed, values)
    return match.group(0) if value is None else str(value)


def render_app_settings(values: dict[str, Any]) -> dict[str, str]:
    """The app settings functionapp.bicep produces for the module parameter ``values`` (missing
    ones: their defaults): the ``concat`` of the settings groups, each group and each value
    evaluated. Setting names must be literals and appear once."""
    path = INFRA / "modules" / "functionapp.bicep"
    parsed = parse(path)
    _, site = next(resources(parsed, "Microsoft.Web/sites"))
    expr = body(site)["properties"]["siteConfig"]["appSettings"]
    call = function_call(expr)
    assert call is not None and call[0] == "concat", expr
    settings: dict[str, str] = {}
    for part in call[1].values():
        for item in evaluate(part, parsed, values):
            name = item["name"]
            assert name not in settings, f"app setting {name} is set twice"
            settings[name] = str(evaluate(item["value"], parsed, values))
    return settings
