"""The documentation stays true to the code: docs/settings.md is what the generator makes of the
settings the code reads, every relative link in the README and docs/ resolves, the Python
versions the README, the Makefile and pyproject.toml state agree, and the README stays a guide."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from types import ModuleType

import pytest

from shared.functions.settings import FUNCTION_SETTINGS
from shared.settings import SETTING_NAMES
from tests.infra.bicep_model import REPO

SETTINGS_DOC = REPO / "docs" / "settings.md"
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_settings_doc", REPO / "scripts" / "gen_settings_doc.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_settings_doc_is_current() -> None:
    assert SETTINGS_DOC.read_text(encoding="utf-8") == _generator().expected_doc(), (
        "docs/settings.md is out of date with the code: run python scripts/gen_settings_doc.py"
    )


def test_settings_doc_lists_every_setting_with_its_default() -> None:
    docs = SETTINGS_DOC.read_text(encoding="utf-8")
    rows = {m.group(1): m.group(0) for m in re.finditer(r"^\| `([A-Za-z_]+)` \|.*\|$", docs, re.MULTILINE)}
    assert set(SETTING_NAMES) | set(FUNCTION_SETTINGS) <= set(rows)
    for name, (_, default) in FUNCTION_SETTINGS.items():
        assert default in rows[name], name
    # The core defaults are the ones Settings.from_env applies.
    assert "`ingestion.yaml`" in rows["INGESTION_CONFIG"]
    assert "`managed-identity` in Azure, `default` elsewhere" in rows["ADX_AUTH"]


def test_generator_check_mode_detects_a_stale_doc(tmp_path: Path) -> None:
    ok = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "gen_settings_doc.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    generator = _generator()
    stale = tmp_path / "settings.md"
    stale.write_text("# Settings\n\nnothing yet\n", encoding="utf-8")
    generator.TARGET = stale
    generator.REPO = tmp_path
    assert generator.main(["--check"]) == 1
    assert stale.read_text(encoding="utf-8") == "# Settings\n\nnothing yet\n"  # --check writes nothing
    assert generator.main([]) == 0
    assert stale.read_text(encoding="utf-8") == generator.expected_doc()


# --- links ------------------------------------------------------------------------------------

_FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
_LINK = re.compile(r"\]\(([^)\s]+)\)")


def _anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = _FENCE.sub("", path.read_text(encoding="utf-8"))
    return {_anchor(m.group(1)) for m in re.finditer(r"^#+ (.+)$", text, re.MULTILINE)}


def _relative_links(path: Path) -> list[str]:
    text = _FENCE.sub("", path.read_text(encoding="utf-8"))
    return [t for t in _LINK.findall(text) if not re.match(r"^[a-z]+:", t)]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_resolves(doc: Path) -> None:
    broken = []
    for target in _relative_links(doc):
        file_part, _, fragment = target.partition("#")
        resolved = (doc.parent / file_part).resolve() if file_part else doc
        if not resolved.exists():
            broken.append(f"{target}: no file {resolved}")
        elif fragment and resolved.suffix == ".md" and fragment not in _anchors(resolved):
            broken.append(f"{target}: no heading #{fragment} in {resolved.name}")
    assert not broken, f"{doc.relative_to(REPO)}: " + "; ".join(broken)


def test_the_anchor_rule_is_githubs() -> None:
    assert _anchor("host.json, and why") == "hostjson-and-why"
    assert _anchor("In `kafka-adx consume`") == "in-kafka-adx-consume"
    assert _anchor("The scenario: Microsoft's Kafka → ADX tutorial") == "the-scenario-microsofts-kafka--adx-tutorial"


# --- Python versions --------------------------------------------------------------------------


def test_the_supported_python_versions_agree() -> None:
    """requires-python is what runs (3.11 for datetime.UTC, up to 3.13, the newest the Functions
    platform runs: azure-functions 1.x below it, 2.x with azure-functions-runtime on it); the
    Makefile's check, the README and the tools' target version say the same."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert project["project"]["requires-python"] == ">=3.11,<3.14"
    assert project["tool"]["mypy"]["python_version"] == "3.11"
    assert project["tool"]["ruff"]["target-version"] == "py311"
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    assert "(3, 11) <= v < (3, 14)" in makefile
    assert "kafka-adx needs Python 3.11, 3.12 or 3.13" in makefile
    assert re.search(r"Python 3\.11(, 3\.12)? or 3\.1[23]", (REPO / "README.md").read_text(encoding="utf-8"))
    assert (3, 11) <= sys.version_info[:2] < (3, 14)


def _fake_python(path: Path, version: tuple[int, int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "#!/bin/sh\n"
        f"exec {sys.executable} -c \"import sys; sys.version_info = {(*version, 0, 'final', 0)}; exec(sys.argv[1])\" \"$2\"\n",
        encoding="utf-8",
    )
    path.chmod(0o755)


def test_make_stops_on_an_unsupported_interpreter_with_the_remedy(tmp_path: Path) -> None:
    """``make venv`` with a Python 3.10 (this interpreter, claiming to be 3.10) stops at the version
    check with the supported range and the remedy, before it creates or installs anything."""
    fake = tmp_path / "python3.10"
    _fake_python(fake, (3, 10))
    venv = tmp_path / "venv"
    proc = subprocess.run(
        ["make", "-s", "-C", str(REPO), "venv", f"PYTHON={fake}", f"VENV={venv}"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode != 0
    assert "kafka-adx needs Python 3.11, 3.12 or 3.13" in proc.stderr and "is 3.10" in proc.stderr, proc.stderr
    assert "make PYTHON=python3.12" in proc.stderr
    assert "pip" not in proc.stderr
    assert not venv.exists()


def test_make_finds_a_supported_interpreter_on_path_or_under_pyenv(tmp_path: Path) -> None:
    """scripts/find-python.sh (the Makefile's PYTHON and PYTHON313): python3 only when its version
    is wanted, then pythonX.Y on PATH, then pyenv's versions, newest patch first; nothing when none."""
    bin_dir, pyenv = tmp_path / "bin", tmp_path / "pyenv"
    _fake_python(bin_dir / "python3", (3, 10))
    _fake_python(pyenv / "versions" / "3.13.0" / "bin" / "python3.13", (3, 13))
    _fake_python(pyenv / "versions" / "3.13.10" / "bin" / "python3.13", (3, 13))
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "PYENV_ROOT": str(pyenv), "HOME": str(tmp_path)}

    def find(*versions: str) -> str:
        proc = subprocess.run(["sh", str(REPO / "scripts" / "find-python.sh"), *versions],
                              capture_output=True, text=True, check=True, env=env)  # fmt: skip
        return proc.stdout.strip()

    assert find("3.13") == str(pyenv / "versions" / "3.13.10" / "bin" / "python3.13")
    assert find("3.10") == str(bin_dir / "python3")
    _fake_python(bin_dir / "python3.12", (3, 12))
    assert find("3.12", "3.11", "3.13") == str(bin_dir / "python3.12")
    assert find("3.9") == ""


# --- the README -------------------------------------------------------------------------------


def test_the_readme_is_a_guide_and_its_set_up_is_two_commands() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 250, "README.md is the newcomer's guide: reference goes to docs/"
    setup = readme.split("## Set up", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"^make \w+", _FENCE.search(setup).group(0), re.MULTILINE)  # type: ignore[union-attr]
    assert commands == ["make demo", "make test"]
