"""The Functions host's side of the protocol for the runtime tests: the function app deployed as
``func`` would package it (the repo filtered by ``.funcignore``), run by its own Python 3.13 venv
(``.venv-313``: requirements.txt only, with the app-pinned ``azure-functions-runtime``) under
:mod:`tests.support.runtime_worker`, and driven with the messages the host sends: worker init,
function metadata (the worker indexes ``function_app.py`` with the process's app settings),
function load for each indexed function, then invocations whose ``TypedData`` are built as the
host builds them (:mod:`tests.support.functions_host`), each ``InvocationResponse`` read back.

The order and contents of the host's messages follow ``GrpcWorkerChannel`` (Azure/azure-functions-
host at 89dc438, src/WebJobs.Script.Grpc/Channel/GrpcWorkerChannel.cs: ``GetWorkerInitRequest``,
``SendFunctionLoadRequest``/``GetFunctionLoadRequest``) and ``ToRpcInvocationRequest`` (src/
WebJobs.Script.Grpc/Extensions/ScriptInvocationContextExtensions.cs: ``SetRetryContext``: a
retry context only when the function has a retry policy, ``retry_count`` 0 on the first attempt,
the previous attempt's exception on the later ones).
"""

from __future__ import annotations

import fnmatch
import os
import shutil
import struct
import subprocess
import threading
import uuid
from collections.abc import Iterator, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support import runtime_protos
from tests.support.functions_app import REPO
from tests.support.functions_host import Wire

protos: Any = runtime_protos.load()

RUNTIME_PYTHON = Path(os.environ.get("KAFKA_ADX_RUNTIME_PYTHON", REPO / ".venv-313" / "bin" / "python"))
"""The function app's own interpreter: Python 3.13 with requirements.txt (``make venv313``)."""

WORKER = Path(__file__).with_name("runtime_worker.py")
HOST_VERSION = "4.1037.0"
"""The Functions host release whose sources these messages follow."""
_HEADER = struct.Struct(">I")
TIMEOUT = 120.0
"""Seconds any one response may take (a hung worker fails the test instead of blocking it)."""


def runtime_python() -> Path:
    """The function app's interpreter; a test fails with the remedy when it is missing."""
    if not RUNTIME_PYTHON.exists():
        pytest.fail(f"{RUNTIME_PYTHON} is missing: the runtime tests run the function app in its own "
                    "Python 3.13 venv; create it with `make venv313`")  # fmt: skip
    return RUNTIME_PYTHON


# --------------------------------------------------------------------------- the package


def _ignore_patterns() -> list[str]:
    lines = (REPO / ".funcignore").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def _ignored(relative: str, is_dir: bool, patterns: list[str]) -> bool:
    """gitignore-style matching of the patterns .funcignore uses: a trailing ``/`` matches
    folders only; a pattern with a ``/`` inside matches from the root, else any path part."""
    name = relative.rsplit("/", 1)[-1]
    for pattern in patterns:
        directory_only = pattern.endswith("/")
        pattern = pattern.rstrip("/")
        if directory_only and not is_dir:
            continue
        if ("/" in pattern and fnmatch.fnmatch(relative, pattern)) or fnmatch.fnmatch(name, pattern):
            return True
    return False


def deployment_package(target: Path) -> Path:
    """The repo as ``func azure functionapp publish`` packages it: every file .funcignore keeps."""
    patterns = _ignore_patterns()
    for root, dirs, files in os.walk(REPO):
        base = Path(root).relative_to(REPO)
        dirs[:] = [d for d in dirs if not _ignored((base / d).as_posix(), True, patterns)]
        for name in files:
            relative = (base / name).as_posix()
            if not _ignored(relative, False, patterns):
                (target / relative).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(REPO / relative, target / relative)
    return target


# --------------------------------------------------------------------------- values


def typed_data(wire: Wire) -> Any:
    """A wire value (:data:`tests.support.functions_host.Wire`) as protobuf ``TypedData``."""
    kind, value = wire
    if kind == "json":
        return protos.TypedData(json=value)
    collection = {
        "collection_bytes": lambda: protos.CollectionBytes(bytes=value),
        "collection_string": lambda: protos.CollectionString(string=value),
        "collection_sint64": lambda: protos.CollectionSInt64(sint64=value),
    }[kind]()
    return protos.TypedData(**{kind: collection})


@dataclass(frozen=True)
class Retry:
    """The retry context of one attempt: ``retry_count`` 0 is the first delivery."""

    retry_count: int
    max_retry_count: int
    previous_error: str = ""
    """The exception of the attempt before (the host sends it from the second attempt on)."""


# --------------------------------------------------------------------------- the host


class RuntimeHost:
    """One worker process with the function app, and the host's side of its stream."""

    def __init__(self, app_dir: Path, settings: Mapping[str, str], log_path: Path) -> None:
        self.app_dir = app_dir
        self.logs: list[Any] = []
        """Every RpcLog the worker sent, in order."""
        self._pending: dict[str, Future[Any]] = {}
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        # The host starts the worker with the app settings as its environment, and nothing of
        # this test process's (so no stray setting of the machine reaches the app).
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/tmp"),
            "TMPDIR": os.environ.get("TMPDIR", "/tmp"),
            "FUNCTIONS_WORKER_RUNTIME": "python",
            "AzureWebJobsScriptRoot": str(app_dir),
            **settings,
        }
        self._stderr = log_path.open("wb")
        self.process = subprocess.Popen(
            [str(runtime_python()), "-I", str(WORKER)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, env=env, cwd=app_dir,
        )  # fmt: skip
        self._reader = threading.Thread(target=self._read, name="worker-stream", daemon=True)
        self._reader.start()
        self.functions: dict[str, Any] = {}
        """Indexed functions by name (RpcFunctionMetadata), after :meth:`start`."""

    # -- the stream ------------------------------------------------------------------------

    def _read(self) -> None:
        assert self.process.stdout is not None
        stream = self.process.stdout
        while len(header := stream.read(_HEADER.size)) == _HEADER.size:
            message = protos.StreamingMessage()
            message.ParseFromString(stream.read(_HEADER.unpack(header)[0]))
            kind = message.WhichOneof("content")
            if kind == "rpc_log":
                with self._lock:
                    self.logs.append(message.rpc_log)
                continue
            key = message.invocation_response.invocation_id if kind == "invocation_response" else message.request_id
            with self._lock:
                future = self._pending.pop(key, None)
            if future is not None:
                future.set_result(getattr(message, kind))
        with self._lock:  # the worker exited: nothing more will answer
            pending, self._pending = self._pending, {}
        for future in pending.values():
            future.set_exception(RuntimeError(f"the worker exited (code {self.process.poll()}) before answering"))

    def _send(self, message: Any, key: str) -> Future[Any]:
        future: Future[Any] = Future()
        with self._lock:
            self._pending[key] = future
        data = message.SerializeToString()
        assert self.process.stdin is not None
        with self._write_lock:
            self.process.stdin.write(_HEADER.pack(len(data)) + data)
            self.process.stdin.flush()
        return future

    def request(self, **content: Any) -> Any:
        """Send one request and wait for its response."""
        request_id = str(uuid.uuid4())
        return self._send(protos.StreamingMessage(request_id=request_id, **content), request_id).result(TIMEOUT)

    # -- the host's start-up sequence ----------------------------------------------------------

    def init(self) -> Any:
        """WorkerInitRequest as GetWorkerInitRequest builds it; the library indexes the app here."""
        return self.request(worker_init_request=protos.WorkerInitRequest(
            host_version=HOST_VERSION,
            capabilities={"MultiStream": "10"},  # what SendWorkerInitRequest always adds
            worker_directory=str(WORKER.parent),
            function_app_directory=str(self.app_dir),
        ))  # fmt: skip

    def metadata(self) -> Any:
        """FunctionsMetadataRequest: the indexed functions (worker indexing)."""
        return self.request(functions_metadata_request=protos.FunctionsMetadataRequest(
            function_app_directory=str(self.app_dir)))  # fmt: skip

    def load(self, function: Any) -> Any:
        """FunctionLoadRequest for one indexed function, as GetFunctionLoadRequest builds it."""
        return self.request(function_load_request=protos.FunctionLoadRequest(
            function_id=function.function_id,
            metadata=protos.RpcFunctionMetadata(
                name=function.name, directory=function.directory, entry_point=function.entry_point,
                script_file=function.script_file, is_proxy=False, bindings=function.bindings,
            ),
        ))  # fmt: skip

    def start(self) -> tuple[Any, Any]:
        """Init, metadata and a load of every function; returns the init and metadata responses."""
        init = self.init()
        metadata = self.metadata()
        for function in metadata.function_metadata_results:
            self.functions[function.name] = function
            loaded = self.load(function)
            assert loaded.result.status == protos.StatusResult.Success, loaded.result.exception.message
        return init, metadata

    # -- invocations -----------------------------------------------------------------------------

    def invoke_async(
        self, name: str, body: Wire, metadata: Mapping[str, Wire], retry: Retry | None, *, arg_name: str = "events"
    ) -> Future[Any]:
        """Send an InvocationRequest for ``name``; the future holds its InvocationResponse."""
        function = self.functions[name]
        invocation_id = str(uuid.uuid4())
        request = protos.InvocationRequest(
            invocation_id=invocation_id,
            function_id=function.function_id,
            input_data=[protos.ParameterBinding(name=arg_name, data=typed_data(body))],
            trigger_metadata={key: typed_data(value) for key, value in metadata.items()},
            trace_context=protos.RpcTraceContext(
                trace_parent=f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-00", trace_state="",
            ),
        )  # fmt: skip
        if retry is not None:
            request.retry_context.retry_count = retry.retry_count
            request.retry_context.max_retry_count = retry.max_retry_count
            if retry.previous_error:
                request.retry_context.exception.message = retry.previous_error
        return self._send(protos.StreamingMessage(invocation_request=request), invocation_id)

    def invoke(self, name: str, body: Wire, metadata: Mapping[str, Wire], retry: Retry | None) -> Any:
        """One invocation, waited for: its InvocationResponse."""
        return self.invoke_async(name, body, metadata, retry).result(TIMEOUT)

    def log_messages(self, invocation_id: str | None = None) -> list[str]:
        """The messages of the worker's RpcLogs (of one invocation, when given)."""
        with self._lock:
            return [log.message for log in self.logs if invocation_id is None or log.invocation_id == invocation_id]

    def close(self) -> None:
        """WorkerTerminate, then wait for the worker to exit."""
        try:
            if self.process.poll() is None:
                self._send(protos.StreamingMessage(worker_terminate=protos.WorkerTerminate()), "terminate")
                assert self.process.stdin is not None
                self.process.stdin.close()
                self.process.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait()
        finally:
            self._stderr.close()


def success(response: Any) -> bool:
    """Whether a response's StatusResult is Success."""
    return bool(response.result.status == protos.StatusResult.Success)


def running_host(app_dir: Path, settings: Mapping[str, str], log_path: Path) -> Iterator[RuntimeHost]:
    """A started :class:`RuntimeHost` for a fixture to yield; closed afterwards."""
    host = RuntimeHost(app_dir, settings, log_path)
    try:
        yield host
    finally:
        host.close()
