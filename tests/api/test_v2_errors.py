"""v2 errors from every layer are readable by tritonclient: API keys (HTTP and gRPC), body limits,
unknown routes, bad framing; and the data plane before the model is loaded."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
import numpy as np
import pytest
import tritonclient.grpc as triton_grpc
import tritonclient.http as triton_http
from tritonclient.utils import InferenceServerException

from service.config import Settings
from service.errors import NotFound, NotReady
from service.runtime import Runtime
from service.v2.dataplane import DataPlane
from tests.live_server import free_port, live_server

KEY = "v2-test-key-0123456789"
MAX_BODY = 64 * 1024


@dataclass
class Server:
    base: str
    grpc: str


@pytest.fixture(scope="module")
def server(dry_run_model: Path) -> Iterator[Server]:
    port = free_port()
    with live_server(
        dry_run_model, grpc_port=str(port), api_keys=KEY, max_body_bytes=str(MAX_BODY)
    ) as base:
        yield Server(base, f"127.0.0.1:{port}")


def relu_input(module, size: int = 3):
    tensor = module.InferInput("x", [size], "FP32")
    tensor.set_data_from_numpy(np.ones(size, np.float32))
    return tensor


@pytest.mark.slow
def test_http_api_keys_are_enforced_with_a_readable_error(server: Server) -> None:
    client = triton_http.InferenceServerClient(server.base.removeprefix("http://"))
    assert client.is_server_live()  # the probes stay open
    assert client.is_server_ready()
    with pytest.raises(InferenceServerException, match=r"\[401\] an API key is required"):
        client.infer("relu", [relu_input(triton_http)])
    with pytest.raises(InferenceServerException, match=r"\[401\] an API key is required"):
        client.get_model_metadata("relu")
    result = client.infer("relu", [relu_input(triton_http)], headers={"x-api-key": KEY})
    np.testing.assert_array_equal(result.as_numpy("value"), np.ones(3, np.float32))


@pytest.mark.slow
def test_grpc_api_keys_are_enforced(server: Server) -> None:
    client = triton_grpc.InferenceServerClient(server.grpc)
    assert client.is_server_live()
    assert client.is_server_ready()
    with pytest.raises(InferenceServerException, match="an API key is required") as error:
        client.infer("relu", [relu_input(triton_grpc)])
    assert error.value.status() == str(grpc.StatusCode.UNAUTHENTICATED)
    for headers in ({"x-api-key": KEY}, {"authorization": f"Bearer {KEY}"}):
        result = client.infer("relu", [relu_input(triton_grpc)], headers=headers)
        np.testing.assert_array_equal(result.as_numpy("value"), np.ones(3, np.float32))
    with pytest.raises(InferenceServerException, match="an API key is required"):
        client.infer(
            "relu", [relu_input(triton_grpc)], headers={"x-api-key": "wrong-key-0123456789"}
        )


@pytest.mark.slow
def test_body_limits_answer_v2_errors(server: Server) -> None:
    client = triton_http.InferenceServerClient(server.base.removeprefix("http://"))
    big = relu_input(triton_http, MAX_BODY // 4 + 100)
    with pytest.raises(
        InferenceServerException, match=r"\[413\] the request body exceeds the limit of 65536"
    ):
        client.infer("relu", [big], headers={"x-api-key": KEY})
    grpc_client = triton_grpc.InferenceServerClient(server.grpc)
    with pytest.raises(InferenceServerException) as error:
        grpc_client.infer(
            "relu", [relu_input(triton_grpc, MAX_BODY // 4 + 100)], headers={"x-api-key": KEY}
        )
    assert error.value.status() == str(grpc.StatusCode.RESOURCE_EXHAUSTED)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("method", "path", "headers", "content", "status", "message"),
    [
        ("GET", "/v2/models/relu/nothing", {}, b"", 404, "Not Found"),
        ("GET", "/v2/models/relu/infer", {}, b"", 405, "Method Not Allowed"),
        ("GET", "/v2/models/resnet", {}, b"", 404, "unknown model 'resnet'"),
        ("GET", "/v2/models/relu/versions/2/config", {}, b"", 404, "model relu has no version '2'"),
        (
            "POST",
            "/v2/models/relu/infer",
            {"inference-header-content-length": "abc"},
            b"{}",
            400,
            "Inference-Header-Content-Length must be a byte count",
        ),
        (  # a Latin-1 digit that is not ASCII: a 400, not int()'s ValueError
            "POST",
            "/v2/models/relu/infer",
            {"inference-header-content-length": b"\xb2"},
            b"{}",
            400,
            "Inference-Header-Content-Length must be a byte count, got '\xb2'",
        ),
        (
            "POST",
            "/v2/models/relu/infer",
            {},
            b'{"inputs": "x"}',
            400,
            "'inputs' must be a list, got 'x'",
        ),
        (
            "POST",
            "/v2/models/relu/infer",
            {"inference-header-content-length": "99"},
            b"{}",
            400,
            "Inference-Header-Content-Length 99 is outside the body's 0..2 bytes",
        ),
        (
            "POST",
            "/v2/models/relu/infer",
            {"content-encoding": "gzip"},
            gzip.compress(b" " * (MAX_BODY * 4)),
            413,
            "the request body inflates past the limit of 65536 bytes",
        ),
        (
            "POST",
            "/v2/models/relu/infer",
            {"content-encoding": "br"},
            b"{}",
            400,
            "Content-Encoding 'br' is not supported; use gzip or deflate",
        ),
        (
            "POST",
            "/v2/models/relu/infer",
            {},
            b'{"inputs": []}',
            400,
            '"inputs" must list at least one',
        ),
    ],
)
def test_errors_of_every_layer_carry_error(server, method, path, headers, content, status, message):
    response = httpx.request(
        method,
        server.base + path,
        headers={"x-api-key": KEY, **headers},
        content=content,
        timeout=30,
    )
    assert response.status_code == status, response.text
    assert message in response.json()["error"]


def test_the_data_plane_before_the_model_is_loaded(tmp_path: Path) -> None:
    plane = DataPlane(Runtime(Settings(model_path=tmp_path / "none.onnx")))
    assert plane.live()
    assert not plane.ready()
    assert plane.model_ready("relu")  # the activations need no model
    with pytest.raises(NotReady, match="not ready: the application has not started"):
        plane.model("relu_cnn")
    with pytest.raises(NotFound, match="model relu has no version '2'; versions: 1"):
        plane.model("relu", "2")
    assert [m["name"] for m in plane.repository_index()][:2] == ["celu", "elu"]
