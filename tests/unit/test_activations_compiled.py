"""The compiled float32 kernels agree with the numpy kernels (the fallback without numba) to
1 ULP, NaN and infinities included; the float64 ones (double-double where the numpy kernels use
long double) to a few ULP; warm-up compiles every one of them."""

from __future__ import annotations

import numpy as np
import pytest

from service.activations import REGISTRY, evaluate, fused, get_activation
from tests.unit.test_activations_torch import grid

FUSED = sorted(n for n, a in REGISTRY.items() if a.fused is not None and n == a.name)
PARAMS: dict[str, list[dict]] = {
    "gelu": [{}, {"approximate": "tanh"}],
    "celu": [{"alpha": 0.3}],
    "elu": [{"alpha": 2.0}],
}


def ulps(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    both_nan = np.isnan(a) & np.isnan(b)
    with np.errstate(all="ignore"):
        diff = np.abs(a.astype(np.float64) - b) / np.spacing(np.maximum(np.abs(a), np.abs(b)))
    diff[(a == b) | both_nan] = 0
    return diff


def test_celu_with_a_negative_alpha_is_left_to_numpy():
    activation = get_activation("celu")
    x = np.linspace(-3, 3, 7)
    for dtype in (np.float32, np.float64):
        assert not fused.available(
            activation, x.astype(dtype), activation.validate({"alpha": -1.5})
        )
        assert fused.available(activation, x.astype(dtype), activation.validate({"alpha": 1.5}))


@pytest.mark.parametrize("name", [n for n in FUSED if get_activation(n).elementwise])
def test_elementwise_kernels_match_the_numpy_path(name):
    activation = get_activation(name)
    x = grid(np.float32, [0.0])
    with np.errstate(all="ignore"):
        check_elementwise(activation, x, name)


def check_elementwise(activation, x, name):
    for raw in PARAMS.get(name, [{}]):
        p = activation.validate(raw)
        value, grad = fused.value_and_grad(activation, x, p)
        want_value = activation.value(x, p).astype(np.float32)
        assert activation.derivative is not None
        want_grad = activation.derivative(x, p).astype(np.float32)
        finite = ~np.isnan(x)  # NaN in -> NaN out is evaluate's job, for both paths
        assert ulps(value[finite], want_value[finite]).max() <= 1, (name, raw)
        assert ulps(grad[finite], want_grad[finite]).max() <= 1, (name, raw)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", [n for n in FUSED if get_activation(n).elementwise])
def test_elementwise_kernels_map_nan_to_nan_themselves(name, dtype):
    # evaluate skips its NaN check (a pass over x) when one kernel makes every output
    activation = get_activation(name)
    x = np.array([np.nan, 1.0, -np.nan, -2.0, np.nan, np.inf, -np.inf], dtype)
    x[2] = np.copysign(x[2], -1)  # -NaN
    x.view(np.uint32 if dtype == np.float32 else np.uint64)[4] += 5  # another payload
    extra = {"softplus": [{"beta": 2.0, "threshold": 5.0}], "celu": [{"alpha": 1.5}]}
    for raw in [{}, *PARAMS.get(name, []), *extra.get(name, [])]:
        p = activation.validate(raw)
        if not fused.available(activation, x, p):
            continue
        with np.errstate(all="ignore"):
            value, grad = fused.value_and_grad(activation, x, p)
        for out in (value, grad):
            assert np.array_equal(np.isnan(out), np.isnan(x)), (name, raw, out)


def test_evaluate_keeps_nan_with_one_compiled_pass():
    x = np.full(3 * 2**18, 0.5, np.float32)
    x[[7, 2**18 + 1, x.size - 1]] = np.nan
    g = np.ones_like(x)
    for name in FUSED:
        activation = get_activation(name)
        if not activation.elementwise:
            continue
        arrays = evaluate(activation, x, activation.validate({}), ["value", "grad", "vjp"], g)
        for out in arrays.arrays.values():
            assert np.array_equal(np.isnan(out), np.isnan(x)), name


def served_in_float64(name: str, raw: dict) -> bool:
    activation = get_activation(name)
    x = np.zeros(1)
    return activation.elementwise and fused.available(activation, x, activation.validate(raw))


FLOAT64 = [
    (name, raw) for name in FUSED for raw in PARAMS.get(name, [{}]) if served_in_float64(name, raw)
]


def test_the_slow_float64_functions_have_kernels():
    long_double = {"gelu", "mish", "tanh", "tanhshrink"}
    logistic = {"sigmoid", "silu", "softplus", "logsigmoid", "elu", "selu", "celu"}
    assert {name for name, _ in FLOAT64} == long_double | logistic
    assert len(FLOAT64) == 12  # gelu: exact and tanh


def test_float64_glu_matches_the_long_double_path():
    activation = get_activation("glu")
    rng = np.random.default_rng(6)
    x = rng.normal(0, 30, (64, 8))
    x[0, 1], x[1, 5], x[2, 6], x[3, 7], x[4, 2] = np.nan, np.inf, -np.inf, np.nan, np.inf
    g = rng.uniform(-2, 2, (64, 4))
    p = activation.validate({"dim": -1})
    assert fused.available(activation, x, p)
    with np.errstate(all="ignore"):
        value, vjp = fused.value_and_vjp(activation, x, g, p)
        assert activation.vjp_kernel is not None
        want_value, want_vjp = activation.value(x, p), activation.vjp_kernel(x, g, p)
    for ours, want in ((value, want_value), (vjp, want_vjp)):
        assert np.array_equal(np.isnan(ours), np.isnan(want))
        both = ~np.isnan(want)
        assert (ulps(ours[both], want[both]) <= 4).all()


@pytest.mark.parametrize(("name", "raw"), FLOAT64)
def test_float64_kernels_match_the_long_double_path(name, raw):
    # Both are within ~3 ULP of the exact result (test_activations_exact.py), so they agree to
    # 8 ULP, or to 1e-15 absolute near the roots of f' (|x| < 3), where both cancel.
    activation = get_activation(name)
    x = np.concatenate([grid(np.float64, [0.0]), np.linspace(-800, 800, 4001)])
    p = activation.validate(raw)
    with np.errstate(all="ignore"):
        value, grad = fused.value_and_grad(activation, x, p)
        assert activation.derivative is not None
        want_value, want_grad = activation.value(x, p), activation.derivative(x, p)
        finite = ~np.isnan(x)
        for ours, want in ((value, want_value), (grad, want_grad)):
            allowed = 8 * np.spacing(np.abs(want)) + np.where(np.abs(x) < 3, 1e-15, 0)
            same = (ours == want) | (np.isnan(ours) & np.isnan(want))
            off = ~(np.abs(ours - want) <= allowed) & ~same & finite
            assert not off.any(), (name, raw, x[off][:5], ours[off][:5], want[off][:5])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ["softmax", "log_softmax", "glu"])
def test_along_dim_kernels_match_the_numpy_path_with_specials(name, dtype):
    activation = get_activation(name)
    rng = np.random.default_rng(5)
    x = rng.normal(0, 30, (64, 6)).astype(dtype)
    x[0, 1], x[1, 4], x[2, :2], x[3, 3], x[4, 5] = np.nan, np.inf, -np.inf, -np.inf, np.nan
    g = rng.uniform(-2, 2, activation.shape_out(x.shape, {"dim": -1})).astype(dtype)
    with np.errstate(all="ignore"):
        check_along(activation, x, g, rng, name)


def check_along(activation, x, g, rng, name):
    dtype = x.dtype.type
    for dim in (-1, 0):
        p = activation.validate({"dim": dim})
        assert fused.available(activation, x, p)
        gd = rng.uniform(-2, 2, activation.shape_out(x.shape, p)).astype(dtype)
        value, vjp = fused.value_and_vjp(activation, x, gd if dim == 0 else g, p)
        assert activation.vjp_kernel is not None
        want_value = activation.value(x, p).astype(dtype)
        want_vjp = activation.vjp_kernel(x, gd if dim == 0 else g, p).astype(dtype)
        # float64: both within ~1.7 ULP of the exact result (test_activations_exact.py)
        assert ulps(value, want_value).max() <= (1 if dtype == np.float32 else 3), name
        # The VJP subtracts terms of the size of (|g| + max|g|) (|value| + 1): 1 ULP of that.
        size = (np.abs(g if dim == -1 else gd).max() * 2 + 1) * (np.abs(want_vjp) + 1)
        off = np.abs(vjp - want_vjp) > np.spacing(size.astype(dtype))
        assert not (off & ~(np.isnan(vjp) & np.isnan(want_vjp))).any(), name


def test_warm_up_compiles_every_kernel():
    assert sorted(fused.warm_up()) == FUSED
