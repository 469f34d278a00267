"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter, Request

from service.api.deps import ClassifierDep
from service.api.schemas.health import Alive, ErrorDetail, Ready
from service.errors import NotReady

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Alive)
async def healthz() -> Alive:
    """The process is alive and answers HTTP (it may still be loading or warming up)."""
    return Alive()


@router.get(
    "/readyz",
    response_model=Ready,
    responses={503: {"model": ErrorDetail, "description": "not ready yet; the detail says why"}},
)
async def readyz(classifier: ClassifierDep, request: Request) -> Ready:
    """200 once the model is loaded and warmed up; 503 with the reason before that, and from
    SIGTERM on (requests in flight still finish)."""
    if request.app.state.lifecycle.stopping:
        raise NotReady("not ready: shutting down (SIGTERM received); requests in flight finish")
    return Ready(model=classifier.metadata.name, version=classifier.metadata.version)
