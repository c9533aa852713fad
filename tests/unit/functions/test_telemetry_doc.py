"""The metric table of docs/operations.md is generated from the catalogue (shared/metrics.py) and
current, and the catalogue itself follows its rules."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

from shared import metrics as m

REPO = Path(__file__).resolve().parents[3]


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_metrics_doc", REPO / "scripts" / "gen_metrics_doc.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_metric_table_is_current() -> None:
    current = (REPO / "docs" / "operations.md").read_text(encoding="utf-8")
    assert generator().render(current) == current, (
        "docs/operations.md's metric table is out of date with shared/metrics.py: run python scripts/gen_metrics_doc.py")


def test_every_metric_and_attribute_is_in_the_table() -> None:
    text = (REPO / "docs" / "operations.md").read_text(encoding="utf-8")
    for metric in m.CATALOGUE:
        assert f"| `{metric.name}` | {metric.kind} |" in text
    for name in m.ATTRIBUTE_DOCS:
        assert f"| `{name}` |" in text


def test_the_check_mode_detects_a_stale_table(tmp_path: Path) -> None:
    stale = tmp_path / "operations.md"
    stale.write_text("# Ops\n\n<!-- metrics:begin -->\nold\n<!-- metrics:end -->\n", encoding="utf-8")
    script = str(REPO / "scripts" / "gen_metrics_doc.py")
    check = subprocess.run([sys.executable, script, "--check", "--target", str(stale)], capture_output=True, text=True)
    assert check.returncode == 1 and "out of date" in check.stderr
    subprocess.run([sys.executable, script, "--target", str(stale)], check=True)
    assert subprocess.run([sys.executable, script, "--check", "--target", str(stale)]).returncode == 0


def test_the_catalogue_keeps_its_naming_rules() -> None:
    names = [metric.name for metric in m.CATALOGUE]
    assert len(names) == len(set(names))
    for metric in m.CATALOGUE:
        # OpenTelemetry's messaging conventions where they apply, our namespace for the rest.
        assert re.fullmatch(r"(messaging|kafka_adx)\.[a-z_.]+", metric.name), metric.name
        assert set(metric.attributes) <= set(m.ATTRIBUTE_DOCS), metric.name
        assert (metric.kind == "histogram") == (metric.buckets is not None), metric.name
        assert metric.emitted_by and metric.unit
