#!/usr/bin/env bash
# Builds Apicurio Registry (a real, Confluent-compatible schema registry) as a runnable Quarkus
# application from Maven Central into .tools/apicurio/<version>/quarkus-app (quarkus-run.jar).
#
# Central serves the registry's application module un-augmented, not a runnable jar: Maven and
# quarkus-maven-plugin augment it (scripts/apicurio/pom.xml), after building the one piece Central
# lacks, the deployment half of Apicurio's config-index Quarkus extension, from its source
# (scripts/apicurio/config-index-deployment; scripts/apicurio/README.md says why and what was tried).
#
# Maven's own cache (~/.m2) keeps the jars between runs. With the application already built the
# script only prints its path.
#
# Usage: scripts/apicurio-install.sh      prints the quarkus-app directory on its last stdout line
# Env:   APICURIO_TOOLS_DIR (default <repo>/.tools/apicurio)
# Exit:  0 built or already there; 1 the build failed; 3 java or mvn is not installed
set -euo pipefail

repo_root="$(cd "$(dirname "$0")/.." && pwd)"
sources="$repo_root/scripts/apicurio"
version="$(sed -n 's:.*<apicurio.version>\(.*\)</apicurio.version>.*:\1:p' "$sources/pom.xml")"
tools_dir="${APICURIO_TOOLS_DIR:-$repo_root/.tools/apicurio}"
version_dir="$tools_dir/$version"
app_dir="$version_dir/quarkus-app"
marker="$app_dir/.complete"

# shellcheck source=scripts/lib-install.sh
source "$repo_root/scripts/lib-install.sh"
install_begin apicurio-install "$app_dir" "$marker" "$version_dir" "$tools_dir" "to build Apicurio Registry"

build="$(mktemp -d "$version_dir/build.XXXXXX")"
trap 'rm -rf "$build"' EXIT
cp -r "$sources/." "$build/"

echo "apicurio-install: building Apicurio Registry $version with Maven into $app_dir" >&2
start=$(date +%s)
run_maven() {  # log name, then Maven's arguments
    local log="$version_dir/$1"
    shift
    if ! mvn -q -B "$@" >"$log" 2>&1; then
        echo "apicurio-install: Maven failed ($*); its output:" >&2
        tail -n 40 "$log" >&2
        exit 1
    fi
}
# Installed under its original coordinates into ~/.m2, where the Quarkus build resolves
# the extension's deployment artifact.
run_maven mvn-config-index-deployment.log -f "$build/config-index-deployment/pom.xml" install
# fast-jar (target/quarkus-app): see the comment in scripts/apicurio/pom.xml.
run_maven mvn.log -f "$build/pom.xml" package -DskipTests -Dquarkus.package.type=fast-jar

if [[ ! -f "$build/target/quarkus-app/quarkus-run.jar" ]]; then
    echo "apicurio-install: target/quarkus-app/quarkus-run.jar missing after the Maven build" >&2
    exit 1
fi
echo "$version" >"$build/target/quarkus-app/.complete"
rm -rf "$app_dir"
mv "$build/target/quarkus-app" "$app_dir"
echo "apicurio-install: Apicurio Registry $version built in $(( $(date +%s) - start ))s" >&2
echo "$app_dir"
