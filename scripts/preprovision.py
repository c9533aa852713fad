"""azd ``preprovision`` hook, the same on Linux, macOS and Windows (azure.yaml runs it with the
``python3`` / ``python`` on PATH, 3.11 or later; only the standard library is needed here).

1. Refuses, before anything is deployed, what Bicep cannot refuse without ``fail()`` (which pycep
   and checkov cannot parse): a Kafka broker (KAFKA_BROKERS) without a topic, a SASL mechanism
   without a user name or password, a protocol that does not match the mechanism (SASL over
   ``sasl_*`` only), unknown protocol or mechanism names, malformed resource ids of an
   existing ADX database (KAFKA_ADX_ADX_DATABASE_ID) or event hub (KAFKA_ADX_EVENTHUB_ID), a
   schema registry user without its password (or URL), switches that are not true/false, alert
   thresholds that are not whole numbers in the Bicep's range, a no-records window a log search
   alert does not offer, and an alert e-mail address that is not one.
2. With private networking (KAFKA_ADX_PRIVATE_NETWORKING=true), registers the ``Microsoft.App``
   resource provider in the subscription when it is not registered: Flex Consumption's VNet
   integration delegates its subnet to Microsoft.App/environments, and Resource Manager registers
   only the providers of the resource types a template deploys, which Microsoft.App is not. It
   uses the Azure CLI (``az``) when one is on PATH and signed in; without it the hook says what to
   run and goes on (a subscription that registered it once needs nothing).
3. Regenerates infra/kql/database.kql and mappings.kql from ingestion.yaml with the project's
   virtual environment (``make venv``: .venv/bin/python, or .venv\\Scripts\\python.exe on
   Windows), so the deployed tables and mappings are those of the file being deployed.

azd hands a hook the environment's values (``azd env set``) as environment variables; a value
left unset gets the default of infra/main.parameters.json. ``--no-generate`` only checks (no
provider registration, no generation).
Exit status: 0 when everything is fine, 1 with each problem on stderr otherwise.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

PROTOCOLS = ("sasl_ssl", "ssl", "sasl_plaintext", "plaintext")
MECHANISMS = ("none", "plain", "scram-sha-256", "scram-sha-512", "gssapi")
# Defaults of infra/main.parameters.json (``${KAFKA_PROTOCOL=sasl_ssl}``...).
DEFAULTS = {
    "KAFKA_PROTOCOL": "sasl_ssl",
    "KAFKA_SASL_MECHANISM": "plain",
    "KAFKA_ADX_PRIVATE_NETWORKING": "false",
    "KAFKA_ADX_NAT_GATEWAY": "false",
    "KAFKA_ADX_AZURE_SCHEMA_REGISTRY": "false",
    "KAFKA_ADX_MONITOR_EXISTING": "false",
    "KAFKA_ADX_ALERT_DEAD_LETTERS": "0",
    "KAFKA_ADX_ALERT_LAG_SECONDS": "300",
    "KAFKA_ADX_ALERT_NO_RECORDS_MINUTES": "15",
    "KAFKA_ADX_ALERT_ADX_FAILURES": "0",
}
BOOLEANS = (
    "KAFKA_ADX_PRIVATE_NETWORKING",
    "KAFKA_ADX_NAT_GATEWAY",
    "KAFKA_ADX_AZURE_SCHEMA_REGISTRY",
    "KAFKA_ADX_MONITOR_EXISTING",
)
# Alert thresholds and their smallest values (the @minValue of infra/main.bicep).
ALERT_MINIMUMS = {
    "KAFKA_ADX_ALERT_DEAD_LETTERS": 0,
    "KAFKA_ADX_ALERT_LAG_SECONDS": 1,
    "KAFKA_ADX_ALERT_ADX_FAILURES": 0,
}
# The windows (minutes) the no-records alert may use: those a log search alert accepts (@allowed).
NO_RECORDS_WINDOWS = (5, 10, 15, 30, 45, 60, 120, 180, 240, 300, 360, 1440)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# The resource provider behind Flex Consumption's subnet delegation (Microsoft.App/environments).
APP_PROVIDER = "Microsoft.App"

_SEGMENT = r"[^/]+"
ADX_DATABASE_ID = re.compile(
    rf"^/subscriptions/{_SEGMENT}/resourceGroups/{_SEGMENT}/providers/Microsoft\.Kusto/clusters/{_SEGMENT}"
    rf"/databases/{_SEGMENT}$",
    re.IGNORECASE,
)
EVENTHUB_ID = re.compile(
    rf"^/subscriptions/{_SEGMENT}/resourceGroups/{_SEGMENT}/providers/Microsoft\.EventHub/namespaces/{_SEGMENT}"
    rf"/eventhubs/{_SEGMENT}$",
    re.IGNORECASE,
)


def _value(env: Mapping[str, str], name: str) -> str:
    """The value azd substitutes: the environment's (unset: the parameters file's default)."""
    if name in env:
        return env[name].strip()
    return DEFAULTS.get(name, "")


def problems(env: Mapping[str, str]) -> list[str]:
    """Every reason the deployment must not start, each naming its azd variable."""
    found: list[str] = []
    if _value(env, "KAFKA_BROKERS"):
        topics = [t for t in _value(env, "KAFKA_TOPIC").split(",") if t.strip()]
        if not topics:
            found.append("KAFKA_TOPIC: required when KAFKA_BROKERS is set (azd env set KAFKA_TOPIC <topic>)")
        protocol = _value(env, "KAFKA_PROTOCOL").lower()
        mechanism = _value(env, "KAFKA_SASL_MECHANISM").lower()
        if protocol not in PROTOCOLS:
            found.append(f"KAFKA_PROTOCOL: {protocol!r} is not one of {', '.join(PROTOCOLS)}")
        if mechanism not in MECHANISMS:
            found.append(
                f"KAFKA_SASL_MECHANISM: {mechanism!r} is not one of {', '.join(MECHANISMS)} (none: no SASL)"
            )
        if mechanism in MECHANISMS and protocol in PROTOCOLS:
            sasl = mechanism != "none"
            if sasl and not protocol.startswith("sasl_"):
                found.append(
                    f"KAFKA_PROTOCOL: {protocol} carries no SASL but KAFKA_SASL_MECHANISM is {mechanism}: "
                    "use sasl_ssl, or KAFKA_SASL_MECHANISM=none"
                )
            if not sasl and protocol.startswith("sasl_"):
                found.append(
                    f"KAFKA_PROTOCOL: {protocol} needs a SASL mechanism but KAFKA_SASL_MECHANISM is none: "
                    "use ssl (or plaintext), or set the mechanism"
                )
            if sasl and mechanism != "gssapi":
                for name in ("KAFKA_USERNAME", "KAFKA_PASSWORD"):
                    if not _value(env, name):
                        found.append(
                            f"{name}: required with KAFKA_SASL_MECHANISM={mechanism} "
                            f"(azd env set {name} ...; or KAFKA_SASL_MECHANISM=none and KAFKA_PROTOCOL=ssl "
                            "for a broker without SASL)"
                        )
    adx_id = _value(env, "KAFKA_ADX_ADX_DATABASE_ID")
    if adx_id and not ADX_DATABASE_ID.match(adx_id):
        found.append(
            "KAFKA_ADX_ADX_DATABASE_ID: not a database resource id "
            "(/subscriptions/<sub>/resourceGroups/<rg>/providers/Microsoft.Kusto/clusters/<cluster>/databases/<db>)"
        )
    elif adx_id:
        wanted = ingestion_database()
        if wanted is not None and adx_id.rsplit("/", 1)[1] != wanted:
            found.append(
                f"KAFKA_ADX_ADX_DATABASE_ID: names database {adx_id.rsplit('/', 1)[1]!r} but ingestion.yaml "
                f"ingests into {wanted!r} (its `database`): point at that database or change the file"
            )
    registry_user = _value(env, "KAFKA_ADX_SCHEMA_REGISTRY_USERNAME")
    registry_password = _value(env, "KAFKA_ADX_SCHEMA_REGISTRY_PASSWORD")
    if (registry_user or registry_password) and not _value(env, "KAFKA_ADX_SCHEMA_REGISTRY_URL"):
        found.append("KAFKA_ADX_SCHEMA_REGISTRY_URL: required when the registry's user name or password is set")
    elif bool(registry_user) != bool(registry_password):
        missing = "KAFKA_ADX_SCHEMA_REGISTRY_PASSWORD" if registry_user else "KAFKA_ADX_SCHEMA_REGISTRY_USERNAME"
        found.append(f"{missing}: the schema registry's user name and password go together (both or neither)")
    for name in BOOLEANS:
        if _value(env, name).lower() not in ("true", "false"):
            found.append(f"{name}: {_value(env, name)!r} is not true or false")
    found.extend(alert_problems(env))
    if _flag(env, "KAFKA_ADX_NAT_GATEWAY") and not _flag(env, "KAFKA_ADX_PRIVATE_NETWORKING"):
        found.append(
            "KAFKA_ADX_NAT_GATEWAY: the NAT gateway sits on the app's VNet integration subnet, which exists only "
            "with KAFKA_ADX_PRIVATE_NETWORKING=true"
        )
    hub_id = _value(env, "KAFKA_ADX_EVENTHUB_ID")
    if hub_id and not EVENTHUB_ID.match(hub_id):
        found.append(
            "KAFKA_ADX_EVENTHUB_ID: not an event hub resource id "
            "(/subscriptions/<sub>/resourceGroups/<rg>/providers/Microsoft.EventHub/namespaces/<ns>/eventhubs/<hub>)"
        )
    return found


def alert_problems(env: Mapping[str, str]) -> list[str]:
    """What is wrong with the alerts' azd variables (thresholds, window, e-mail address)."""
    found: list[str] = []
    for name, minimum in ALERT_MINIMUMS.items():
        value = _value(env, name)
        if not re.fullmatch(r"\d+", value) or int(value) < minimum:
            found.append(f"{name}: {value!r} is not a whole number of at least {minimum}")
    window = _value(env, "KAFKA_ADX_ALERT_NO_RECORDS_MINUTES")
    if window not in {str(w) for w in NO_RECORDS_WINDOWS}:
        found.append(
            f"KAFKA_ADX_ALERT_NO_RECORDS_MINUTES: {window!r} is not a window a log search alert offers "
            f"({', '.join(str(w) for w in NO_RECORDS_WINDOWS)} minutes)"
        )
    email = _value(env, "KAFKA_ADX_ALERT_EMAIL")
    if email and not _EMAIL.match(email):
        found.append(f"KAFKA_ADX_ALERT_EMAIL: {email!r} is not an e-mail address (empty: no e-mail)")
    return found


def _flag(env: Mapping[str, str], name: str) -> bool:
    """Whether the boolean azd variable ``name`` is true."""
    return _value(env, name).lower() == "true"


def az_provider_command(action: str, env: Mapping[str, str]) -> list[str]:
    """The Azure CLI command that shows or registers Microsoft.App in the azd environment's
    subscription (AZURE_SUBSCRIPTION_ID; unset: the CLI's current one)."""
    command = ["provider", action, "--namespace", APP_PROVIDER]
    command += ["--query", "registrationState", "-o", "tsv"] if action == "show" else ["--wait"]
    subscription = _value(env, "AZURE_SUBSCRIPTION_ID")
    return command + (["--subscription", subscription] if subscription else [])


def _run_az(az: str, action: str, env: Mapping[str, str], timeout: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [az, *az_provider_command(action, env)], capture_output=True, text=True, check=False, timeout=timeout
    )


def register_app_provider(env: Mapping[str, str], az: str | None) -> tuple[bool, str]:
    """Make sure Microsoft.App is registered when private networking is on. Returns (ok, message):
    not ok only when a registration was attempted and failed; a missing or signed-out ``az`` is
    reported with the command to run, and the deployment goes on."""
    if not _flag(env, "KAFKA_ADX_PRIVATE_NETWORKING"):
        return True, ""
    manual = " ".join(["az", *az_provider_command("register", env)])
    if az is None:
        return True, (
            f"private networking needs the {APP_PROVIDER} resource provider registered in the subscription; "
            f"the Azure CLI is not on PATH, so this hook cannot check it. If the deployment fails on the "
            f"subnet delegation, run once: {manual}"
        )
    shown = _run_az(az, "show", env, timeout=120)
    if shown.returncode != 0:
        return True, (
            f"could not read the {APP_PROVIDER} registration with the Azure CLI (is it signed in to this "
            f"subscription? az login); if the deployment fails on the subnet delegation, run once: {manual}"
        )
    if shown.stdout.strip() == "Registered":
        return True, ""
    registered = _run_az(az, "register", env, timeout=900)  # --wait: until the registration is done
    if registered.returncode != 0:
        return False, (
            f"registering {APP_PROVIDER} failed (it needs the Microsoft.App/register/action permission, which "
            f"Contributor and Owner include): {registered.stderr.strip()[:500]}"
        )
    return True, f"registered the {APP_PROVIDER} resource provider (private networking's subnet delegation)"


def ingestion_database(config: Path | None = None) -> str | None:
    """The top-level ``database`` of the ingestion file the app deploys (ingestion.yaml, as
    INGESTION_CONFIG in infra/modules/functionapp.bicep and scripts/gen_infra_kql.py)."""
    path = config or REPO / "ingestion.yaml"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return None
    match = re.search(r"^database:\s*['\"]?([A-Za-z0-9_.-]+)", text, re.MULTILINE)
    return match.group(1) if match else None


def venv_python(repo: Path = REPO) -> Path:
    """The project's virtual environment interpreter on this platform."""
    if os.name == "nt":
        return repo / ".venv" / "Scripts" / "python.exe"
    return repo / ".venv" / "bin" / "python"


def main(argv: list[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-generate", action="store_true", help="only check the azd environment")
    args = parser.parse_args(argv)
    found = problems(os.environ if env is None else env)
    if found:
        print("preprovision: the azd environment cannot be deployed:", file=sys.stderr)
        for problem in found:
            print(f"  {problem}", file=sys.stderr)
        return 1
    if args.no_generate:
        return 0
    ok, message = register_app_provider(os.environ if env is None else env, shutil.which("az"))
    if message:
        print(f"preprovision: {message}", file=sys.stderr)
    if not ok:
        return 1
    python = venv_python()
    if not python.exists():
        print(
            f"preprovision: {python} is missing: create the virtual environment first (make venv; on Windows "
            "py -3.11 -m venv .venv and .venv\\Scripts\\pip install -r requirements.txt)",
            file=sys.stderr,
        )
        return 1
    return subprocess.run([str(python), str(REPO / "scripts" / "gen_infra_kql.py")], check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
