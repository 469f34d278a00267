"""The v2 HTTP routes in process: each call's answer, the binary extension's framing and
compression on the wire, and the data plane's checks (tritonclient's view: test_v2_live.py)."""

from __future__ import annotations

import zlib

import numpy as np
import orjson
import pytest
from fastapi.testclient import TestClient

MODEL = "relu_cnn"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/v2/health/live", {"live": True}),
        ("/v2/health/ready", {"ready": True}),
        ("/v2/models/relu/ready", {"name": "relu", "ready": True}),
        (f"/v2/models/{MODEL}/versions/1.0.0/ready", {"name": MODEL, "ready": True}),
    ],
)
def test_probes(client: TestClient, path: str, expected: dict) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert response.json() == expected


def test_metadata_config_stats_and_index(client: TestClient) -> None:
    assert client.get("/v2").json()["name"] == "relu-serve"
    meta = client.get(f"/v2/models/{MODEL}/versions/1.0.0").json()
    assert meta["inputs"][0] == {"name": "input", "datatype": "FP32", "shape": [-1, 1, 8, 8]}
    prelu = client.get("/v2/models/prelu").json()
    assert [p["name"] for p in prelu["parameters"]] == ["weight"]
    assert client.get(f"/v2/models/{MODEL}/config").json()["max_batch_size"] == 16
    every = client.get("/v2/models/stats").json()["model_stats"]
    assert every[0]["name"] == MODEL
    one = client.get("/v2/models/relu/versions/1/stats").json()["model_stats"]
    assert [s["name"] for s in one] == ["relu"]
    index = client.post("/v2/repository/index").json()
    assert {"name": "gelu", "version": "1", "state": "READY"} in index


def binary_request(x: np.ndarray, **extra: object) -> tuple[bytes, dict[str, str]]:
    header = orjson.dumps(
        {
            "inputs": [
                {
                    "name": "input",
                    "shape": list(x.shape),
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": x.nbytes},
                }
            ],
            "outputs": [{"name": "logits", "parameters": {"binary_data": True}}],
            **extra,
        }
    )
    return header + x.tobytes(), {"inference-header-content-length": str(len(header))}


def test_binary_in_binary_out_compressed_both_ways(client: TestClient) -> None:
    x = np.full((2, 1, 8, 8), 4.0, np.float32)
    body, headers = binary_request(x, id="b1")
    response = client.post(
        f"/v2/models/{MODEL}/infer",
        content=zlib.compress(body),
        headers={**headers, "content-encoding": "deflate", "accept-encoding": "gzip"},
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-encoding"] == "gzip"
    assert response.headers["content-type"] == "application/octet-stream"
    raw = response.content  # httpx undoes the gzip
    length = int(response.headers["inference-header-content-length"])
    header = orjson.loads(raw[:length])
    assert header["id"] == "b1"
    assert header["outputs"][0]["parameters"] == {"binary_data_size": 80}
    logits = np.frombuffer(raw[length:], "<f4").reshape(2, 10)
    plain, plain_headers = binary_request(x)
    again = client.post(f"/v2/models/{MODEL}/infer", content=plain, headers=plain_headers)
    np.testing.assert_array_equal(np.frombuffer(again.content[-80:], "<f4").reshape(2, 10), logits)


@pytest.mark.parametrize(
    ("model", "body", "message"),
    [
        (
            "relu",
            {
                "inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1]}],
                "outputs": [{"name": "soft"}],
            },
            "unknown output 'soft' for model relu; its outputs: value, grad, vjp",
        ),
        (
            "relu",
            {"inputs": [{"name": "x", "shape": [1], "datatype": "INT32", "data": [1]}]},
            "input x of relu has datatype 'INT32'; send FP32 or FP64",
        ),
        (
            "relu",
            {
                "inputs": [{"name": "x", "shape": [2], "datatype": "FP32", "data": [1, 2]}],
                "outputs": [{"name": "value", "parameters": {"classification": 3}}],
            },
            "classification must be between 1 and 2, got 3",
        ),
        (
            "relu",
            {"inputs": [{"name": "grad_output", "shape": [1], "datatype": "FP32", "data": [1]}]},
            "model relu needs the input x",
        ),
        (
            "prelu",
            {
                "parameters": {"weight": "[0.1, "},
                "inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1]}],
            },
            "parameter 'weight': '[0.1, ' is not a JSON list",
        ),
        (
            MODEL,
            {
                "parameters": {"top_k": 2},
                "inputs": [
                    {"name": "input", "shape": [8, 8], "datatype": "FP32", "data": [0] * 64}
                ],
            },
            "unknown parameter 'top_k' for model relu_cnn; valid parameters: normalized, invert",
        ),
        (
            MODEL,
            {"inputs": [{"name": "images", "shape": [1], "datatype": "FP32", "data": [0]}]},
            "input images holds image files: its datatype must be BYTES",
        ),
        (
            MODEL,
            {
                "inputs": [
                    {"name": "images", "shape": [1], "datatype": "BYTES", "data": ["not a png"]}
                ]
            },
            "images[0]: not a readable image",
        ),
        (
            MODEL,
            {
                "inputs": [
                    {"name": "input", "shape": [8, 8], "datatype": "FP32", "data": [0] * 64},
                    {"name": "images", "shape": [1], "datatype": "BYTES", "data": ["x"]},
                ]
            },
            "send one input: input (pixels) or images (image files)",
        ),
        (
            MODEL,
            {"inputs": [{"name": "input", "shape": [8, 8], "datatype": "FP32", "data": [99] * 64}]},
            "outside the model's raw range 0..16",
        ),
    ],
)
def test_the_data_planes_checks(client: TestClient, model: str, body: dict, message: str) -> None:
    response = client.post(f"/v2/models/{model}/infer", json=body)
    assert response.status_code == 400, response.text
    assert message in response.json()["error"]


def test_prelu_weight_as_json_text_and_normalized_pixels(client: TestClient) -> None:
    body = {
        "parameters": {"weight": "[0.5]"},
        "inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP64", "data": [[-2.0, 3.0]]}],
    }
    answer = client.post("/v2/models/prelu/infer", json=body).json()
    assert answer["outputs"][0]["data"] == [-1.0, 3.0]
    pixels = {
        "parameters": {"normalized": True},
        "inputs": [{"name": "input", "shape": [8, 8], "datatype": "FP64", "data": [-5.0] * 64}],
    }
    assert client.post(f"/v2/models/{MODEL}/infer", json=pixels).status_code == 200
