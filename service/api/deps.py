"""Annotated dependency aliases: how routes reach the settings and long-lived objects."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from service.config import Settings
from service.errors import NotReady
from service.model import Classifier


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_loaded_classifier(request: Request) -> Classifier:
    """The classifier once loaded (it may still be warming up); NotReady before that."""
    classifier: Classifier | None = request.app.state.classifier
    if classifier is None:
        raise NotReady(f"not ready: {request.app.state.not_ready_reason}")
    return classifier


def get_classifier(request: Request) -> Classifier:
    """The classifier once loaded and warmed up; NotReady (503) with the reason before that."""
    classifier: Classifier | None = request.app.state.classifier
    if classifier is None or not classifier.ready:
        raise NotReady(f"not ready: {request.app.state.not_ready_reason}")
    return classifier


SettingsDep = Annotated[Settings, Depends(get_settings)]
LoadedClassifierDep = Annotated[Classifier, Depends(get_loaded_classifier)]
ClassifierDep = Annotated[Classifier, Depends(get_classifier)]
