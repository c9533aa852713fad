#!/bin/sh
# Print the path of the first Python interpreter whose version is one of the arguments (X.Y, in
# order of preference), or nothing. Looked for: python3 (when its version is one of them), then
# pythonX.Y on PATH, then pyenv's ~/.pyenv/versions/X.Y.*/bin/pythonX.Y (newest patch first).
# Each candidate is run, so a pyenv shim for a version that is not selected does not count.
# Used by the Makefile: PYTHON for .venv, PYTHON313 for the function app's .venv313.
set -u
version_of() {
    "$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null
}
wanted() {
    for w in "$@"; do [ "$w" = "$candidate_version" ] && return 0; done
    return 1
}
try() {
    candidate=$1; shift
    command -v "$candidate" >/dev/null 2>&1 || [ -x "$candidate" ] || return 1
    candidate_version=$(version_of "$candidate") || return 1
    wanted "$@" || return 1
    command -v "$candidate" 2>/dev/null || printf '%s\n' "$candidate"
}
try python3 "$@" && exit 0
for v in "$@"; do
    try "python$v" "$@" && exit 0
done
root=${PYENV_ROOT:-$HOME/.pyenv}
for v in "$@"; do
    for exe in $(ls -d "$root"/versions/"$v".*/bin/"python$v" 2>/dev/null | sort -V -r); do
        try "$exe" "$@" && exit 0
    done
done
exit 0
