"""GET /model, /healthz and /readyz, readiness during warm-up, and the OpenAPI document."""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path

import onnxruntime as ort
import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.classifier import normalize
from service.classifier.model import Classifier
from service.config import Settings
from tests.api.conftest import wait_ready


def test_healthz(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "alive"}


def test_readyz_once_warmed_up(client: TestClient, classifier: Classifier) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "model": classifier.metadata.name,
        "version": classifier.metadata.version,
    }


def test_model_reports_metadata_hash_and_runtime(
    client: TestClient, dry_run_model: Path, classifier_settings: Settings
) -> None:
    body = client.get("/model").json()
    meta = Classifier(dry_run_model).metadata
    assert body["name"] == meta.name
    assert body["version"] == meta.version
    assert body["labels"] == [str(i) for i in range(10)]
    assert body["input_shape"] == [1, 8, 8]
    assert body["input_range"] == [0.0, 16.0]
    assert body["normalization"] == {"mean": meta.mean, "std": meta.std}
    assert body["test_accuracy"] == meta.test_accuracy
    assert body["opset"] == meta.opset >= 17
    assert body["sha256"] == hashlib.sha256(dry_run_model.read_bytes()).hexdigest()
    assert body["file_bytes"] == dry_run_model.stat().st_size
    runtime = body["runtime"]
    assert runtime["onnxruntime_version"] == ort.__version__
    assert runtime["providers_requested"] == ["cuda", "cpu"]
    expected_first = "cuda" if "CUDAExecutionProvider" in ort.get_available_providers() else "cpu"
    assert runtime["providers_active"][0] == expected_first
    assert runtime["intra_op_threads"] == classifier_settings.threads_per_worker
    assert runtime["inter_op_threads"] == 1
    assert runtime["graph_optimization_level"] == "all"


def test_not_started_app_is_alive_but_not_ready(classifier_settings: Settings) -> None:
    client = TestClient(create_app(classifier_settings))  # no `with`: the lifespan never runs
    assert client.get("/healthz").status_code == 200
    for path in ("/readyz", "/model"):
        response = client.get(path)
        assert response.status_code == 503
        assert response.json()["detail"] == "not ready: the application has not started"
    response = client.post("/predict", json={"inputs": [[0] * 8] * 8})
    assert response.status_code == 503


def test_readyz_says_warming_up_until_warm_up_ends(
    classifier_settings: Settings, dry_run_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fresh = Classifier(dry_run_model)
    release = threading.Event()
    real_warm_up = fresh.warm_up

    def slow_warm_up(sizes: list[int]) -> None:
        assert release.wait(30)
        real_warm_up(sizes)

    monkeypatch.setattr(fresh, "warm_up", slow_warm_up)
    with TestClient(create_app(classifier_settings, classifier=fresh)) as client:
        response = client.get("/readyz")
        assert response.status_code == 503
        assert response.json()["detail"] == "not ready: warming up at batch sizes 1, 8, 16"
        assert client.post("/predict", json={"inputs": [[0] * 8] * 8}).status_code == 503
        assert client.get("/model").status_code == 200  # loaded, so it can describe itself
        release.set()
        wait_ready(client)
        assert client.post("/predict", json={"inputs": [[0] * 8] * 8}).status_code == 200


def test_readyz_waits_for_the_classifier_input_pass(
    classifier_settings: Settings, classifier: Classifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No request compiles the input pass: readiness comes after the runtime has warmed it."""
    release = threading.Event()
    real_warm_up = normalize.warm_up

    def slow_warm_up() -> None:
        assert release.wait(30)
        real_warm_up()

    monkeypatch.setattr(normalize, "warm_up", slow_warm_up)
    with TestClient(create_app(classifier_settings, classifier=classifier)) as client:
        # Past the model's warm-up and the activation kernels (a cold numba cache compiles
        # them for tens of seconds, more on a busy machine).
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            response = client.get("/readyz")
            if "input pass" in response.json()["detail"]:
                break
            time.sleep(0.05)
        assert response.status_code == 503
        assert response.json()["detail"] == "not ready: compiling the classifier's input pass"
        release.set()
        wait_ready(client)


def test_failed_warm_up_is_reported_by_readyz(
    classifier_settings: Settings, dry_run_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fresh = Classifier(dry_run_model)

    def broken(sizes: list[int]) -> None:
        raise RuntimeError("out of memory")

    monkeypatch.setattr(fresh, "warm_up", broken)
    with TestClient(create_app(classifier_settings, classifier=fresh)) as client:
        for _ in range(500):
            response = client.get("/readyz")
            if "failed" in response.json()["detail"]:
                break
        assert response.status_code == 503
        assert response.json()["detail"] == "not ready: warm-up failed: out of memory"
        assert client.get("/healthz").status_code == 200


def test_lifespan_loads_the_model_named_by_the_settings(classifier_settings: Settings) -> None:
    with TestClient(create_app(classifier_settings)) as client:
        wait_ready(client)
        assert client.get("/model").json()["name"] == "relu_cnn"


def test_every_operation_documents_responses_with_examples(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    for path, method in [
        ("/predict", "post"),
        ("/model", "get"),
        ("/healthz", "get"),
        ("/readyz", "get"),
    ]:
        operation = spec["paths"][path][method]
        assert operation.get("description"), path
        ok = operation["responses"]["200"]["content"]["application/json"]["schema"]
        name = ok["$ref"].rsplit("/", 1)[-1]
        assert schemas[name].get("examples"), name


def test_predict_documents_all_three_request_bodies(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    operation = spec["paths"]["/predict"]["post"]
    content = operation["requestBody"]["content"]
    assert set(content) == {"application/json", "multipart/form-data", "application/x-npy"}
    for media in ("application/json", "application/x-npy"):
        assert content[media]["examples"], media
    # A file cannot be a JSON example (schemathesis would send its name as the file); the
    # accepted formats are stated instead.
    assert "image/png" in content["multipart/form-data"]["encoding"]["files"]["contentType"]
    assert "inputs" in content["application/json"]["schema"]["properties"]
    params = {p["name"] for p in operation["parameters"]}
    assert params == {
        "top_k",
        "return_probabilities",
        "return_logits",
        "return_ood",
        "return_input",
        "normalized",
        "invert",
    }
    for status in ("413", "415", "422", "503"):
        assert status in operation["responses"], status


def test_error_responses_are_documented_with_the_messages_the_service_sends(
    client: TestClient,
) -> None:
    """The examples come from the one error table; the ones that do not depend on a limit
    are provoked here and must read exactly as documented."""
    spec = client.get("/openapi.json").json()["paths"]

    def example(path: str, method: str, status: int) -> list[str]:
        content = spec[path][method]["responses"][str(status)]["content"]["application/json"]
        return [e["value"]["detail"] for e in content["examples"].values()]

    for status in (413, 415, 422, 429, 503, 504):
        assert example("/predict", "post", status), status
    assert example("/activate", "post", 413)
    wrong_type = client.post("/predict", content=b"1", headers={"content-type": "text/plain"})
    assert wrong_type.json()["detail"] in example("/predict", "post", 415)
    top_k = client.post("/predict?top_k=0", json={"inputs": [[0] * 8] * 8})
    assert top_k.json()["detail"] in example("/predict", "post", 422)
    unknown = client.get("/activations/relu7")
    assert unknown.json()["detail"] in example("/activations/{name}", "get", 404)
    assert "warming up" in example("/readyz", "get", 503)[0]
    assert "queue is full" in example("/predict", "post", 429)[0]
