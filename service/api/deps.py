"""Annotated dependency aliases: how routes reach the settings and long-lived objects."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from service.config import Settings
from service.errors import NotReady
from service.inference import Inference
from service.model import Classifier

# Every dependency here is `async def`: FastAPI runs a plain `def` dependency in a worker
# thread, and on the /predict hot path those hops cost more than the model (measured: 12 hops
# per request, ~70 % of its time, before they were made async).


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_loaded_classifier(request: Request) -> Classifier:
    """The classifier once loaded (it may still be warming up); NotReady before that."""
    classifier: Classifier | None = request.app.state.classifier
    if classifier is None:
        raise NotReady(f"not ready: {request.app.state.not_ready_reason}")
    return classifier


async def get_classifier(request: Request) -> Classifier:
    """The classifier once loaded and warmed up; NotReady (503) with the reason before that."""
    classifier: Classifier | None = request.app.state.classifier
    if classifier is None or not classifier.ready:
        raise NotReady(f"not ready: {request.app.state.not_ready_reason}")
    return classifier


async def get_inference(request: Request) -> Inference:
    """The inference runner (batcher or direct) once the model is warmed up; NotReady before."""
    inference: Inference | None = request.app.state.inference
    if inference is None or not inference.classifier.ready:
        raise NotReady(f"not ready: {request.app.state.not_ready_reason}")
    return inference


SettingsDep = Annotated[Settings, Depends(get_settings)]
LoadedClassifierDep = Annotated[Classifier, Depends(get_loaded_classifier)]
ClassifierDep = Annotated[Classifier, Depends(get_classifier)]
InferenceDep = Annotated[Inference, Depends(get_inference)]
