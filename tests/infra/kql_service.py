"""Microsoft's Kusto language service (Kusto.Language, npm ``@kusto/language-service-next``) run
under Node over the workbook's and the alerts' queries, bound to the documented tables
(log_tables.json). Installed once per version into a cache outside the repository, as
scripts/check-infra.sh installs checkov; npm and node are needed (the test fails without them)."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
PACKAGE = "@kusto/language-service-next"
VERSION = "12.4.1"
TABLES = HERE / "log_tables.json"
CHECKER = HERE / "kql_check.js"


def _cache() -> Path:
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return root / "kafka-adx" / f"kusto-language-{VERSION}"


def install() -> Path:
    """The node_modules directory holding the pinned language service (installed on first use)."""
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            raise AssertionError(f"{tool} is needed to check the workbook's KQL with Kusto.Language")
    prefix = _cache()
    prefix.mkdir(parents=True, exist_ok=True)
    modules = prefix / "node_modules"
    stamp = prefix / ".installed"
    with open(prefix / ".lock", "w") as lock:  # two test runs must not install at once
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not stamp.exists():
            subprocess.run(
                ["npm", "install", "--prefix", str(prefix), "--no-audit", "--no-fund", "--no-save",
                 f"{PACKAGE}@{VERSION}"],
                check=True, capture_output=True, text=True, timeout=600,
            )  # fmt: skip
            stamp.touch()
    return modules


def diagnostics(queries: dict[str, str]) -> dict[str, list[str]]:
    """Each query's diagnostics (``Error: ... @offset``), empty when the service finds none."""
    modules = install()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "queries.json"
        path.write_text(json.dumps(queries), encoding="utf-8")
        done = subprocess.run(
            ["node", str(CHECKER), str(modules), str(TABLES), str(path)],
            check=False, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
    if done.returncode != 0:
        raise AssertionError(f"the KQL checker failed: {done.stderr[-2000:]}")
    with contextlib.suppress(ValueError):
        return dict(json.loads(done.stdout))
    raise AssertionError(f"the KQL checker printed no JSON: {done.stdout[-500:]}")
