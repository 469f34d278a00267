"""The KServe v2 protocol with the stock tritonclient, over HTTP and gRPC, against a live server.

Each call runs over both transports (the ``v2`` fixture); answers are compared with what
/predict and /activate give for the same data, bit for bit.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import numpy as np
import pytest
import tritonclient.grpc as triton_grpc
import tritonclient.http as triton_http
from PIL import Image
from tritonclient.utils import InferenceServerException

from tests.live_server import free_port, live_server

pytestmark = pytest.mark.slow
MODEL = "relu_cnn"


@dataclass
class Server:
    base: str
    grpc: str


@dataclass
class V2:
    """One transport: tritonclient's module and a client of the live server."""

    name: str
    module: ModuleType
    client: Any

    def input(self, name: str, array: np.ndarray, datatype: str, binary: bool = True) -> Any:
        tensor = self.module.InferInput(name, list(array.shape), datatype)
        if self.name == "http":
            tensor.set_data_from_numpy(array, binary_data=binary)
        else:
            tensor.set_data_from_numpy(array)
        return tensor

    def output(self, name: str, binary: bool = True, class_count: int = 0) -> Any:
        if self.name == "http":
            return self.module.InferRequestedOutput(
                name, binary_data=binary, class_count=class_count
            )
        return self.module.InferRequestedOutput(name, class_count=class_count)

    def json(self, answer: Any) -> dict[str, Any]:
        """A metadata answer as a dict (gRPC: int64 fields come back as text)."""
        if self.name == "http":
            return answer
        from google.protobuf.json_format import MessageToDict

        return MessageToDict(answer, preserving_proto_field_name=True)


@pytest.fixture(scope="module")
def server(dry_run_model: Path) -> Iterator[Server]:
    port = free_port()
    with live_server(dry_run_model, grpc_port=str(port), max_images="64") as base:
        yield Server(base, f"127.0.0.1:{port}")


@pytest.fixture(params=["http", "grpc"])
def v2(request: pytest.FixtureRequest, server: Server) -> Iterator[V2]:
    if request.param == "http":
        client = triton_http.InferenceServerClient(server.base.removeprefix("http://"))
        yield V2("http", triton_http, client)
    else:
        client = triton_grpc.InferenceServerClient(server.grpc)
        yield V2("grpc", triton_grpc, client)
    client.close()


def digits(count: int = 2) -> np.ndarray:
    return np.random.default_rng(7).uniform(0, 16, (count, 1, 8, 8)).astype(np.float32)


def predicted_logits(server: Server, images: np.ndarray) -> np.ndarray:
    body = {"inputs": images.tolist(), "return_logits": True}
    answer = httpx.post(f"{server.base}/predict", json=body, timeout=30).json()
    return np.array([p["logits"] for p in answer["predictions"]], dtype=np.float32)


def test_health_and_readiness(v2: V2) -> None:
    assert v2.client.is_server_live()
    assert v2.client.is_server_ready()
    assert v2.client.is_model_ready(MODEL)
    assert v2.client.is_model_ready(MODEL, "1.0.0")
    assert v2.client.is_model_ready("gelu")


def test_server_and_model_metadata(v2: V2) -> None:
    server = v2.json(v2.client.get_server_metadata())
    assert server["name"] == "relu-serve"
    assert {"binary_tensor_data", "classification", "model_configuration", "statistics"} <= set(
        server["extensions"]
    )
    meta = v2.json(v2.client.get_model_metadata(MODEL))
    assert meta["platform"] == "onnxruntime_onnx"
    assert meta["versions"] == ["1.0.0"]
    inputs = {t["name"]: t for t in meta["inputs"]}
    assert [int(s) for s in inputs["input"]["shape"]] == [-1, 1, 8, 8]
    assert inputs["images"]["datatype"] == "BYTES"
    gelu = v2.json(v2.client.get_model_metadata("gelu"))
    assert [t["name"] for t in gelu["inputs"]] == ["x", "grad_output"]
    assert [t["name"] for t in gelu["outputs"]] == ["value", "grad", "vjp"]


def test_model_config_drops_the_batch_dim(v2: V2) -> None:
    config = v2.json(v2.client.get_model_config(MODEL))
    config = config.get("config", config)
    assert int(config["max_batch_size"]) == 64
    assert [int(d) for d in config["input"][0]["dims"]] == [1, 8, 8]
    assert [int(d) for d in config["output"][0]["dims"]] == [10]
    assert "dynamic_batching" in config


@pytest.mark.parametrize(("binary_in", "binary_out"), [(True, True), (False, False), (False, True)])
def test_infer_gives_predicts_logits_bit_for_bit(v2, server, binary_in, binary_out) -> None:
    if v2.name == "grpc" and not (binary_in and binary_out):
        pytest.skip("gRPC tensors are always raw bytes")
    images = digits(3)
    result = v2.client.infer(
        MODEL,
        [v2.input("input", images, "FP32", binary_in)],
        outputs=[v2.output("logits", binary_out), v2.output("probabilities", binary_out)],
        request_id="req-9",
    )
    logits = result.as_numpy("logits")
    assert logits.dtype == np.float32
    assert logits.shape == (3, 10)
    np.testing.assert_array_equal(logits, predicted_logits(server, images))
    np.testing.assert_allclose(result.as_numpy("probabilities").sum(axis=1), 1.0, rtol=1e-5)
    response = result.get_response()
    assert (response["id"] if v2.name == "http" else response.id) == "req-9"


@pytest.mark.parametrize("binary", [True, False])
def test_classification_extension(v2, server, binary) -> None:
    images = digits(2)
    result = v2.client.infer(
        MODEL,
        [v2.input("input", images, "FP32")],
        outputs=[v2.output("logits", binary, class_count=3)],
    )
    top = result.as_numpy("logits")
    assert top.shape == (2, 3)
    logits = predicted_logits(server, images)
    for row, entries in zip(logits, top, strict=True):
        parsed = [e.decode().split(":") if isinstance(e, bytes) else e.split(":") for e in entries]
        assert [int(p[1]) for p in parsed] == list(np.argsort(-row, kind="stable")[:3])
        assert [p[2] for p in parsed] == [p[1] for p in parsed]  # the digits' labels
        assert float(parsed[0][0]) == pytest.approx(float(row.max()), abs=1e-6)


def test_versioned_path_and_a_wrong_version(v2: V2) -> None:
    images = digits(1)
    result = v2.client.infer(MODEL, [v2.input("input", images, "FP32")], model_version="1.0.0")
    assert result.as_numpy("logits").shape == (1, 10)
    with pytest.raises(
        InferenceServerException, match="model relu_cnn has no version '7'"
    ) as error:
        v2.client.infer(MODEL, [v2.input("input", images, "FP32")], model_version="7")
    assert error.value.status() in ("404", "StatusCode.NOT_FOUND")


def test_unknown_model(v2: V2) -> None:
    x = v2.input("x", np.zeros(2, np.float32), "FP32")
    with pytest.raises(
        InferenceServerException, match="unknown model 'resnet'; models: relu_cnn, "
    ) as error:
        v2.client.infer("resnet", [x])
    assert error.value.status() in ("404", "StatusCode.NOT_FOUND")


def test_a_wrong_shape_raises_with_our_message(v2: V2) -> None:
    wrong = np.zeros((2, 7, 7), np.float32)
    with pytest.raises(
        InferenceServerException, match="inputs have image shape \\[1, 7, 7\\]"
    ) as error:
        v2.client.infer(MODEL, [v2.input("input", wrong, "FP32")])
    assert error.value.status() in ("400", "StatusCode.INVALID_ARGUMENT")


@pytest.mark.parametrize(("dtype", "datatype"), [(np.float32, "FP32"), (np.float64, "FP64")])
def test_an_activation_with_parameters_matches_activate_bit_for_bit(v2, server, dtype, datatype):
    x = np.array([[-2.5, -0.1, 0.0], [0.3, 1.7, 40.0]], dtype=dtype)
    g = np.array([[1.0, -2.0, 0.5], [3.0, 0.25, -1.0]], dtype=dtype)
    result = v2.client.infer(
        "gelu",
        [v2.input("x", x, datatype), v2.input("grad_output", g, datatype)],
        outputs=[v2.output(name) for name in ("value", "grad", "vjp")],
        parameters={"approximate": "tanh"},
    )
    body = {
        "function": "gelu",
        "params": {"approximate": "tanh"},
        "x": x.tolist(),
        "grad_output": g.tolist(),
        "dtype": np.dtype(dtype).name,
        "outputs": ["value", "grad", "vjp"],
    }
    expected = httpx.post(f"{server.base}/activate", json=body, timeout=30).json()
    for name in ("value", "grad", "vjp"):
        got = result.as_numpy(name)
        assert got.dtype == dtype
        np.testing.assert_array_equal(got, np.array(expected[name], dtype=dtype))


def test_activation_parameters_are_validated_as_activate_does(v2: V2) -> None:
    x = v2.input("x", np.zeros(2, np.float32), "FP32")
    with pytest.raises(InferenceServerException, match="gelu: approximate='fast' is invalid"):
        v2.client.infer("gelu", [x], parameters={"approximate": "fast"})
    with pytest.raises(InferenceServerException, match="unknown parameter 'alpha' for relu"):
        v2.client.infer("relu", [x], parameters={"alpha": 1})


def test_image_files_as_bytes_match_predict_uploads(v2, server) -> None:
    canvas = np.zeros((40, 30), np.uint8)
    canvas[5:35, 12:18] = 255
    buffer = io.BytesIO()
    Image.fromarray(canvas).save(buffer, "PNG")
    png = buffer.getvalue()
    files = np.array([png, png], dtype=np.object_)
    result = v2.client.infer(MODEL, [v2.input("images", files, "BYTES")])
    upload = httpx.post(
        f"{server.base}/predict?return_logits=true",
        files=[("files", ("a.png", png, "image/png"))],
        timeout=30,
    ).json()
    np.testing.assert_array_equal(
        result.as_numpy("logits")[0], np.array(upload["predictions"][0]["logits"], np.float32)
    )


def test_statistics_count_successes_and_failures(v2: V2) -> None:
    def stats() -> dict[str, Any]:
        document = v2.json(v2.client.get_inference_statistics("relu"))
        return document["model_stats"][0]["inference_stats"]

    before = stats()
    x = v2.input("x", np.ones(3, np.float32), "FP32")
    v2.client.infer("relu", [x])
    with pytest.raises(InferenceServerException):
        v2.client.infer("relu", [x], parameters={"alpha": 1})
    after = stats()
    for phase, grown in (("success", 1), ("fail", 1), ("compute_infer", 1)):
        assert int(after[phase].get("count", 0)) == int(before[phase].get("count", 0)) + grown
    assert int(after["success"]["ns"]) > int(before["success"].get("ns", 0))


def test_repository_index_lists_every_model(v2: V2) -> None:
    index = v2.client.get_model_repository_index()
    models = index if v2.name == "http" else v2.json(index)["models"]
    names = [m["name"] for m in models]
    assert names[0] == MODEL
    assert {"relu", "gelu", "softmax", "swish"} <= set(names)
    assert all(m["state"] == "READY" for m in models)


@pytest.mark.parametrize("coding", ["gzip", "deflate"])
def test_compression_both_ways(v2: V2, coding: str) -> None:
    x = v2.input("x", np.linspace(-3, 3, 1000, dtype=np.float32), "FP32")
    if v2.name == "http":
        kwargs = {"request_compression_algorithm": coding, "response_compression_algorithm": coding}
    else:
        kwargs = {"compression_algorithm": coding}
    result = v2.client.infer("relu", [x], **kwargs)
    np.testing.assert_array_equal(
        result.as_numpy("value"), np.maximum(np.linspace(-3, 3, 1000, dtype=np.float32), 0)
    )
