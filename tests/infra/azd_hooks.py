"""The azd hooks (scripts/preprovision.py, scripts/predown.py) run as azd runs them: the azd
environment's values as environment variables, nothing of this shell's KAFKA_/AZURE_ ones."""

from __future__ import annotations

import os
import subprocess
import sys
from types import ModuleType

from tests.infra.bicep_model import REPO

SCRIPTS = REPO / "scripts"


def run_hook(name: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run scripts/<name>.py with ``args`` in the azd environment ``env`` (AZURE_ENV_NAME=dev)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "AZURE_"))}
    return subprocess.run(
        [sys.executable, str(SCRIPTS / f"{name}.py"), *args],
        env={**base, "AZURE_ENV_NAME": "dev", **env},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def preprovision() -> ModuleType:
    """scripts/preprovision.py imported, for its functions."""
    if str(SCRIPTS) not in sys.path:
        sys.path.insert(0, str(SCRIPTS))
    import preprovision as module

    return module
