"""POST /predict refuses every bad input with a clear 4xx and {"detail"}; the service stays up."""

from __future__ import annotations

import asyncio
import io
import json
import struct
import zlib
from collections.abc import MutableMapping
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from service.api.schemas.predict import ZERO
from service.app import create_app
from service.classifier.model import Classifier
from service.config import Settings
from tests.api.conftest import LIMITS

NPY = {"content-type": "application/x-npy"}
SHAPE_RULE = "expected (H, W), (N, H, W) or (N, 1, H, W) with H=8, W=8"


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def png(width: int = 8, height: int = 8) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (width, height), 0).save(buffer, "PNG")
    return buffer.getvalue()


def bomb(width: int, height: int) -> bytes:
    """A small valid PNG whose header claims ``width`` x ``height`` pixels."""
    data = bytearray(png())
    ihdr = 8 + 8  # signature, then length + type of the IHDR chunk
    data[ihdr : ihdr + 8] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(data[12 : ihdr + 13]))
    data[ihdr + 13 : ihdr + 17] = struct.pack(">I", crc)
    return bytes(data)


def detail(response) -> str:  # type: ignore[no-untyped-def]
    body = response.json()
    assert set(body) == {"detail", "request_id"}, body
    assert body["request_id"] == response.headers["x-request-id"]
    return body["detail"]


def assert_error(response, status: int, *fragments: str) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    message = detail(response)
    for fragment in fragments:
        assert fragment in message, message
    assert "Traceback" not in message
    assert "/tmp" not in message


@pytest.mark.parametrize(
    ("body", "fragments"),
    [
        (b'{"inputs": [1, 2', ("malformed JSON",)),
        (b'{"inputs": [[NaN]]}', ("malformed JSON", "NaN")),
        (b'{"inputs": [[Infinity]]}', ("malformed JSON", "Infinity")),
        (b"[1, 2, 3]", ('must be an object with "inputs"',)),
        (b'{"images": []}', ('must be an object with "inputs"',)),
    ],
)
def test_malformed_json(client: TestClient, body: bytes, fragments: tuple[str, ...]) -> None:
    response = client.post("/predict", content=body, headers={"content-type": "application/json"})
    assert_error(response, 422, *fragments)


@pytest.mark.parametrize(
    ("inputs", "fragments"),
    [
        ([[1, 2], [3]], ("inputs is ragged", "inputs[1] has length 1")),
        ([[0] * 8] * 7 + [[0, "a", 0, 0, 0, 0, 0, 0]], ("inputs[7][1] is a string",)),
        ([[0] * 8] * 7 + [[0, None, 0, 0, 0, 0, 0, 0]], ("inputs[7][1]", "null")),
        ([[0] * 8] * 7 + [[0, True, 0, 0, 0, 0, 0, 0]], ("inputs[7][1]", "boolean")),
    ],
)
def test_ragged_lists_strings_nulls(
    client: TestClient, inputs: list, fragments: tuple[str, ...]
) -> None:
    assert_error(client.post("/predict", json={"inputs": inputs}), 422, *fragments)


@pytest.mark.parametrize(
    ("shape", "fragment"),
    [
        ((8,), "rank 1"),
        ((1, 1, 1, 8, 8), "rank 5"),
        ((8, 7), "image shape [1, 8, 7]"),
        ((2, 28, 28), "image shape [1, 28, 28]"),
        ((2, 3, 8, 8), "image shape [3, 8, 8]"),
    ],
)
def test_wrong_rank_or_size_names_the_expected_shape(
    client: TestClient, shape: tuple[int, ...], fragment: str
) -> None:
    inputs = np.zeros(shape, dtype=np.float32)
    assert_error(
        client.post("/predict", json={"inputs": inputs.tolist()}), 422, fragment, SHAPE_RULE
    )
    assert_error(client.post("/predict", content=npy(inputs), headers=NPY), 422, fragment)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_in_npy(client: TestClient, value: float) -> None:
    inputs = np.zeros((2, 8, 8), dtype=np.float32)
    inputs[1, 3, 4] = value
    response = client.post("/predict", content=npy(inputs), headers=NPY)
    assert_error(response, 422, "NaN or Infinity")


def test_float64_npy_beyond_float32_is_refused_as_infinite(client: TestClient) -> None:
    """float64 values past float32's range would reach the model as inf: a 422, not a 500
    (raw values are out of the model's range first; normalised ones become infinite)."""
    inputs = np.zeros((2, 8, 8))
    inputs[1, 2, 3] = 1e300
    response = client.post("/predict", content=npy(inputs), headers=NPY)
    assert_error(response, 422, "values from 0 to 1e+300, outside the model's raw range 0..16")
    response = client.post("/predict?normalized=true", content=npy(inputs), headers=NPY)
    assert_error(response, 422, "NaN or Infinity")


RANGE_RULE = "outside the model's raw range 0..16 (GET /model: input_range); scale them into 0..16"


@pytest.mark.parametrize(("value", "shown"), [(255.0, "0 to 255"), (-0.5, "-0.5 to 0")])
def test_values_outside_the_raw_range_are_refused(
    client: TestClient, value: float, shown: str
) -> None:
    """0..255 pixels sent to the 0..16 digits model: a 422 naming the range, not a confident
    answer; the same for JSON and .npy."""
    inputs = np.zeros((2, 8, 8), dtype=np.float32)
    inputs[1, 3, 3] = value
    for response in (
        client.post("/predict", json={"inputs": inputs.tolist()}),
        client.post("/predict", content=npy(inputs), headers=NPY),
    ):
        assert_error(response, 422, f"inputs hold values from {shown}, {RANGE_RULE}")
        assert "normalized=true" in detail(response)


def test_uint8_npy_of_pixels_is_refused(client: TestClient) -> None:
    response = client.post("/predict", content=npy(np.full((8, 8), 200, np.uint8)), headers=NPY)
    assert_error(response, 422, "values from 200 to 200", RANGE_RULE)


def test_the_range_is_inclusive_and_normalised_inputs_are_not_checked(client: TestClient) -> None:
    edges = np.zeros((8, 8), dtype=np.float32)
    edges[0, 0] = 16.0
    assert client.post("/predict", json={"inputs": edges.tolist()}).status_code == 200
    response = client.post("/predict", json={"inputs": (edges * 10).tolist(), "normalized": True})
    assert response.status_code == 200, response.text


def test_huge_json_number_is_out_of_float32_range(client: TestClient) -> None:
    inputs = np.zeros((8, 8)).tolist()
    inputs[2][2] = 1e300
    assert_error(client.post("/predict", json={"inputs": inputs}), 422, "inputs[2][2]", "float32")


@pytest.mark.parametrize("inputs", [[], [[]], [[[]]]])
def test_empty_batch_json(client: TestClient, inputs: list) -> None:
    assert_error(client.post("/predict", json={"inputs": inputs}), 422, "no images")


def test_empty_batch_npy(client: TestClient) -> None:
    response = client.post("/predict", content=npy(np.zeros((0, 8, 8), np.float32)), headers=NPY)
    assert_error(response, 422, "no images", "[0, 8, 8]")


def test_more_images_than_the_limit(client: TestClient) -> None:
    limit = LIMITS["max_images"]
    inputs = np.zeros((limit + 1, 8, 8), dtype=np.uint8)
    rule = f"exceeds the limit of {limit}"
    assert_error(client.post("/predict", json={"inputs": inputs.tolist()}), 413, "17 images", rule)
    assert_error(client.post("/predict", content=npy(inputs), headers=NPY), 413, "17 images", rule)
    files = [("files", (f"{i}.png", png(), "image/png")) for i in range(limit + 1)]
    assert_error(client.post("/predict", files=files), 413, f"more than {limit} images")
    ok = [("files", (f"{i}.png", png(), "image/png")) for i in range(limit)]
    assert client.post("/predict", files=ok).status_code == 200


def test_body_over_the_limit_is_refused_by_its_length(client: TestClient) -> None:
    limit = LIMITS["max_body_bytes"]
    response = client.post("/predict", content=b"0" * (limit + 1), headers=NPY)
    assert_error(response, 413, f"exceeds the limit of {limit} bytes")


def test_streamed_body_over_the_limit_is_cut_before_it_is_read_whole(
    classifier_settings: Settings, classifier: Classifier
) -> None:
    """Without Content-Length the app stops pulling body chunks once the limit is passed."""
    app = create_app(classifier_settings, classifier=classifier)  # driven over raw ASGI
    limit = LIMITS["max_body_bytes"]
    chunk, pulled = 4096, 0
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict:
        nonlocal pulled
        pulled += 1
        return {"type": "http.request", "body": b"0" * chunk, "more_body": pulled < 100}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/predict",
        "raw_path": b"/predict",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/x-npy"), (b"host", b"test")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
        "state": {},
    }
    asyncio.run(app(scope, receive, send))
    assert sent[0]["status"] == 413
    body = b"".join(m.get("body", b"") for m in sent[1:])
    assert json.loads(body)["detail"] == f"the request body exceeds the limit of {limit} bytes"
    assert pulled == limit // chunk + 1  # not one chunk more than needed to pass the limit


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", "image/png", ""])
def test_unsupported_content_type(client: TestClient, content_type: str) -> None:
    response = client.post("/predict", content=b"abc", headers={"content-type": content_type})
    assert_error(
        response, 415, "is not accepted", "application/json", "multipart/form-data", "x-npy"
    )


def test_file_that_is_not_an_image(client: TestClient) -> None:
    files = [("files", ("notes.txt", b"hello, not an image", "text/plain"))]
    assert_error(client.post("/predict", files=files), 415, "notes.txt: not a readable image")


def test_truncated_image(client: TestClient) -> None:
    buffer = io.BytesIO()
    Image.effect_noise((64, 64), 64).convert("L").save(buffer, "PNG")
    files = [("files", ("cut.png", buffer.getvalue()[:200], "image/png"))]
    assert_error(client.post("/predict", files=files), 422, "cut.png", "truncated or corrupt")


def test_empty_file(client: TestClient) -> None:
    files = [("files", ("empty.png", b"", "image/png"))]
    assert_error(client.post("/predict", files=files), 422, "empty.png: the file is empty")


@pytest.mark.parametrize(
    ("width", "height", "fragment"),
    [
        (1000, 1000, "bomb.png: 1000x1000 pixels exceeds the limit of 65536 pixels"),
        # So large that Pillow itself refuses to open it; the message stays ours.
        (50_000, 50_000, "bomb.png: the declared image size exceeds the limit of 65536 pixels"),
    ],
)
def test_decompression_bomb_is_refused_before_decoding(
    client: TestClient, width: int, height: int, fragment: str
) -> None:
    # The pixel data is that of an 8x8 image: decoding it would fail as truncated (422), so a
    # 413 naming the size shows the header was judged before any decompression.
    assert LIMITS["max_image_pixels"] == 65536
    data = bomb(width, height)
    assert len(data) < 200
    files = [("files", ("bomb.png", data, "image/png"))]
    assert_error(client.post("/predict", files=files), 413, fragment)


def test_multipart_without_files(client: TestClient) -> None:
    # A multipart body holding only a text field.
    response = client.post(
        "/predict",
        content=b'--b\r\nContent-Disposition: form-data; name="top_k"\r\n\r\n3\r\n--b--\r\n',
        headers={"content-type": "multipart/form-data; boundary=b"},
    )
    assert_error(response, 422, "holds no files")


def test_malformed_multipart(client: TestClient) -> None:
    response = client.post(
        "/predict", content=b"garbage", headers={"content-type": "multipart/form-data"}
    )
    assert_error(response, 422, "malformed multipart body")


@pytest.mark.parametrize("top_k", [0, -1, 11, 1000])
def test_top_k_out_of_range(client: TestClient, top_k: int) -> None:
    rule = f"top_k must be between 1 and 10 (the labels), got {top_k}"
    assert_error(client.post("/predict", json={"inputs": ZERO, "top_k": top_k}), 422, rule)
    response = client.post(f"/predict?top_k={top_k}", content=npy(np.zeros((8, 8))), headers=NPY)
    assert_error(response, 422, rule)
    files = [("files", ("x.png", png(), "image/png"))]
    assert_error(client.post("/predict", files=files, data={"top_k": str(top_k)}), 422, rule)


def test_top_k_not_an_integer(client: TestClient) -> None:
    response = client.post("/predict", json={"inputs": ZERO, "top_k": "three"})
    assert_error(response, 422, "top_k", "valid integer", "'three'")
    response = client.post("/predict?top_k=three", json={"inputs": ZERO})
    assert_error(response, 422, "top_k", "whole number")


@pytest.mark.parametrize(
    ("options", "query"),
    [({"top_k": True}, ""), ({"top_k": 3.0}, ""), ({"top_k": "3"}, ""), ({}, "?top_k=3.0")],
)
def test_an_integer_option_takes_integers_only(client: TestClient, options, query) -> None:
    response = client.post(f"/predict{query}", json={"inputs": ZERO, **options})
    assert_error(response, 422, "top_k: Input should be a ")


def test_logits_that_are_not_finite_are_422_not_a_null_confidence(client: TestClient) -> None:
    huge = np.full((8, 8), -3e38).tolist()  # finite in, NaN logits out (inf - inf inside)
    response = client.post("/predict", json={"inputs": huge, "normalized": True})
    assert_error(response, 422, "logits for image 0 are not finite", "normalized=true")


def test_unknown_option(client: TestClient) -> None:
    response = client.post("/predict", json={"inputs": ZERO, "topk": 3})
    assert_error(response, 422, "unknown option 'topk'", "top_k")


def test_options_that_do_not_apply(client: TestClient) -> None:
    response = client.post("/predict", json={"inputs": ZERO, "invert": True})
    assert_error(response, 422, "invert applies to image files")
    files = [("files", ("x.png", png(), "image/png"))]
    response = client.post("/predict", files=files, data={"normalized": "true"})
    assert_error(response, 422, "normalized applies to JSON and .npy")


@pytest.mark.parametrize(
    ("body", "fragments"),
    [
        (npy(np.zeros((8, 8), np.int64)), ("dtype int64", "float32, float64, uint8")),
        (b"not an npy file at all", ("not a valid .npy file",)),
        (npy(np.zeros((8, 8), np.float32))[:-10], ("truncated or padded",)),
    ],
)
def test_bad_npy(client: TestClient, body: bytes, fragments: tuple[str, ...]) -> None:
    assert_error(client.post("/predict", content=body, headers=NPY), 422, *fragments)


def test_service_stays_up_after_bad_input(client: TestClient) -> None:
    client.post("/predict", content=b"{", headers={"content-type": "application/json"})
    client.post("/predict", files=[("files", ("b.png", bomb(90_000, 90_000), "image/png"))])
    assert client.get("/readyz").status_code == 200
    assert client.post("/predict", json={"inputs": ZERO}).status_code == 200
