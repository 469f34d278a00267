"""Through the service, the digits test split scores exactly the export's test accuracy."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from model_export import data
from service.app import create_app
from service.classifier.model import Classifier
from service.classifier.preprocess import prepare
from service.config import Settings
from tests.api.conftest import wait_ready

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(trained_model: Path) -> Iterator[tuple[TestClient, Classifier]]:
    settings = Settings(model_path=trained_model, max_images=512)
    classifier = Classifier.from_settings(settings)
    with TestClient(create_app(settings, classifier=classifier)) as client:
        wait_ready(client)
        yield client, classifier


@pytest.fixture(scope="module")
def test_split(trained: tuple[TestClient, Classifier]) -> tuple[np.ndarray, np.ndarray]:
    """The raw test images (N, 8, 8) in 0..16 and their labels, split as the export split them."""
    meta = trained[1].metadata
    splits = data.split(data.load("digits", image_size=8), seed=meta.seed)
    low, high = meta.input_range
    # x was (raw - low) / 16 in float32: exact for the integer raw values, so this undoes it.
    raw = splits.test.x[:, 0] * np.float32(high - low) + np.float32(low)
    assert len(raw) == meta.split_sizes["test"]
    assert np.array_equal(raw, np.round(raw))
    return raw, splits.test.y


def accuracy(response_json: dict, labels: np.ndarray) -> float:
    predicted = np.array([p["index"] for p in response_json["predictions"]])
    return round(float((predicted == labels).mean()), 6)


def test_npy_reproduces_the_export_accuracy(
    trained: tuple[TestClient, Classifier], test_split: tuple[np.ndarray, np.ndarray]
) -> None:
    client, classifier = trained
    raw, labels = test_split
    buffer = io.BytesIO()
    np.save(buffer, raw.astype(np.float32))
    response = client.post(
        "/predict", content=buffer.getvalue(), headers={"content-type": "application/x-npy"}
    )
    assert response.status_code == 200, response.text
    assert accuracy(response.json(), labels) == classifier.metadata.test_accuracy
    assert classifier.metadata.test_accuracy > 0.9


def test_json_predictions_are_the_models_argmax(
    trained: tuple[TestClient, Classifier], test_split: tuple[np.ndarray, np.ndarray]
) -> None:
    """On the trained model, which predicts every class somewhere in the split (checked, so
    that a service answering one class for all fails here)."""
    client, classifier = trained
    raw, _ = test_split
    expected = classifier.predict(prepare(raw, classifier.metadata, max_images=len(raw)))
    assert len(set(expected.argmax(axis=1).tolist())) == classifier.metadata.num_classes
    response = client.post("/predict", json={"inputs": raw.tolist()})
    assert response.status_code == 200, response.text
    assert [p["index"] for p in response.json()["predictions"]] == expected.argmax(1).tolist()


def test_png_files_reproduce_the_export_accuracy(
    trained: tuple[TestClient, Classifier], test_split: tuple[np.ndarray, np.ndarray]
) -> None:
    """Each digit as an 8x8 16-bit PNG: the box resize is the identity and 0..16 maps onto
    0..65535, so the service reads each raw value back within 1.3e-4 (not bit-exact, since
    65535 / 16 is no integer); that moves no argmax, checked against the array path too."""
    client, classifier = trained
    raw, labels = test_split
    wide = np.round(raw * (65535 / 16)).astype(np.uint16)
    files = []
    for i, image in enumerate(wide):
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, "PNG")
        files.append(("files", (f"{i}.png", buffer.getvalue(), "image/png")))
    response = client.post("/predict", files=files, data={"invert": "false"})
    assert response.status_code == 200, response.text
    assert accuracy(response.json(), labels) == classifier.metadata.test_accuracy
    as_array = classifier.predict(prepare(raw, classifier.metadata, max_images=len(raw))).argmax(
        axis=1
    )
    assert [p["index"] for p in response.json()["predictions"]] == as_array.tolist()


def test_eight_bit_png_files_keep_the_accuracy(
    trained: tuple[TestClient, Classifier], test_split: tuple[np.ndarray, np.ndarray]
) -> None:
    """Ordinary 8-bit files quantise 0..16 onto 0..255 (each value off by at most 0.032)."""
    client, classifier = trained
    raw, labels = test_split
    files = []
    for i, image in enumerate(np.round(raw * (255 / 16)).astype(np.uint8)):
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, "PNG")
        files.append(("files", (f"{i}.png", buffer.getvalue(), "image/png")))
    response = client.post("/predict", files=files, data={"invert": "false"})
    assert response.status_code == 200, response.text
    assert accuracy(response.json(), labels) == classifier.metadata.test_accuracy
