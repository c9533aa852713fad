"""A real single-node Apache Kafka broker (KRaft, combined broker + controller) on 127.0.0.1:
the one place that installs, starts and stops it, for the developer and for the tests.

Used two ways:

* from the shell (``make kafka``, ``scripts/kafka-dev.sh``, ``scripts/kafka-start.sh``,
  ``scripts/kafka-stop.sh``): ``python scripts/kafka_broker.py start|stop|run``;
* from Python (the test fixtures of ``tests/fixtures/kafka.py``): ``install_kafka()`` then
  ``start_broker(libs_dir)`` returns a ``KafkaBroker`` whose ``stop()`` kills it and removes its
  temporary directory.

Besides its PLAINTEXT listener the broker has a SASL_PLAINTEXT listener taking OAUTHBEARER
(unsecured JWTs, for testing token clients). The broker runs in its own process group, so
stopping it also ends anything it spawned, and a broker started with ``die_with_parent`` dies
with the process that started it (``PR_SET_PDEATHSIG``) even when that process is killed
without running its exit handlers; ``atexit`` covers ordinary exits.
"""

from __future__ import annotations

import argparse
import atexit
import base64
import contextlib
import ctypes
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
INSTALL_SCRIPT = REPO_ROOT / "scripts" / "kafka-install.sh"
HOST = "127.0.0.1"
OAUTH_LISTENER = "OAUTH"
OAUTH_REQUIRED_SCOPE = "api://kafka-adx-test"
"""The scope every token on the OAUTHBEARER listener must carry in its ``scope`` claim."""
# Exit code of kafka-install.sh when java or mvn is not installed.
_TOOLS_MISSING_EXIT = 3
_JVM_OPTIONS = (
    "-Xms64m",
    "-Xmx384m",
    # A test broker moves little data: the serial collector and the C1 compiler start fastest.
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djava.awt.headless=true",
)


class KafkaToolsMissing(RuntimeError):
    """Java or Maven is not installed, so no local broker can run."""


class KafkaStartError(RuntimeError):
    """The broker process exited or did not become ready in time."""


def java_binary() -> str:
    """The ``java`` to run: ``$JAVA_HOME/bin/java`` when set, else the one on PATH."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").is_file():
        return str(Path(java_home) / "bin" / "java")
    found = shutil.which("java")
    if found is None:
        raise KafkaToolsMissing("java is not installed: a local Kafka broker needs Java 17 or newer")
    return found


def install_kafka() -> Path:
    """Run ``scripts/kafka-install.sh`` (a no-op when the jars are present) and return the libs dir."""
    java_binary()
    proc = subprocess.run(
        ["bash", str(INSTALL_SCRIPT)], capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL
    )
    if proc.returncode == _TOOLS_MISSING_EXIT:
        raise KafkaToolsMissing(proc.stderr.strip())
    if proc.returncode != 0:
        raise RuntimeError(f"{INSTALL_SCRIPT.name} failed ({proc.returncode}):\n{proc.stderr.strip()}")
    return Path(proc.stdout.strip().splitlines()[-1])


def free_port(host: str = HOST) -> int:
    """A TCP port on ``host`` that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int, host: str = HOST) -> bool:
    """Whether ``port`` can be bound on ``host``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def _cluster_id() -> str:
    # Kafka's Uuid text form: 16 random bytes, URL-safe base64 without padding (the storage tool's
    # random-uuid would cost another JVM start). Kafka avoids ids that start with '-'.
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


def _server_properties(
    workdir: Path, port: int, controller_port: int, oauth_port: int, num_partitions: int
) -> str:
    oauth = OAUTH_LISTENER.lower()
    settings = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "listeners": f"PLAINTEXT://{HOST}:{port},CONTROLLER://{HOST}:{controller_port},"
        f"{OAUTH_LISTENER}://{HOST}:{oauth_port}",
        "advertised.listeners": f"PLAINTEXT://{HOST}:{port},{OAUTH_LISTENER}://{HOST}:{oauth_port}",
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": f"PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,{OAUTH_LISTENER}:SASL_PLAINTEXT",
        # SASL_PLAINTEXT + OAUTHBEARER with Kafka's built-in *unsecured* JWT validation (the default
        # server callback handler when no JWKS endpoint is configured): it accepts an unsigned JWT
        # ({"alg":"none"}) whose `sub` names the principal, whose `exp` is in the future and whose
        # `scope` claim holds OAUTH_REQUIRED_SCOPE. Loopback only, for testing token clients.
        f"listener.name.{oauth}.sasl.enabled.mechanisms": "OAUTHBEARER",
        f"listener.name.{oauth}.oauthbearer.sasl.jaas.config": (
            "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required "
            f'unsecuredLoginStringClaim_sub="admin" unsecuredValidatorRequiredScope="{OAUTH_REQUIRED_SCOPE}";'
        ),
        "inter.broker.listener.name": "PLAINTEXT",
        "controller.quorum.bootstrap.servers": f"{HOST}:{controller_port}",
        "log.dirs": str(workdir / "data"),
        "num.partitions": str(num_partitions),
        "auto.create.topics.enable": "true",
        "offsets.topic.replication.factor": "1",
        # Fewer internal partitions: the first consumer group is ready in well under a second.
        "offsets.topic.num.partitions": "4",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": "4",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        "num.network.threads": "2",
        "num.io.threads": "2",
    }
    return "".join(f"{key}={value}\n" for key, value in settings.items())


def _log4j2_properties(log_file: Path) -> str:
    return "\n".join(
        [
            "status = warn",
            "appender.file.type = File",
            "appender.file.name = FILE",
            f"appender.file.fileName = {log_file}",
            "appender.file.layout.type = PatternLayout",
            "appender.file.layout.pattern = [%d] %p %m (%c)%n",
            "rootLogger.level = INFO",
            "rootLogger.appenderRef.file.ref = FILE",
            "logger.state.name = state.change.logger",
            "logger.state.level = WARN",
            "",
        ]
    )


def _die_with_parent() -> None:
    # Runs in the child between fork and exec: own session (so the whole group can be signalled),
    # and SIGKILL when the parent dies, even if the parent is SIGKILLed and runs no exit handler.
    os.setsid()
    if sys.platform.startswith("linux"):
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)


@dataclass
class KafkaBroker:
    """A running broker: its bootstrap address, process and scratch directory."""

    bootstrap: str
    pid: int
    workdir: Path
    log_file: Path
    version: str
    started_in: float
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    oauth_bootstrap: str = ""
    """``host:port`` of the SASL_PLAINTEXT listener that takes OAUTHBEARER (unsecured JWTs)."""

    def alive(self) -> bool:
        """Whether the broker process is still running."""
        if self.process is not None:
            return self.process.poll() is None
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def stop(self, grace: float = 5.0) -> None:
        """Stop the broker (SIGTERM to its process group, SIGKILL after ``grace`` s), remove its dir."""
        stop_process_group(self.pid, self.alive, self.process, grace)
        shutil.rmtree(self.workdir, ignore_errors=True)
        with contextlib.suppress(ValueError):
            _RUNNING.remove(self)

    def to_json(self) -> str:
        """The state a later ``stop`` needs (``scripts/kafka-stop.sh``)."""
        return json.dumps(
            {
                "bootstrap": self.bootstrap,
                "pid": self.pid,
                "workdir": str(self.workdir),
                "log_file": str(self.log_file),
                "version": self.version,
                "started_in": self.started_in,
                "oauth_bootstrap": self.oauth_bootstrap,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> KafkaBroker:
        """Rebuild a broker handle from ``to_json`` output."""
        data = json.loads(text)
        return cls(
            bootstrap=data["bootstrap"],
            pid=int(data["pid"]),
            workdir=Path(data["workdir"]),
            log_file=Path(data["log_file"]),
            version=data["version"],
            started_in=float(data["started_in"]),
            oauth_bootstrap=data.get("oauth_bootstrap", ""),
        )


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (a zombie counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    # An exited process whose new parent does not reap it (a container's PID 1 need not) stays a
    # zombie: it serves nothing, so it counts as gone.
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat[stat.rindex(")") + 2] != "Z"
    return True


def wait_gone(pid: int, timeout: float) -> bool:
    """Poll until process ``pid`` has exited (True) or ``timeout`` s passed (False)."""
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def stop_process_group(
    pid: int, alive: Callable[[], bool], process: subprocess.Popen[bytes] | None, grace: float
) -> None:
    """SIGTERM to the process group led by ``pid``, SIGKILL after ``grace`` s; then wait for it.

    ``process`` is the ``Popen`` when the group leader is our child (reaped by ``wait``); for a
    leader started by another process (a ``stop`` command) the wait is for its pid to go, so that
    its port is free when this returns.
    """
    _signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    if alive():
        _signal_group(pid, signal.SIGKILL)
        if process is not None:
            process.wait(timeout=10)
        else:
            wait_gone(pid, 10.0)


# Brokers started by this process; stopped at interpreter exit if nobody stopped them before.
_RUNNING: list[KafkaBroker] = []


@atexit.register
def _stop_all() -> None:
    for broker in list(_RUNNING):
        broker.stop(grace=2.0)


_WORKDIR_PREFIX = "kafka-adx-broker-"
_PID_FILE = "broker.pid"


def _sweep_stale_workdirs() -> None:
    # A starter killed with SIGKILL takes its broker with it (PR_SET_PDEATHSIG) but cannot remove
    # the broker's temp dir: remove such dirs whose broker is gone.
    for workdir in Path(tempfile.gettempdir()).glob(f"{_WORKDIR_PREFIX}*"):
        try:
            pid = int((workdir / _PID_FILE).read_text())
        except (OSError, ValueError):
            with contextlib.suppress(OSError):
                if time.time() - workdir.stat().st_mtime > 600:
                    shutil.rmtree(workdir, ignore_errors=True)
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(workdir, ignore_errors=True)
        except PermissionError:
            pass


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no output)"


def wait_until_ready(broker: KafkaBroker, timeout: float) -> None:
    """Block until the broker answers a metadata request listing itself, or raise KafkaStartError."""
    from confluent_kafka.admin import AdminClient

    host, port = broker.bootstrap.rsplit(":", 1)
    deadline = time.monotonic() + timeout
    # First the socket: cheap to poll, and the admin client then connects without backing off.
    while True:
        if not broker.alive():
            raise KafkaStartError("the broker exited during start-up")
        try:
            with socket.create_connection((host, int(port)), timeout=0.5):
                break
        except OSError:
            if time.monotonic() > deadline:
                raise KafkaStartError(f"nothing listens on {broker.bootstrap} after {timeout:.0f}s") from None
            time.sleep(0.05)
    admin = AdminClient(
        {"bootstrap.servers": broker.bootstrap, "log_level": 0, "reconnect.backoff.max.ms": 200}
    )
    while True:
        if not broker.alive():
            raise KafkaStartError("the broker exited during start-up")
        try:
            metadata = admin.list_topics(timeout=1.0)
            if metadata.brokers:
                return
        except Exception as exc:  # KafkaException while the broker is still starting; retried
            log.debug("broker not ready yet: %s", exc)
        if time.monotonic() > deadline:
            raise KafkaStartError(f"{broker.bootstrap} gave no metadata after {timeout:.0f}s")
        time.sleep(0.1)


def start_broker(
    libs_dir: Path,
    *,
    port: int | None = None,
    controller_port: int | None = None,
    num_partitions: int = 1,
    ready_timeout: float = 60.0,
    die_with_parent: bool = True,
) -> KafkaBroker:
    """Format fresh KRaft storage in a temp dir and start a broker on 127.0.0.1, ready to use.

    Ports left as None are picked free; if another process takes one in between, start-up is
    retried with new ports. ``die_with_parent=False`` lets the broker outlive this process (the
    ``start`` command); otherwise it is killed when this process dies.
    """
    attempts = 3 if port is None or controller_port is None else 1
    for attempt in range(1, attempts + 1):
        broker_port = port or free_port()
        quorum_port = controller_port or free_port()
        while quorum_port == broker_port:
            quorum_port = free_port()
        oauth_port = free_port()
        while oauth_port in (broker_port, quorum_port):
            oauth_port = free_port()
        try:
            return _start_once(
                libs_dir,
                port=broker_port,
                controller_port=quorum_port,
                oauth_port=oauth_port,
                num_partitions=num_partitions,
                ready_timeout=ready_timeout,
                die_with_parent=die_with_parent,
            )
        except KafkaStartError as exc:
            if attempt == attempts or "Address already in use" not in str(exc):
                raise
            log.warning("a Kafka port was taken during start-up; retrying with new ports")
    raise AssertionError("unreachable")


def _start_once(
    libs_dir: Path,
    *,
    port: int,
    controller_port: int,
    oauth_port: int,
    num_partitions: int,
    ready_timeout: float,
    die_with_parent: bool,
) -> KafkaBroker:
    java = java_binary()
    version = libs_dir.parent.name
    _sweep_stale_workdirs()
    workdir = Path(tempfile.mkdtemp(prefix=_WORKDIR_PREFIX))
    log_file = workdir / "logs" / "server.log"
    log_file.parent.mkdir()
    config = workdir / "server.properties"
    config.write_text(_server_properties(workdir, port, controller_port, oauth_port, num_partitions))
    log4j = workdir / "log4j2.properties"
    log4j.write_text(_log4j2_properties(log_file))
    output = workdir / "logs" / "stdout.log"
    base = [java, *_JVM_OPTIONS, f"-Dlog4j2.configurationFile={log4j}", "-cp", f"{libs_dir}/*"]
    started = time.monotonic()
    try:
        with output.open("ab") as out:
            formatted = subprocess.run(
                [*base, "kafka.tools.StorageTool", "format", "--config", str(config),
                 "--cluster-id", _cluster_id(), "--standalone"],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, check=False, timeout=120,
            )  # fmt: skip
        if formatted.returncode != 0:
            raise KafkaStartError(f"formatting the KRaft storage failed:\n{_tail(output)}")
        with output.open("ab") as out:
            process = subprocess.Popen(
                [*base, "kafka.Kafka", str(config)],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, cwd=workdir,
                preexec_fn=_die_with_parent if die_with_parent else os.setsid,
            )  # fmt: skip
        (workdir / _PID_FILE).write_text(str(process.pid))
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    broker = KafkaBroker(
        bootstrap=f"{HOST}:{port}",
        pid=process.pid,
        workdir=workdir,
        log_file=log_file,
        version=version,
        started_in=0.0,
        process=process,
        oauth_bootstrap=f"{HOST}:{oauth_port}",
    )
    _RUNNING.append(broker)
    try:
        wait_until_ready(broker, ready_timeout)
    except BaseException as exc:
        details = f"{_tail(log_file)}\n--- stdout/stderr ---\n{_tail(output, 10)}"
        broker.stop(grace=1.0)
        if isinstance(exc, KafkaStartError):
            raise KafkaStartError(f"Kafka {version} on {broker.bootstrap}: {exc}\n{details}") from None
        raise
    broker.started_in = time.monotonic() - started
    if not die_with_parent:
        _RUNNING.remove(broker)  # it is meant to outlive this process
    return broker


# ---------------------------------------------------------------------------------------------
# command line: python scripts/kafka_broker.py start|stop|run
# ---------------------------------------------------------------------------------------------


def _pick_port(preferred: int | None) -> int | None:
    if preferred is None or port_is_free(preferred):
        return preferred
    fallback = free_port()
    print(f"kafka: port {preferred} is taken, using {fallback}", file=sys.stderr)
    return fallback


def main(argv: list[str] | None = None) -> int:
    """Start a broker in the background (``start``), stop it (``stop``) or run one in the foreground."""
    parser = argparse.ArgumentParser(prog="scripts/kafka_broker.py", description=main.__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("start", "run"):
        command = commands.add_parser(name)
        command.add_argument("--port", type=int, help="preferred broker port (a free one if taken)")
        command.add_argument(
            "--partitions", type=int, default=1, help="num.partitions of auto-created topics"
        )
        command.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for readiness")
        if name == "start":
            command.add_argument("--state-file", type=Path, required=True)
    stop = commands.add_parser("stop")
    stop.add_argument("--state-file", type=Path, required=True)
    args = parser.parse_args(argv)

    if args.command == "stop":
        if not args.state_file.exists():
            print(f"kafka: no broker state in {args.state_file}; nothing to stop", file=sys.stderr)
            return 0
        broker = KafkaBroker.from_json(args.state_file.read_text())
        broker.stop()
        args.state_file.unlink()
        print(f"kafka: stopped the broker on {broker.bootstrap}", file=sys.stderr)
        return 0

    try:
        libs_dir = install_kafka()
    except KafkaToolsMissing as exc:
        print(f"kafka: {exc}", file=sys.stderr)
        return 3
    port = _pick_port(args.port)
    if args.command == "start":
        if args.state_file.exists():
            old = KafkaBroker.from_json(args.state_file.read_text())
            if old.alive():
                print(f"kafka: a broker already runs on {old.bootstrap} (pid {old.pid})", file=sys.stderr)
                print(old.bootstrap)
                return 0
        broker = start_broker(
            libs_dir,
            port=port,
            num_partitions=args.partitions,
            ready_timeout=args.timeout,
            die_with_parent=False,
        )
        args.state_file.parent.mkdir(parents=True, exist_ok=True)
        args.state_file.write_text(broker.to_json())
        print(f"kafka: Apache Kafka {broker.version} ready in {broker.started_in:.1f}s, log {broker.log_file}",
              file=sys.stderr)  # fmt: skip
        print(f"kafka: OAUTHBEARER (unsecured JWT) listener on {broker.oauth_bootstrap}", file=sys.stderr)
        print(broker.bootstrap)
        return 0

    broker = start_broker(libs_dir, port=port, num_partitions=args.partitions, ready_timeout=args.timeout)
    print(f"kafka: Apache Kafka {broker.version} ready in {broker.started_in:.1f}s", file=sys.stderr)
    print(f"kafka: bootstrap servers {broker.bootstrap}  (log: {broker.log_file})", file=sys.stderr)
    print(f"kafka: OAUTHBEARER (unsecured JWT) listener on {broker.oauth_bootstrap}", file=sys.stderr)
    print("kafka: press Ctrl-C to stop it (its data is thrown away)", file=sys.stderr)
    print(broker.bootstrap, flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        assert broker.process is not None
        code = broker.process.wait()
        print(f"kafka: the broker exited with code {code}; last log lines:\n{_tail(broker.log_file)}",
              file=sys.stderr)  # fmt: skip
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        broker.stop()


if __name__ == "__main__":
    sys.exit(main())
