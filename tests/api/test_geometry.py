"""POST /explain and POST /regions over HTTP: body forms, answers, limits and every error."""

from __future__ import annotations

import io
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

import numpy as np
import onnx
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from service.api.errors import EXAMPLES
from service.api.schemas.geometry import (
    EXPLAIN_EXAMPLE,
    ONE,
    REGIONS_EXAMPLE,
    ExplainResponse,
    RegionsResponse,
)
from service.api.schemas.predict import ZERO
from service.app import create_app
from service.classifier.model import Classifier
from service.config import Settings
from service.errors import GeometryUnavailable
from tests.api.conftest import LIMITS, wait_ready
from tests.api.test_predict import NPY, npy, png
from tests.conftest import export


@pytest.fixture(scope="module")
def explained(client: TestClient) -> dict:
    response = client.post("/explain", json={"inputs": ZERO, "units": True})
    assert response.status_code == 200, response.text
    return response.json()


def test_explain_gives_an_exact_affine_map_of_the_region(
    client: TestClient, classifier: Classifier, explained: dict
) -> None:
    ExplainResponse.model_validate(explained)
    linear = explained["linear_map"]
    assert linear["kind"] == "region"
    assert "normalised input 1x8x8" in linear["space"]
    weights, bias = np.array(linear["weights"]), np.array(linear["bias"])
    assert weights.shape == (10, 8, 8)
    x = classifier.metadata.normalize(np.asarray(ZERO)).astype(np.float64)
    logits = np.array(explained["logits"])
    assert np.abs(weights.reshape(10, 64) @ x.ravel() + bias - logits).max() < 1e-9
    assert linear["max_abs_error"] < 1e-9
    assert explained["label"] == str(int(np.argmax(logits)))
    predicted = client.post("/predict", json={"inputs": ZERO, "return_logits": True}).json()
    assert np.abs(np.array(predicted["predictions"][0]["logits"]) - logits).max() < 1e-4


def test_explain_reports_the_pattern_per_layer_with_unit_maps(explained: dict) -> None:
    pattern = explained["pattern"]
    assert len(pattern["id"]) == 16
    layers = {layer["name"]: layer for layer in pattern["layers"]}
    assert list(layers) == ["act1", "pool1", "act2", "pool2", "act3", "act_fc"]
    act1 = layers["act1"]
    assert act1["units"] == 32 * 8 * 8
    assert np.array(act1["map"]).shape == (32, 8, 8)
    assert np.array(act1["map"]).sum() == act1["active"]
    winners = np.array(layers["pool1"]["map"])
    assert winners.shape == (32, 4, 4)
    assert set(np.unique(winners)) <= {0, 1, 2, 3}
    region = explained["region"]
    assert region["ties"] > 0 or region["radius"] > 0
    assert region["nearest"]["layer"] in layers


def test_explain_accepts_every_predict_body_form(client: TestClient, explained: dict) -> None:
    image = np.asarray(ZERO, dtype=np.float32)
    by_npy = client.post("/explain", content=npy(image), headers=NPY).json()
    assert by_npy["pattern"]["id"] == explained["pattern"]["id"]
    assert by_npy["logits"] == explained["logits"]
    upload = png((image * 255 / 16).round().astype(np.uint8))
    files = {"files": ("zero.png", upload, "image/png")}
    by_file = client.post("/explain", files=files, data={"invert": "false"})
    assert by_file.status_code == 200, by_file.text
    assert np.abs(np.array(by_file.json()["logits"]) - explained["logits"]).max() < 1e-2
    normalized = client.post(
        "/explain?normalized=true",
        json={"inputs": np.array(explained["linear_map"]["weights"])[0].tolist()},
    )
    assert normalized.status_code == 200, normalized.text


def test_explain_png_is_a_saliency_image(client: TestClient) -> None:
    response = client.post("/explain?format=png", json={"inputs": ZERO})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(response.content))
    assert image.size == (256, 256)
    assert image.mode == "RGB"


def test_regions_walks_the_segment_between_two_digits(client: TestClient) -> None:
    response = client.post("/regions", json={"start": ZERO, "end": ONE})
    assert response.status_code == 200, response.text
    body = response.json()
    RegionsResponse.model_validate(body)
    breakpoints = body["breakpoints"]
    assert breakpoints == sorted(breakpoints)
    assert all(0 < t < 1 for t in breakpoints)
    assert body["activation_regions"] == len(breakpoints) + 1
    assert 1 <= body["linear_pieces"] <= body["activation_regions"]
    pieces = body["pieces"]
    assert pieces[0]["t0"] == 0
    assert pieces[-1]["t1"] == 1
    assert all(p["t1"] == q["t0"] for p, q in pairwise(pieces))
    assert len(pieces) >= body["linear_pieces"]
    labels = [p["label"] for p in pieces]
    changes = [q["t0"] for p, q in pairwise(pieces) if p["label"] != q["label"]]
    assert changes == body["decision_changes"]
    start = client.post("/predict", json={"inputs": ZERO}).json()["predictions"][0]["label"]
    assert labels[0] == start
    assert body["max_abs_error"] < 1e-9
    by_npy = client.post("/regions", content=npy(np.array([ZERO, ONE], np.float32)), headers=NPY)
    assert by_npy.json()["breakpoints"] == breakpoints


def test_a_segment_of_one_point_is_one_region(client: TestClient) -> None:
    body = client.post("/regions", json={"start": ZERO, "end": ZERO}).json()
    assert body["breakpoints"] == []
    assert body["activation_regions"] == body["linear_pieces"] == len(body["pieces"]) == 1


@pytest.mark.parametrize(
    ("path", "kwargs", "status", "detail"),
    [
        (
            "/explain",
            {"json": {"inputs": [ZERO, ZERO]}},
            422,
            "/explain takes one image, got 2 images",
        ),
        (
            "/explain",
            {"json": {"image": ZERO}},
            422,
            'the JSON body must be an object {"inputs": [[...], ...]}',
        ),
        (
            "/explain",
            {"json": {"inputs": ZERO, "top_k": 3}},
            422,
            "unknown option 'top_k'; allowed: units, format, normalized, invert",
        ),
        (
            "/explain?format=svg",
            {"json": {"inputs": ZERO}},
            422,
            "format: Input should be 'json' or 'png' (got 'svg')",
        ),
        (
            "/explain",
            {"json": {"inputs": ZERO, "invert": True}},
            422,
            "invert applies to image files, not JSON or .npy inputs",
        ),
        (
            "/explain",
            {"json": {"inputs": [[1, 2], [3, 4]]}},
            422,
            "inputs have image shape [1, 2, 2]; expected (H, W), (N, H, W) or (N, 1, H, W) with H=8, W=8",
        ),
        (
            "/explain",
            {"content": b"x", "headers": {"content-type": "text/plain"}},
            415,
            "Content-Type 'text/plain' is not accepted; send application/json, multipart/form-data (one image file) or application/x-npy",
        ),
        (
            "/explain",
            {
                "files": [
                    ("files", ("a.png", b"1", "image/png")),
                    ("files", ("b.png", b"2", "image/png")),
                ]
            },
            422,
            "/explain takes one image file, got 2",
        ),
        (
            "/explain",
            {"files": [("files", (f"{i}.png", b"1", "image/png")) for i in range(3)]},
            413,
            "more than 2 files in one request",
        ),
        (
            "/explain",
            {
                "content": b"abc",
                "headers": {"content-type": "multipart/form-data"},
            },
            422,
            "malformed multipart body: Missing boundary in multipart.",
        ),
        (
            "/explain",
            {
                "files": {"files": ("a.png", png(np.zeros((8, 8), np.uint8)), "image/png")},
                "data": {"normalized": "true"},
            },
            422,
            "normalized applies to JSON and .npy inputs, not image files",
        ),
        (
            "/regions",
            {"json": {"start": ZERO}},
            422,
            'the JSON body must be an object {"start": [[...]], "end": [[...]]}',
        ),
        (
            "/regions",
            {"json": {"start": [ZERO, ZERO], "end": ZERO}},
            422,
            "start is one image, got 2 images",
        ),
        (
            "/regions",
            {"content": npy(np.zeros((3, 8, 8), np.float32)), "headers": NPY},
            422,
            "a .npy body holds 2 images (start, end), got 3",
        ),
        (
            "/regions",
            {"files": {"files": ("a.png", b"1", "image/png")}},
            415,
            "Content-Type 'multipart/form-data' is not accepted; send application/json or application/x-npy",
        ),
    ],
)
def test_bad_requests_get_a_status_and_a_message(
    client: TestClient, path: str, kwargs: dict, status: int, detail: str
) -> None:
    response = client.post(path, **kwargs)
    assert response.status_code == status, response.text
    assert response.json()["detail"] == detail


def test_body_keys_are_checked_against_the_endpoints_options(client: TestClient) -> None:
    unknown = client.post("/regions", json={"start": ZERO, "end": ONE, "units": True})
    assert unknown.status_code == 422
    assert unknown.json()["detail"] == "unknown option 'units'; allowed: normalized, logits"


@pytest.fixture(scope="module")
def tight(dry_run_model: Path) -> Iterator[TestClient]:
    settings = Settings(model_path=dry_run_model, geometry_max_breakpoints=5, **LIMITS)
    with TestClient(create_app(settings)) as test_client:
        wait_ready(test_client)
        yield test_client


def test_the_breakpoint_budget_is_a_422(tight: TestClient) -> None:
    response = tight.post("/regions", json={"start": ZERO, "end": ONE})
    assert response.status_code == 422
    assert response.json()["detail"] == (
        "the segment crosses more than 5 activation-pattern boundaries "
        "(geometry_max_breakpoints); choose closer images or raise RELU_SERVE_GEOMETRY_MAX_BREAKPOINTS"
    )


def test_the_deadline_is_a_504(dry_run_model: Path) -> None:
    settings = Settings(model_path=dry_run_model, geometry_timeout_ms=0.001, **LIMITS)
    with TestClient(create_app(settings)) as client:
        wait_ready(client)
        response = client.post("/regions", json={"start": ZERO, "end": ONE})
    assert response.status_code == 504
    detail = response.json()["detail"]
    assert detail.startswith(
        "the walk passed the deadline of 0.001 ms (geometry_timeout_ms) after "
    )
    assert detail.endswith(
        "breakpoints; choose closer images or raise RELU_SERVE_GEOMETRY_TIMEOUT_MS"
    )


def _with_softsign(model: Path, out: Path) -> Path:
    """The model with its hidden ReLU swapped for Softsign: ONNX Runtime runs it, we do not."""
    proto = onnx.load(str(model))
    for node in proto.graph.node:
        if node.name == "/act_fc/Relu":
            node.op_type = "Softsign"
    onnx.save(proto, str(out))
    return out


def test_a_model_with_other_ops_keeps_predict_and_answers_501(
    dry_run_model: Path, tmp_path: Path
) -> None:
    model = _with_softsign(dry_run_model, tmp_path / "softsign.onnx")
    with TestClient(create_app(Settings(model_path=model, **LIMITS))) as client:
        wait_ready(client)
        assert client.post("/predict", json={"inputs": ZERO}).status_code == 200
        for path, body in [
            ("/explain", {"inputs": ZERO}),
            ("/regions", {"start": ZERO, "end": ONE}),
        ]:
            response = client.post(path, json=body)
            assert response.status_code == 501, response.text
            assert response.json()["detail"] == EXAMPLES[GeometryUnavailable][1]
        documented = client.get("/openapi.json").json()["paths"]["/explain"]["post"]["responses"]
        examples = documented["501"]["content"]["application/json"]["examples"]
        assert [e["value"]["detail"] for e in examples.values()] == [
            EXAMPLES[GeometryUnavailable][1]
        ]


@pytest.fixture(scope="module")
def gelu_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    out = tmp_path_factory.mktemp("gelu") / "gelu.onnx"
    done = export(out, "--dry-run", "--activation", "gelu")
    assert done.returncode == 0, done.stderr
    with TestClient(create_app(Settings(model_path=out, **LIMITS))) as client:
        wait_ready(client)
        yield client


def test_a_smooth_model_gets_its_jacobian_and_no_regions(gelu_client: TestClient) -> None:
    body = gelu_client.post("/explain", json={"inputs": ZERO}).json()
    assert body["piecewise_linear"] is False
    assert body["linear_map"]["kind"] == "jacobian"
    assert "Erf" in body["linear_map"]["note"]
    assert "not a region's map" in body["linear_map"]["note"]
    assert body["pattern"] is None
    assert body["region"] is None
    response = gelu_client.post("/regions", json={"start": ZERO, "end": ONE})
    assert response.status_code == 422
    assert response.json()["detail"] == (
        "/regions needs a piecewise-linear model; this one uses Erf, Mul of two computed "
        "tensors, whose regions are not polytopes (POST /explain still gives the Jacobian)"
    )


def test_openapi_documents_both_endpoints_with_valid_examples(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    explain = spec["paths"]["/explain"]["post"]
    assert set(explain["requestBody"]["content"]) == {
        "application/json",
        "multipart/form-data",
        "application/x-npy",
    }
    assert "image/png" in explain["responses"]["200"]["content"]
    assert {p["name"] for p in explain["parameters"]} == {"units", "format", "normalized", "invert"}
    regions = spec["paths"]["/regions"]["post"]
    for status in ("413", "415", "422", "501", "503", "504"):
        assert status in regions["responses"], status
    plane = spec["paths"]["/regions/plane"]["post"]
    assert list(plane["responses"]["200"]["content"]) == ["image/png"]
    assert {p["name"] for p in plane["parameters"]} == {"normalized", "grid", "span"}
    ExplainResponse.model_validate(EXPLAIN_EXAMPLE)
    RegionsResponse.model_validate(REGIONS_EXAMPLE)


def test_before_the_model_is_ready_both_endpoints_answer_503(classifier_settings: Settings) -> None:
    client = TestClient(create_app(classifier_settings))  # no lifespan: nothing loaded
    for path, body in [("/explain", {"inputs": ZERO}), ("/regions", {"start": ZERO, "end": ONE})]:
        response = client.post(path, json=body)
        assert response.status_code == 503
        assert response.json()["detail"] == "not ready: the application has not started"


def test_regions_plane_is_a_sampled_png_of_the_regions(client: TestClient) -> None:
    body = {"a": ZERO, "b": ONE, "c": ZERO[::-1], "grid": 16, "span": 0.01}
    response = client.post("/regions/plane", json=body)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    assert response.headers["x-regions-sampled"] == "16x16 grid over u, v in [0, 0.01]"
    assert 1 <= int(response.headers["x-regions-seen"]) <= 16 * 16
    image = Image.open(io.BytesIO(response.content))
    assert image.size == (512, 512)
    three = npy(np.array([ZERO, ONE, ZERO[::-1]], np.float32))
    by_npy = client.post("/regions/plane?grid=16&span=0.01", content=three, headers=NPY)
    assert by_npy.content == response.content


@pytest.mark.parametrize(
    ("kwargs", "status", "detail"),
    [
        ({"json": {"a": ZERO, "b": ONE}}, 422, 'the JSON body must be an object {"a": [[...]], "b": [[...]], "c": [[...]]}'),
        ({"json": {"a": ZERO, "b": ONE, "c": ONE, "grid": 4}}, 422, "grid: Input should be greater than or equal to 8 (got 4)"),
        ({"json": {"a": ZERO, "b": ONE, "c": ONE, "span": 2}}, 422, "span: Input should be less than or equal to 1 (got 2)"),
        ({"content": npy(np.zeros((2, 8, 8), np.float32)), "headers": NPY}, 422, "a .npy body holds 3 images (a, b, c), got 2"),
        ({"content": b"x", "headers": {"content-type": "text/plain"}}, 415, "Content-Type 'text/plain' is not accepted; send application/json or application/x-npy"),
    ],
)  # fmt: skip
def test_regions_plane_refuses_bad_requests(
    client: TestClient, kwargs: dict, status: int, detail: str
) -> None:
    response = client.post("/regions/plane", **kwargs)
    assert response.status_code == status, response.text
    assert response.json()["detail"] == detail


def test_a_bad_query_option_is_refused_even_when_the_body_sets_it(client: TestClient) -> None:
    body = {"a": ZERO, "b": ONE, "c": ONE, "grid": 64}
    response = client.post("/regions/plane?grid=0", json=body)
    status, detail = 422, "grid: Input should be greater than or equal to 8 (got '0')"
    assert response.status_code == status, response.text
    assert response.json()["detail"] == detail


def test_regions_plane_is_bounded_by_the_deadline(dry_run_model: Path) -> None:
    settings = Settings(model_path=dry_run_model, geometry_timeout_ms=0.001, **LIMITS)
    with TestClient(create_app(settings)) as client:
        wait_ready(client)
        response = client.post("/regions/plane", json={"a": ZERO, "b": ONE, "c": ONE, "grid": 64})
    assert response.status_code == 504
    assert response.json()["detail"] == (
        "sampling the plane passed the deadline of 0.001 ms (geometry_timeout_ms); "
        "ask for a smaller grid"
    )


def test_explain_runs_within_the_request_deadline(dry_run_model: Path) -> None:
    settings = Settings(model_path=dry_run_model, request_timeout_ms=0.001, **LIMITS)
    with TestClient(create_app(settings)) as client:
        wait_ready(client)
        response = client.post("/explain", json={"inputs": ZERO})
    assert response.status_code == 504
    assert response.json()["detail"].startswith(
        "decoding and computing took more than 0.001 ms (request_timeout_ms)"
    )


@pytest.mark.parametrize("path", ["/predict", "/explain"])
def test_a_bad_query_option_is_refused_even_when_a_form_field_sets_it(
    client: TestClient, path: str
) -> None:
    """Found by schemathesis: the form field used to hide the query's bad value."""
    image = png(np.full((8, 8), 255, np.uint8))
    response = client.post(
        f"{path}?invert=maybe",
        files={"files": ("x.png", image, "image/png")},
        data={"invert": "true"},
    )
    assert response.status_code == 422, response.text
    assert response.json()["detail"].startswith("invert: ")
