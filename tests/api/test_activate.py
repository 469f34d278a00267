"""POST /activate and GET /activations over HTTP: JSON, .npy and .npz, and every error mapping."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from service.activations import REGISTRY, evaluate, get_activation
from service.api.schemas.activate import ActivateResponse, ActivationList
from service.app import create_app
from service.config import Settings

MAX_ELEMENTS = 1000
NPY = {"content-type": "application/x-npy"}
NPZ = {"content-type": "application/x-npz"}


@pytest.fixture(scope="module")
def client(dry_run_model: Path) -> Iterator[TestClient]:
    app = create_app(Settings(model_path=dry_run_model, max_elements=MAX_ELEMENTS))
    with TestClient(app) as client:
        yield client


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def npz(**arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    members: dict[str, Any] = arrays  # as kwds, not savez's allow_pickle: bool
    np.savez(buffer, **members)
    return buffer.getvalue()


def expected(name, x, outputs, g=None, **params):
    activation = get_activation(name)
    return evaluate(activation, x, activation.validate(params), outputs, g).arrays


def test_json_value_and_grad_keep_shape_and_match_the_domain(client):
    x = [[-2.0, -0.5, 0.0], [0.5, 1.0, 2.0]]
    body = {"function": "leaky_relu", "params": {"negative_slope": 0.1}, "x": x}
    response = client.post("/activate", json=body)
    assert response.status_code == 200
    data = response.json()
    assert data["function"] == "leaky_relu"
    assert data["params"] == {"negative_slope": 0.1}
    assert data["shape"] == [2, 3]
    assert data["dtype"] == "float32"
    assert set(data) == {"function", "params", "shape", "dtype", "value", "grad"}
    ActivateResponse.model_validate(data)
    want = expected("leaky_relu", np.array(x, np.float32), ["value", "grad"], negative_slope=0.1)
    for output in ("value", "grad"):
        np.testing.assert_array_equal(np.array(data[output], np.float32), want[output])


def test_json_defaults_filled_in_and_float64(client):
    response = client.post("/activate", json={"function": "gelu", "x": 1.0, "dtype": "float64"})
    data = response.json()
    assert data["params"] == {"approximate": "none"}
    assert data["shape"] == []
    assert data["value"] == expected("gelu", np.float64(1.0), ["value"])["value"][()]
    assert data["value"] == 0.8413447460685429


def test_json_vjp_with_grad_output(client):
    body = {
        "function": "softmax",
        "params": {"dim": -1},
        "x": [[1, 2, 3]],
        "grad_output": [[1, 0, 0]],
    }
    data = client.post("/activate", json=body).json()
    assert set(data) >= {"value", "vjp"}
    assert "grad" not in data
    x, g = np.array([[1, 2, 3]], np.float32), np.array([[1, 0, 0]], np.float32)
    want = expected("softmax", x, ["vjp"], g, dim=-1)["vjp"]
    np.testing.assert_array_equal(np.array(data["vjp"], np.float32), want)


def test_json_glu_output_has_half_the_size(client):
    data = client.post("/activate", json={"function": "glu", "x": [[1, 2, 3, 4]]}).json()
    assert np.array(data["value"]).shape == (1, 2)


def test_json_prelu_weight_grad_and_rrelu_slopes(client):
    body: dict[str, Any] = {
        "function": "prelu",
        "params": {"weight": [0.1, 0.2]},
        "x": [[-2, 1], [3, -4]],
        "grad_output": [[1, 1], [1, 1]],
        "outputs": ["value", "weight_grad"],
    }
    data = client.post("/activate", json=body).json()
    assert data["params"] == {"weight": [0.1, 0.2]}
    np.testing.assert_allclose(data["value"], [[-0.2, 1.0], [3.0, -0.8]], rtol=1e-6)
    assert data["weight_grad"] == [-2.0, -4.0]
    body = {"function": "rrelu", "params": {"training": True, "seed": 3}, "x": [-1.0, 2.0]}
    first = client.post("/activate", json={**body, "outputs": ["value", "slopes"]}).json()
    again = client.post("/activate", json={**body, "outputs": ["slopes"]}).json()
    assert first["slopes"] == again["slopes"]
    assert first["slopes"][1] == 1.0
    assert first["params"]["seed"] == 3


def test_json_prelu_scalar_weight(client):
    body = {
        "function": "prelu",
        "params": {"weight": 0.25},
        "x": [[-2.0, 1.0]],
        "outputs": ["value", "grad", "weight_grad"],
        "grad_output": [[1.0, 1.0]],
    }
    response = client.post("/activate", json=body)
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["params"] == {"weight": 0.25}
    assert data["value"] == [[-0.5, 1.0]]
    assert data["grad"] == [[0.25, 1.0]]
    assert data["weight_grad"] == -2.0


def test_json_alias_and_empty_array(client):
    data = client.post("/activate", json={"function": "swish", "x": []}).json()
    assert data["function"] == "swish"
    assert data["value"] == []
    assert data["grad"] == []
    assert data["shape"] == [0]


def test_json_overflow_is_null(client):
    # selu(3.3e38) = 3.47e38 overflows float32: JSON has no inf, so it is null (documented).
    data = client.post("/activate", json={"function": "selu", "x": [3.3e38, 1.0]}).json()
    assert data["value"][0] is None
    assert data["value"][1] == pytest.approx(1.0507009873554805)


def test_npy_one_output_is_npy(client):
    x = np.linspace(-4, 4, 9, dtype=np.float32)
    response = client.post(
        "/activate?function=gelu&approximate=tanh&outputs=value", content=npy(x), headers=NPY
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-npy"
    assert response.headers["x-activation-params"] == '{"approximate":"tanh"}'
    value = np.load(io.BytesIO(response.content))
    np.testing.assert_array_equal(
        value, expected("gelu", x, ["value"], approximate="tanh")["value"]
    )


def test_npy_several_outputs_are_npz_and_keep_ieee_values(client):
    x = np.array([[-np.inf, np.nan], [0.0, np.inf]], dtype=np.float64, order="F")
    response = client.post("/activate?function=relu", content=npy(x), headers=NPY)
    assert response.headers["content-type"] == "application/x-npz"
    assert response.headers["x-activation-outputs"] == "value,grad"
    with np.load(io.BytesIO(response.content)) as out:
        assert out["value"].dtype == np.float64
        np.testing.assert_array_equal(out["value"], [[0.0, np.nan], [0.0, np.inf]])
        np.testing.assert_array_equal(out["grad"], [[0.0, np.nan], [0.0, 1.0]])


def test_npy_params_from_the_query_and_dtype_cast(client):
    x = np.array([[-1.0, 2.0], [3.0, -4.0]])
    response = client.post(
        "/activate?function=prelu&weight=[0.5,0.25]&outputs=value&dtype=float32",
        content=npy(x),
        headers=NPY,
    )
    value = np.load(io.BytesIO(response.content))
    assert value.dtype == np.float32
    np.testing.assert_array_equal(value, [[-0.5, 2.0], [3.0, -1.0]])


def test_npz_body_carries_grad_output(client):
    x, g = np.array([-1.0, 0.0, 2.0], np.float32), np.array([1.0, 2.0, 3.0], np.float32)
    response = client.post(
        "/activate?function=relu&outputs=vjp", content=npz(x=x, grad_output=g), headers=NPZ
    )
    np.testing.assert_array_equal(np.load(io.BytesIO(response.content)), [0.0, 0.0, 3.0])


def test_get_activations_lists_everything(client):
    data = client.get("/activations").json()
    ActivationList.model_validate(data)  # the documented schema is the served one
    names = {entry["name"] for entry in data["activations"]}
    assert names == {a.name for a in REGISTRY.values()}
    assert "swish" not in names
    assert data["tolerance"]["float32"] == "|ours - torch| <= 2e-6 + 1e-5 * |torch|"
    relu = client.get("/activations/relu").json()
    assert relu["kind"] == "piecewise-linear"
    assert relu["onnx"] == "Relu"
    assert client.get("/activations/swish").json()["name"] == "silu"


def test_unknown_activation_is_404_listing_names(client):
    response = client.get("/activations/rleu")
    assert response.status_code == 404
    assert response.json()["detail"].startswith(
        "unknown activation function 'rleu'; valid names: celu, elu, gelu"
    )


BAD_JSON = [
    (
        {"function": "rleu", "x": 1},
        f"unknown activation function 'rleu'; valid names: {', '.join(sorted(REGISTRY))}",
    ),
    ({"function": 3, "x": 1}, "function must be a name from GET /activations, got 3"),
    ({"x": 1}, "function is required; the body needs at least function and x"),
    ({"function": "relu"}, "x is required; the body needs at least function and x"),
    (
        {"function": "relu", "x": 1, "y": 2},
        "unknown field 'y'; allowed: function, params, x, dtype, outputs, grad_output",
    ),
    (
        {"function": "relu", "x": 1, "params": {"alpha": 1}},
        "unknown parameter 'alpha' for relu; valid parameters: none: it takes no parameters",
    ),
    (
        {"function": "relu", "x": 1, "params": [1]},
        "params must be an object of parameter names, got [1]",
    ),
    (
        {"function": "softplus", "x": 1, "params": {"beta": -1}},
        "softplus: beta=-1 is invalid; beta must be > 0",
    ),
    (
        {"function": "hardtanh", "x": 1, "params": {"min_val": 2}},
        "hardtanh: min_val=2.0 and max_val=1.0 are invalid; min_val must be < max_val",
    ),
    (
        {"function": "glu", "x": [1, 2, 3]},
        "glu: x has size 3 along dim=-1; the size along dim must be even (it is split into two halves)",
    ),
    (
        {"function": "relu", "x": [[1, 2], [3]]},
        "x is ragged: x[1] has length 1 where 2 was expected; every list at one depth must be as long",
    ),
    ({"function": "relu", "x": [1, "2"]}, "x[1] is a string ('2'); x must hold numbers only"),
    ({"function": "relu", "x": [1, None]}, "x[1] is null; x must hold numbers only"),
    ({"function": "relu", "x": [True]}, "x[0] is a boolean (true); x must hold numbers only"),
    (
        {"function": "relu", "x": [1e39]},
        "x[0] = 1e+39 is outside the float32 range (largest magnitude 3.4028234663852886e+38)",
    ),
    (
        {"function": "relu", "x": 1, "dtype": "float16"},
        "dtype 'float16' is not supported; use one of float32, float64",
    ),
    (
        {"function": "relu", "x": [1], "grad_output": [1, 2]},
        "grad_output has shape [2] but the output of relu has shape [1]; they must match",
    ),
    (
        {"function": "relu", "x": [1], "outputs": ["vjp"]},
        "output vjp needs grad_output: the upstream gradient, an array of the output's shape [1]",
    ),
    (
        {"function": "relu", "x": [1], "outputs": "value"},
        'outputs must be a list of names such as ["value", "grad"], got \'value\'',
    ),
    (
        {"function": "relu", "x": [1], "outputs": ["value", "hessian"]},
        "unknown output 'hessian' for relu; valid outputs: value, grad, vjp",
    ),
    (
        {"function": "softmax", "x": [1], "params": {"dim": 0}, "outputs": ["grad"]},
        "softmax has no elementwise derivative (its Jacobian is not diagonal); ask for the output vjp with a grad_output instead",
    ),
    ([1, 2], 'the JSON body must be an object: {"function": "relu", "x": [...]}'),
]


@pytest.mark.parametrize(("body", "message"), BAD_JSON)
def test_bad_json_requests_are_422_with_a_clear_message(client, body, message):
    response = client.post("/activate", json=body)
    assert response.status_code == 422
    assert response.json()["detail"] == message


@pytest.mark.parametrize("token", [b"NaN", b"Infinity", b"-Infinity"])
def test_non_finite_json_tokens_are_422(client, token):
    body = b'{"function": "relu", "x": [1.0, ' + token + b"]}"
    response = client.post("/activate", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert detail.startswith("malformed JSON: ")
    assert "NaN, Infinity and -Infinity are not JSON" in detail


def test_query_parameters_with_json_are_422(client):
    response = client.post("/activate?function=relu", json={"function": "relu", "x": 1})
    assert response.status_code == 422
    assert response.json()["detail"].startswith("query parameters are for .npy bodies")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"function": "relu", "x": [0.0] * (MAX_ELEMENTS + 1)},
            "x has 1001 elements; the limit is 1000 elements per request",
        ),
        (
            {"function": "relu", "x": [0.0], "grad_output": [[0.0] * 50] * 21},
            "grad_output has 1050 elements; the limit is 1000 elements per request",
        ),
    ],
)
def test_too_many_json_elements_are_413_naming_the_limit(client, body, message):
    response = client.post("/activate", json=body)
    assert response.status_code == 413
    assert response.json()["detail"] == message


def test_too_many_npy_elements_are_413(client):
    response = client.post(
        "/activate?function=relu", content=npy(np.zeros(1001, np.float32)), headers=NPY
    )
    assert response.status_code == 413
    assert response.json()["detail"] == (
        "the body has shape (1001,): more than the limit of 1000 elements per request"
    )


@pytest.mark.parametrize(
    ("url", "body", "headers", "message"),
    [
        (
            "/activate",
            npy(np.ones(2, np.float32)),
            NPY,
            "function is required as a query parameter with a binary body, e.g. POST /activate?function=relu",
        ),
        (
            "/activate?function=relu",
            npy(np.arange(3)),
            NPY,
            "the body has dtype int64; allowed dtypes: float32, float64",
        ),
        ("/activate?function=relu", b"not numpy", NPY, "the body is not a valid .npy file"),
        (
            "/activate?function=relu",
            npy(np.ones(3, np.float32))[:-2],
            NPY,
            "the body is a truncated or padded .npy file",
        ),
        (
            "/activate?function=leaky_relu&negative_slope=abc",
            npy(np.ones(2)),
            NPY,
            "leaky_relu: negative_slope='abc' is invalid; negative_slope must be a finite number",
        ),
        (
            "/activate?function=relu&outputs=value,hessian",
            npy(np.ones(2)),
            NPY,
            "unknown output 'hessian' for relu",
        ),
        (
            "/activate?function=relu&dtype=int8",
            npy(np.ones(2)),
            NPY,
            "dtype 'int8' is not supported; use one of float32, float64",
        ),
        (
            "/activate?function=relu",
            npz(g=np.ones(2)),
            NPZ,
            "unexpected member 'g.npy' in the .npz body; allowed: x.npy, grad_output.npy",
        ),
        (
            "/activate?function=relu",
            npz(grad_output=np.ones(2)),
            NPZ,
            "the .npz body has no member x.npy",
        ),
        ("/activate?function=relu", b"PK-not-a-zip", NPZ, "the body is not a valid .npz file"),
        (
            "/activate?function=rleu",
            npy(np.ones(2)),
            NPY,
            "unknown activation function 'rleu'; valid names: ",
        ),
    ],
)
def test_bad_binary_requests_are_422(client, url, body, headers, message):
    response = client.post(url, content=body, headers=headers)
    assert response.status_code == 422
    assert response.json()["detail"].startswith(message)


@pytest.mark.parametrize("content_type", ["text/plain", "application/octet-stream", None])
def test_other_content_types_are_415(client, content_type):
    headers = {"content-type": content_type} if content_type else {}
    response = client.post("/activate", content=b"1", headers=headers)
    assert response.status_code == 415
    assert response.json()["detail"].endswith(
        "is not accepted; send application/json, application/x-npy (the array x) or "
        "application/x-npz (x and grad_output)"
    )


def test_openapi_documents_json_and_npy_bodies(client):
    spec = client.get("/openapi.json").json()
    body = spec["paths"]["/activate"]["post"]["requestBody"]["content"]
    assert set(body) == {"application/json", "application/x-npy", "application/x-npz"}
    assert "leaky_relu value and grad" in body["application/json"]["examples"]
    assert set(body["application/json"]["schema"]["required"]) == {"function", "x"}
    assert "/activations/{name}" in spec["paths"]
