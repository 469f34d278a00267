"""create_app: wiring only (routes, middleware, error handlers, the lifespan that runs Runtime)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi_offline import FastAPIOffline

from service import __version__
from service.api import errors, openapi, stack
from service.api.responses import OrjsonResponse
from service.api.routes import activate, geometry, health, model_info, playground, predict
from service.classifier.model import Classifier
from service.config import Settings
from service.runtime import Runtime
from service.server import GuardedHttpProtocol

DESCRIPTION = """
relu-serve classifies images with a ReLU CNN served by ONNX Runtime and evaluates activation
functions with their exact gradients, matching PyTorch.

**[Open the playground](/playground)**: draw a digit and watch the network, its dead units and
its linear regions; plot any activation function and its gradient.
"""


def create_app(
    settings: Settings | None = None, *, classifier: Classifier | None = None
) -> FastAPI:
    """The app; its Runtime loads ``settings.model_path`` at start-up unless a ``classifier``
    is given, and reports readiness (/readyz) until the model is warmed up."""
    settings = settings or Settings()
    runtime = Runtime(settings, classifier)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

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
    app.state.runtime = runtime
    errors.install(app)
    # The raw-ASGI routes first: the router tries routes in order.
    app.router.routes[:0] = [
        predict.route(runtime),
        activate.route(runtime),
        *geometry.routes(runtime),
    ]
    for router in (health.router, model_info.router, activate.router, playground.router):
        app.include_router(router)
    app.router.routes.append(playground.assets())
    keys = settings.read_api_keys()
    stack.install(app, api_keys=keys)
    openapi.install(app, runtime, keys_required=bool(keys))
    if settings.cors_origins:  # outside the guard: a preflight carries no API key
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["authorization", "content-type", "x-api-key", "x-request-id"],
            expose_headers=["x-request-id", "retry-after"],
        )
    return app


def app_from_env() -> FastAPI:
    """Factory for `uvicorn --factory` and multi-worker runs: settings from the environment."""
    settings = Settings()
    GuardedHttpProtocol.configure(settings)  # a worker process imports the protocol afresh
    return create_app(settings)
