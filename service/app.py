"""create_app: the FastAPI application with its lifespan, routers and error handlers; no logic."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from starlette.concurrency import run_in_threadpool

from service import __version__
from service.api import activate, errors, health, model_info, predict
from service.api.body_limit import BodyLimit
from service.api.fastlane import PredictFastLane
from service.api.responses import OrjsonResponse
from service.config import Settings
from service.inference import Inference
from service.lifecycle import Lifecycle
from service.model import Classifier, warmup_sizes

DESCRIPTION = """
relu-serve classifies images with a ReLU CNN served by ONNX Runtime and evaluates activation
functions with their exact gradients, matching PyTorch.
"""

log = logging.getLogger("relu_serve")


def create_app(
    settings: Settings | None = None, *, classifier: Classifier | None = None
) -> FastAPI:
    """The app; it loads ``settings.model_path`` at start-up unless a ``classifier`` is given.

    Readiness turns true once the model is warmed up at the batch sizes served; until then
    /healthz answers and /readyz says why it is not ready.
    """
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.not_ready_reason = f"loading the model {settings.model_path.name}"
        loaded = classifier
        if loaded is None:
            loaded = await run_in_threadpool(Classifier.from_settings, settings)
        app.state.classifier = loaded
        inference = Inference(loaded, settings)
        inference.start()
        app.state.inference = inference
        warming = asyncio.create_task(_warm_up(app, inference, warmup_sizes(settings.max_images)))
        undo_sigterm = app.state.lifecycle.install(settings.shutdown_drain_s)
        try:
            yield
        finally:
            undo_sigterm()
            warming.cancel()
            app.state.inference = None
            await inference.stop()

    app = FastAPIOffline(
        title="relu-serve",
        version=__version__,
        description=DESCRIPTION,
        default_response_class=OrjsonResponse,
        lifespan=lifespan,
        # FastAPI's built-in OpenTelemetry hook probes for configured providers on every
        # request; we configure none, so the probe is pure hot-path cost.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.classifier = None
    app.state.inference = None
    app.state.not_ready_reason = "the application has not started"
    app.state.lifecycle = Lifecycle()
    errors.install(app)
    app.include_router(health.router)
    app.include_router(model_info.router)
    app.include_router(predict.router)
    app.include_router(activate.router)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(PredictFastLane, state=app.state)  # outermost: see its docstring
    return app


def app_from_env() -> FastAPI:
    """Factory for `uvicorn --factory` and multi-worker runs: settings from the environment."""
    return create_app(Settings())


async def _warm_up(app: FastAPI, inference: Inference, sizes: tuple[int, ...]) -> None:
    classifier = inference.classifier
    try:
        if not classifier.ready:
            app.state.not_ready_reason = f"warming up at batch sizes {', '.join(map(str, sizes))}"
            await run_in_threadpool(classifier.warm_up, sizes)
        inline = await run_in_threadpool(inference.calibrate)
    except Exception as exc:  # readiness must report it; the process stays up for /healthz
        app.state.not_ready_reason = f"warm-up failed: {exc}"
        log.exception("warm-up failed")
        return
    # Everything alive now (modules, app, session) lives as long as the process: move it out of
    # the collector's sight, so that full collections stop walking it on the request path.
    gc.freeze()
    log.info(
        "ready: %s %s (batches of up to %d images run inline)",
        classifier.metadata.name,
        classifier.metadata.version,
        inline,
    )
