"""The language worker's process for the runtime tests: what the platform's Python worker does for
an app on Python 3.13 that pins ``azure-functions-runtime`` (a proxy that hands each host message to
the app's own runtime library and sends back what it returns), with the gRPC stream replaced by
length-prefixed messages on stdin/stdout.

Run by :class:`tests.support.runtime_host.RuntimeHost` with the function app's venv
(``.venv-313``: requirements.txt only) as ``python -I runtime_worker.py``: isolated, so neither
this folder nor the repo is on ``sys.path``; the deployment package's folder comes from the
host's ``WorkerInitRequest.function_app_directory``, as in Azure. App settings are the process
environment, as the host starts the worker with them.

What it does, and only that: ``sys.path`` gets the app folder, each request goes to the
``azure_functions_runtime`` handler of its kind with ``request.properties`` ``{"host", "protos"}``
(the handlers' contract, azure_functions_runtime/handle_event.py; the platform's proxy worker
builds the same ``WorkerRequest(name, request, properties)`` in Azure/azure-functions-python-worker,
workers/proxy_worker/dispatcher.py, ``_handle__worker_init_request``), invocations run concurrently,
and every log record becomes an ``RpcLog`` message carrying the invocation id the library puts
in ``invocation_id_cv``. Anything else, indexing, binding conversion, calling the function and
building the ``InvocationResponse``, is the library's own code.
"""

import asyncio
import importlib.util
import logging
import os
import struct
import sys
import threading
import traceback
from pathlib import Path
from typing import Any, BinaryIO

_spec = importlib.util.spec_from_file_location("runtime_protos", Path(__file__).with_name("runtime_protos.py"))
assert _spec is not None and _spec.loader is not None
_runtime_protos = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_runtime_protos)
protos: Any = _runtime_protos.load()

_HEADER = struct.Struct(">I")


class Channel:
    """Framed StreamingMessages: 4-byte big-endian length, then the serialised message."""

    def __init__(self, inbound: BinaryIO, outbound: BinaryIO) -> None:
        self._in = inbound
        self._out = outbound
        self._lock = threading.Lock()

    def read(self) -> Any:
        """The next message, or None when the host closed the stream."""
        header = self._in.read(_HEADER.size)
        if len(header) < _HEADER.size:
            return None
        (size,) = _HEADER.unpack(header)
        message = protos.StreamingMessage()
        message.ParseFromString(self._in.read(size))
        return message

    def send(self, message: Any) -> None:
        data = message.SerializeToString()
        with self._lock:  # log records come from the invocation threads
            self._out.write(_HEADER.pack(len(data)) + data)
            self._out.flush()


class Request:
    """What a handler of azure_functions_runtime receives: the message and the worker's properties."""

    def __init__(self, message: Any, properties: dict[str, Any]) -> None:
        self.request = message
        self.properties = properties


_LEVELS = {
    logging.DEBUG: "Debug", logging.INFO: "Information", logging.WARNING: "Warning",
    logging.ERROR: "Error", logging.CRITICAL: "Critical",
}  # fmt: skip


class RpcLogHandler(logging.Handler):
    """Every log record to the host as an RpcLog, as the worker streams them."""

    def __init__(self, channel: Channel, invocation_id: Any) -> None:
        super().__init__(logging.DEBUG)
        self._channel = channel
        self._invocation_id = invocation_id

    def emit(self, record: logging.LogRecord) -> None:
        try:
            log = protos.RpcLog(
                invocation_id=self._invocation_id.get() or "",
                category=record.name,
                level=getattr(protos.RpcLog, _LEVELS.get(record.levelno, "Information")),
                message=record.getMessage(),
                log_category=protos.RpcLog.System if record.name.startswith("azure_functions") else protos.RpcLog.User,
            )
            if record.exc_info and record.exc_info[1] is not None:
                log.exception.message = str(record.exc_info[1])
                log.exception.type = type(record.exc_info[1]).__name__
                log.exception.stack_trace = "".join(traceback.format_exception(*record.exc_info))
            self._channel.send(protos.StreamingMessage(rpc_log=log))
        except Exception:  # a log record must never break the worker
            self.handleError(record)


_RESPONSES = {
    "worker_init_request": ("worker_init_request", "worker_init_response"),
    "functions_metadata_request": ("functions_metadata_request", "function_metadata_response"),
    "function_load_request": ("function_load_request", "function_load_response"),
    "invocation_request": ("invocation_request", "invocation_response"),
}
"""Request kind -> (azure_functions_runtime handler, response field of StreamingMessage)."""


async def _serve(channel: Channel) -> None:
    import azure_functions_runtime as runtime

    logging.getLogger().addHandler(RpcLogHandler(channel, runtime.invocation_id_cv))
    logging.getLogger().setLevel(logging.INFO)
    properties = {"host": "127.0.0.1", "protos": protos}
    loop = asyncio.get_running_loop()
    inbox: asyncio.Queue[Any] = asyncio.Queue()

    def pump() -> None:
        while True:
            message = channel.read()
            loop.call_soon_threadsafe(inbox.put_nowait, message)
            if message is None:
                return

    threading.Thread(target=pump, name="host-stream", daemon=True).start()

    async def answer(message: Any, kind: str) -> None:
        handler, response_field = _RESPONSES[kind]
        response = await getattr(runtime, handler)(Request(message, properties))
        channel.send(protos.StreamingMessage(request_id=message.request_id, **{response_field: response}))

    running: set[asyncio.Task[None]] = set()
    while (message := await inbox.get()) is not None:
        kind = message.WhichOneof("content")
        if kind == "worker_terminate":
            break
        if kind == "worker_init_request":
            app_dir = message.worker_init_request.function_app_directory
            sys.path.insert(0, app_dir)
            os.chdir(app_dir)
            runtime.start_threadpool_executor()
        if kind == "invocation_request":  # concurrent, as the host dispatches them
            task = asyncio.create_task(answer(message, kind))
            running.add(task)
            task.add_done_callback(running.discard)
        elif kind in _RESPONSES:
            await answer(message, kind)
    if running:
        await asyncio.wait(running)
    runtime.stop_threadpool_executor()


def main() -> None:
    """Serve the host on stdin/stdout until it closes the stream."""
    outbound = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # print() from the app must not corrupt the stream
    asyncio.run(_serve(Channel(sys.stdin.buffer, outbound)))


if __name__ == "__main__":
    main()
