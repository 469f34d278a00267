"""Parameters, outputs and shapes: torch's defaults, and messages naming parameter, value and rule."""

from __future__ import annotations

import numpy as np
import pytest

from service.activations import REGISTRY, evaluate, get_activation
from service.errors import InvalidInput, NotFound


def validate(name, **params):
    return get_activation(name).validate(params)


def test_defaults_are_torchs():
    assert validate("leaky_relu") == {"negative_slope": 0.01}
    assert validate("rrelu") == {"lower": 1 / 8, "upper": 1 / 3, "training": False, "seed": None}
    assert validate("elu") == {"alpha": 1.0}
    assert validate("celu") == {"alpha": 1.0}
    assert validate("gelu") == {"approximate": "none"}
    assert validate("softplus") == {"beta": 1.0, "threshold": 20.0}
    assert validate("hardtanh") == {"min_val": -1.0, "max_val": 1.0}
    assert validate("softshrink") == {"lambd": 0.5}
    assert validate("hardshrink") == {"lambd": 0.5}
    assert validate("glu") == {"dim": -1}
    assert validate("selu") == {}


def test_integers_are_accepted_for_floats():
    assert validate("elu", alpha=2) == {"alpha": 2.0}


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("softplus", {"beta": 0}, r"^softplus: beta=0 is invalid; beta must be > 0$"),
        ("softplus", {"beta": -1.5}, r"beta=-1.5 is invalid; beta must be > 0"),
        ("hardtanh", {"min_val": 1, "max_val": 1}, r"min_val=1.0 and max_val=1.0 .* < max_val"),
        ("rrelu", {"lower": 0.5, "upper": 0.1}, r"lower=0.5 and upper=0.1 .* must be <= upper"),
        ("celu", {"alpha": 0}, r"celu: alpha=0 is invalid; alpha must be non-zero"),
        ("softshrink", {"lambd": -0.1}, r"lambd=-0.1 is invalid; lambd must be >= 0"),
        ("gelu", {"approximate": "fast"}, r"approximate='fast' .* one of 'none', 'tanh'"),
        ("leaky_relu", {"negative_slope": "0.1"}, r"negative_slope='0.1' .* a finite number"),
        ("leaky_relu", {"negative_slope": True}, r"negative_slope=True .* a finite number"),
        (
            "leaky_relu",
            {"slope": 0.1},
            r"unknown parameter 'slope' for leaky_relu; valid .*: negative_slope",
        ),
        (
            "relu",
            {"inplace": False},
            r"unknown parameter 'inplace' for relu; .*takes no parameters",
        ),
        ("softmax", {}, r"softmax: parameter dim is required"),
        ("softmax", {"dim": 1.5}, r"dim=1.5 is invalid; dim must be an integer"),
        ("threshold", {"threshold": 1.0}, r"threshold: parameter value is required"),
        ("prelu", {}, r"prelu: parameter weight is required"),
        ("prelu", {"weight": [[0.1]]}, r"weight=\[\[0.1\]\] .* not rank 2"),
        ("prelu", {"weight": ["a"]}, r"weight\[0\] is a string"),
        ("rrelu", {"training": 1}, r"training=1 is invalid; training must be true or false"),
        ("rrelu", {"seed": -1}, r"seed=-1 is invalid; seed must be an integer in 0..2\*\*63-1"),
    ],
)
def test_invalid_params_name_parameter_value_and_rule(name, params, message):
    with pytest.raises(InvalidInput, match=message):
        validate(name, **params)


def test_unknown_function_lists_the_names():
    with pytest.raises(NotFound, match=r"unknown activation function 'rleu'; valid names: celu, "):
        get_activation("rleu")


def call(name, x, outputs=("value",), g=None, **params):
    activation = get_activation(name)
    return evaluate(activation, np.asarray(x), activation.validate(params), outputs, g).arrays


@pytest.mark.parametrize(
    ("name", "x", "params", "outputs", "message"),
    [
        (
            "softmax",
            [[1.0]],
            {"dim": 2},
            ["value"],
            r"softmax: dim=2 is out of range for x of rank 2; dim must be in -2..1",
        ),
        (
            "glu",
            [1.0, 2.0, 3.0],
            {},
            ["value"],
            r"glu: x has size 3 along dim=-1; the size along dim must be even",
        ),
        ("glu", 1.0, {}, ["value"], r"glu: x must have at least 1 dimension"),
        (
            "prelu",
            np.ones((2, 3)),
            {"weight": [1.0, 2.0]},
            ["value"],
            r"weight has 2 elements; it must have 1 or as many as x's channels \(dimension 1 of x, size 3\)",
        ),
        (
            "softmax",
            [1.0],
            {"dim": 0},
            ["grad"],
            r"softmax has no elementwise derivative .* ask for the output vjp",
        ),
        (
            "relu",
            [1.0],
            {},
            ["hessian"],
            r"unknown output 'hessian' for relu; valid outputs: value, grad, vjp",
        ),
        ("relu", [1.0], {}, ["weight_grad"], r"valid outputs: value, grad, vjp$"),
        ("relu", [1.0], {}, [], r"outputs is empty"),
        ("relu", [1.0], {}, ["vjp"], r"output vjp needs grad_output: .* shape \[1\]"),
        ("prelu", [1.0], {"weight": 1.0}, ["weight_grad"], r"output weight_grad needs grad_output"),
    ],
)
def test_evaluate_errors(name, x, params, outputs, message):
    with pytest.raises(InvalidInput, match=message):
        call(name, np.asarray(x, np.float32), outputs, **params)


def test_grad_output_must_have_the_output_shape():
    with pytest.raises(
        InvalidInput, match=r"grad_output has shape \[4\] but the output of glu has shape \[2\]"
    ):
        call("glu", np.ones(4), ["vjp"], g=np.ones(4))


def test_integer_arrays_are_refused():
    with pytest.raises(InvalidInput, match=r"x has dtype int64; allowed dtypes: float32, float64"):
        call("relu", np.arange(3))


def test_empty_arrays_give_empty_outputs():
    for name in ("relu", "gelu", "softmax", "glu"):
        params = {"dim": 0} if name == "softmax" else {}
        out = call(
            name,
            np.zeros((0, 4), np.float32),
            ["value", "vjp"],
            np.zeros((0, 4 if name != "glu" else 2), np.float32),
            **params,
        )
        assert out["value"].shape[0] == 0
        assert out["vjp"].shape == (0, 4)


def test_rank_zero_softmax_is_one():
    assert call("softmax", np.float64(3.0), ["value"], dim=0)["value"] == 1.0


def test_grad_output_is_cast_to_x_dtype():
    out = call("relu", np.ones(2, np.float32), ["vjp"], g=np.ones(2, np.float64))
    assert out["vjp"].dtype == np.float32


def test_rrelu_training_is_reproducible_and_within_bounds():
    x = np.linspace(-3, 3, 1001).astype(np.float32)
    params = {"training": True, "seed": 7, "lower": 0.1, "upper": 0.3}
    first = call("rrelu", x, ["value", "grad", "slopes"], **params)
    second = call("rrelu", x, ["value", "grad", "slopes"], **params)
    for output in first:
        np.testing.assert_array_equal(first[output], second[output])
    slopes = first["slopes"]
    assert (slopes[x > 0] == 1).all()
    assert ((slopes[x <= 0] >= 0.1) & (slopes[x <= 0] <= 0.3)).all()
    assert len(np.unique(slopes[x <= 0])) > 400  # sampled per element
    np.testing.assert_array_equal(first["value"], x * slopes)
    np.testing.assert_array_equal(first["grad"], slopes)


def test_rrelu_training_without_seed_echoes_the_drawn_seed():
    activation = get_activation("rrelu")
    x = -np.ones(50)
    result = evaluate(activation, x, activation.validate({"training": True}), ["slopes"])
    seed = result.params["seed"]
    assert isinstance(seed, int)
    again = call("rrelu", x, ["slopes"], training=True, seed=seed)
    np.testing.assert_array_equal(result.arrays["slopes"], again["slopes"])


def test_rrelu_eval_slopes_are_the_mean():
    out = call("rrelu", np.array([-1.0, 2.0]), ["slopes"], lower=0.2, upper=0.4)
    np.testing.assert_allclose(out["slopes"], [0.3, 1.0])


def test_every_entry_describes_itself():
    for name, activation in REGISTRY.items():
        info = activation.describe()
        assert info["name"] in (name, *activation.aliases) or name in info["aliases"]
        assert info["formula"]
        assert info["kinks"]
        assert info["onnx"]
        assert info["kind"] in ("piecewise-linear", "smooth")
        for param in info["params"]:
            assert param["doc"], (name, param)
    softplus = get_activation("softplus").describe()
    assert softplus["params"][0] == {
        "name": "beta",
        "type": "number",
        "default": 1.0,
        "required": False,
        "constraint": "must be > 0",
        "doc": "sharpness",
    }
