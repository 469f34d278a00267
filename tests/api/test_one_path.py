"""One request path per endpoint: every body type answers an option alike, under a root path too."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from service.api.schemas.predict import ZERO
from service.app import create_app
from service.classifier.model import Classifier
from service.config import Settings
from tests.api.conftest import wait_ready
from tests.live_server import live_server


def _bodies() -> dict[str, dict[str, Any]]:
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(ZERO, dtype=np.float32))
    image = io.BytesIO()
    Image.fromarray((np.asarray(ZERO) * 15).astype(np.uint8)).save(image, "PNG")
    return {
        "json": {"json": {"inputs": ZERO}},
        "npy": {"content": buffer.getvalue(), "headers": {"content-type": "application/x-npy"}},
        "multipart": {"files": [("files", ("zero.png", image.getvalue(), "image/png"))]},
    }


BODIES = _bodies()


@pytest.mark.parametrize(
    ("query", "status", "detail"),
    [
        (
            "top_k=",
            422,
            "top_k: Input should be a whole number such as 3 (got '')",
        ),
        ("top_k=0", 422, "top_k must be between 1 and 10 (the labels), got 0"),
        (
            "top_k=abc",
            422,
            "top_k: Input should be a whole number such as 3 (got 'abc')",
        ),
        (
            "return_logits=maybe",
            422,
            "return_logits: Input should be a valid boolean, unable "
            "to interpret input (got 'maybe')",
        ),
        ("top_k=2&top_k=11", 422, "top_k must be between 1 and 10 (the labels), got 11"),
    ],
)
def test_a_bad_query_gets_one_answer_whatever_the_body(
    client: TestClient, query: str, status: int, detail: str
) -> None:
    for kind, body in BODIES.items():
        response = client.post(f"/predict?{query}", **body)
        assert (response.status_code, response.json()["detail"]) == (status, detail), kind


@pytest.mark.parametrize("query", ["top_k=2", "top_k=2&return_logits=true", "unknown=1"])
def test_a_good_query_shapes_every_body_type_alike(client: TestClient, query: str) -> None:
    answers = {}
    for kind, body in BODIES.items():
        response = client.post(f"/predict?{query}", **body)
        assert response.status_code == 200, (kind, response.text)
        [prediction] = response.json()["predictions"]
        answers[kind] = (len(prediction["top_k"]), "logits" in prediction)
    assert len(set(answers.values())) == 1, answers


def test_under_a_root_path_in_process(
    classifier_settings: Settings, classifier: Classifier
) -> None:
    """A proxy strips /api: the routes match, errors answer alike, the docs name the prefix."""
    app = create_app(classifier_settings, classifier=classifier)
    with TestClient(app, root_path="/api") as client:
        wait_ready(client)
        assert client.post("/predict", json={"inputs": ZERO}).status_code == 200
        bad = client.post("/predict?top_k=0", **BODIES["npy"])
        assert bad.status_code == 422
        assert client.get("/openapi.json").json()["servers"] == [{"url": "/api"}]


@pytest.mark.slow
def test_under_a_root_path_with_uvicorn(dry_run_model: Path) -> None:
    with live_server(dry_run_model, root_path="/api") as base:
        for kind, body in BODIES.items():
            response = httpx.post(f"{base}/predict", **body)
            assert response.status_code == 200, (kind, response.text)
            bad = httpx.post(f"{base}/predict?top_k=", **body)
            assert bad.status_code == 422, kind
        assert httpx.post(f"{base}/activate", json={"function": "relu", "x": [-1, 2]}).json()[
            "value"
        ] == [0, 2]
        assert httpx.get(f"{base}/openapi.json").json()["servers"] == [{"url": "/api"}]
