"""Regenerate the ADX database scripts of the deployment from the ingestion file, with the same
generator as ``kafka-adx kql`` (``shared.ops.kql.generate_kql``):

- ``infra/kql/database.kql``: tables, policies and views (``only="schema"``), run with
  ``continueOnErrors: false``: a failing table command fails the deployment;
- ``infra/kql/mappings.kql``: the mappings (``only="mappings"``), as ``.create``, run after it
  with ``continueOnErrors: true``: a mapping that already exists fails its own command and the
  script goes on, so a redeploy creates only missing mappings and never replaces one (a
  mapping a running Kafka Connect sink uses stays as it is).

An ARM database script may only hold management commands (``.create``, ``.create-merge``,
``.alter``, ...) separated by blank lines, so both are generated with ``comments=False``.

Usage: ``python scripts/gen_infra_kql.py [--config ingestion.yaml] [--check]``; ``--check`` writes
nothing and exits 1 when a file is out of date (tests/infra/test_kql_current.py does the same).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = REPO / "ingestion.yaml"
TARGET = REPO / "infra" / "kql" / "database.kql"
MAPPINGS_TARGET = REPO / "infra" / "kql" / "mappings.kql"


def expected_scripts(config_path: Path = DEFAULT_CONFIG) -> dict[Path, str]:
    """File -> the script the ingestion file at ``config_path`` calls for."""
    sys.path.insert(0, str(REPO))
    from shared.config import load_config
    from shared.ops.kql import generate_kql

    config = load_config(config_path)
    return {
        TARGET: generate_kql(config, comments=False, only="schema"),
        MAPPINGS_TARGET: generate_kql(config, comments=False, only="mappings"),
    }


def expected_script(config_path: Path = DEFAULT_CONFIG) -> str:
    """The schema script (``infra/kql/database.kql``) the ingestion file calls for."""
    return expected_scripts(config_path)[TARGET]


def main(argv: list[str] | None = None) -> int:
    """Write (or with --check, verify) infra/kql/database.kql."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--config", type=Path, default=DEFAULT_CONFIG, help="ingestion file (default: ingestion.yaml)"
    )
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if the file is out of date; write nothing"
    )
    args = parser.parse_args(argv)
    stale = False
    for target, script in expected_scripts(args.config).items():
        current = target.read_text(encoding="utf-8") if target.exists() else None
        if current == script:
            continue
        if args.check:
            print(f"{target.relative_to(REPO)} is out of date: run scripts/gen-infra-kql.sh", file=sys.stderr)
            stale = True
        else:
            target.write_text(script, encoding="utf-8")
            print(f"wrote {target.relative_to(REPO)}", file=sys.stderr)
    return 1 if stale else 0

if __name__ == "__main__":
    sys.exit(main())
