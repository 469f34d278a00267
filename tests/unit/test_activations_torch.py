"""Every activation against torch autograd on a dense grid plus kinks and IEEE specials."""

from __future__ import annotations

import numpy as np
import pytest

from service.activations import REGISTRY, get_activation
from tests.unit.activations_torch import compare

DTYPES = [np.float32, np.float64]

#: Parameter sets per function: torch's defaults ({}) and variants that move the kinks.
CASES: dict[str, list[dict]] = {
    "leaky_relu": [{}, {"negative_slope": 0.2}, {"negative_slope": -0.5}, {"negative_slope": 1.5}],
    "prelu": [{"weight": 0.25}, {"weight": [-1.5]}],
    "rrelu": [{}, {"lower": 0.1, "upper": 0.9}],
    "elu": [{}, {"alpha": 0.5}, {"alpha": 2.0}],
    "celu": [{}, {"alpha": 0.5}, {"alpha": 3.0}],
    "gelu": [{}, {"approximate": "tanh"}],
    "softplus": [{}, {"beta": 2.0, "threshold": 10.0}, {"beta": 0.5, "threshold": 5.0}],
    "hardtanh": [{}, {"min_val": -2.0, "max_val": 3.5}],
    "softshrink": [{}, {"lambd": 0.0}, {"lambd": 2.0}],
    "hardshrink": [{}, {"lambd": 0.0}, {"lambd": 2.0}],
    "threshold": [{"threshold": 0.5, "value": -2.0}, {"threshold": -1.0, "value": 0.0}],
    "softmax": [{"dim": 1}, {"dim": 0}, {"dim": -1}],
    "log_softmax": [{"dim": 1}, {"dim": 0}],
    "glu": [{}, {"dim": 0}],
}


def kinks(name: str, p: dict) -> list[float]:
    lambd = p.get("lambd", 0.5)
    return {
        "relu6": [0.0, 6.0],
        "hardtanh": [p.get("min_val", -1.0), p.get("max_val", 1.0)],
        "hardsigmoid": [-3.0, 3.0],
        "hardswish": [-3.0, 3.0],
        "softshrink": [-lambd, lambd],
        "hardshrink": [-lambd, lambd],
        "threshold": [p.get("threshold", 0.0)],
        "softplus": [p.get("threshold", 20.0) / p.get("beta", 1.0)],
    }.get(name, [0.0])


def grid(dtype: type, points: list[float]) -> np.ndarray:
    """A dense grid, the kinks and their neighbours, +-0, +-inf, NaN, subnormals, huge values."""
    info = np.finfo(dtype)
    specials = [
        -0.0, 0.0, np.inf, -np.inf, np.nan,
        info.smallest_subnormal, -info.smallest_subnormal, info.tiny / 4, -info.tiny / 4,
        info.tiny, -info.tiny, 1e-30, -1e-30, 1e-8, -1e-8,
        17.5, -17.5, 30.0, -30.0, 88.0, -88.0, 100.0, -100.0, 710.0, -710.0,
        1e4, -1e4, 1e10, -1e10, 1e30, -1e30, float(info.max), -float(info.max),
    ]  # fmt: skip
    dense = np.linspace(-12, 12, 2401)
    x: np.ndarray = np.concatenate([dense, specials]).astype(dtype)
    near = [np.nextafter(dtype(k), dtype(d)) for k in points for d in (-np.inf, np.inf)]
    return np.concatenate([x, np.array(points + near, dtype=dtype)])


ELEMENTWISE = sorted(n for n, a in REGISTRY.items() if a.elementwise)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ELEMENTWISE)
def test_elementwise_matches_torch_on_the_grid(name, dtype):
    for params in CASES.get(name, [{}]):
        x = grid(dtype, kinks(name, params))
        compare(name, x, params)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["softmax", "log_softmax", "glu"])
def test_along_dim_matches_torch(name, dtype):
    rng = np.random.default_rng(1)
    x = rng.permutation(grid(dtype, [0.0]))
    x = x[np.isfinite(x) | (rng.random(x.size) < 0.3)]  # some rows with specials, most without
    x = x[: x.size // 8 * 8].reshape(-1, 8)
    for params in CASES[name]:
        if name == "glu" and params.get("dim") == 0:
            compare(name, x[: x.shape[0] // 2 * 2], params)
        else:
            compare(name, x, params)


@pytest.mark.parametrize("dtype", DTYPES)
def test_prelu_per_channel_matches_torch(dtype):
    rng = np.random.default_rng(2)
    x = rng.normal(0, 3, size=(4, 3, 5)).astype(dtype)
    x[0, :, 0] = [0.0, -0.0, np.inf]
    compare("prelu", x, {"weight": [0.25, -1.0, 2.0]})


def test_every_registered_function_is_covered():
    assert set(REGISTRY) == set(ELEMENTWISE) | {"softmax", "log_softmax", "glu"}
    assert get_activation("swish") is get_activation("silu")
