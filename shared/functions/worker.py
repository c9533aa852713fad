"""The process-wide state of one Functions worker: the pipeline (with its ADX and dead-letter
clients) and the telemetry, built once on the first invocation and reused by every later one."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from shared.functions.telemetry import Telemetry
from shared.pipeline.core import Pipeline
from shared.pipeline.retry import RetryPolicy
from shared.settings import Settings

log = logging.getLogger("kafka_adx.functions")


@dataclass
class Worker:
    """Process-wide state of one Functions worker: created once, reused by every invocation."""

    pipeline: Pipeline
    telemetry: Telemetry
    settings: Settings | None = None


_worker: Worker | None = None
_worker_lock = threading.Lock()
builds = 0
"""How many times this process built its worker state (tests assert it stays 1)."""


def worker() -> Worker:
    """The process-wide worker state, built on first use from the environment."""
    global _worker, builds
    current = _worker
    if current is not None:
        return current
    with _worker_lock:
        if _worker is None:
            from shared.config import load_config
            from shared.ops.preflight import log_preflight
            from shared.redact import install_log_redaction
            from shared.wiring import build_pipeline

            # The host's log handlers exist by now: no SAS token reaches them from here on.
            install_log_redaction()
            settings = Settings.from_env()
            config = load_config(settings.ingestion_config)
            # Once per worker start: a misconfiguration is one error with its remedy, not a
            # flood of dead letters to discover it by (the worker still starts).
            ok = log_preflight(settings, config, logger=log)
            # One attempt in process: the trigger's retry policy redelivers the batch.
            pipeline = build_pipeline(settings, config, retry=RetryPolicy(attempts=1))
            _worker = Worker(pipeline=pipeline, telemetry=Telemetry.from_env(), settings=settings)
            if not ok:  # counted once the telemetry exists, so an alert can fire on it
                _worker.telemetry.preflight_failed()
            builds += 1
        return _worker


def install(pipeline: Pipeline, telemetry: Telemetry | None = None) -> Worker:
    """Use a pre-built pipeline for this process (tests, or embedding in another host)."""
    global _worker
    with _worker_lock:
        _worker = Worker(pipeline=pipeline, telemetry=telemetry or Telemetry())
        return _worker


def reset() -> None:
    """Forget the process-wide state (tests); the next invocation builds it again."""
    global _worker
    with _worker_lock:
        if _worker is not None:
            _worker.pipeline.close()
        _worker = None
