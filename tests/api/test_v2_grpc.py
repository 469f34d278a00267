"""The gRPC transport in process (the app's lifespan starts it): typed contents, the messages'
edge cases and API keys, with our own messages and with the stock tritonclient."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
import tritonclient.grpc as triton_grpc
from fastapi.testclient import TestClient
from tritonclient.utils import InferenceServerException

from service.app import create_app
from service.classifier.model import Classifier
from service.config import Settings
from service.grpc.proto import relu_serve_v2_pb2 as pb
from tests.api.conftest import wait_ready
from tests.live_server import free_port

KEY = "grpc-test-key-0123456789"


@pytest.fixture(scope="module")
def address(dry_run_model: Path, classifier: Classifier) -> Iterator[str]:
    port = free_port()
    settings = Settings(model_path=dry_run_model, grpc_port=port, api_keys=KEY, max_images=16)
    with TestClient(create_app(settings, classifier=classifier)) as client:
        wait_ready(client)
        yield f"127.0.0.1:{port}"


@pytest.fixture
def infer(address: str) -> Iterator[grpc.UnaryUnaryMultiCallable]:
    with grpc.insecure_channel(address) as channel:
        yield channel.unary_unary(
            "/inference.GRPCInferenceService/ModelInfer",
            request_serializer=pb.ModelInferRequest.SerializeToString,
            response_deserializer=pb.ModelInferResponse.FromString,
        )


METADATA = (("x-api-key", KEY),)


def request(model: str, **parameters: object) -> pb.ModelInferRequest:
    message = pb.ModelInferRequest(model_name=model, id="t1")
    for key, value in parameters.items():
        field = {bool: "bool_param", int: "int64_param", float: "double_param"}.get(
            type(value), "string_param"
        )
        setattr(message.parameters[key], field, value)
    return message


def test_typed_contents_are_accepted_for_each_kind(infer) -> None:
    message = request("leaky_relu", negative_slope=0.25)
    message.inputs.add(name="x", datatype="FP64", shape=[2, 2]).contents.fp64_contents.extend(
        [-4.0, -1.0, 0.0, 2.0]
    )
    message.outputs.add(name="value")
    answer = infer(message, metadata=METADATA)
    assert answer.id == "t1"
    assert answer.outputs[0].datatype == "FP64"
    assert list(answer.outputs[0].shape) == [2, 2]
    value = np.frombuffer(answer.raw_output_contents[0], "<f8")
    np.testing.assert_array_equal(value, [-1.0, -0.25, 0.0, 2.0])


def test_pixels_as_int_contents_and_classification(infer) -> None:
    message = request("relu_cnn")
    pixels = message.inputs.add(name="input", datatype="INT32", shape=[1, 8, 8])
    pixels.contents.int_contents.extend([8] * 64)
    message.outputs.add(name="probabilities").parameters["classification"].int64_param = 2
    answer = infer(message, metadata=METADATA)
    assert list(answer.outputs[0].shape) == [1, 2]
    assert answer.outputs[0].datatype == "BYTES"


def _text_classification(message: pb.ModelInferRequest) -> None:
    message.inputs.add(name="x", datatype="FP32", shape=[1]).contents.fp32_contents.append(1)
    message.outputs.add(name="value").parameters["classification"].string_param = "3"


@pytest.mark.parametrize(
    ("build", "code", "message"),
    [
        (
            lambda m: (
                m.inputs.add(name="x", datatype="FP32", shape=[1]),
                m.raw_input_contents.extend([b"\0" * 4] * 2),
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "raw_input_contents has 2 entries for 1 inputs",
        ),
        (
            lambda m: m.inputs.add(name="x", datatype="FP16", shape=[1]),
            grpc.StatusCode.INVALID_ARGUMENT,
            "'FP16' has no typed contents; send it in raw_input_contents",
        ),
        (
            lambda m: m.inputs.add(name="x", datatype="FP32", shape=[2**31, 2**31]),
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "4611686018427387904 elements; the limit is",
        ),
        (
            lambda m: m.inputs.add(name="x", datatype="FP32", shape=[-1]),
            grpc.StatusCode.INVALID_ARGUMENT,
            "shape sizes must be integers >= 0",
        ),
        (
            _text_classification,
            grpc.StatusCode.INVALID_ARGUMENT,
            "classification must be an integer, got '3'",
        ),
        (
            lambda m: m.inputs.add(name="y", datatype="FP32", shape=[1]),
            grpc.StatusCode.INVALID_ARGUMENT,
            "unknown input 'y' for model relu; its inputs: x, grad_output",
        ),
    ],
)
def test_bad_messages_get_our_codes_and_messages(infer, build, code, message) -> None:
    bad = request("relu")
    build(bad)
    with pytest.raises(grpc.RpcError) as error:
        infer(bad, metadata=METADATA)
    assert error.value.code() == code
    assert message in (error.value.details() or "")


def test_keys_are_required_but_not_for_the_probes(address: str, infer) -> None:
    with pytest.raises(grpc.RpcError) as error:
        infer(request("relu"))
    assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED
    client = triton_grpc.InferenceServerClient(address)
    assert client.is_server_live()
    assert client.is_server_ready()
    with pytest.raises(InferenceServerException, match="an API key is required"):
        client.get_server_metadata()


def test_the_other_calls_through_tritonclient(address: str) -> None:
    client = triton_grpc.InferenceServerClient(address)
    headers = dict(METADATA)
    assert client.is_model_ready("relu_cnn", headers=headers)
    config = client.get_model_config("relu_cnn", headers=headers).config
    assert config.max_batch_size == 16
    assert list(config.input[0].dims) == [1, 8, 8]
    assert config.input[1].reshape.shape == []
    assert config.parameters["input_range"].string_value == "0..16"
    gelu = client.get_model_config("gelu", headers=headers).config
    assert [t.name for t in gelu.output] == ["value", "grad", "vjp"]
    stats = client.get_inference_statistics(headers=headers).model_stats
    assert {s.name for s in stats} >= {"relu_cnn", "gelu"}
    index = client.get_model_repository_index(headers=headers).models
    assert index[0].name == "relu_cnn"
    with pytest.raises(InferenceServerException, match="unknown model 'nope'"):
        client.get_model_metadata("nope", headers=headers)
