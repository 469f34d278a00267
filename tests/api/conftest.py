"""Fixtures for HTTP tests: the app around the exported dry-run model, warmed up once."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import TypedDict

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.classifier.model import Classifier
from service.config import Settings


class Limits(TypedDict):
    max_images: int
    max_body_bytes: int
    max_image_pixels: int


#: Small limits so that the limit tests stay cheap.
LIMITS: Limits = {"max_images": 16, "max_body_bytes": 64 * 1024, "max_image_pixels": 256 * 256}


def wait_ready(client: TestClient, timeout_s: float = 30.0) -> None:
    """Poll /readyz until 200 (bounded); fail with the last reason otherwise."""
    deadline = time.monotonic() + timeout_s
    while True:
        response = client.get("/readyz")
        if response.status_code == 200:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"not ready after {timeout_s} s: {response.json()}")
        time.sleep(0.02)


@pytest.fixture(scope="session")
def classifier_settings(dry_run_model: Path) -> Settings:
    return Settings(model_path=dry_run_model, **LIMITS)


@pytest.fixture(scope="session")
def classifier(classifier_settings: Settings) -> Classifier:
    return Classifier.from_settings(classifier_settings)


@pytest.fixture(scope="module")
def client(classifier_settings: Settings, classifier: Classifier) -> Iterator[TestClient]:
    """A started, ready app serving the dry-run model with small limits (LIMITS)."""
    with TestClient(create_app(classifier_settings, classifier=classifier)) as test_client:
        wait_ready(test_client)
        yield test_client
