"""A schema registry on 127.0.0.1 for the developer, the tests and ``kafka-adx demo``: the one place
that installs, starts and stops it.

The registry is **Apicurio Registry** (a real, maintained registry with a Confluent-compatible
API at ``/apis/ccompat/v7``, which confluent-kafka's ``SchemaRegistryClient`` and serializers
speak), built from Maven Central by ``scripts/apicurio-install.sh`` into ``.tools/apicurio/`` and
run with its in-memory (H2) storage: schemas are gone when it stops. Where it cannot be built or
run (no Java or Maven), :func:`start_stand_in` serves the tests' Confluent-compatible stand-in
(``tests/fixtures/registry.py``) instead, which is **not a real registry**; callers say which one
serves (:attr:`kind`).

Used two ways:

* from Python: ``install_apicurio()`` then ``start_apicurio(app_dir)`` returns an
  :class:`ApicurioRegistry` whose ``url`` is the Confluent-compatible base URL and whose ``stop()``
  ends it (it dies with the process that started it); ``start_stand_in()`` for the stand-in;
* from the shell: ``python scripts/schema_registry.py run [--port N] [--stand-in]`` serves in the
  foreground until Ctrl-C; ``start --state-file F`` runs one in the background, waits until it
  answers and prints its URL (for ``SCHEMA_REGISTRY_URL``); ``stop --state-file F`` stops it.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run as a script or loaded by path (the demo)
    sys.path.insert(0, str(REPO_ROOT))

from scripts.kafka_broker import (  # noqa: E402
    _die_with_parent,
    _tail,
    free_port,
    java_binary,
    pid_alive,
    stop_process_group,
    wait_gone,
)

INSTALL_SCRIPT = REPO_ROOT / "scripts" / "apicurio-install.sh"
STAND_IN = REPO_ROOT / "tests" / "fixtures" / "registry.py"
HOST = "127.0.0.1"
CCOMPAT_PATH = "/apis/ccompat/v7"
"""Apicurio's Confluent-compatible API (Confluent Schema Registry's REST API, version 7)."""
STAND_IN_KIND = "the tests' Confluent-compatible stand-in (tests/fixtures/registry.py), not a real registry"
# Exit code of apicurio-install.sh when java or mvn is not installed.
_TOOLS_MISSING_EXIT = 3
_JVM_OPTIONS = (
    "-Xms64m",
    "-Xmx512m",
    # A test registry holds a few schemas: the serial collector and the C1 compiler start fastest.
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djava.awt.headless=true",
)
_RUNTIME_CONFIG = (
    f"-Dquarkus.http.host={HOST}",
    # Its prod profile opens 20 H2 connections up front; one client needs a few.
    "-Dquarkus.datasource.jdbc.min-size=1",
    "-Dquarkus.datasource.jdbc.initial-size=1",
)
_WORKDIR_PREFIX = "kafka-adx-apicurio-"


class RegistryToolsMissing(RuntimeError):
    """Java or Maven is not installed, so Apicurio Registry cannot be built or run here."""


class RegistryInstallError(RuntimeError):
    """scripts/apicurio-install.sh failed."""


class RegistryStartError(RuntimeError):
    """The registry process exited or did not answer in time."""


class RegistryUnavailable(RuntimeError):
    """The stand-in cannot be loaded (no tests/ beside this script, or pytest is missing)."""


def installed_app_dir() -> Path | None:
    """The ``quarkus-app`` directory when Apicurio Registry is already built, else None (then
    :func:`install_apicurio` builds it: a minute or two, once)."""
    pom = (REPO_ROOT / "scripts" / "apicurio" / "pom.xml").read_text()
    version = pom.split("<apicurio.version>", 1)[1].split("<", 1)[0]
    tools = Path(os.environ.get("APICURIO_TOOLS_DIR") or REPO_ROOT / ".tools" / "apicurio")
    app_dir = tools / version / "quarkus-app"
    return app_dir if (app_dir / ".complete").is_file() else None


def install_apicurio() -> Path:
    """Build Apicurio Registry once (``scripts/apicurio-install.sh``, cached in .tools/) and return
    its ``quarkus-app`` directory."""
    try:
        java_binary()
    except RuntimeError as exc:  # KafkaToolsMissing: no java
        raise RegistryToolsMissing(str(exc)) from None
    proc = subprocess.run(
        ["bash", str(INSTALL_SCRIPT)], capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL
    )
    if proc.returncode == _TOOLS_MISSING_EXIT:
        raise RegistryToolsMissing(proc.stderr.strip().removeprefix("apicurio-install: "))
    if proc.returncode != 0:
        raise RegistryInstallError(f"{INSTALL_SCRIPT.name} failed:\n{proc.stderr.strip()}")
    return Path(proc.stdout.strip().splitlines()[-1])


def answers(url: str, timeout: float = 1.0) -> bool:
    """True when ``GET <url>/subjects`` (a Confluent-compatible registry's list) answers 200."""
    try:
        with urllib.request.urlopen(f"{url}/subjects", timeout=timeout) as response:
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def wait_until_ready(url: str, timeout: float, process: subprocess.Popen[bytes] | None = None) -> None:
    """Poll ``url`` until it answers; raise :class:`RegistryStartError` after ``timeout`` seconds
    or as soon as ``process`` (the registry's) exits."""
    deadline = time.monotonic() + timeout
    pause = 0.02
    while not answers(url):
        if process is not None and process.poll() is not None:
            raise RegistryStartError(f"the registry process exited with code {process.returncode}")
        if time.monotonic() > deadline:
            raise RegistryStartError(f"no answer from {url} within {timeout:.0f} s")
        time.sleep(pause)  # back-off between polls, not a wait for readiness
        pause = min(pause * 2, 0.25)


@dataclass
class ApicurioRegistry:
    """A running Apicurio Registry: its Confluent-compatible URL, process and scratch directory."""

    url: str
    """The Confluent-compatible base URL (``http://127.0.0.1:<port>/apis/ccompat/v7``)."""
    pid: int
    workdir: Path
    log_file: Path
    version: str
    launched: float
    """``time.monotonic()`` when the process was started."""
    started_in: float = 0.0
    """Seconds from the launch until it answered (0 until :meth:`wait_ready` saw it answer)."""
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def kind(self) -> str:
        """What serves, in words."""
        return (
            f"Apicurio Registry {self.version} (in-memory storage, Confluent-compatible API {CCOMPAT_PATH})"
        )

    def alive(self) -> bool:
        """Whether the registry process is still running."""
        if self.process is not None:
            return self.process.poll() is None
        return pid_alive(self.pid)

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Block until it answers (:func:`wait_until_ready`); the log's tail is in the error."""
        try:
            wait_until_ready(self.url, max(timeout - (time.monotonic() - self.launched), 1.0), self.process)
        except RegistryStartError as exc:
            raise RegistryStartError(
                f"Apicurio Registry on {self.url}: {exc}\n{_tail(self.log_file)}"
            ) from None
        if not self.started_in:
            self.started_in = time.monotonic() - self.launched

    def stop(self, grace: float = 10.0) -> None:
        """Stop it (SIGTERM to its process group, SIGKILL after ``grace`` s) and remove its dir."""
        stop_process_group(self.pid, self.alive, self.process, grace)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def to_json(self) -> str:
        """The state a later ``stop`` needs."""
        return json.dumps({"kind": "apicurio", "url": self.url, "pid": self.pid, "workdir": str(self.workdir),
                           "log_file": str(self.log_file), "version": self.version})  # fmt: skip


def start_apicurio(
    app_dir: Path,
    *,
    port: int | None = None,
    ready_timeout: float = 120.0,
    wait: bool = True,
    die_with_parent: bool = True,
) -> ApicurioRegistry:
    """Launch Apicurio Registry from ``app_dir`` (:func:`install_apicurio`) on ``127.0.0.1:<port>``
    (a free port when None). With ``wait``, return once it answers; without, at once (call
    :meth:`ApicurioRegistry.wait_ready` before using it: it starts while the caller works)."""
    port = port or free_port()
    workdir = Path(tempfile.mkdtemp(prefix=_WORKDIR_PREFIX))
    log_file = workdir / "registry.log"
    version = (
        (app_dir / ".complete").read_text().strip()
        if (app_dir / ".complete").is_file()
        else app_dir.parent.name
    )
    command = [java_binary(), *_JVM_OPTIONS, f"-Dquarkus.http.port={port}", *_RUNTIME_CONFIG,
               f"-Djava.io.tmpdir={workdir}", "-jar", str(app_dir / "quarkus-run.jar")]  # fmt: skip
    launched = time.monotonic()
    try:
        with log_file.open("ab") as out:
            process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, cwd=workdir,
                preexec_fn=_die_with_parent if die_with_parent else os.setsid,
            )  # fmt: skip
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    registry = ApicurioRegistry(url=f"http://{HOST}:{port}{CCOMPAT_PATH}", pid=process.pid, workdir=workdir,
                                log_file=log_file, version=version, launched=launched, process=process)  # fmt: skip
    if die_with_parent:
        _RUNNING.append(registry)
    if wait:
        try:
            registry.wait_ready(ready_timeout)
        except BaseException:
            registry.stop(grace=1.0)
            raise
    return registry


_RUNNING: list[ApicurioRegistry] = []


@atexit.register
def _stop_all() -> None:
    for registry in list(_RUNNING):
        with contextlib.suppress(Exception):
            registry.stop(grace=2.0)


# --- the stand-in --------------------------------------------------------------------------------


@dataclass
class StandInRegistry:
    """The tests' stand-in, serving from a thread of this process."""

    url: str
    started_in: float
    server: Any
    """The ``RegistryStandIn`` (its ``schemas``/``subjects``/``requests`` are there to look at)."""
    kind: str = STAND_IN_KIND

    def stop(self) -> None:
        """Close the port."""
        self.server.stop()


def _stand_in_class() -> Any:
    """``RegistryStandIn`` of tests/fixtures/registry.py (imported by package name, so that the
    tests and this tool share one class)."""
    if not STAND_IN.is_file():
        raise RegistryUnavailable(f"{STAND_IN} is not part of this installation")
    try:
        from tests.fixtures.registry import RegistryStandIn
    except ImportError as exc:  # the fixture module is a pytest plugin: it imports pytest
        raise RegistryUnavailable(f"cannot load {STAND_IN}: {exc}") from None
    return RegistryStandIn


def start_stand_in(port: int = 0, ready_timeout: float = 10.0) -> StandInRegistry:
    """Serve a fresh, empty stand-in on ``127.0.0.1:<port>`` (0: a free port) once it answers."""
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
    return StandInRegistry(url=url, started_in=time.monotonic() - started, server=server)


# ---------------------------------------------------------------------------------------------
# command line: python scripts/schema_registry.py run|start|stop
# ---------------------------------------------------------------------------------------------


def _run(port: int, stand_in: bool, timeout: float) -> int:
    registry: ApicurioRegistry | StandInRegistry
    if stand_in:
        registry = start_stand_in(port)
    else:
        registry = start_apicurio(install_apicurio(), port=port or None, ready_timeout=timeout)
    print(f"schema-registry: {registry.kind}, ready in {registry.started_in:.1f}s; press Ctrl-C to stop it",
          file=sys.stderr)  # fmt: skip
    print(registry.url, flush=True)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    try:
        if isinstance(registry, ApicurioRegistry) and registry.process is not None:
            while not stopped.wait(0.5):
                if registry.process.poll() is not None:
                    print(
                        f"schema-registry: it exited; last log lines:\n{_tail(registry.log_file)}",
                        file=sys.stderr,
                    )
                    return 1
        else:
            stopped.wait()
    except KeyboardInterrupt:
        pass
    finally:
        registry.stop()
    return 0


def _start(port: int, stand_in: bool, state_file: Path, timeout: float) -> int:
    if state_file.exists():
        old = json.loads(state_file.read_text())
        # The pid decides, not a quick answer: a busy machine can hold an answer past a short
        # timeout, and a second registry would then be started beside the first.
        if pid_alive(int(old["pid"])) and answers(old["url"], timeout=30.0):
            print(f"schema-registry: one already runs on {old['url']} (pid {old['pid']})", file=sys.stderr)
            print(old["url"])
            return 0
    state_file.parent.mkdir(parents=True, exist_ok=True)
    if not stand_in:
        registry = start_apicurio(
            install_apicurio(), port=port or None, ready_timeout=timeout, die_with_parent=False
        )
        state_file.write_text(registry.to_json())
        print(f"schema-registry: {registry.kind}, ready in {registry.started_in:.1f}s, log {registry.log_file}",
              file=sys.stderr)  # fmt: skip
        print(registry.url)
        return 0
    _stand_in_class()  # fail here, with the reason, rather than in the background process
    port = port or free_port()
    log = state_file.with_suffix(".log")
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, __file__, "run", "--stand-in", "--port", str(port)],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    url = f"http://{HOST}:{port}"
    try:
        wait_until_ready(url, timeout, process)
    except RegistryStartError as exc:
        process.kill()
        print(f"schema-registry: {exc}; log {log}", file=sys.stderr)
        return 1
    state_file.write_text(json.dumps({"kind": "stand-in", "url": url, "pid": process.pid}))
    print(f"schema-registry: {STAND_IN_KIND}, log {log}", file=sys.stderr)
    print(url)
    return 0


def _stop(state_file: Path) -> int:
    if not state_file.exists():
        print(f"schema-registry: no state in {state_file}; nothing to stop", file=sys.stderr)
        return 0
    state = json.loads(state_file.read_text())
    if state.get("kind") == "apicurio":
        ApicurioRegistry(url=state["url"], pid=int(state["pid"]), workdir=Path(state["workdir"]),
                         log_file=Path(state["log_file"]), version=state["version"], launched=0.0).stop()  # fmt: skip
    else:
        pid = int(state["pid"])
        with contextlib.suppress(ProcessLookupError):  # it is gone already
            os.kill(pid, signal.SIGTERM)
        # Wait for the process, not for its port to stop answering (a busy machine can make a
        # live server miss a short answer timeout); SIGKILL if it ignores SIGTERM.
        if not wait_gone(pid, 30.0):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            wait_gone(pid, 10.0)
    state_file.unlink()
    print(f"schema-registry: stopped the registry on {state['url']}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run a schema registry in the foreground (``run``), in the background (``start``), or stop it."""
    parser = argparse.ArgumentParser(prog="scripts/schema_registry.py", description=main.__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    default_state = Path(".local/schema-registry/registry.json")
    for name in ("run", "start"):
        command = commands.add_parser(name)
        command.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: a free one)")
        command.add_argument("--stand-in", action="store_true",
                             help="serve the tests' stand-in instead of Apicurio Registry (no Java needed)")  # fmt: skip
        command.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for an answer")
        if name == "start":
            command.add_argument("--state-file", type=Path, default=default_state)
    stop = commands.add_parser("stop")
    stop.add_argument("--state-file", type=Path, default=default_state)
    args = parser.parse_args(argv)
    try:
        if args.command == "run":
            return _run(args.port, args.stand_in, args.timeout)
        if args.command == "start":
            return _start(args.port, args.stand_in, args.state_file, args.timeout)
        return _stop(args.state_file)
    except (RegistryToolsMissing, RegistryUnavailable) as exc:
        print(f"schema-registry: {exc} (--stand-in serves the tests' stand-in without Java)", file=sys.stderr)
        return 3
    except (RegistryInstallError, RegistryStartError) as exc:
        print(f"schema-registry: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
