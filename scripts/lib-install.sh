#!/usr/bin/env bash
# Shared by the Maven-built tool installers (scripts/kafka-install.sh, scripts/apicurio-install.sh):
# the "already there?" check, the Java/Maven check and the lock that lets one of several test
# sessions installing at once do the work while the others wait. Source it; do not run it.

# install_begin NAME RESULT_DIR MARKER VERSION_DIR TOOLS_DIR PURPOSE
# Prints RESULT_DIR and exits 0 when MARKER exists (before or after waiting for the lock); exits 3
# when java or mvn is missing, naming PURPOSE; otherwise returns holding the lock on fd 9.
install_begin() {
    local name="$1" result="$2" marker="$3" version_dir="$4" tools_dir="$5" purpose="$6"
    if [[ -f "$marker" ]]; then
        echo "$result"
        exit 0
    fi
    local tool
    for tool in java mvn; do
        if ! command -v "$tool" >/dev/null 2>&1; then
            echo "$name: '$tool' is not installed (Java 17+ and Maven are needed $purpose)" >&2
            exit 3
        fi
    done
    mkdir -p "$version_dir"
    # fd 9 stays open in the sourcing shell until it exits, and with it the lock.
    exec 9>"$tools_dir/.install.lock"
    flock 9
    if [[ -f "$marker" ]]; then
        echo "$result"
        exit 0
    fi
}
