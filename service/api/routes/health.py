"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter

from service.api import errors
from service.api.deps import RuntimeDep
from service.api.schemas.health import Alive, Ready
from service.errors import NotReady

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Alive)
async def healthz() -> Alive:
    """The process is alive and answers HTTP (it may still be loading or warming up)."""
    return Alive()


@router.get("/readyz", response_model=Ready, responses=errors.responses(NotReady))
async def readyz(runtime: RuntimeDep) -> Ready:
    """200 once the model is loaded and warmed up; 503 with the reason before that, and from
    SIGTERM on (requests in flight still finish)."""
    meta = runtime.check_ready().metadata
    return Ready(model=meta.name, version=meta.version)
