"""A Confluent-compatible schema registry on 127.0.0.1 for the developer and ``kafka-adx demo``.

It is **not a real registry**: it serves the tests' stand-in (``tests/fixtures/registry.py``,
the subset of the Confluent Schema Registry REST API that confluent-kafka's
``SchemaRegistryClient`` calls, held to that client by tests/integration/kafka/
test_avro_registry.py). A real one was tried first: Apicurio Registry 3.3.3 cannot be built
here, because Maven Central serves its application module (``io.apicurio:apicurio-registry-app``)
and ``apicurio-registry-common`` but none of the other modules the application needs
(``apicurio-registry-schema-util-provider``, ``-schema-util-common``, ``-schema-util-avro``,
``-schema-util-json``, ``-schema-util-protobuf``, ``-contracts-rules``, ``-config-definitions``,
``-config-index``, ``-utils-import-export``, ``-protobuf-schema-utilities``; the 2.6.13.Final
line lacks ``schema-util-provider`` the same way), and Confluent's registry is not on Maven
Central at all (docs/formats.md).

Used two ways:

* from Python (the demo): ``start_registry()`` returns a :class:`LocalRegistry` serving from a
  thread of this process; ``stop()`` closes its port;
* from the shell: ``python scripts/schema_registry.py run [--port N]`` serves in the foreground
  until Ctrl-C; ``start --state-file F [--port N]`` runs one in the background, waits until it
  answers and prints its URL; ``stop --state-file F`` stops it. Point ``SCHEMA_REGISTRY_URL`` at
  the printed URL.

Schemas live in memory and are gone when it stops.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
STAND_IN = REPO_ROOT / "tests" / "fixtures" / "registry.py"
HOST = "127.0.0.1"
KIND = "the tests' Confluent-compatible stand-in (tests/fixtures/registry.py), not a real registry"
"""What serves, in the words the demo prints."""


class RegistryUnavailable(RuntimeError):
    """The stand-in cannot be loaded (no tests/ beside this script, or pytest is missing)."""


class RegistryStartError(RuntimeError):
    """The registry did not answer in time."""


def _stand_in_class() -> Any:
    """``RegistryStandIn`` of tests/fixtures/registry.py (imported by package name, so that the
    tests and this tool share one class)."""
    if not STAND_IN.is_file():
        raise RegistryUnavailable(f"{STAND_IN} is not part of this installation")
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    try:
        from tests.fixtures.registry import RegistryStandIn
    except ImportError as exc:  # the fixture module is a pytest plugin: it imports pytest
        raise RegistryUnavailable(f"cannot load {STAND_IN}: {exc}") from None
    return RegistryStandIn


def answers(url: str, timeout: float = 1.0) -> bool:
    """True when ``GET <url>/subjects`` answers 200."""
    try:
        with urllib.request.urlopen(f"{url}/subjects", timeout=timeout) as response:
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def wait_until_ready(url: str, timeout: float = 10.0, process: subprocess.Popen[bytes] | None = None) -> None:
    """Poll ``url`` until it answers; raise :class:`RegistryStartError` after ``timeout`` seconds
    or when ``process`` (the registry's, if it is one) exits first."""
    deadline = time.monotonic() + timeout
    pause = 0.01
    while not answers(url):
        if process is not None and process.poll() is not None:
            raise RegistryStartError(f"the registry process exited with code {process.returncode}")
        if time.monotonic() > deadline:
            raise RegistryStartError(f"no answer from {url} within {timeout:.0f} s")
        time.sleep(pause)  # polling back-off, not a wait for readiness
        pause = min(pause * 2, 0.2)


@dataclass
class LocalRegistry:
    """A registry serving from a thread of this process."""

    url: str
    started_in: float
    server: Any
    """The ``RegistryStandIn`` (its ``schemas``/``subjects``/``requests`` are there to look at)."""

    def stop(self) -> None:
        """Close the port."""
        self.server.stop()


def start_registry(port: int = 0, ready_timeout: float = 10.0) -> LocalRegistry:
    """Serve a fresh, empty registry on ``127.0.0.1:<port>`` (0: a free port) and wait until it
    answers."""
    started = time.monotonic()
    server = _stand_in_class()()
    server.port = port
    server.start()
    url = f"http://{HOST}:{server.port}"
    try:
        wait_until_ready(url, ready_timeout)
    except BaseException:
        server.stop()
        raise
    return LocalRegistry(url=url, started_in=time.monotonic() - started, server=server)


# ---------------------------------------------------------------------------------------------
# command line: python scripts/schema_registry.py run|start|stop
# ---------------------------------------------------------------------------------------------


def _run(port: int) -> int:
    registry = start_registry(port)
    print(f"schema-registry: {KIND}", file=sys.stderr)
    print(f"schema-registry: ready in {registry.started_in:.2f}s; press Ctrl-C to stop it", file=sys.stderr)
    print(registry.url, flush=True)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    try:
        stopped.wait()
    except KeyboardInterrupt:
        pass
    finally:
        registry.stop()
    return 0


def _start(port: int, state_file: Path, timeout: float) -> int:
    if state_file.exists():
        old = json.loads(state_file.read_text())
        if answers(old["url"]):
            print(f"schema-registry: one already runs on {old['url']} (pid {old['pid']})", file=sys.stderr)
            print(old["url"])
            return 0
    _stand_in_class()  # fail here, with the reason, rather than in the background process
    if port == 0:
        import socket

        with socket.socket() as probe:  # the child must know its port before it is asked
            probe.bind((HOST, 0))
            port = probe.getsockname()[1]
    state_file.parent.mkdir(parents=True, exist_ok=True)
    log = state_file.with_suffix(".log")
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, __file__, "run", "--port", str(port)],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    url = f"http://{HOST}:{port}"
    started = time.monotonic()
    try:
        wait_until_ready(url, timeout, process)
    except RegistryStartError as exc:
        process.kill()
        print(f"schema-registry: {exc}; log {log}", file=sys.stderr)
        return 1
    state_file.write_text(json.dumps({"url": url, "pid": process.pid}))
    print(f"schema-registry: {KIND}, ready in {time.monotonic() - started:.2f}s, log {log}", file=sys.stderr)
    print(url)
    return 0


def _stop(state_file: Path) -> int:
    if not state_file.exists():
        print(f"schema-registry: no state in {state_file}; nothing to stop", file=sys.stderr)
        return 0
    state = json.loads(state_file.read_text())
    with contextlib.suppress(ProcessLookupError):  # it is gone already
        os.kill(int(state["pid"]), signal.SIGTERM)
    deadline = time.monotonic() + 10
    while answers(state["url"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    state_file.unlink()
    print(f"schema-registry: stopped the registry on {state['url']}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run a registry in the foreground (``run``), in the background (``start``), or stop it (``stop``)."""
    parser = argparse.ArgumentParser(prog="scripts/schema_registry.py", description=main.__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("run", "start"):
        command = commands.add_parser(name)
        command.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: a free one)")
        if name == "start":
            command.add_argument("--state-file", type=Path, default=Path(".local/schema-registry/registry.json"))
            command.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for an answer")
    stop = commands.add_parser("stop")
    stop.add_argument("--state-file", type=Path, default=Path(".local/schema-registry/registry.json"))
    args = parser.parse_args(argv)
    try:
        if args.command == "run":
            return _run(args.port)
        if args.command == "start":
            return _start(args.port, args.state_file, args.timeout)
        return _stop(args.state_file)
    except RegistryUnavailable as exc:
        print(f"schema-registry: {exc}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
