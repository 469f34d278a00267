"""create_app: wiring only (routes, middleware, error handlers, the lifespan that runs Runtime)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi_offline import FastAPIOffline

from service import __version__
from service.api import errors, openapi, stack
from service.api.responses import OrjsonResponse
from service.api.routes import (
    activate,
    geometry,
    health,
    metrics,
    model_info,
    monitor,
    playground,
    predict,
    v2,
)
from service.classifier.model import Classifier
from service.config import Settings
from service.runtime import Runtime
from service.server import GuardedHttpProtocol
from service.v2.dataplane import DataPlane

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
    plane = DataPlane(runtime)
    keys = settings.read_api_keys()
    app = FastAPIOffline(
        title="relu-serve",
        version=__version__,
        description=DESCRIPTION,
        default_response_class=OrjsonResponse,
        lifespan=_lifespan(runtime, plane, keys),
        # FastAPI's built-in OpenTelemetry hook probes for configured providers on every
        # request; we configure none, so the probe is pure hot-path cost.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.runtime = runtime
    app.state.v2 = plane
    errors.install(app)
    # The raw-ASGI routes first: the router tries routes in order.
    app.router.routes[:0] = [
        predict.route(runtime),
        activate.route(runtime),
        *geometry.routes(runtime),
        *v2.routes(runtime, plane),
    ]
    routers = (health.router, model_info.router, activate.router, monitor.router, playground.router)
    for router in routers:
        app.include_router(router)
    app.router.routes.append(playground.assets())
    if settings.metrics:
        app.include_router(metrics.router)
    stack.install(app, api_keys=keys, settings=settings)
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


def _lifespan(
    runtime: Runtime, plane: DataPlane, keys: list[str]
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """Start-up and shut-down: the Runtime, and the gRPC server when a port is set."""
    settings = runtime.settings

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        rpc = None
        if settings.grpc_port:
            # Imported only when served: grpcio and our messages add ~8 MiB to a worker.
            from service.grpc import server as grpc_server

            # In uvicorn's event loop, so that gRPC requests share the batcher with HTTP ones.
            rpc = await grpc_server.serve(settings, plane, keys)
        try:
            yield
        finally:
            if rpc is not None:  # requests in flight finish within the grace period
                await rpc.stop(settings.graceful_shutdown_s)
            await runtime.stop()

    return lifespan


def app_from_env() -> FastAPI:
    """Factory for `uvicorn --factory` and multi-worker runs: settings from the environment."""
    settings = Settings()
    GuardedHttpProtocol.configure(settings)  # a worker process imports the protocol afresh
    return create_app(settings)
