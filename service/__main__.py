"""`python -m service` / `relu-serve`: read the settings, check the model, run uvicorn."""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import uvicorn
from pydantic import ValidationError

from service.classifier.model import Classifier
from service.classifier.monitor import store
from service.config import Settings
from service.errors import ModelLoadError
from service.logs import log_config
from service.server import GuardedHttpProtocol


def main() -> int:
    try:
        settings = Settings()
    except ValidationError as exc:
        print(f"relu-serve: {_describe(exc)}", file=sys.stderr)
        return 2
    try:
        classifier = Classifier.from_settings(settings)
    except ModelLoadError as exc:
        print(f"relu-serve: cannot serve the model: {exc.message}", file=sys.stderr)
        return 1
    common = {
        "host": settings.host,
        "port": settings.port,
        "root_path": settings.root_path,
        "log_level": settings.log_level,
        "log_config": log_config(settings.log_level, settings.log_format),
        "server_header": False,
        # The guard writes the access line: it knows the route template, duration and images.
        "access_log": False,
        "timeout_graceful_shutdown": settings.graceful_shutdown_s,
        "http": GuardedHttpProtocol,
        "timeout_keep_alive": settings.keep_alive_s,
        "limit_concurrency": settings.max_connections,
    }
    GuardedHttpProtocol.configure(settings)
    remove_metrics_dir = metrics_directory(settings)
    settings = _fresh_monitor_dir(settings)
    # uvicorn re-raises the SIGTERM it handled once it has shut down gracefully; with the
    # default action that would end the process with -15 instead of 0.
    signal.signal(signal.SIGTERM, lambda sig, frame: None)
    try:
        if settings.workers == 1:
            from service.app import create_app  # after metrics_directory: see there

            app = create_app(settings, classifier=classifier)
            uvicorn.run(app, **common)  # type: ignore[arg-type]
        else:
            # Each worker process loads its own session; the check above only vouches for the file.
            del classifier
            uvicorn.run(
                "service.app:app_from_env",
                factory=True,
                workers=settings.workers,
                **common,  # type: ignore[arg-type]
            )
    finally:
        remove_metrics_dir()
    return 0


#: prometheus_client's multiprocess directory variable (service.metrics.MULTIPROC_ENV; that
#: module is not imported here, as importing it would fix the mode before the variable is set).
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def metrics_directory(settings: Settings) -> Callable[[], None]:
    """Give this run a fresh metrics directory and point prometheus_client at it; return what
    removes it at exit.

    Set before anything imports prometheus_client: it picks per-process files or in-memory
    values when first imported, here and in each worker (spawned processes inherit the
    variable). Values of an earlier run are removed: counters start from zero with the server.
    """
    os.environ.pop(MULTIPROC_ENV, None)
    if not settings.metrics:
        return lambda: None
    if settings.metrics_dir is None:
        made = Path(tempfile.mkdtemp(prefix="relu-serve-metrics-"))
        os.environ[MULTIPROC_ENV] = str(made)
        return lambda: shutil.rmtree(made, ignore_errors=True)
    settings.metrics_dir.mkdir(parents=True, exist_ok=True)
    for stale in settings.metrics_dir.glob("*.db"):
        stale.unlink()
    os.environ[MULTIPROC_ENV] = str(settings.metrics_dir)
    return lambda: None


def _fresh_monitor_dir(settings: Settings) -> Settings:
    """One monitor directory for all workers, emptied now (counts of an earlier run are gone);
    a temporary one unless RELU_SERVE_MONITOR_DIR names it, removed at exit."""
    directory = settings.monitor_dir
    if directory is None:
        directory = Path(tempfile.mkdtemp(prefix="relu-serve-monitor-"))
        atexit.register(shutil.rmtree, directory, ignore_errors=True)
    store.prepare(directory)
    os.environ["RELU_SERVE_MONITOR_DIR"] = str(directory)  # the worker processes read it
    return settings.model_copy(update={"monitor_dir": directory})


def _describe(exc: ValidationError) -> str:
    """The first invalid setting as one line: its variable, the value given and the rule."""
    error = exc.errors()[0]
    field = str(error["loc"][0]) if error["loc"] else ""
    variable = f"RELU_SERVE_{field.upper()}"
    if error["type"] == "extra_forbidden":
        return f"unknown setting {variable}"
    more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    return f"invalid setting {variable}={error.get('input')!r}: {error['msg']}{more}"


if __name__ == "__main__":
    sys.exit(main())
