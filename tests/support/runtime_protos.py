"""The Functions host protocol messages (``function_rpc.proto`` beside this file) as Python
classes: compiled with grpcio-tools' protoc on first use into a cache folder keyed by the proto's
content and the protobuf runtime's version, then imported.

Used on both sides of the runtime tests: by the host stand-in in the test process
(:mod:`tests.support.runtime_host`) and by the worker stand-in in the function app's own
Python 3.13 venv (:mod:`tests.support.runtime_worker`, which loads this file by path, so it must
import nothing from the project).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import tempfile
from pathlib import Path
from types import ModuleType

PROTO = Path(__file__).with_name("function_rpc.proto")
MODULE = "function_rpc_pb2"


def _cache_dir() -> Path:
    from google.protobuf import __version__ as protobuf_version

    digest = hashlib.sha256(PROTO.read_bytes() + protobuf_version.encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"kafka-adx-function-rpc-{digest}"


def _compile(target: Path) -> None:
    import grpc_tools
    from grpc_tools import protoc

    # protoc writes into a fresh folder that is renamed into place: two processes compiling at
    # once (the host and the worker) each get a whole module.
    staging = Path(tempfile.mkdtemp(prefix=target.name + "-", dir=target.parent))
    include = Path(grpc_tools.__file__).parent / "_proto"  # google/protobuf/duration.proto
    code = protoc.main(["protoc", f"-I{PROTO.parent}", f"-I{include}", f"--python_out={staging}", str(PROTO)])
    if code != 0:
        raise RuntimeError(f"protoc failed on {PROTO} with exit code {code}")
    try:
        os.replace(staging, target)
    except OSError:  # another process won the race: its module is the same
        if not (target / f"{MODULE}.py").exists():
            raise


def load() -> ModuleType:
    """The compiled protocol module (``StreamingMessage``, ``TypedData``, ...)."""
    if MODULE in sys.modules:
        return sys.modules[MODULE]
    target = _cache_dir()
    if not (target / f"{MODULE}.py").exists():
        _compile(target)
    spec = importlib.util.spec_from_file_location(MODULE, target / f"{MODULE}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[MODULE] = module
    spec.loader.exec_module(module)
    return module
