"""ModelStreamInfer (Triton's stream of infer requests) with the stock tritonclient and with
our own messages: answers in order, identical to ModelInfer's, an error ending only its request,
more requests than the stream's window, API keys and the request metrics."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
import tritonclient.grpc as triton_grpc
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from service.app import create_app
from service.classifier.model import Classifier
from service.config import Settings
from service.grpc.proto import relu_serve_v2_pb2 as pb
from service.grpc.server import STREAM_WINDOW
from tests.api.conftest import wait_ready
from tests.live_server import free_port

KEY = "grpc-stream-key-0123456789"
HEADERS = {"x-api-key": KEY}
ROUTE = "/inference.GRPCInferenceService/ModelStreamInfer"
TIMEOUT_S = 60  # per answer: generous for a busy machine


@pytest.fixture(scope="module")
def served(dry_run_model: Path, classifier: Classifier) -> Iterator[tuple[TestClient, str]]:
    port = free_port()
    settings = Settings(model_path=dry_run_model, grpc_port=port, api_keys=KEY, max_images=16)
    with TestClient(create_app(settings, classifier=classifier)) as client:
        wait_ready(client)
        client.headers["x-api-key"] = KEY
        yield client, f"127.0.0.1:{port}"


@pytest.fixture
def triton(served: tuple[TestClient, str]) -> Iterator[triton_grpc.InferenceServerClient]:
    client = triton_grpc.InferenceServerClient(served[1])
    yield client
    client.close()


def images(count: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 16, (count, 1, 8, 8)).astype(np.float32)


def tensor(name: str, array: np.ndarray, datatype: str = "FP32") -> triton_grpc.InferInput:
    given = triton_grpc.InferInput(name, list(array.shape), datatype)
    given.set_data_from_numpy(array)
    return given


def requests() -> list[tuple[str, list[triton_grpc.InferInput], dict[str, Any]]]:
    """Classifier and activation requests, mixed: (model, inputs, parameters)."""
    mixed = []
    for i in range(12):
        if i % 3 == 2:
            x = np.linspace(-4, 4, 7 + i, dtype=np.float32)
            mixed.append(("gelu", [tensor("x", x)], {"approximate": "tanh"}))
        else:
            mixed.append(("relu_cnn", [tensor("input", images(1 + i % 4, i))], {}))
    return mixed


def test_a_stream_answers_in_order_what_modelinfer_answers(triton) -> None:
    sent = requests()
    answers: queue.Queue[tuple[Any, Any]] = queue.Queue()
    triton.start_stream(
        callback=lambda result, error: answers.put((result, error)), headers=HEADERS
    )
    for i, (model, inputs, parameters) in enumerate(sent):
        triton.async_stream_infer(model, inputs, request_id=f"r{i}", parameters=parameters)
    got = [answers.get(timeout=TIMEOUT_S) for _ in sent]
    triton.stop_stream()
    for i, ((model, inputs, parameters), (result, error)) in enumerate(zip(sent, got, strict=True)):
        assert error is None
        assert result.get_response().id == f"r{i}"
        unary = triton.infer(model, inputs, parameters=parameters, headers=HEADERS)
        for output in unary.get_response().outputs:
            np.testing.assert_array_equal(result.as_numpy(output.name), unary.as_numpy(output.name))


def test_an_error_ends_only_its_own_request(triton) -> None:
    answers: queue.Queue[tuple[Any, Any]] = queue.Queue()
    triton.start_stream(
        callback=lambda result, error: answers.put((result, error)), headers=HEADERS
    )
    triton.async_stream_infer("relu_cnn", [tensor("input", images(1, 1))], request_id="a")
    triton.async_stream_infer("relu_cnn", [tensor("input", np.zeros((1, 7, 7), np.float32))])
    triton.async_stream_infer("no_such_model", [tensor("input", images(1, 1))])
    triton.async_stream_infer("relu", [tensor("x", np.array([-1.0, 2.0], np.float32))])
    got = [answers.get(timeout=TIMEOUT_S) for _ in range(4)]
    triton.stop_stream()
    assert got[0][1] is None
    assert got[0][0].get_response().id == "a"
    assert "inputs have image shape [1, 7, 7]" in got[1][1].message()
    assert "no_such_model" in got[2][1].message()
    np.testing.assert_array_equal(got[3][0].as_numpy("value"), [0.0, 2.0])


def stream(address: str, messages: list[pb.ModelInferRequest], key: str | None = KEY) -> list[Any]:
    """The answers of one ModelStreamInfer call with our own messages, all sent at once."""
    with grpc.insecure_channel(address) as channel:
        call = channel.stream_stream(
            ROUTE,
            request_serializer=pb.ModelInferRequest.SerializeToString,
            response_deserializer=pb.ModelStreamInferResponse.FromString,
        )
        metadata = (("x-api-key", key),) if key else ()
        return list(call(iter(messages), metadata=metadata, timeout=TIMEOUT_S))


def relu_request(index: int, values: list[float]) -> pb.ModelInferRequest:
    message = pb.ModelInferRequest(model_name="relu", id=f"m{index}")
    x = message.inputs.add(name="x", datatype="FP64", shape=[len(values)])
    x.contents.fp64_contents.extend(values)
    return message


def test_more_requests_than_the_window_are_all_answered_in_order(served) -> None:
    count = 3 * STREAM_WINDOW + 5
    messages = [relu_request(i, [float(i), -float(i)]) for i in range(count)]
    messages[40] = relu_request(40, [])
    del messages[40].inputs[0].contents.fp64_contents[:]
    messages[40].inputs[0].shape[:] = [3]  # 3 elements announced, none sent
    answers = stream(served[1], messages)
    assert [a.infer_response.id for a in answers] == [f"m{i}" for i in range(count)]
    assert answers[40].error_message
    for i, answer in enumerate(answers):
        if i != 40:
            assert not answer.error_message
            value = np.frombuffer(answer.infer_response.raw_output_contents[0], "<f8")
            np.testing.assert_array_equal(value, [float(i), 0.0])


def test_a_stream_needs_the_api_key(served) -> None:
    with pytest.raises(grpc.RpcError) as error:
        stream(served[1], [relu_request(0, [1.0])], key=None)
    assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED


def counts(client: TestClient) -> dict[str, float]:
    found = {}
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for s in family.samples:
            if s.name == "relu_serve_requests_total" and s.labels.get("route") == ROUTE:
                found[s.labels["status"]] = s.value
    return found


def test_every_message_is_counted_as_a_request(served) -> None:
    client, address = served
    before = counts(client)
    messages = [relu_request(i, [1.0]) for i in range(5)]
    messages.append(pb.ModelInferRequest(model_name="no_such_model", id="x"))
    assert len(stream(address, messages)) == 6
    with pytest.raises(grpc.RpcError):
        stream(address, messages, key="wrong")
    after = counts(client)
    moved = {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k)}
    assert moved == {"OK": 5, "NOT_FOUND": 1, "UNAUTHENTICATED": 1}


def test_a_stream_the_client_cancels_leaves_the_server_serving(served) -> None:
    client, address = served
    before = counts(client)
    gate = threading.Event()

    def messages() -> Iterator[pb.ModelInferRequest]:
        yield relu_request(0, [1.0])
        gate.wait(TIMEOUT_S)  # the stream stays open, half-sent, until it is cancelled

    with grpc.insecure_channel(address) as channel:
        call = channel.stream_stream(
            ROUTE,
            request_serializer=pb.ModelInferRequest.SerializeToString,
            response_deserializer=pb.ModelStreamInferResponse.FromString,
        )(messages(), metadata=(("x-api-key", KEY),), timeout=TIMEOUT_S)
        assert next(call).infer_response.id == "m0"
        call.cancel()
        gate.set()
    assert [a.infer_response.id for a in stream(address, [relu_request(1, [2.0])])] == ["m1"]
    after = counts(client)
    assert after["OK"] - before.get("OK", 0) == 2


def test_a_message_past_the_in_flight_budget_is_refused_alone(
    dry_run_model: Path, classifier: Classifier
) -> None:
    port = free_port()
    settings = Settings(model_path=dry_run_model, grpc_port=port, max_inflight_bytes=1024)
    with TestClient(create_app(settings, classifier=classifier)) as client:
        wait_ready(client)
        big = relu_request(1, [1.0] * 200)  # 1,600 bytes of contents alone: over 1,024
        answers = stream(f"127.0.0.1:{port}", [relu_request(0, [1.0]), big, relu_request(2, [3.0])])
    assert [a.infer_response.id for a in answers] == ["m0", "m1", "m2"]
    assert "max_inflight_bytes 1024" in answers[1].error_message
    assert not answers[0].error_message
    assert not answers[2].error_message
