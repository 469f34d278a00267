"""Property-based: random shapes, dtypes, parameters and IEEE values, every function against torch."""

from __future__ import annotations

import importlib
from typing import Literal

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from service.activations import REGISTRY, get_activation
from tests.unit.activations_torch import compare

small = st.floats(-3, 3, allow_nan=False)
positive = st.floats(0.05, 4, allow_nan=False)


def ordered(gap: float = 1e-3):
    return st.tuples(small, small).filter(lambda p: p[1] - p[0] > gap)


def params_for(name: str, shape: tuple[int, ...], draw) -> dict:
    ndim = max(len(shape), 1)
    if name == "leaky_relu":
        return {"negative_slope": draw(small)}
    if name == "prelu":
        channels = shape[1] if len(shape) >= 2 else 1
        size = draw(st.sampled_from(sorted({1, channels})))
        return {"weight": draw(st.lists(small, min_size=size, max_size=size))}
    if name == "rrelu":
        lower, upper = draw(st.tuples(st.floats(0, 1), st.floats(0, 1)).map(sorted))
        return {"lower": lower, "upper": upper}
    if name in ("elu", "celu"):
        return {"alpha": draw(positive)}
    if name == "gelu":
        return {"approximate": draw(st.sampled_from(["none", "tanh"]))}
    if name == "softplus":
        return {"beta": draw(positive), "threshold": draw(st.floats(0.5, 30))}
    if name == "hardtanh":
        low, high = draw(ordered())
        return {"min_val": low, "max_val": high}
    if name in ("softshrink", "hardshrink"):
        return {"lambd": draw(st.floats(0, 3))}
    if name == "threshold":
        return {"threshold": draw(small), "value": draw(st.floats(-5, 5))}
    if name in ("softmax", "log_softmax"):
        return {"dim": draw(st.integers(-ndim, ndim - 1))}
    return {}


def special_points(params: dict) -> list[float]:
    points = [0.0, -0.0, 3.0, -3.0, 6.0, 20.0]
    for key in ("min_val", "max_val", "threshold", "lambd"):
        if key in params:
            points += [params[key], -params[key]]
    return points


@st.composite
def cases(draw, name: str):
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    if name == "glu":
        shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4))
        dim = draw(st.integers(-len(shape), len(shape) - 1))
        shape = tuple(2 * s if i == dim % len(shape) else s for i, s in enumerate(shape))
        params = {"dim": dim}
    else:
        shape = draw(hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5))
        params = params_for(name, shape, draw)
    width: Literal[32, 64] = 32 if dtype is np.float32 else 64
    elements = st.one_of(
        st.floats(width=width, allow_nan=True, allow_infinity=True),
        st.floats(-10, 10, width=width),
        st.sampled_from(special_points(params)).map(lambda v: float(dtype(v))),
    )
    x = draw(hnp.arrays(dtype, shape, elements=elements))
    return name, x, params


@pytest.mark.parametrize("name", sorted(REGISTRY))
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_arrays_match_torch(name, data):
    name, x, params = data.draw(cases(name))
    compare(name, x, params, seed=0)


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("gelu", {}),
        ("gelu", {"approximate": "tanh"}),
        ("softplus", {"beta": 2.0, "threshold": 5.0}),
        ("prelu", {"weight": 0.3}),
        ("rrelu", {"training": True, "seed": 7}),
        ("relu", {}),
    ],
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_big_arrays_computed_in_pieces_equal_the_whole(
    monkeypatch: pytest.MonkeyPatch, name: str, params: dict, dtype: type
) -> None:
    module = importlib.import_module("service.activations.evaluate")  # the package re-exports
    activation = get_activation(name)
    x: np.ndarray = np.random.default_rng(0).normal(0, 4, (3, 1001)).astype(dtype)
    x[0, :5] = [np.nan, np.inf, -np.inf, 0.0, -0.0]
    g: np.ndarray = np.random.default_rng(1).normal(size=x.shape).astype(dtype)
    outputs = ["value", "grad", "vjp"]
    whole = module.evaluate(activation, x, activation.validate(params), outputs, g)
    monkeypatch.setattr(module, "CHUNK", 256)
    pieces = module.evaluate(activation, x, activation.validate(params), outputs, g)
    for output in outputs:
        np.testing.assert_array_equal(pieces.arrays[output], whole.arrays[output])
