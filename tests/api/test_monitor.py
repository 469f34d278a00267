"""GET /monitor/relu, POST /monitor/relu/reset and return_ood, over HTTP."""

from __future__ import annotations

import io
import json
import shutil
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import onnx
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from scipy.special import logsumexp

from model_export import data
from service.api.errors import EXAMPLES
from service.api.schemas.monitor import EXAMPLE
from service.api.schemas.predict import OOD_RESPONSE, ZERO
from service.app import create_app
from service.config import Settings
from service.errors import MonitorOff, OodUnavailable
from tests.api.conftest import wait_ready
from tests.api.test_predict_live import wait_every_worker_ready
from tests.live_server import live_server

KEY = "monitor-key-0123456789"
LAYERS = ["act1", "act2", "act3", "act_fc"]


def started(model: Path, **settings: Any) -> TestClient:
    client = TestClient(create_app(Settings(model_path=model, providers=["cpu"], **settings)))
    client.__enter__()
    wait_ready(client, timeout_s=120)
    return client


@pytest.fixture(scope="module")
def client(dry_run_model: Path) -> Iterator[TestClient]:
    test_client = started(dry_run_model, monitor_sample_every=1, api_keys=[KEY])
    test_client.headers["X-API-Key"] = KEY
    yield test_client
    test_client.__exit__(None, None, None)


def digits(n: int, seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 17, (n, 8, 8)).astype(float).tolist()


def counted(client: TestClient, images: int, timeout_s: float = 300) -> dict[str, Any]:
    """GET /monitor/relu until it has counted ``images`` (bounded): each read waits 2 s for the
    counter thread, which runs at the lowest priority and may lag on a busy machine."""
    deadline = time.monotonic() + timeout_s
    while True:
        body: dict[str, Any] = client.get("/monitor/relu").json()
        if body["images"] >= images or time.monotonic() > deadline:
            return body


def test_counts_every_image_with_sampling_1(client: TestClient) -> None:
    client.post("/monitor/relu/reset")
    for n in (1, 5, 3):
        assert client.post("/predict", json={"inputs": digits(n, n)}).status_code == 200
    body = counted(client, 9)
    assert body["images"] == 9
    assert body["sample_every"] == 1
    assert body["window"] == "every sampled image since start or the last reset"
    assert [layer["name"] for layer in body["layers"]] == LAYERS
    for layer in body["layers"]:
        assert layer["images"] == 9
        assert len(layer["fires"]) == layer["units"]
        assert max(layer["fires"]) <= 9
        assert sum(layer["active_fraction_histogram"]) == 9
        assert layer["dead"] == [i for i, f in enumerate(layer["fires"]) if f == 0]
        assert layer["dead_units"] == len(layer["dead"])
        assert layer["dead_fraction"] == layer["dead_units"] / layer["units"]
        assert 0 < layer["mean_active_fraction"] < 1


def test_v2_infer_and_uploads_are_counted_like_json(client: TestClient) -> None:
    """Every transport hands its batch to the monitor: v2 infer (4 images) and an upload (1)."""
    client.post("/monitor/relu/reset")
    body = {
        "inputs": [{"name": "input", "shape": [4, 1, 8, 8], "datatype": "FP32",
                    "data": np.asarray(digits(4)).ravel().tolist()}]
    }  # fmt: skip
    answer = client.post("/v2/models/relu_cnn/infer", json=body)
    assert answer.status_code == 200, answer.text
    image = io.BytesIO()
    Image.fromarray(np.eye(8, dtype=np.uint8) * 255).save(image, "PNG")
    files = {"files": ("eye.png", image.getvalue(), "image/png")}
    assert client.post("/predict", files=files).status_code == 200
    assert counted(client, 5)["images"] == 5


def test_reset_zeroes_the_counts_and_needs_the_key(client: TestClient) -> None:
    client.post("/predict", json={"inputs": ZERO})
    refused = client.post("/monitor/relu/reset", headers={"X-API-Key": "wrong-key-0000000000"})
    assert refused.status_code == 401
    assert counted(client, 1)["images"] >= 1
    answer = client.post("/monitor/relu/reset")
    assert answer.status_code == 200
    assert answer.json()["images"] == 0
    body = client.get("/monitor/relu").json()
    assert body["images"] == 0
    assert all(layer["dead"] == [] and not any(layer["fires"]) for layer in body["layers"])


def test_sampling_counts_one_image_in_k(dry_run_model: Path) -> None:
    client = started(dry_run_model, monitor_sample_every=4, monitor_window_images=3)
    try:
        client.post("/predict", json={"inputs": digits(10)})  # images 0, 4, 8
        client.post("/predict", json={"inputs": digits(3)})  # image 12
        body = counted(client, 3)
        assert body["sample_every"] == 4
        assert body["window"] == "the last 3 sampled images of each worker"
        assert body["images"] == 3  # 4 sampled, the window keeps 3
    finally:
        client.__exit__(None, None, None)


def test_the_monitor_switched_off(dry_run_model: Path) -> None:
    client = started(dry_run_model, monitor=False)
    try:
        response = client.get("/monitor/relu")
        assert response.status_code == 404
        assert response.json()["detail"] == EXAMPLES[MonitorOff][1]
        assert client.post("/predict", json={"inputs": ZERO}).status_code == 200
        # The OOD score does not need the monitor.
        answer = client.post("/predict", json={"inputs": ZERO, "return_ood": True}).json()
        assert set(answer["predictions"][0]["ood"]) == {"hamming", "energy"}
    finally:
        client.__exit__(None, None, None)


def test_an_unusable_monitor_dir_turns_the_monitor_off_not_the_service(
    dry_run_model: Path, tmp_path: Path
) -> None:
    occupied = tmp_path / "a-file"
    occupied.write_text("not a directory")
    client = started(dry_run_model, monitor_dir=occupied)
    try:
        assert client.get("/monitor/relu").status_code == 404
        assert client.post("/predict", json={"inputs": ZERO}).status_code == 200
    finally:
        client.__exit__(None, None, None)


def test_return_ood_scores_each_image(client: TestClient) -> None:
    images = [ZERO, [[16.0] * 8] * 8, [[0.0] * 8] * 8]
    body = {"inputs": images, "return_ood": True, "return_logits": True}
    predictions = client.post("/predict", json=body).json()["predictions"]
    for prediction in predictions:
        ood = prediction["ood"]
        assert isinstance(ood["hamming"], int)
        assert 0 <= ood["hamming"] <= 128
        assert ood["energy"] == pytest.approx(-logsumexp(np.array(prediction["logits"], float)))
    plain = client.post("/predict", json={"inputs": ZERO}).json()["predictions"][0]
    assert "ood" not in plain
    query = client.post("/predict?return_ood=true", json={"inputs": ZERO})
    assert "ood" in query.json()["predictions"][0]


def test_return_ood_must_be_a_boolean(client: TestClient) -> None:
    response = client.post("/predict", json={"inputs": ZERO, "return_ood": "yes"})
    assert response.status_code == 422
    assert response.json()["detail"] == "return_ood: Input should be a valid boolean (got 'yes')"


def test_a_model_without_patterns_answers_501_for_return_ood(
    dry_run_model: Path, tmp_path: Path
) -> None:
    proto = onnx.load(dry_run_model)
    kept = [p for p in proto.metadata_props if p.key != "relu_serve.ood_patterns"]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    old = tmp_path / "old.onnx"
    onnx.save(proto, old)
    client = started(old, monitor_sample_every=1)
    try:
        response = client.post("/predict", json={"inputs": ZERO, "return_ood": True})
        assert response.status_code == 501
        assert response.json()["detail"] == EXAMPLES[OodUnavailable][1]
        assert client.post("/predict", json={"inputs": ZERO}).status_code == 200
        # Both images ran through the model (the refused one too, before its score was asked).
        assert counted(client, 2)["images"] == 2
    finally:
        client.__exit__(None, None, None)


def test_a_model_whose_patterns_file_is_missing(dry_run_model: Path, tmp_path: Path) -> None:
    model = tmp_path / "alone.onnx"
    shutil.copy(dry_run_model, model)
    client = started(model)
    try:
        response = client.post("/predict", json={"inputs": ZERO, "return_ood": True})
        assert response.status_code == 501
        assert "alone.patterns.npy" not in response.json()["detail"]
        assert "relu_cnn.patterns.npy cannot be read" in response.json()["detail"]
    finally:
        client.__exit__(None, None, None)


def test_the_openapi_document_describes_the_monitor(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    for path, method in (("/monitor/relu", "get"), ("/monitor/relu/reset", "post")):
        operation = spec["paths"][path][method]
        assert operation["description"]
        assert "404" in operation["responses"]
    schema = spec["components"]["schemas"]["ReluActivity"]
    assert schema["examples"][0]["layers"][0]["name"] == "act_fc"
    predict = spec["paths"]["/predict"]["post"]
    assert "501" in predict["responses"]
    examples = predict["requestBody"]["content"]["application/json"]["examples"]
    assert examples["with out-of-distribution scores"]["value"]["return_ood"] is True


@pytest.mark.slow
def test_the_test_split_reproduces_the_reports_dead_units(trained_model: Path) -> None:
    """The export's test split sent through /predict with sampling at 1: every layer's dead
    units are the report's, exactly."""
    report = json.loads(trained_model.with_suffix(".report.json").read_text())
    splits = data.split(data.load("digits", 28), seed=report["seed"])
    raw = splits.test.x[:, 0] * 16  # the split's [0, 1] images back in the raw 0..16 range
    assert np.array_equal(raw, np.rint(raw))
    client = started(trained_model, monitor_sample_every=1)
    try:
        for start in range(0, len(raw), 25):  # batches of several sizes, as traffic comes
            body = {"inputs": raw[start : start + 25].tolist()}
            assert client.post("/predict", json=body).status_code == 200
        body = counted(client, len(raw))
        zero = client.post("/predict", json={"inputs": ZERO, "top_k": 1, "return_ood": True})
    finally:
        client.__exit__(None, None, None)
    assert body["images"] == len(raw) == report["split_sizes"]["test"]
    # The documented examples are this model's answers (another CPU may flip a unit near 0).
    fc = body["layers"][3]
    assert fc["dead"] == EXAMPLE["layers"][0]["dead"]
    assert np.abs(np.subtract(fc["fires"], EXAMPLE["layers"][0]["fires"])).max() <= 2
    shown = OOD_RESPONSE["predictions"][0]["ood"]
    assert zero.json()["predictions"][0]["ood"]["hamming"] == shown["hamming"]
    assert zero.json()["predictions"][0]["ood"]["energy"] == pytest.approx(
        shown["energy"], abs=1e-3
    )
    for layer in body["layers"]:
        expected = report["dead_units"][layer["name"]]
        assert layer["units"] == expected["units"]
        assert layer["dead_fraction"] == expected["dead_fraction"], layer["name"]
        assert layer["dead_units"] == round(expected["dead_fraction"] * expected["units"])


@pytest.mark.slow
def test_two_workers_are_summed(dry_run_model: Path) -> None:
    requests = 120
    with live_server(dry_run_model, workers="2", monitor_sample_every="1") as base:
        wait_every_worker_ready(base)
        httpx.post(f"{base}/monitor/relu/reset", timeout=30)

        def send(i: int) -> int:
            # A new connection each time: the kernel hands it to either worker.
            with httpx.Client(timeout=30) as fresh:
                return fresh.post(f"{base}/predict", json={"inputs": [ZERO, ZERO]}).status_code

        with ThreadPoolExecutor(8) as pool:
            assert set(pool.map(send, range(requests))) == {200}
        body: dict = {}
        for _ in range(100):  # the other worker's counter may still be busy: poll, bounded
            body = httpx.get(f"{base}/monitor/relu", timeout=30).json()
            if body["images"] == 2 * requests:
                break
        assert body["workers"] == 2
        assert body["images"] == 2 * requests == sum(body["worker_images"])
        assert all(images > 0 for images in body["worker_images"]), body["worker_images"]
        for layer in body["layers"]:
            assert sum(layer["active_fraction_histogram"]) == 2 * requests
        reset = httpx.post(f"{base}/monitor/relu/reset", timeout=30).json()
        assert reset["images"] == 0
        assert reset["worker_images"] == [0, 0]
