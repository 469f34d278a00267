"""Hostile input, in-process: each class that once answered 500 or ran unbounded gets a 4xx
that says what to fix, with a short message and the request id."""

from __future__ import annotations

import io
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from service.app import create_app
from service.classifier.model import Classifier
from service.config import Settings
from tests.api.conftest import wait_ready
from tests.api.test_predict_errors import bomb, npy, png

NPY = {"content-type": "application/x-npy"}
NPZ = {"content-type": "application/x-npz"}
KEY = "k" * 24


def npy_header(header: str, data: bytes = b"") -> bytes:
    raw = header.encode()
    padding = (64 - (10 + len(raw) + 1) % 64) % 64
    return (
        b"\x93NUMPY\x01\x00"
        + (len(raw) + padding + 1).to_bytes(2, "little")
        + raw
        + (b" " * padding + b"\n" + data)
    )


def npz(method: int = zipfile.ZIP_DEFLATED, names: tuple[str, ...] = ("x",)) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a duplicate member is the point of one case
        with zipfile.ZipFile(buffer, "w", method) as archive:
            for name in names:
                archive.writestr(f"{name}.npy", npy(np.zeros(4, np.float32)))
    return buffer.getvalue()


def image(mode: str, fmt: str, value: object = 0) -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, (8, 8), value).save(buffer, fmt)  # type: ignore[arg-type]
    return buffer.getvalue()


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.fixture(scope="module")
def client(dry_run_model: Path) -> Iterator[TestClient]:
    settings = Settings(
        model_path=dry_run_model,
        max_body_bytes=256 * 1024,
        max_json_bytes=64 * 1024,
        max_inflight_bytes=200 * 1024,
        max_elements=1000,
        max_request_pixels=300 * 300,
        max_image_pixels=256 * 256,
    )
    classifier = Classifier.from_settings(settings)
    with TestClient(create_app(settings, classifier=classifier)) as test_client:
        wait_ready(test_client)
        yield test_client


def assert_refused(response, status: int, *fragments: str) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    body = response.json()
    assert body["request_id"] == response.headers["x-request-id"]
    assert len(body["detail"]) <= 400
    for fragment in fragments:
        assert fragment in body["detail"], body["detail"]


SHAPE = "{'descr': '<f4', 'fortran_order': False, 'shape': %s, }"


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        (npy_header(SHAPE.replace("<f4", "<f3") % "(2,)"), 422, "not a valid .npy file"),
        (npy_header(SHAPE % "(-1, 8, 8)"), 422, "a shape is a tuple of non-negative integers"),
        (npy_header(SHAPE % "(True, 8, 8)"), 422, "a shape is a tuple of non-negative integers"),
        (npy_header(SHAPE % f"({'9' * 5000},)"), 422, "not a valid .npy file"),
        (npy_header(SHAPE % f"({'9' * 30}, 8)"), 413, "more than the limit"),
        (npy_header(SHAPE % ("(" * 500 + ")" * 500)), 422, "not a valid .npy file"),
        (npy_header("{'descr': '<f4', 'fortran_order': False, }"), 422, "not a valid .npy"),
        (b"\x93NUMPY\x01\x00\xff\xff" + b"{" * 200, 422, "not a valid .npy file"),
    ],
)
def test_malformed_npy_headers_are_4xx(client: TestClient, body, status, fragment) -> None:
    for url in ("/predict", "/activate?function=relu"):
        assert_refused(client.post(url, content=body, headers=NPY), status, fragment)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (npz(zipfile.ZIP_BZIP2), "compressed with zip method 12"),
        (npz(zipfile.ZIP_LZMA), "compressed with zip method 14"),
        (npz(names=("x", "grad_output", "x")), "has 3 members; at most 2"),
        (npz(names=("x", "y")), "unexpected member 'y.npy'"),
        (b"PK\x05\x06" + b"\0" * 18, "has no member x.npy"),
        (b"PK\x03\x04" + b"\0" * 30, "not a valid .npz file"),
    ],
)
def test_hostile_npz_is_refused_before_inflating(client: TestClient, body, fragment) -> None:
    assert_refused(client.post("/activate?function=relu", content=body, headers=NPZ), 422, fragment)


def test_deeply_nested_option_values_are_422(client: TestClient) -> None:
    body = '{"inputs": ' + ZERO_JSON + ', "top_k": ' + nested(1000) + "}"
    response = client.post("/predict", content=body, headers={"content-type": "application/json"})
    assert_refused(response, 422)
    body = '{"function": "relu", "x": [1], "params": {"negative_slope": ' + nested(900) + "}}"
    response = client.post("/activate", content=body, headers={"content-type": "application/json"})
    assert_refused(response, 422)


ZERO_JSON = str([[0] * 8] * 8)


def test_a_huge_value_is_quoted_as_an_excerpt(client: TestClient) -> None:
    response = client.post("/predict", json={"inputs": [[0] * 8] * 8, "invert": "x" * 50_000})
    assert_refused(response, 422)
    response = client.post("/activate", json={"function": "f" * 50_000, "x": 1})
    assert_refused(response, 422, "unknown activation function 'fffff")
    assert len(response.content) < 600


def test_json_values_are_counted_from_the_bytes_before_parsing(client: TestClient) -> None:
    body = b'{"function": "relu", "x": [' + b"0," * 3000 + b"0]}"
    response = client.post("/activate", content=body, headers={"content-type": "application/json"})
    assert_refused(response, 413, "holds about 3001 values; the limit is 2000")


def test_a_json_body_over_max_json_bytes_is_413_pointing_to_npy(client: TestClient) -> None:
    body = b'{"function": "relu", "x": [' + b" " * 70_000 + b"0]}"
    response = client.post("/activate", content=body, headers={"content-type": "application/json"})
    assert_refused(response, 413, "(max_json_bytes); send big arrays as application/x-npy")


@pytest.mark.parametrize(
    ("data", "status", "fragment"),
    [
        (image("LAB", "TIFF"), 415, "colour mode LAB is not supported"),
        (image("F", "TIFF", 3.5), 415, "colour mode F is not supported"),
        (image("I", "TIFF", 2**20), 415, "32-bit integer pixels are not supported"),
        (image("L", "EPS"), 415, "not a readable image (PNG, JPEG, BMP, GIF, WebP and TIFF"),
        (image("L", "PCX"), 415, "not a readable image"),
        (png()[:45], 422, "truncated or corrupt"),
        (bomb(4096, 4096), 413, "4096x4096 pixels exceeds the limit of 65536 pixels"),
    ],
)
def test_hostile_images_are_4xx(client: TestClient, data, status, fragment) -> None:
    response = client.post("/predict", files=[("files", ("f.img", data))])
    assert_refused(response, status, fragment)


def test_every_accepted_colour_mode_classifies(client: TestClient) -> None:
    cases = [
        ("1", "PNG", 0),
        ("L", "JPEG", 0),
        ("P", "GIF", 0),
        ("RGB", "BMP", (0, 0, 0)),
        ("RGBA", "WEBP", (0, 0, 0, 255)),
        ("CMYK", "TIFF", (0, 0, 0, 0)),
        ("I;16", "PNG", 0),
        ("LA", "PNG", (0, 255)),
    ]
    files = [("files", (f"{m}.{f}", image(m, f, v))) for m, f, v in cases]
    response = client.post("/predict", files=files)
    assert response.status_code == 200, response.text
    assert len(response.json()["predictions"]) == len(cases)


def test_the_pixels_of_a_request_are_budgeted_before_decoding(client: TestClient) -> None:
    files = [("files", (f"{i}.png", bomb(200, 200))) for i in range(3)]  # 120k > 90k pixels
    response = client.post("/predict", files=files)
    assert_refused(response, 413, "declare more than 90000 pixels in all (max_request_pixels")


def test_the_inflight_budget_refuses_with_retry_after_and_is_released(
    client: TestClient,
) -> None:
    big = npy(np.zeros((1000, 8, 8), np.float32))[:220_000]  # over the 200 KiB budget
    response = client.post("/predict", content=big, headers=NPY)
    assert_refused(response, 503, "(max_inflight_bytes 204800); retry shortly")
    assert response.headers["retry-after"] == "1"
    ok = client.post("/predict", content=npy(np.zeros((16, 8, 8), np.float32)), headers=NPY)
    assert ok.status_code == 200  # nothing is left held


def test_request_ids_are_taken_when_sane_and_made_otherwise(client: TestClient) -> None:
    response = client.get("/healthz", headers={"x-request-id": "abc-123.x:y"})
    assert response.headers["x-request-id"] == "abc-123.x:y"
    for bad in ("a b", "x" * 200, "<script>"):
        made = client.get("/healthz", headers={"x-request-id": bad}).headers["x-request-id"]
        assert made != bad
        assert len(made) == 16


def test_head_answers_on_every_get_route_without_a_body(client: TestClient) -> None:
    for path in ("/healthz", "/readyz", "/model", "/activations", "/openapi.json"):
        response = client.head(path)
        assert response.status_code == 200, path
        assert response.content == b""
        assert int(response.headers["content-length"]) > 0


def test_docs_pages_carry_security_headers_and_the_api_no_cors(client: TestClient) -> None:
    docs = client.get("/docs")
    assert docs.headers["x-content-type-options"] == "nosniff"
    assert docs.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in docs.headers["content-security-policy"]
    api = client.get("/healthz", headers={"origin": "https://elsewhere.example"})
    assert "access-control-allow-origin" not in api.headers


def test_model_shows_no_filesystem_path(client: TestClient, dry_run_model: Path) -> None:
    text = client.get("/model").text
    assert str(dry_run_model.parent) not in text


@pytest.fixture(scope="module")
def keyed(dry_run_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    key_file = tmp_path_factory.mktemp("keys") / "keys"
    key_file.write_text("# operators\n" + "f" * 20 + "\n")
    settings = Settings(
        model_path=dry_run_model,
        api_keys=[KEY],  # type: ignore[list-item]
        api_keys_file=key_file,
        cors_origins=["https://app.example"],
    )
    with TestClient(create_app(settings)) as test_client:
        wait_ready(test_client)
        yield test_client


def test_api_keys_guard_every_route_but_the_probes_and_docs(keyed: TestClient) -> None:
    response = keyed.post("/activate", json={"function": "relu", "x": 1})
    assert_refused(response, 401, "Authorization: Bearer <key> or X-API-Key: <key>")
    assert response.headers["www-authenticate"] == 'Bearer realm="relu-serve"'
    wrong = keyed.get("/model", headers={"x-api-key": KEY[:-1] + "x"})
    assert wrong.status_code == 401
    assert keyed.get("/model", headers={"authorization": f"Bearer {KEY}"}).status_code == 200
    assert keyed.get("/model", headers={"x-api-key": "f" * 20}).status_code == 200
    for path in ("/healthz", "/readyz", "/docs", "/openapi.json"):
        assert keyed.get(path).status_code == 200, path


def test_the_openapi_document_requires_a_key_when_keys_are_set(
    keyed: TestClient, client: TestClient
) -> None:
    document = keyed.get("/openapi.json").json()
    assert set(document["components"]["securitySchemes"]) == {"bearer", "apiKey"}
    predict = document["paths"]["/predict"]["post"]
    assert predict["security"] == [{"bearer": []}, {"apiKey": []}]
    assert "401" in predict["responses"]
    assert "security" not in document["paths"]["/healthz"]["get"]
    assert "security" not in client.get("/openapi.json").json()["paths"]["/predict"]["post"]


def test_cors_answers_only_the_allowed_origins(keyed: TestClient) -> None:
    preflight = {"origin": "https://app.example", "access-control-request-method": "POST"}
    response = keyed.options("/predict", headers=preflight)
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "https://app.example"
    other = keyed.options("/predict", headers={**preflight, "origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers


def test_offloaded_work_past_the_deadline_is_504(dry_run_model: Path) -> None:
    settings = Settings(model_path=dry_run_model, request_timeout_ms=1)
    with TestClient(create_app(settings)) as slow:
        wait_ready(slow)
        body = npy(np.linspace(-5, 5, 2_000_000))  # 16 MB: decoded and computed in a thread
        response = slow.post("/activate?function=gelu", content=body, headers=NPY)
    assert_refused(response, 504, "decoding and computing took more than 1 ms")
