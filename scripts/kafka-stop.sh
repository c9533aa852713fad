#!/usr/bin/env bash
# Stops the broker that scripts/kafka-start.sh (or `make kafka BACKGROUND=1`) started and removes
# its temp dir.  Usage: scripts/kafka-stop.sh [--state-file F]  (default .local/kafka/broker.json)
set -euo pipefail
repo_root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo_root"
python="${PYTHON:-$repo_root/.venv/bin/python}"

state_file=".local/kafka/broker.json"
if [[ "${1:-}" == "--state-file" ]]; then
    state_file="$2"
fi
exec "$python" scripts/kafka_broker.py stop --state-file "$state_file"
