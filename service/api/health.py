"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter

from service.api.deps import ClassifierDep
from service.api.schemas.health import Alive, ErrorDetail, Ready

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
async def readyz(classifier: ClassifierDep) -> Ready:
    """200 once the model is loaded and warmed up; 503 with the reason before that."""
    return Ready(model=classifier.metadata.name, version=classifier.metadata.version)
