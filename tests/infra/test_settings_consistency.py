"""The app settings contract between the code and the Bicep: every setting the function app's
code reads is set by infra/modules/functionapp.bicep, and every setting the Bicep sets is read
by the code (or by the platform).

How "read by the code" is found (static, over the AST, no import of the app):

* the modules scanned are ``function_app.py`` and every ``shared`` module it imports,
  transitively (imports inside functions included), so settings that only the ``kafka-adx``
  command line reads do not count;
* in those modules a string literal counts as a setting name when it looks like one
  (``ALL_CAPS_WITH_UNDERSCORES`` or ``Prefix__name``) and it is
  - an argument of ``get(...)``, ``*.get(...)``, ``getenv(...)`` or of a call whose name
    mentions ``env`` or ``setting`` (``os.environ.get``, ``env.get``, a local ``get`` helper);
  - a subscript of something named ``*env*`` (``os.environ["X"]``, ``env["X"]``);
  - a key or value of a dict, or an item of a tuple/list/set, assigned to a name containing
    ``SETTING`` (``SETTING_NAMES``, ``FUNCTION_SETTINGS``, ``_FIELD_TO_SETTING``);
* ``%NAME%`` inside any string literal (binding expressions the Functions host resolves);
* ``connection="Prefix"`` (keyword or dict entry): the host reads ``Prefix__*``.

Platform settings (read by the Functions host or set by App Service) are excluded from the
"read by the code" requirement; settings of local mode only are excluded from "set by the
Bicep", each with its reason below.
"""

from __future__ import annotations

import ast
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.infra.bicep_model import REPO, app_settings

SETTING_LIKE = re.compile(r"^(?:[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+|[A-Za-z][A-Za-z0-9]*__[A-Za-z][A-Za-z0-9_]*)$")
BINDING_EXPRESSION = re.compile(r"%([A-Za-z][A-Za-z0-9_]*)%")

PLATFORM = re.compile(
    r"^(AzureWebJobs|AzureFunctionsJobHost__|FUNCTIONS_|APPLICATIONINSIGHTS_|WEBSITE_|IDENTITY_|MSI_|OTEL_)"
)
"""Read by the Functions host, set by App Service itself (managed identity endpoint, instance id),
or the OpenTelemetry SDK's own standard variables (OTEL_*: set by whoever runs a collector; in
Azure the app exports to Application Insights)."""

LOCAL_ONLY = {
    "LOCAL_DB": "local mode's DuckDB file: unused once ADX_INGEST_URI is set, as it is in Azure",
    "LOCAL_DEADLETTER_DIR": "local mode's dead-letter folder: unused once DEADLETTER_BLOB_URI is set",
}
"""Read by the app's code but deliberately not set in Azure."""

FUNCTION_APP = REPO / "function_app.py"


@dataclass
class Reads:
    """What a scan found: setting names and connection prefixes, with where each was seen."""

    names: dict[str, str] = field(default_factory=dict)
    prefixes: dict[str, str] = field(default_factory=dict)

    def covers(self, setting: str) -> bool:
        """Whether the code reads ``setting`` (by name or through a connection prefix)."""
        return setting in self.names or any(setting.startswith(f"{p}__") for p in self.prefixes)


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    if isinstance(node, ast.Call):
        return _dotted(node.func)
    if isinstance(node, ast.Subscript):
        return _dotted(node.value)
    return ""


def _literal(node: ast.AST | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _is_settings_call(callee: str) -> bool:
    last = callee.rsplit(".", 1)[-1].lower()
    return last in ("get", "getenv") or "env" in last or "setting" in last


def _container_strings(node: ast.AST) -> Iterable[str]:
    if isinstance(node, ast.Dict):
        for key, value in zip(node.keys, node.values, strict=True):
            for item in (key, value):
                text = _literal(item)
                if text is not None:
                    yield text
    elif isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        for item in node.elts:
            text = _literal(item)
            if text is not None:
                yield text


def scan_source(source: str, where: str, reads: Reads | None = None) -> Reads:
    """Add the settings read by one module's source to ``reads`` (see the module docstring)."""
    reads = reads or Reads()

    def found(name: str | None, node: ast.AST) -> None:
        if name is not None and SETTING_LIKE.match(name):
            reads.names.setdefault(name, f"{where}:{getattr(node, 'lineno', '?')}")

    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            for name in BINDING_EXPRESSION.findall(node.value):
                found(name, node)
        elif isinstance(node, ast.Call):
            if _is_settings_call(_dotted(node.func)) and node.args:
                found(_literal(node.args[0]), node)
            for keyword in node.keywords:
                prefix = _literal(keyword.value)
                if keyword.arg == "connection" and prefix:
                    reads.prefixes.setdefault(prefix, f"{where}:{node.lineno}")
        elif isinstance(node, ast.Subscript) and "env" in _dotted(node.value).lower():
            found(_literal(node.slice), node)
        elif isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                prefix = _literal(value)
                if _literal(key) == "connection" and prefix:
                    reads.prefixes.setdefault(prefix, f"{where}:{node.lineno}")
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any("SETTING" in _dotted(t).upper() for t in targets):
                for text in _container_strings(node.value):
                    found(text, node)
    return reads


def _module_file(module: str) -> Path | None:
    base = REPO.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def app_modules(root: Path) -> list[Path]:
    """``root`` and every ``shared`` module it imports, transitively."""
    seen: dict[Path, None] = {}
    queue = [root]
    while queue:
        path = queue.pop()
        if path in seen:
            continue
        seen[path] = None
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            for name in names:
                if name == "shared" or name.startswith("shared."):
                    target = _module_file(name)
                    if target is not None:
                        queue.append(target)
                        # A package import runs its __init__ too.
                        parent = _module_file(name.rsplit(".", 1)[0]) if "." in name else None
                        if parent is not None:
                            queue.append(parent)
    return sorted(seen)


def code_reads() -> Reads:
    """Settings read by the function app's code."""
    reads = Reads()
    for path in app_modules(FUNCTION_APP):
        scan_source(path.read_text(encoding="utf-8"), str(path.relative_to(REPO)), reads)
    return reads


def _need_function_app() -> None:
    if FUNCTION_APP.exists():
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail("function_app.py is missing")
    pytest.skip("function_app.py is not written yet: nothing to compare the Bicep app settings with")


# --- the scanner itself ---------------------------------------------------------------------------


def test_scanner_finds_each_kind_of_read() -> None:
    source = """
import os
SETTING_NAMES = {"CORE_ONE": "meaning"}
_FIELD_TO_SETTING = {"field": "CORE_TWO"}
a = os.environ.get("ENV_GET")
b = os.environ["ENV_ITEM"]
c = os.getenv("GET_ENV")
def f(env):
    def get(name):
        return env.get(name)
    return get("LOCAL_HELPER"), env["MAPPING_ITEM"]
trigger(connection="SomeConnection", topic="%BOUND_NAME%")
kwargs = {"connection": "OtherConnection", "event_hub_name": "%BOUND_TWO%"}
log("NOT_A_READ is only in a message")
OTHER = "NOT_A_SETTING"
"""
    reads = scan_source(source, "sample")
    assert set(reads.names) == {
        "CORE_ONE",
        "CORE_TWO",
        "ENV_GET",
        "ENV_ITEM",
        "GET_ENV",
        "LOCAL_HELPER",
        "MAPPING_ITEM",
        "BOUND_NAME",
        "BOUND_TWO",
    }
    assert set(reads.prefixes) == {"SomeConnection", "OtherConnection"}
    assert reads.covers("SomeConnection__clientId") and not reads.covers("SomeConnectionX__clientId")


def test_scanner_sees_the_core_settings() -> None:
    from shared.settings import SETTING_NAMES

    reads = scan_source((REPO / "shared" / "settings.py").read_text(encoding="utf-8"), "shared/settings.py")
    assert set(SETTING_NAMES) <= set(reads.names)


# --- the contract -----------------------------------------------------------------------------------


def test_every_setting_the_code_reads_is_set_by_the_bicep() -> None:
    _need_function_app()
    reads = code_reads()
    assert len(reads.names) >= 15, f"the scan found too little to be trusted: {sorted(reads.names)}"
    bicep = set(app_settings())
    missing = {
        name: where
        for name, where in reads.names.items()
        if not PLATFORM.match(name) and name not in LOCAL_ONLY and name not in bicep
    }
    assert not missing, f"read by the code but not set in infra/modules/functionapp.bicep: {missing}"
    for prefix, where in reads.prefixes.items():
        assert any(s.startswith(f"{prefix}__") for s in bicep), (
            f"connection {prefix} ({where}) has no settings"
        )


def test_every_setting_the_bicep_sets_is_read_by_the_code() -> None:
    _need_function_app()
    reads = code_reads()
    unread = sorted(name for name in app_settings() if not PLATFORM.match(name) and not reads.covers(name))
    assert not unread, f"set in infra/modules/functionapp.bicep but read by no code: {unread}"


def test_local_only_settings_are_not_set_in_azure() -> None:
    assert not set(LOCAL_ONLY) & set(app_settings())
