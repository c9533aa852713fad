#!/usr/bin/env bash
# Static checks of infra/ without the Bicep CLI (which cannot be installed here):
#  1. every .bicep file parses with pycep-parser (the project venv's version);
#  2. every .bicep file parses with the older pycep bundled in checkov: a file it cannot parse
#     would otherwise silently get zero checks;
#  3. checkov over infra/ reports no failed check and no parsing error.
# checkov pins many packages, so it lives in its own virtualenv (.venv-checkov), created once
# and reused. It runs offline: BC_SKIP_MAPPING=TRUE and --skip-download.
# Exit status: 0 when everything passes, 1 otherwise. Usage: scripts/check-infra.sh [infra-dir]
set -euo pipefail
cd "$(dirname "$0")/.."

INFRA_DIR="${1:-infra}"
CHECKOV_VERSION="3.3.30"
CHECKOV_VENV="${CHECKOV_VENV:-.venv-checkov}"
PY="${PY:-.venv/bin/python}"
BASE_PYTHON="${PYTHON:-python3}"
STAMP="$CHECKOV_VENV/.installed-checkov-$CHECKOV_VERSION"

if command -v flock >/dev/null 2>&1; then  # two runs at once must not both build the venv
    exec 9>"${TMPDIR:-/tmp}/kafka-adx-checkov-venv.lock"
    flock 9
fi
if [ ! -f "$STAMP" ]; then
    echo "check-infra: installing checkov $CHECKOV_VERSION into $CHECKOV_VENV (one time)" >&2
    rm -rf "$CHECKOV_VENV"
    "$BASE_PYTHON" -m venv "$CHECKOV_VENV"
    "$CHECKOV_VENV/bin/python" -m pip install -q --disable-pip-version-check "checkov==$CHECKOV_VERSION"
    touch "$STAMP"
fi

mapfile -t BICEP_FILES < <(find "$INFRA_DIR" -name '*.bicep' -type f | sort)
if [ "${#BICEP_FILES[@]}" -eq 0 ]; then
    echo "check-infra: no .bicep file under $INFRA_DIR" >&2
    exit 1
fi

parse_all() {  # $1: python with pycep; prints each failure, exits non-zero if any
    "$1" - "${BICEP_FILES[@]}" <<'PYEOF'
import sys
from pathlib import Path

from pycep import BicepParser

parser = BicepParser()
failed = 0
for name in sys.argv[1:]:
    try:
        parser.parse(text=Path(name).read_text(encoding="utf-8"))
    except Exception as exc:  # any parser error fails the build, with the file named
        failed += 1
        print(f"  cannot parse {name}: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}", file=sys.stderr)
sys.exit(1 if failed else 0)
PYEOF
}

status=0
echo "check-infra: pycep ($("$PY" -c 'import importlib.metadata as m; print(m.version("pycep-parser"))')) over ${#BICEP_FILES[@]} files" >&2
parse_all "$PY" || { echo "check-infra: FAILED: pycep cannot parse every file" >&2; status=1; }

echo "check-infra: checkov's bundled pycep ($("$CHECKOV_VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("pycep-parser"))'))" >&2
parse_all "$CHECKOV_VENV/bin/python" || { echo "check-infra: FAILED: checkov cannot parse every file (it would skip them silently)" >&2; status=1; }

echo "check-infra: checkov $CHECKOV_VERSION over $INFRA_DIR" >&2
report="$(mktemp)"
trap 'rm -f "$report"' EXIT
# checkov exits 1 on failed checks; the JSON report is what we judge, so ignore its status.
BC_SKIP_MAPPING=TRUE "$CHECKOV_VENV/bin/checkov" -d "$INFRA_DIR" --framework bicep --skip-download \
    --quiet --compact -o json >"$report" 2>/dev/null || true
"$CHECKOV_VENV/bin/python" - "$report" <<'PYEOF' || status=1
import json
import sys

try:
    with open(sys.argv[1], encoding="utf-8") as handle:
        report = json.load(handle)
except (OSError, ValueError) as exc:
    print(f"check-infra: FAILED: checkov produced no readable report ({exc})", file=sys.stderr)
    sys.exit(1)
if isinstance(report, list):  # one report per framework
    report = next((r for r in report if r.get("check_type") == "bicep"), {})
summary = report.get("summary", {})
print(f"check-infra: checkov summary {summary}", file=sys.stderr)
problems = []
for check in report.get("results", {}).get("failed_checks", []):
    problems.append(f"  {check['check_id']} {check['check_name']}: {check['file_path']} {check['resource']}")
if summary.get("parsing_errors", 1):
    problems.append(f"  checkov could not parse {summary.get('parsing_errors')} file(s)")
if not summary.get("resource_count"):
    problems.append("  checkov found no resource at all")
if problems:
    print("check-infra: FAILED:\n" + "\n".join(problems), file=sys.stderr)
    sys.exit(1)
PYEOF

if [ "$status" -eq 0 ]; then
    echo "check-infra: OK" >&2
fi
exit "$status"
