#!/usr/bin/env bash
# The Compose specification's JSON schema (compose-spec.json) as Docker Compose validates with it:
# the schema/ folder of the Go module github.com/compose-spec/compose-go/v2 (the library `docker
# compose` parses and validates files with), fetched from the Go module proxy as the module's zip
# (no Go toolchain needed), pinned by module version and the schema's SHA-256, into
# .tools/compose-spec/. Cached: a second run with the same version does nothing.
# tests/infra/test_container.py validates docker-compose.yml against it.
set -euo pipefail
VERSION="${COMPOSE_GO_VERSION:-v2.17.0}"
SHA256="${COMPOSE_SPEC_SHA256:-49eb9a1e1de41315949f302f8e6221bb42acd6038977f7c0974e38596ec4cdf6}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DEST="${COMPOSE_SPEC_DIR:-$ROOT/.tools/compose-spec}"
OUT="$DEST/compose-spec.json"
STAMP="$DEST/.version"
# The first proxy of GOPROXY (a list; "direct" and "off" are not proxies).
PROXY="${GOPROXY:-https://proxy.golang.org}"
PROXY="${PROXY%%[,|]*}"
case "$PROXY" in direct|off|"") PROXY="https://proxy.golang.org" ;; esac

if [ -f "$OUT" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$VERSION" ]; then
  exit 0
fi
mkdir -p "$DEST"
python3 - "$PROXY/github.com/compose-spec/compose-go/v2/@v/$VERSION.zip" \
  "github.com/compose-spec/compose-go/v2@$VERSION/schema/compose-spec.json" "$SHA256" "$OUT" <<'PY'
import hashlib, io, sys, urllib.request, zipfile

url, member, sha256, out = sys.argv[1:]
with urllib.request.urlopen(url, timeout=120) as response:
    schema = zipfile.ZipFile(io.BytesIO(response.read())).read(member)
digest = hashlib.sha256(schema).hexdigest()
if digest != sha256:
    sys.exit(f"compose-schema-install: {member} has SHA-256 {digest}, expected {sha256}")
with open(out, "wb") as f:
    f.write(schema)
PY
echo "$VERSION" >"$STAMP"
echo "compose-schema-install: compose-spec.json of compose-go $VERSION in $DEST" >&2
