#!/usr/bin/env bash
# Starts a single-node Apache Kafka broker (KRaft, broker + controller) on 127.0.0.1 in the
# background, waits until it answers metadata requests and prints its bootstrap address.
# Fresh storage in a temp dir each time; scripts/kafka-stop.sh stops it and removes that dir.
#
# Usage: scripts/kafka-start.sh [--port P] [--partitions N] [--timeout S] [--state-file F]
#        (a free port when --port is omitted or taken; state file default .local/kafka/broker.json)
set -euo pipefail
repo_root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo_root"
python="${PYTHON:-$repo_root/.venv/bin/python}"

state_file=".local/kafka/broker.json"
args=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --state-file) state_file="$2"; shift 2 ;;
        *) args+=("$1"); shift ;;
    esac
done
exec "$python" scripts/kafka_broker.py start --state-file "$state_file" "${args[@]}"
