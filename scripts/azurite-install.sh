#!/usr/bin/env bash
# Installs Azurite (the Azure Storage emulator used by the ADX tests) from npm into .tools/azurite.
# Pinned and cached: a second run with the same version does nothing.
set -euo pipefail
AZURITE_VERSION="${AZURITE_VERSION:-3.35.0}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DEST="${AZURITE_DIR:-$ROOT/.tools/azurite}"
BIN="$DEST/node_modules/.bin/azurite"
STAMP="$DEST/.version"

if ! command -v npm >/dev/null 2>&1; then
  echo "azurite-install: npm not found (install Node.js >= 18 and npm)" >&2
  exit 1
fi
if [ -x "$BIN" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$AZURITE_VERSION" ]; then
  exit 0
fi
mkdir -p "$DEST"
npm install --prefix "$DEST" --no-audit --no-fund --loglevel=error "azurite@$AZURITE_VERSION" >&2
echo "$AZURITE_VERSION" >"$STAMP"
echo "azurite-install: azurite $AZURITE_VERSION in $DEST" >&2
