#!/usr/bin/env bash
# `make kafka`: a local Apache Kafka broker for a developer, on 127.0.0.1:9092 (or a free port if
# 9092 is taken). Runs in the foreground until Ctrl-C; with --background it returns once the
# broker is ready and scripts/kafka-stop.sh stops it. Topics are auto-created; data is thrown
# away when the broker stops.
#
# Usage: scripts/kafka-dev.sh [--background] [--port P] [--partitions N]
set -euo pipefail
repo_root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo_root"
python="${PYTHON:-$repo_root/.venv/bin/python}"

background=0
port=9092
args=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --background) background=1; shift ;;
        --port) port="$2"; shift 2 ;;
        *) args+=("$1"); shift ;;
    esac
done

bash scripts/kafka-install.sh >/dev/null
if [[ "$background" == 1 ]]; then
    bootstrap="$(bash scripts/kafka-start.sh --port "$port" "${args[@]}")"
    echo "Kafka is running in the background: bootstrap servers $bootstrap"
    echo "  e.g. KAFKA_BROKERS=$bootstrap"
    echo "  stop it with: scripts/kafka-stop.sh"
else
    echo "Starting Kafka in the foreground (Ctrl-C stops it)..." >&2
    exec "$python" scripts/kafka_broker.py run --port "$port" "${args[@]}"
fi
