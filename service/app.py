"""create_app: the FastAPI application with its lifespan, routers and error handlers; no logic."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from service import __version__
from service.api import errors
from service.api.responses import OrjsonResponse
from service.config import Settings

DESCRIPTION = """
relu-serve classifies images with a ReLU CNN served by ONNX Runtime and evaluates activation
functions with their exact gradients, matching PyTorch.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield

    app = FastAPIOffline(
        title="relu-serve",
        version=__version__,
        description=DESCRIPTION,
        default_response_class=OrjsonResponse,
        lifespan=lifespan,
    )
    app.state.settings = settings
    errors.install(app)
    return app
