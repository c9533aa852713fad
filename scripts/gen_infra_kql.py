"""Regenerate infra/kql/database.kql, the ADX database script of the deployment, from the
ingestion file, with the same generator as ``kafka-adx kql`` (``shared.ops.kql.generate_kql``).

An ARM database script may only hold management commands (``.create``, ``.create-merge``,
``.alter``, ...) separated by blank lines, so it is generated with ``comments=False``: the
comment-only paragraphs that ``kafka-adx kql`` prints for people are left out.

Usage: ``python scripts/gen_infra_kql.py [--config ingestion.yaml] [--check]``; ``--check`` writes
nothing and exits 1 when the file is out of date (tests/infra/test_kql_current.py does the same).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = REPO / "ingestion.yaml"
TARGET = REPO / "infra" / "kql" / "database.kql"

def expected_script(config_path: Path = DEFAULT_CONFIG) -> str:
    """The database script the ingestion file at ``config_path`` calls for."""
    sys.path.insert(0, str(REPO))
    from shared.config import load_config
    from shared.ops.kql import generate_kql

    return generate_kql(load_config(config_path), comments=False)


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
    script = expected_script(args.config)
    current = TARGET.read_text(encoding="utf-8") if TARGET.exists() else None
    if args.check:
        if current != script:
            print(f"{TARGET.relative_to(REPO)} is out of date: run scripts/gen-infra-kql.sh", file=sys.stderr)
            return 1
        return 0
    if current != script:
        TARGET.write_text(script, encoding="utf-8")
        print(f"wrote {TARGET.relative_to(REPO)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
