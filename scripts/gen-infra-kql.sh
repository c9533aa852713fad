#!/usr/bin/env bash
# Regenerate infra/kql/database.kql and mappings.kql (the ADX database scripts) from ingestion.yaml.
# Pass --check to only verify it is current; other arguments go to scripts/gen_infra_kql.py.
set -euo pipefail
cd "$(dirname "$0")/.."
exec "${PY:-.venv/bin/python}" scripts/gen_infra_kql.py "$@"
