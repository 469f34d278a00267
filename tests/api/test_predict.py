"""POST /predict: the three body types agree, options shape the response."""

from __future__ import annotations

import io

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from service.api.schemas.predict import ZERO
from service.classifier.model import Classifier

NPY = {"content-type": "application/x-npy"}


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def digits() -> np.ndarray:
    """Four varied 8x8 images in the raw range 0..16 (integers, like the digits data)."""
    rng = np.random.default_rng(0)
    batch = rng.integers(0, 17, size=(4, 8, 8)).astype(np.float32)
    batch[0] = np.asarray(ZERO, dtype=np.float32)
    return batch


def test_one_json_image_gets_label_confidence_and_top_k(
    client: TestClient, classifier: Classifier
) -> None:
    response = client.post("/predict", json={"inputs": ZERO})
    assert response.status_code == 200, response.text
    body = response.json()
    meta = classifier.metadata
    assert body["model"] == {"name": meta.name, "version": meta.version}
    [prediction] = body["predictions"]
    top = prediction["top_k"]
    assert len(top) == 3
    assert [t["probability"] for t in top] == sorted((t["probability"] for t in top), reverse=True)
    assert prediction["index"] == top[0]["index"]
    assert prediction["label"] == meta.labels[prediction["index"]] == top[0]["label"]
    assert prediction["confidence"] == top[0]["probability"]
    assert "probabilities" not in prediction
    assert "logits" not in prediction


def test_batch_layouts_and_body_types_agree(client: TestClient, digits: np.ndarray) -> None:
    options = {"top_k": 10, "return_probabilities": True, "return_logits": True}
    reference = client.post("/predict", json={"inputs": digits.tolist(), **options}).json()
    with_channel = client.post("/predict", json={"inputs": digits[:, None].tolist(), **options})
    assert with_channel.json() == reference
    for dtype in (np.float32, np.float64, np.uint8):
        response = client.post(
            "/predict", content=npy(digits.astype(dtype)), params=options, headers=NPY
        )
        assert response.status_code == 200, response.text
        assert response.json() == reference, dtype


def test_probabilities_are_the_softmax_of_the_logits(client: TestClient) -> None:
    body = client.post(
        "/predict",
        json={"inputs": ZERO, "top_k": 10, "return_probabilities": True, "return_logits": True},
    ).json()
    [prediction] = body["predictions"]
    logits = np.asarray(prediction["logits"])
    expected = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    np.testing.assert_allclose(prediction["probabilities"], expected, rtol=1e-6)
    assert sum(prediction["probabilities"]) == pytest.approx(1.0)
    assert sorted(t["index"] for t in prediction["top_k"]) == list(range(10))


def test_normalized_inputs_skip_the_scaling(
    client: TestClient, classifier: Classifier, digits: np.ndarray
) -> None:
    options = {"return_logits": True}
    raw = client.post("/predict", json={"inputs": digits.tolist(), **options}).json()
    normalized = classifier.metadata.normalize(digits)
    done = client.post(
        "/predict", json={"inputs": normalized.tolist(), "normalized": True, **options}
    ).json()
    for a, b in zip(raw["predictions"], done["predictions"], strict=True):
        np.testing.assert_allclose(a["logits"], b["logits"], rtol=1e-5, atol=1e-5)


def test_query_options_apply_and_body_keys_win(client: TestClient) -> None:
    response = client.post("/predict?top_k=5", json={"inputs": ZERO})
    assert len(response.json()["predictions"][0]["top_k"]) == 5
    response = client.post("/predict?top_k=5", json={"inputs": ZERO, "top_k": 2})
    assert len(response.json()["predictions"][0]["top_k"]) == 2


def test_image_files_match_the_same_pixels_as_an_array(
    client: TestClient, digits: np.ndarray
) -> None:
    # 0..16 -> 0..255 in steps of 15 keeps the 8-bit files an exact copy of raw * 15.
    pixels = (digits * 15).astype(np.uint8)
    files = [("files", (f"d{i}.png", png(image), "image/png")) for i, image in enumerate(pixels)]
    response = client.post(
        "/predict", files=files, data={"invert": "false", "return_logits": "true"}
    )
    assert response.status_code == 200, response.text
    as_array = client.post(
        "/predict",
        json={"inputs": (pixels.astype(np.float32) * 16 / 255).tolist(), "return_logits": True},
    )
    for a, b in zip(response.json()["predictions"], as_array.json()["predictions"], strict=True):
        np.testing.assert_allclose(a["logits"], b["logits"], rtol=1e-4, atol=1e-4)


def test_auto_invert_reads_dark_ink_on_paper_like_light_ink(client: TestClient) -> None:
    light_on_dark = (np.asarray(ZERO, dtype=np.float32) * 15).astype(np.uint8)
    dark_on_light = 255 - light_on_dark
    options = {"return_logits": "true"}

    def logits(pixels: np.ndarray, invert: str) -> list[float]:
        files = [("files", ("x.png", png(pixels), "image/png"))]
        response = client.post("/predict", files=files, data={**options, "invert": invert})
        assert response.status_code == 200, response.text
        return response.json()["predictions"][0]["logits"]

    assert logits(dark_on_light, "auto") == logits(light_on_dark, "auto")
    assert logits(dark_on_light, "true") == logits(light_on_dark, "false")
    assert logits(dark_on_light, "false") != logits(light_on_dark, "false")


@pytest.mark.parametrize(
    ("mode", "suffix"),
    [("L", "PNG"), ("RGB", "JPEG"), ("RGB", "BMP"), ("P", "GIF"), ("RGBA", "WEBP")],
)
def test_common_image_formats_are_accepted(client: TestClient, mode: str, suffix: str) -> None:
    buffer = io.BytesIO()
    Image.new(mode, (40, 30)).save(buffer, suffix)
    files = [("files", (f"x.{suffix.lower()}", buffer.getvalue(), "application/octet-stream"))]
    response = client.post("/predict", files=files)
    assert response.status_code == 200, response.text
    assert len(response.json()["predictions"]) == 1


def test_sixteen_bit_png_scales_like_eight_bit(client: TestClient) -> None:
    eight = (np.asarray(ZERO, dtype=np.float32) * 15).astype(np.uint8)
    sixteen = eight.astype(np.uint16) * 257  # the same intensities on 0..65535
    options = {"return_logits": "true", "invert": "false"}

    def logits(pixels: np.ndarray) -> list[float]:
        files = [("files", ("x.png", png(pixels), "image/png"))]
        return client.post("/predict", files=files, data=options).json()["predictions"][0]["logits"]

    np.testing.assert_allclose(logits(sixteen), logits(eight), rtol=1e-5, atol=1e-5)
